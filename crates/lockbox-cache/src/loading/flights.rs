//! Misses: one fetch ("flight") per key under way, joined by later misses on the same key;
//! new flights join the open batch. Also invalidation, which detaches flights already sent.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard, PoisonError};

use lockbox_core::{Error, ErrorKind, Result};
use tokio::sync::watch;

use super::batch::run_batch;
use super::entry::{Answer, Slot};
use super::{Lookup, Shared};
use crate::load::{Key, Load};
use crate::stats::Counters;

/// A fetch under way for one name.
pub(super) struct Flight<V> {
    pub(super) slot: Arc<Slot<V>>,
    pub(super) batch: u64,
}

/// The batch still gathering misses.
pub(super) struct Pending<K, V> {
    pub(super) id: u64,
    pub(super) items: Vec<(Arc<K>, Arc<Slot<V>>)>,
}

pub(super) struct State<K, V> {
    pub(super) inflight: HashMap<Arc<K>, Flight<V>>,
    pub(super) open: Option<Pending<K, V>>,
    pub(super) next_batch: u64,
    pub(super) next_seq: u64,
}

impl<K, V> Default for State<K, V> {
    fn default() -> Self {
        Self {
            inflight: HashMap::new(),
            open: None,
            next_batch: 0,
            next_seq: 0,
        }
    }
}

impl<K: Key, L: Load<K>> Shared<K, L> {
    pub(super) fn lock(&self) -> MutexGuard<'_, State<K, L::Value>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a fetch of `name` unless one is under way, and returns a receiver for its
    /// answer. `None` when there is no Tokio runtime to run the fetch on.
    fn register(
        self: &Arc<Self>,
        st: &mut State<K, L::Value>,
        name: &K,
    ) -> Option<watch::Receiver<Answer<L::Value>>> {
        if let Some(flight) = st.inflight.get(name) {
            Counters::add(&self.counters.coalesced_waits, 1);
            return Some(flight.slot.subscribe());
        }
        let name = Arc::new(name.clone());
        let (tx, rx) = watch::channel(None);
        let slot = Arc::new(tx);
        let batch = match &mut st.open {
            Some(pending) => {
                pending.items.push((Arc::clone(&name), Arc::clone(&slot)));
                pending.id
            }
            None => {
                let runtime = tokio::runtime::Handle::try_current().ok()?;
                let id = st.next_batch;
                st.next_batch += 1;
                st.open = Some(Pending {
                    id,
                    items: vec![(Arc::clone(&name), Arc::clone(&slot))],
                });
                runtime.spawn(run_batch(Arc::clone(self)));
                id
            }
        };
        st.inflight.insert(name, Flight { slot, batch });
        Some(rx)
    }

    fn no_runtime(&self, name: &K) -> Error {
        Error::new(
            ErrorKind::Unsupported,
            self.loader.backend(),
            "lockbox-cache fetches on a Tokio runtime, and none is running here",
        )
        .with_secret(name)
    }

    pub(crate) async fn miss(self: &Arc<Self>, name: &K) -> Result<L::Value> {
        let rx = {
            let mut st = self.lock();
            // A fill may have landed between the lock-free look and the lock.
            match self.lookup(name) {
                Lookup::Hit(answer) => return answer,
                Lookup::HitRefresh(answer) => {
                    self.refresh_locked(&mut st, name);
                    return answer;
                }
                Lookup::Miss => {}
            }
            Counters::add(&self.counters.misses, 1);
            self.register(&mut st, name)
        };
        match rx {
            Some(rx) => self.wait(rx, name).await,
            None => Err(self.no_runtime(name)),
        }
    }

    async fn wait(&self, mut rx: watch::Receiver<Answer<L::Value>>, name: &K) -> Result<L::Value> {
        match rx.wait_for(Option::is_some).await {
            Ok(answer) => answer.clone().unwrap_or_else(|| Err(self.abandoned(name))),
            Err(_) => Err(self.abandoned(name)),
        }
    }

    pub(super) fn abandoned(&self, name: &K) -> Error {
        Error::new(
            ErrorKind::Backend,
            self.loader.backend(),
            "the cache's fetch ended without an answer (it panicked or its runtime stopped)",
        )
        .with_secret(name)
    }

    pub(crate) fn refresh_in_background(self: &Arc<Self>, name: &K) {
        let mut st = self.lock();
        self.refresh_locked(&mut st, name);
    }

    fn refresh_locked(self: &Arc<Self>, st: &mut State<K, L::Value>, name: &K) {
        if st.inflight.contains_key(name) {
            return;
        }
        if self.register(st, name).is_some() {
            Counters::add(&self.counters.background_refreshes, 1);
        }
    }

    pub(crate) async fn get_many(self: &Arc<Self>, names: &[K]) -> Vec<Result<L::Value>> {
        let mut out: Vec<Option<Result<L::Value>>> = Vec::with_capacity(names.len());
        let mut refresh = Vec::new();
        for name in names {
            out.push(match self.lookup(name) {
                Lookup::Hit(answer) => Some(answer),
                Lookup::HitRefresh(answer) => {
                    refresh.push(name);
                    Some(answer)
                }
                Lookup::Miss => None,
            });
        }
        let mut waits = Vec::new();
        {
            let mut st = self.lock();
            for name in refresh {
                self.refresh_locked(&mut st, name);
            }
            for (i, name) in names.iter().enumerate() {
                if out[i].is_some() {
                    continue;
                }
                match self.lookup(name) {
                    Lookup::Hit(answer) => out[i] = Some(answer),
                    Lookup::HitRefresh(answer) => {
                        self.refresh_locked(&mut st, name);
                        out[i] = Some(answer);
                    }
                    Lookup::Miss => {
                        Counters::add(&self.counters.misses, 1);
                        match self.register(&mut st, name) {
                            Some(rx) => waits.push((i, rx)),
                            None => out[i] = Some(Err(self.no_runtime(name))),
                        }
                    }
                }
            }
        }
        for (i, rx) in waits {
            out[i] = Some(self.wait(rx, &names[i]).await);
        }
        out.into_iter()
            .map(|answer| answer.expect("every name has an answer"))
            .collect()
    }

    pub(crate) fn invalidate(&self, name: Option<&K>) {
        let mut st = self.lock();
        let guard = self.map.guard();
        match name {
            Some(name) => {
                self.map.remove(name, &guard);
            }
            None => self.map.clear(&guard),
        }
        // Fetches already sent may carry an answer from before the change: detach them so
        // their answer is not stored and later reads start a new fetch. A fetch still
        // gathering its batch has not asked yet, so it stays.
        let open = st.open.as_ref().map(|p| p.id);
        match name {
            Some(name) => {
                if st.inflight.get(name).is_some_and(|f| Some(f.batch) != open) {
                    st.inflight.remove(name);
                }
            }
            None => st.inflight.retain(|_, f| Some(f.batch) == open),
        }
    }
}
