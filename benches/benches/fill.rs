//! Filling the cache: `n` distinct names read once each, one after another, into a fresh
//! cache large enough to hold them all (nothing is evicted), over a backend that answers at
//! once ([`StaticBackend`]), so the time is the cache's own: registering the miss, the fetch
//! task, storing the entry, waking the reader.
//!
//! - `fill_1k`: 1,000 names; `fill_100k`: 100,000 names. Each iteration is one whole fill;
//!   the figure per name is the time over `n`. A cache whose fill copies its map costs
//!   O(n) a name (O(n^2) in all); the target is a per-name cost at 100,000 names within 2x of
//!   that at 1,000.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use lockbox_benches::{StaticBackend, names, quick};
use lockbox_cache::{Cache, CacheConfig};
use lockbox_core::SecretName;

/// A fresh cache filled with `names`, one read after another; returns the time the reads took.
fn fill(rt: &tokio::runtime::Runtime, names: &[SecretName]) -> Duration {
    rt.block_on(async {
        let cache = Cache::new(
            StaticBackend,
            CacheConfig {
                max_entries: names.len(),
                // A lone miss is fetched as soon as its task runs: no window to wait out.
                batch_window: Duration::ZERO,
                ..CacheConfig::default()
            },
        );
        let start = Instant::now();
        for name in names {
            black_box(cache.get(name).await.expect("fill"));
        }
        let took = start.elapsed();
        assert_eq!(cache.len(), names.len());
        assert_eq!(cache.stats().evictions, 0);
        took
    })
}

fn bench_fill(c: &mut Criterion) {
    let rt = lockbox_benches::current_thread_runtime();
    let mut group = c.benchmark_group("cache_fill");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    if quick() {
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
    } else {
        group
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(8));
    }
    for (id, n) in [("fill_1k", 1_000), ("fill_100k", 100_000)] {
        let names = names(n);
        group.bench_function(id, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| fill(&rt, &names)).sum());
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_fill(&mut c);
    c.final_summary();
}
