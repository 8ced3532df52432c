//! What a cache keeps, for how long, and how it gathers misses.

use std::time::Duration;

use crate::Clock;

/// Settings of a [`Cache`](crate::Cache). `CacheConfig::default()` suits most programs;
/// change single fields with struct update syntax:
///
/// ```
/// # use std::time::Duration;
/// # use lockbox_cache::CacheConfig;
/// let config = CacheConfig { ttl: Duration::from_secs(60), ..CacheConfig::default() };
/// ```
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// How long a fetched value is served without asking the backend again. Default 5 minutes.
    pub ttl: Duration,
    /// How long a `NotFound` answer is remembered (a missing secret asked for in a loop costs
    /// one backend call per period, not one per call). `Duration::ZERO` remembers nothing.
    /// A write through the cache forgets it at once. Default 5 seconds.
    pub negative_ttl: Duration,
    /// Most entries kept (values and remembered `NotFound`s); past it the least recently used
    /// go first. At least 1. Default 1024.
    pub max_entries: usize,
    /// Stale-if-error: when refreshing an expired value fails with a transient error
    /// (throttling, unavailability), the previous value keeps being served for up to this long
    /// past its expiry; then the error is returned. `NotFound`, `PermissionDenied` and every
    /// other permanent error are never masked. `Duration::ZERO` turns this off. Default 15 min.
    pub max_stale: Duration,
    /// While a stale value is being served after a failed refresh, the next refresh is tried
    /// after this long (in between, reads are answered from the cache without a backend call).
    /// Default 1 second.
    pub stale_retry_interval: Duration,
    /// Refresh-ahead: a read that finds less than this much of an entry's TTL left answers from
    /// the cache at once and starts one background refresh. `None` (the default) turns it off.
    pub refresh_ahead: Option<Duration>,
    /// Batching window: a batch of misses goes to the backend's `get_many` (which splits it
    /// into calls of the backend's size: 10 names for SSM, 20 for Secrets Manager) once a
    /// window passes with no new miss joining it, and at most 8 windows after it opened. A
    /// lone miss therefore waits one window. `Duration::ZERO` gathers only the misses that
    /// arrive before the fetching task first runs. Default 1 ms.
    pub batch_window: Duration,
    /// The clock for TTLs and staleness: the system clock, or a
    /// [`ManualClock`](crate::ManualClock) in tests.
    pub clock: Clock,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(5),
            max_entries: 1024,
            max_stale: Duration::from_secs(15 * 60),
            stale_retry_interval: Duration::from_secs(1),
            refresh_ahead: None,
            batch_window: Duration::from_millis(1),
            clock: Clock::system(),
        }
    }
}
