//! A batch's life: gather misses for a short window, load them together, store what may be
//! stored (TTL, negative caching, stale-if-error, eviction), wake the readers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use lockbox_core::{Error, ErrorKind, Result};

use super::Shared;
use super::entry::{Entry, Items, nanos};
use crate::load::{Key, Load};
use crate::stats::Counters;

/// What a fetch result does to the map.
enum Change<V> {
    Insert(Entry<V>),
    Remove,
}

impl<K: Key, L: Load<K>> Shared<K, L> {
    /// Applies a batch's answers: stores what may be stored, then wakes the waiters.
    fn complete(&self, items: Items<K, L::Value>, results: Vec<Result<L::Value>>) {
        let now = self.config.clock.now_nanos();
        let mut deliveries = Vec::with_capacity(items.len());
        {
            let mut st = self.lock();
            let guard = self.map.guard();
            let mut inserted = false;
            for ((name, slot), result) in items.into_iter().zip(results) {
                let attached = st
                    .inflight
                    .get(&*name)
                    .is_some_and(|f| Arc::ptr_eq(&f.slot, &slot));
                let old = self.map.get(&*name, &guard);
                let seq = st.next_seq;
                st.next_seq += 1;
                let (change, answer) = self.decide(&name, old, result, now, seq);
                if attached {
                    st.inflight.remove(&*name);
                    match change {
                        Change::Insert(entry) => {
                            self.map.insert(name, entry, &guard);
                            inserted = true;
                        }
                        Change::Remove => {
                            self.map.remove(&*name, &guard);
                        }
                    }
                }
                deliveries.push((slot, answer));
            }
            if inserted {
                self.evict(&guard, now);
            }
        }
        for (slot, answer) in deliveries {
            slot.send_replace(Some(answer));
        }
    }

    /// What a fetch result means for the entry and for the readers waiting on it.
    fn decide(
        &self,
        name: &K,
        old: Option<&Entry<L::Value>>,
        result: Result<L::Value>,
        now: u64,
        seq: u64,
    ) -> (Change<L::Value>, Result<L::Value>) {
        let cfg = &self.config;
        match result {
            Ok(value) => {
                let expires_at = now.saturating_add(nanos(cfg.ttl));
                let refresh_at = match cfg.refresh_ahead {
                    Some(ahead) => expires_at.saturating_sub(nanos(ahead)).max(now),
                    None => expires_at,
                };
                let entry = Entry::new(
                    Ok(value.clone()),
                    refresh_at,
                    expires_at,
                    expires_at.saturating_add(nanos(cfg.max_stale)),
                    now,
                    seq,
                );
                (Change::Insert(entry), Ok(value))
            }
            Err(e) if e.is_not_found() => {
                if cfg.negative_ttl.is_zero() {
                    return (Change::Remove, Err(e));
                }
                let expires_at = now.saturating_add(nanos(cfg.negative_ttl));
                let entry = Entry::new(
                    Err(Box::new(e.clone())),
                    expires_at,
                    expires_at,
                    expires_at,
                    now,
                    seq,
                );
                (Change::Insert(entry), Err(e))
            }
            Err(e) if e.is_retryable() => match old {
                Some(old) if old.outcome.is_ok() && now < old.stale_until => {
                    let retry_at = now.saturating_add(nanos(cfg.stale_retry_interval));
                    let stale = now >= old.expires_at;
                    let expires_at = if stale {
                        retry_at.min(old.stale_until)
                    } else {
                        old.expires_at
                    };
                    if stale {
                        Counters::add(&self.counters.stale_served, 1);
                        tracing::warn!(
                            secret = %name,
                            error = %e,
                            "refresh failed transiently; serving the cached value past its TTL"
                        );
                    }
                    let entry = Entry::new(
                        old.outcome.clone(),
                        retry_at.min(expires_at),
                        expires_at,
                        old.stale_until,
                        old.last_used.load(Ordering::Relaxed).max(now),
                        old.seq,
                    );
                    let answer = old.answer();
                    (Change::Insert(entry), answer)
                }
                _ => (Change::Remove, Err(e)),
            },
            // PermissionDenied and every other permanent error: never masked, and the old
            // value is no longer served.
            Err(e) => (Change::Remove, Err(e)),
        }
    }

