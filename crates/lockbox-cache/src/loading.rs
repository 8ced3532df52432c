//! The generic engine: a cache of values of type `L::Value` by keys of type `K`, filled by a
//! loader `L` ([`Load`]).
//!
//! Layout: entries live in a concurrent hash map with lock-free reads (`papaya`: a read pins
//! the map with a thread-local epoch guard, writes no shared cache line and takes no lock).
//! Writers (fills, invalidations, evictions) serialise on one mutex and change single entries
//! in place, so a fill costs the same in a map of a thousand keys as in one of a hundred
//! thousand. Each entry is an immutable answer plus two atomics (recency, refresh started); a
//! refill replaces the entry. A hit hands out a replica of the value that belongs to the
//! reading thread's stripe (see [`Entry::value_for`]), so threads reading one key do not share
//! a reference count. Misses register a "flight" per key under the mutex: later misses on the
//! same key wait on that flight (single-flight), and new flights join the one open batch,
//! which a spawned task sends to the loader's [`Load::load_many`] after a short window.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use lockbox_core::{Error, ErrorKind, Result};
use papaya::Equivalent;
use tokio::sync::watch;

use crate::load::{CacheValue, Key, Load};
use crate::stats::{Counters, STRIPES, stripe};
use crate::{CacheConfig, CacheStats};

/// Recency is recorded at most this often per entry, so hits on a hot entry do not keep
/// writing its cache line.
const TOUCH_GRANULARITY_NS: u64 = 1_000_000;

/// foldhash: a hash several times faster than SipHash on short keys, seeded at random per
/// cache. Keys may come from requests (lockbox serve), but the map is bounded by
/// `max_entries` and the seed is secret, so SipHash's stronger flooding resistance buys
/// little here.
type Map<K, V> = papaya::HashMap<Arc<K>, Entry<V>, foldhash::fast::RandomState>;

fn new_map<K: Key, V: CacheValue>() -> Map<K, V> {
    papaya::HashMap::builder()
        .hasher(foldhash::fast::RandomState::default())
        // One writer at a time (the state mutex): a blocking resize is the cheaper one, and
        // reads never wait for it.
        .resize_mode(papaya::ResizeMode::Blocking)
        .build()
}
type Answer<V> = Option<Result<V>>;
type Slot<V> = watch::Sender<Answer<V>>;
/// The flights of one batch: each key and the slot its readers wait on.
type Items<K, V> = Vec<(Arc<K>, Arc<Slot<V>>)>;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One cached answer: a value, or a remembered `NotFound`.
struct Entry<V> {
    /// The error is boxed so that the entry's hot fields share one cache line.
    outcome: std::result::Result<V, Box<Error>>,
    /// Before this, reads are answered with no further work.
    refresh_at: u64,
    /// Before this (and from `refresh_at` on), reads are answered and one background refresh
    /// starts. From here on, a read waits for a refresh.
    expires_at: u64,
    /// A failed refresh may serve this value until here (stale-if-error).
    stale_until: u64,
    last_used: AtomicU64,
    /// Insertion order, to break ties in recency.
    seq: u64,
    refreshing: AtomicBool,
    /// Copies of the value, one per hit-counter stripe, made the first time a thread of that
    /// stripe reads the entry: each has its own reference count, so threads reading one
    /// secret do not bounce one count's cache line between cores. At most [`STRIPES`]
    /// copies, only of entries more than one thread reads; zeroed when dropped like any value.
    replicas: [OnceLock<V>; STRIPES],
}

impl<V: CacheValue> Entry<V> {
    fn new(
        outcome: std::result::Result<V, Box<Error>>,
        refresh_at: u64,
        expires_at: u64,
        stale_until: u64,
        last_used: u64,
        seq: u64,
    ) -> Self {
        Self {
            outcome,
            refresh_at,
            expires_at,
            stale_until,
            last_used: AtomicU64::new(last_used),
            seq,
            refreshing: AtomicBool::new(false),
            replicas: Default::default(),
        }
    }

    /// `value` (this entry's) as the calling thread's stripe holds it: its own copy, made on
    /// the stripe's first read.
    #[inline]
    fn value_for(&self, value: &V, stripe: usize) -> V {
        self.replicas[stripe]
            .get_or_init(|| value.replicate())
            .clone()
    }

    /// The answer a read gets from this entry.
    #[inline]
    fn answer(&self) -> Result<V> {
        match &self.outcome {
            Ok(value) => Ok(self.value_for(value, stripe())),
            Err(e) => Err((**e).clone()),
        }
    }

    #[inline]
    fn touch(&self, now: u64) {
        let last = self.last_used.load(Ordering::Relaxed);
        if now >= last.saturating_add(TOUCH_GRANULARITY_NS) {
            self.last_used.store(now, Ordering::Relaxed);
        }
    }
}

/// A fetch under way for one name.
struct Flight<V> {
    slot: Arc<Slot<V>>,
    batch: u64,
}

