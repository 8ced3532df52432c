//! The generic engine: a cache of values of type `L::Value` by keys of type `K`, filled by a
//! loader `L` ([`Load`]).
//!
//! Layout: entries live in a concurrent hash map with lock-free reads (`papaya`: a read pins
//! the map with a thread-local epoch guard, writes no shared cache line and takes no lock).
//! Writers (fills, invalidations, evictions) serialise on one mutex and change single entries
//! in place, so a fill costs the same in a map of a thousand keys as in one of a hundred
//! thousand. Each entry is an immutable answer plus two atomics (recency, refresh started); a
//! refill replaces the entry. A hit hands out a replica of the value that belongs to the
//! reading thread's stripe (see `Entry::value_for`), so threads reading one key do not share
//! a reference count. Misses register a "flight" per key under the mutex: later misses on the
//! same key wait on that flight (single-flight), and new flights join the one open batch,
//! which a spawned task sends to the loader's [`Load::load_many`] after a short window.
//!
//! Files: this one holds the public [`LoadingCache`] and its shared state; `entry.rs` one
//! cached answer and the map; `reads.rs` the lock-free read path; `flights.rs` misses,
//! single-flight and invalidation; `batch.rs` a batch's load and what its answers do to the
//! map (TTL, negative caching, stale-if-error, eviction).

mod batch;
mod entry;
mod flights;
mod reads;

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use lockbox_core::Result;
use papaya::Equivalent;

use self::entry::{Map, new_map};
use self::flights::State;
use crate::load::{Key, Load};
use crate::stats::Counters;
use crate::{CacheConfig, CacheStats};

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

impl<K: Key, L: Load<K>> Shared<K, L> {
    pub(crate) fn count_backend_call(&self) {
        Counters::add(&self.counters.backend_calls, 1);
    }
}

type MissFuture<'a, V> = Pin<Box<dyn Future<Output = Result<V>> + Send + 'a>>;

/// The future of [`Cache::get`](crate::Cache::get): answers a hit on its first poll with no allocation; a miss
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
///   ([`CacheValue::replicate`](crate::CacheValue::replicate)). [`LoadingCache::get_fresh`] looks up by any borrowed form
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
