//! Criterion settings shared by the benchmarks that time whole rounds against a server
//! (cold fetches, sync): ten flat samples, shorter under `--quick`.

use std::time::Duration;

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