/// The batch still gathering misses.
struct Pending<K, V> {
    id: u64,
    items: Vec<(Arc<K>, Arc<Slot<V>>)>,
}

struct State<K, V> {
    inflight: HashMap<Arc<K>, Flight<V>>,
    open: Option<Pending<K, V>>,
    next_batch: u64,
    next_seq: u64,
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

pub(crate) struct Shared<K: Key, L: Load<K>> {
    loader: L,
    config: CacheConfig,
    map: Map<K, L::Value>,
    state: Mutex<State<K, L::Value>>,
    counters: Counters,
}

/// What a read found in the map.
pub(crate) enum Lookup<V> {
    /// A usable answer.
    Hit(Result<V>),
    /// A usable answer, and this read should start a background refresh.
    HitRefresh(Result<V>),
    /// Nothing usable: the backend must be asked.
    Miss,
}

/// What a fetch result does to the map.
enum Change<V> {
    Insert(Entry<V>),
    Remove,
}

impl<K: Key, L: Load<K>> Shared<K, L> {
    fn lock(&self) -> MutexGuard<'_, State<K, L::Value>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn count_backend_call(&self) {
        Counters::add(&self.counters.backend_calls, 1);
    }

    /// Runs `f` on the entry for `name`, if any, under a lock-free read guard.
    #[inline]
    fn with_entry<Q, R>(&self, name: &Q, f: impl FnOnce(Option<&Entry<L::Value>>) -> R) -> R
    where
        Q: Equivalent<Arc<K>> + Hash + ?Sized,
    {
        let guard = self.map.guard();
        f(self.map.get(name, &guard))
    }

    /// The lock-free read path.
    #[inline]
    pub(crate) fn lookup(&self, name: &K) -> Lookup<L::Value> {
        let now = self.config.clock.coarse_nanos();
        self.with_entry(name, |entry| self.lookup_in(entry, now))
    }

    /// The common case alone: a value (not a remembered `NotFound`) that needs no refresh.
    /// Returns only the 8-byte handle, so nothing large is copied on the hot path.
    #[inline]
    pub(crate) fn fresh_value<Q>(&self, name: &Q) -> Option<L::Value>
    where
        Q: Equivalent<Arc<K>> + Hash + ?Sized,
    {
        let now = self.config.clock.coarse_nanos();
        self.with_entry(name, |entry| {
            let entry = entry?;
            let value = entry.outcome.as_ref().ok()?;
            if now >= entry.refresh_at {
                return None;
            }
            entry.touch(now);
            let stripe = stripe();
            self.counters.hit(stripe);
            Some(entry.value_for(value, stripe))
        })
    }

    /// What a read gets without waiting: the fresh value (the common case, checked first),
    /// else any usable answer (starting a refresh-ahead when due); `None` on a miss.
    #[inline]
    pub(crate) fn cached(self: &Arc<Self>, name: &K) -> Option<Result<L::Value>> {
        if let Some(value) = self.fresh_value(name) {
            return Some(Ok(value));
        }
        match self.lookup(name) {
            Lookup::Hit(answer) => Some(answer),
            Lookup::HitRefresh(answer) => {
                self.refresh_in_background(name);
                Some(answer)
            }
            Lookup::Miss => None,
        }
    }

