//! One cached answer ([`Entry`]) and the map that holds them.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use lockbox_core::{Error, Result};
use tokio::sync::watch;

use crate::load::{CacheValue, Key};
use crate::stats::{STRIPES, stripe};

/// Recency is recorded at most this often per entry, so hits on a hot entry do not keep
/// writing its cache line.
const TOUCH_GRANULARITY_NS: u64 = 1_000_000;

/// foldhash: a hash several times faster than SipHash on short keys, seeded at random per
/// cache. Keys may come from requests (lockbox serve), but the map is bounded by
/// `max_entries` and the seed is secret, so SipHash's stronger flooding resistance buys
/// little here.
pub(super) type Map<K, V> = papaya::HashMap<Arc<K>, Entry<V>, foldhash::fast::RandomState>;

pub(super) fn new_map<K: Key, V: CacheValue>() -> Map<K, V> {
    papaya::HashMap::builder()
        .hasher(foldhash::fast::RandomState::default())
        // One writer at a time (the state mutex): a blocking resize is the cheaper one, and
        // reads never wait for it.
        .resize_mode(papaya::ResizeMode::Blocking)
        .build()
}
pub(super) type Answer<V> = Option<Result<V>>;
pub(super) type Slot<V> = watch::Sender<Answer<V>>;
/// The flights of one batch: each key and the slot its readers wait on.
pub(super) type Items<K, V> = Vec<(Arc<K>, Arc<Slot<V>>)>;

pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One cached answer: a value, or a remembered `NotFound`.
pub(super) struct Entry<V> {
    /// The error is boxed so that the entry's hot fields share one cache line.
    pub(super) outcome: std::result::Result<V, Box<Error>>,
    /// Before this, reads are answered with no further work.
    pub(super) refresh_at: u64,
    /// Before this (and from `refresh_at` on), reads are answered and one background refresh
    /// starts. From here on, a read waits for a refresh.
    pub(super) expires_at: u64,
    /// A failed refresh may serve this value until here (stale-if-error).
    pub(super) stale_until: u64,
    pub(super) last_used: AtomicU64,
    /// Insertion order, to break ties in recency.
    pub(super) seq: u64,
    pub(super) refreshing: AtomicBool,
    /// Copies of the value, one per hit-counter stripe, made the first time a thread of that
    /// stripe reads the entry: each has its own reference count, so threads reading one
    /// secret do not bounce one count's cache line between cores. At most [`STRIPES`]
    /// copies, only of entries more than one thread reads; zeroed when dropped like any value.
    pub(super) replicas: [OnceLock<V>; STRIPES],
}

impl<V: CacheValue> Entry<V> {
    pub(super) fn new(
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
    pub(super) fn value_for(&self, value: &V, stripe: usize) -> V {
        self.replicas[stripe]
            .get_or_init(|| value.replicate())
            .clone()
    }

    /// The answer a read gets from this entry.
    #[inline]
    pub(super) fn answer(&self) -> Result<V> {
        match &self.outcome {
            Ok(value) => Ok(self.value_for(value, stripe())),
            Err(e) => Err((**e).clone()),
        }
    }

    #[inline]
    pub(super) fn touch(&self, now: u64) {
        let last = self.last_used.load(Ordering::Relaxed);
        if now >= last.saturating_add(TOUCH_GRANULARITY_NS) {
            self.last_used.store(now, Ordering::Relaxed);
        }
    }
}
