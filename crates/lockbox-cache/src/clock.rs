//! The time source for TTLs and staleness: the monotonic system clock, or a manual one for tests.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Where a [`Cache`](crate::Cache) reads the time for expiry, staleness and recency.
///
/// [`Clock::system`] (the default) is monotonic. Reads that hit the cache do not ask the
/// operating system for the time (about 35 ns on a virtual machine, more than the rest of a
/// hit): they load a coarse copy that one shared background thread refreshes every 10 ms
/// while any system clock is alive (about 0.2% of a core), so an entry may be served up to
/// that much past its TTL (more if the machine is too loaded to run the thread). Storing
/// fetched answers and stale-if-error decisions use the precise time.
///
/// A [`ManualClock`] moves only when a test says so, which makes TTL and staleness tests exact
/// without sleeping. The short batching window is not measured with this clock but with
/// Tokio's timer (pause it with Tokio's `test-util`).
#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    System(Arc<TickerUser>),
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The monotonic system clock.
    pub fn system() -> Self {
        Self(Source::System(TickerUser::register()))
    }

    /// Nanoseconds since this clock's origin, precisely.
    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        match &self.0 {
            Source::System(user) => user.ticker.precise(),
            Source::Manual(t) => t.load(Ordering::Acquire),
        }
    }

    /// Nanoseconds since this clock's origin, up to one tick behind (exact for a manual
    /// clock): an atomic load instead of a system call.
    #[inline]
    pub(crate) fn coarse_nanos(&self) -> u64 {
        match &self.0 {
            Source::System(_) => Ticker::coarse_now(),
            Source::Manual(t) => t.load(Ordering::Acquire),
        }
    }

    /// Time since this clock's origin.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::System(_) => f.write_str("Clock::System"),
            Source::Manual(t) => write!(
                f,
                "Clock::Manual({:?})",
                Duration::from_nanos(t.load(Ordering::Acquire))
            ),
        }
    }
}

/// How often the shared ticker refreshes the coarse time.
const TICK: Duration = Duration::from_millis(10);

/// The process-wide coarse clock: one thread stores the time every [`TICK`] while at least
/// one system [`Clock`] exists, and stops when the last one is dropped.
/// The coarse time in nanoseconds since the ticker's origin.
static COARSE: AtomicU64 = AtomicU64::new(0);
/// Set when the ticker thread could not be started: hits then read the precise time.
static FALLBACK: AtomicBool = AtomicBool::new(false);

struct Ticker {
    origin: Instant,
    /// Live users and whether the thread runs, under one lock so that stopping and
    /// restarting cannot race.
    state: Mutex<(usize, bool)>,
}

impl Ticker {
    fn get() -> &'static Ticker {
        static TICKER: OnceLock<Ticker> = OnceLock::new();
        TICKER.get_or_init(|| Ticker {
            origin: Instant::now(),
            state: Mutex::new((0, false)),
        })
    }

    fn precise(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The coarse time, read from statics (no pointer to follow on the hot path).
    #[inline]
    fn coarse_now() -> u64 {
        if FALLBACK.load(Ordering::Relaxed) {
            return Ticker::get().precise();
        }
        COARSE.load(Ordering::Relaxed)
    }

    fn run(&'static self) {
        loop {
            COARSE.store(self.precise(), Ordering::Relaxed);
            {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.0 == 0 {
                    state.1 = false;
                    return;
                }
            }
            std::thread::sleep(TICK);
        }
    }
}

/// One registered user of the ticker; dropping the last one lets the thread stop.
struct TickerUser {
    ticker: &'static Ticker,
}

impl TickerUser {
    fn register() -> Arc<Self> {
        let ticker = Ticker::get();
        let mut state = ticker.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 += 1;
        if !state.1 {
            COARSE.store(ticker.precise(), Ordering::Relaxed);
            let spawned = std::thread::Builder::new()
                .name("lockbox-cache-clock".into())
                .spawn(move || ticker.run());
            match spawned {
                Ok(_) => state.1 = true,
                Err(_) => FALLBACK.store(true, Ordering::Relaxed),
            }
        }
        Arc::new(Self { ticker })
    }
}

impl Drop for TickerUser {
    fn drop(&mut self) {
        let mut state = self
            .ticker
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.0 = state.0.saturating_sub(1);
    }
}

/// A clock that stands still until [`advance`](Self::advance) moves it: hand
/// [`clock`](Self::clock) to a [`CacheConfig`](crate::CacheConfig) and keep this handle.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A manual clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The [`Clock`] that follows this handle.
    pub fn clock(&self) -> Clock {
        Clock(Source::Manual(Arc::clone(&self.0)))
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(nanos))
            })
            .ok();
    }

    /// The current time since the origin.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let manual = ManualClock::new();
        let clock = manual.clock();
        assert_eq!(clock.now(), Duration::ZERO);
        manual.advance(Duration::from_secs(3));
        assert_eq!(clock.now(), Duration::from_secs(3));
        assert_eq!(manual.now(), Duration::from_secs(3));
    }

    #[test]
    fn system_clock_is_monotonic_and_the_coarse_copy_trails_it() {
        let clock = Clock::system();
        let a = clock.now_nanos();
        let b = clock.now_nanos();
        assert!(b >= a);
        assert!(clock.coarse_nanos() <= clock.now_nanos());
        let copy = clock.clone();
        drop(clock);
        assert!(copy.coarse_nanos() <= copy.now_nanos());
    }
}