    #[inline]
    fn lookup_in(&self, entry: Option<&Entry<L::Value>>, now: u64) -> Lookup<L::Value> {
        let Some(entry) = entry else {
            return Lookup::Miss;
        };
        if now < entry.refresh_at {
            entry.touch(now);
            self.counters.hit(stripe());
            return Lookup::Hit(entry.answer());
        }
        if now < entry.expires_at {
            entry.touch(now);
            self.counters.hit(stripe());
            let first = entry
                .refreshing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            return if first {
                Lookup::HitRefresh(entry.answer())
            } else {
                Lookup::Hit(entry.answer())
            };
        }
        Lookup::Miss
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

    fn abandoned(&self, name: &K) -> Error {
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
async fn run_batch<K: Key, L: Load<K>>(shared: Arc<Shared<K, L>>) {
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

type MissFuture<'a, V> = Pin<Box<dyn Future<Output = Result<V>> + Send + 'a>>;

/// The future of [`Cache::get`]: answers a hit on its first poll with no allocation; a miss
/// boxes the wait for the fetch.
pub(crate) struct Get<'a, K: Key, L: Load<K>> {
    pub(crate) shared: &'a Arc<Shared<K, L>>,
    pub(crate) name: &'a K,
    pub(crate) miss: Option<MissFuture<'a, L::Value>>,
}

impl<'a, K: Key, L: Load<K>> Future for Get<'a, K, L> {
    type Output = Result<L::Value>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.miss.is_none() {
            let (shared, name) = (self.shared, self.name);
            match shared.cached(name) {
                Some(answer) => return Poll::Ready(answer),
                None => self.miss = Some(Box::pin(Shared::miss(shared, name))),
            }
        }
        match self.miss.as_mut() {
            Some(miss) => miss.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

/// A cache of `L::Value`s by `K`, filled by the loader `L`: lock-free hits, single-flight and
/// batched misses, per-entry TTL, an LRU bound, stale-if-error and refresh-ahead (see
/// [`CacheConfig`]). [`Cache`](crate::Cache) is the instance for any
/// [`SecretsManager`](lockbox_core::SecretsManager) by [`SecretName`](lockbox_core::SecretName);
/// lockbox serve keys one by its typed requests and keeps finished response bodies.
///
/// - A hit reads a concurrent map under a thread-local guard, takes no lock and allocates
///   nothing: the value handed out is the reading thread's stripe's replica
///   ([`CacheValue::replicate`]). [`LoadingCache::get_fresh`] looks up by any borrowed form
///   of the key ([`Equivalent`]), so a caller need not build an owned key to hit.
/// - Concurrent misses on one key make one load and share its result, error included. Misses
///   arriving together (see [`CacheConfig::batch_window`]) go to [`Load::load_many`] together.
/// - Only `NotFound` is remembered as an absence (for [`CacheConfig::negative_ttl`]); only
///   retryable errors let a stale value be served; any other error drops the entry.
///
/// Misses spawn a Tokio task for the load, so a caller that gives up (its future dropped)
/// never strands the others waiting on the same load. Misses therefore need a Tokio runtime.
pub struct LoadingCache<K: Key, L: Load<K>> {
    pub(crate) shared: Arc<Shared<K, L>>,
}

impl<K: Key, L: Load<K>> Clone for LoadingCache<K, L> {
    /// Another handle on the same cache.
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K: Key, L: Load<K>> LoadingCache<K, L> {
    /// A cache filled by `loader`, with `config`.
    pub fn new(loader: L, config: CacheConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                loader,
                config,
                map: new_map(),
                state: Mutex::new(State::default()),
                counters: Counters::default(),
            }),
        }
    }

    /// The value for `key`: from the cache when it holds a usable entry, otherwise loaded
    /// (coalesced and batched with other misses) and cached. A hit takes no lock and
    /// allocates nothing (only a miss boxes its wait).
    pub fn get<'a>(&'a self, key: &'a K) -> impl Future<Output = Result<L::Value>> + Send + 'a {
        Get {
            shared: &self.shared,
            name: key,
            miss: None,
        }
    }

    /// The value for a key given in any borrowed form, when the cache holds it fresh (before
    /// its refresh time; not a remembered absence, not a stale value): the hot path of a
    /// caller that would otherwise build an owned key per read. Counted as a hit when it
    /// answers; `None` means "call [`LoadingCache::get`]", which also starts refreshes.
    #[inline]
    pub fn get_fresh<Q>(&self, key: &Q) -> Option<L::Value>
    where
        Q: Equivalent<Arc<K>> + Hash + ?Sized,
    {
        self.shared.fresh_value(key)
    }

    /// The answer a read would get without waiting: a usable entry's value or remembered
    /// absence, counted as a hit (starting a refresh-ahead when due); `None` on a miss.
    #[inline]
    pub fn get_cached(&self, key: &K) -> Option<Result<L::Value>> {
        self.shared.cached(key)
    }

    /// Values for several keys, one result per key in order: hits from the cache, all misses
    /// in one batch.
    pub async fn get_many(&self, keys: &[K]) -> Vec<Result<L::Value>> {
        Shared::get_many(&self.shared, keys).await
    }

    /// Forgets `key`: the next read loads it. A load of `key` already under way still
    /// answers the reads waiting on it but is not stored.
    pub fn invalidate(&self, key: &K) {
        self.shared.invalidate(Some(key));
    }

    /// Forgets every entry.
    pub fn invalidate_all(&self) {
        self.shared.invalidate(None);
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        self.shared.counters.snapshot()
    }

    /// Entries held (values and remembered absences, expired ones included until they are
    /// refreshed or evicted).
    pub fn len(&self) -> usize {
        self.shared.map.len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an entry for `key` is held, usable or not. Does not count as a use.
    pub fn contains(&self, key: &K) -> bool {
        self.shared.map.pin().contains_key(key)
    }

    /// The answer a read would get from the cache right now, without loading, counting a hit
    /// or starting a refresh: `None` when a read would have to wait for a load.
    pub fn peek(&self, key: &K) -> Option<Result<L::Value>> {
        let now = self.shared.config.clock.coarse_nanos();
        self.shared.with_entry(key, |entry| {
            entry.filter(|e| now < e.expires_at).map(|e| e.answer())
        })
    }

    /// The loader.
    pub fn loader(&self) -> &L {
        &self.shared.loader
    }

    /// The settings this cache runs with.
    pub fn config(&self) -> &CacheConfig {
        &self.shared.config
    }
}

impl<K: Key, L: Load<K> + fmt::Debug> fmt::Debug for LoadingCache<K, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadingCache")
            .field("loader", &self.shared.loader)
            .field("entries", &self.shared.map.len())
            .field("config", &self.shared.config)
            .finish()
    }
}
