//! Counters a cache keeps about itself. Hits are counted on per-thread stripes so that threads
//! reading the same secret do not fight over one counter's cache line; the hit count is
//! therefore approximate when more threads than stripes hit at once (see [`CacheStats::hits`]).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of a cache's counters, from [`Cache::stats`](crate::Cache::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered from the cache (a stale value served from the cache counts too).
    /// Counted on 8 stripes that threads take in turn, without atomic adds: exact while no
    /// two threads of one stripe hit at the same instant; otherwise a hit may occasionally go
    /// uncounted (never counted twice).
    pub hits: u64,
    /// Reads that found no usable entry and waited for the backend.
    pub misses: u64,
    /// Misses that joined a fetch already under way for the same name instead of starting one.
    pub coalesced_waits: u64,
    /// Calls the cache made to the backend (one `get_many` is one call; writes and
    /// pass-through reads count too).
    pub backend_calls: u64,
    /// Names requested from the backend by fetches.
    pub names_fetched: u64,
    /// Stale values served because a refresh failed transiently.
    pub stale_served: u64,
    /// Entries dropped to stay within `max_entries`.
    pub evictions: u64,
    /// Background refreshes started by refresh-ahead.
    pub background_refreshes: u64,
}

/// Hit-counter stripes (and per-entry value replicas, see `cache.rs`): threads take them in
/// turn.
pub(crate) const STRIPES: usize = 8;

#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

/// The live counters.
#[derive(Default)]
pub(crate) struct Counters {
    hits: [Padded; STRIPES],
    pub(crate) misses: AtomicU64,
    pub(crate) coalesced_waits: AtomicU64,
    pub(crate) backend_calls: AtomicU64,
    pub(crate) names_fetched: AtomicU64,
    pub(crate) stale_served: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) background_refreshes: AtomicU64,
}

/// The calling thread's stripe, `0..STRIPES`, fixed for the thread's life.
#[inline]
pub(crate) fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            s.set(i);
        }
        i
    })
}

impl Counters {
    /// Counts a hit on `stripe` (the caller's [`stripe()`]). A plain load and store, not an
    /// atomic add: a locked add costs as much as the rest of a hit. Exact while no two
    /// threads of one stripe count at the same instant; with more than [`STRIPES`] threads
    /// hitting at once, a few hits may go uncounted (never counted twice).
    #[inline]
    pub(crate) fn hit(&self, stripe: usize) {
        let counter = &self.hits[stripe].0;
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            hits: self.hits.iter().map(|p| get(&p.0)).sum(),
            misses: get(&self.misses),
            coalesced_waits: get(&self.coalesced_waits),
            backend_calls: get(&self.backend_calls),
            names_fetched: get(&self.names_fetched),
            stale_served: get(&self.stale_served),
            evictions: get(&self.evictions),
            background_refreshes: get(&self.background_refreshes),
        }
    }
}