    /// Drops entries past `max_entries`: those that can no longer be served at all first,
    /// then the least recently used (older insertions first among equals).
    ///
    /// Runs under the state lock, after a fill; a scan of the map, so only a full cache pays
    /// it (and then in proportion to `max_entries`, not to the names ever filled).
    fn evict(&self, guard: &impl papaya::Guard, now: u64) {
        let max = self.config.max_entries.max(1);
        let len = self.map.len();
        if len <= max {
            return;
        }
        let excess = len - max;
        let mut order: Vec<(bool, u64, u64, Arc<K>)> = self
            .map
            .iter(guard)
            .map(|(name, e)| {
                (
                    now < e.stale_until,
                    e.last_used.load(Ordering::Relaxed),
                    e.seq,
                    Arc::clone(name),
                )
            })
            .collect();
        order.select_nth_unstable_by_key(excess - 1, |(usable, used, seq, _)| {
            (*usable, *used, *seq)
        });
        for (_, _, _, name) in order.into_iter().take(excess) {
            self.map.remove(&*name, guard);
        }
        Counters::add(&self.counters.evictions, excess as u64);
    }
}

/// Completes a batch's flights even when the fetch never returns (a panic in the backend,
/// or the runtime shutting down), so no reader waits forever.
struct BatchGuard<'a, K: Key, L: Load<K>> {
    shared: &'a Shared<K, L>,
    items: Option<Items<K, L::Value>>,
}

impl<K: Key, L: Load<K>> Drop for BatchGuard<'_, K, L> {
    fn drop(&mut self) {
        if let Some(items) = self.items.take() {
            let results = items
                .iter()
                .map(|(name, _)| Err(self.shared.abandoned(name)))
                .collect();
            self.shared.complete(items, results);
        }
    }
}

/// A batch stays open at most this many windows, however many misses keep arriving.
const MAX_BATCH_WINDOWS: u32 = 8;

/// The task behind one batch: gather misses until a window passes without a new one (or
/// [`MAX_BATCH_WINDOWS`] have passed), close the batch, fetch, store, wake.
pub(super) async fn run_batch<K: Key, L: Load<K>>(shared: Arc<Shared<K, L>>) {
    let window = shared.config.batch_window;
    let mut seen = 0;
    let mut windows = 0;
    let items = loop {
        if window.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(window).await;
        }
        windows += 1;
        let mut st = shared.lock();
        let gathered = st.open.as_ref().map_or(0, |p| p.items.len());
        if window.is_zero() || gathered == seen || windows >= MAX_BATCH_WINDOWS {
            break st.open.take().map(|p| p.items).unwrap_or_default();
        }
        seen = gathered;
    };
    if items.is_empty() {
        return;
    }
    let names: Vec<K> = items.iter().map(|(n, _)| (**n).clone()).collect();
    let mut guard = BatchGuard {
        shared: &shared,
        items: Some(items),
    };
    shared.count_backend_call();
    Counters::add(&shared.counters.names_fetched, names.len() as u64);
    let mut results = if let [name] = names.as_slice() {
        vec![shared.loader.load(name).await]
    } else {
        shared.loader.load_many(&names).await
    };
    if results.len() != names.len() {
        let message = format!(
            "load_many answered {} results for {} keys",
            results.len(),
            names.len()
        );
        results = names
            .iter()
            .map(|n| {
                Err(
                    Error::new(ErrorKind::Backend, shared.loader.backend(), message.clone())
                        .with_secret(n),
                )
            })
            .collect();
    }
    if let Some(items) = guard.items.take() {
        shared.complete(items, results);
    }
}
