//! What the benchmarks that time whole rounds against a server share (cold fetches, sync):
//! criterion settings (ten flat samples, shorter under `--quick`) and the timed-rounds loop.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, SamplingMode, measurement::WallTime};
use lockbox_benches::quick;

/// Ten flat samples; 0.5 s warm-up and 4 s measurement with `--quick`, else 2 s and 10 s.
pub fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    if quick() {
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(4));
    } else {
        group
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(10));
    }
}

/// `iters` rounds for criterion's `iter_custom`: `round()` sets a round up (not timed) and
/// returns its future, which is timed; the most requests any one round sent (`requests()`
/// after minus before) is kept in `max_requests`. Returns the time of all rounds.
// watch.rs shares this module but times its polls itself.
#[allow(dead_code)]
pub async fn timed_rounds<F, Fut>(
    iters: u64,
    requests: impl Fn() -> u64,
    max_requests: &AtomicU64,
    mut round: F,
) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let run = round();
        let before = requests();
        let start = Instant::now();
        run.await;
        total += start.elapsed();
        max_requests.fetch_max(requests() - before, Ordering::Relaxed);
    }
    total
}
