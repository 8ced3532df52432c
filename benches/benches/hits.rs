//! Cache hits: lockbox-cache against the official AWS caching client
//! (`aws_secretsmanager_caching`), both in process on the same 64-character value, on one
//! thread and on every core at once.
//!
//! - `lockbox_one_thread`: `Cache::get` on the concrete type (what a Rust user writes).
//! - `lockbox_dyn_one_thread`: the same through `Arc<dyn SecretsManager>`, the handle a service
//!   gets from `lockbox_config::open` (a hit comes back in a ready `GetFuture`, unboxed).
//! - `aws_caching_one_thread`: `SecretsManagerCachingClient::get_secret_value`.
//! - `*_all_threads`: every core reads the same secret in a loop; the time is wall time
//!   divided by all reads made, i.e. the amortised cost of one read under contention.
//! - `lockbox_threads_1`, `lockbox_threads_2`: the same harness on exactly one and two
//!   threads; `threads_1 / threads_2` is the 2-thread throughput over the 1-thread one.
//! - `lockbox_one_thread_100k_entries`: `Cache::get` hits on one name in a cache holding
//!   100,000 entries (a hit's cost must not grow with the entries held).

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::Criterion;
use lockbox_benches::{StaticBackend, VALUE, aws_caching_client, name, names, quick};
use lockbox_cache::{Cache, CacheConfig};
use lockbox_core::{MemoryBackend, PutMode, SecretValue, SecretsManager};

const SECRET: &str = "svc/db-password";
const TTL: Duration = Duration::from_secs(3600);

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn lockbox_cache(rt: &tokio::runtime::Runtime) -> Cache<MemoryBackend> {
    rt.block_on(async {
        let backend = MemoryBackend::new();
        backend
            .put(&name(SECRET), &SecretValue::from(VALUE), PutMode::Overwrite)
            .await
            .expect("seed");
        let cache = Cache::new(
            backend,
            CacheConfig {
                ttl: TTL,
                ..CacheConfig::default()
            },
        );
        assert_eq!(
            cache.get(&name(SECRET)).await.unwrap().expose_str(),
            Some(VALUE)
        );
        cache
    })
}

/// Runs `body(iters)` on every core at once (each thread on its own current-thread runtime,
/// released together by a barrier) and returns wall time divided by the thread count.
fn on_all_threads<F>(iters: u64, body: F) -> Duration
where
    F: Fn(&tokio::runtime::Runtime, u64) + Sync,
{
    on_threads(threads(), iters, body)
}

/// [`on_all_threads`] on `n` threads.
fn on_threads<F>(n: usize, iters: u64, body: F) -> Duration
where
    F: Fn(&tokio::runtime::Runtime, u64) + Sync,
{
    let barrier = Barrier::new(n);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    let rt = lockbox_benches::current_thread_runtime();
                    barrier.wait();
                    let start = Instant::now();
                    body(&rt, iters);
                    (start, Instant::now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect()
    });
    let start = spans.iter().map(|s| s.0).min().expect("threads");
    let end = spans.iter().map(|s| s.1).max().expect("threads");
    (end - start) / u32::try_from(n).unwrap_or(1)
}

fn bench_hits(c: &mut Criterion) {
    let rt = lockbox_benches::current_thread_runtime();
    let cache = lockbox_cache(&rt);
    let dyn_cache: Arc<dyn SecretsManager> = Arc::new(cache.clone());
    let (aws, _rule) = aws_caching_client(TTL);
    rt.block_on(async {
        let first = aws
            .get_secret_value(SECRET, None, None, false)
            .await
            .expect("aws caching client");
        assert_eq!(first.secret_string.as_deref(), Some(VALUE));
    });
    let secret = name(SECRET);

    let mut group = c.benchmark_group("cache_hit");
    if quick() {
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
    } else {
        group
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(5));
    }

    group.bench_function("lockbox_one_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(cache.get(black_box(&secret)).await.expect("hit"));
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("lockbox_dyn_one_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(dyn_cache.get(black_box(&secret)).await.expect("hit"));
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("aws_caching_one_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(
                        aws.get_secret_value(black_box(SECRET), None, None, false)
                            .await
                            .expect("hit"),
                    );
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("lockbox_all_threads", |b| {
        b.iter_custom(|iters| {
            on_all_threads(iters, |rt, iters| {
                rt.block_on(async {
                    for _ in 0..iters {
                        black_box(cache.get(black_box(&secret)).await.expect("hit"));
                    }
                });
            })
        });
    });
    for (id, n) in [("lockbox_threads_1", 1), ("lockbox_threads_2", 2)] {
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                on_threads(n, iters, |rt, iters| {
                    rt.block_on(async {
                        for _ in 0..iters {
                            black_box(cache.get(black_box(&secret)).await.expect("hit"));
                        }
                    });
                })
            });
        });
    }
    let big = big_cache(&rt);
    let hot = names(1)[0].clone();
    group.bench_function("lockbox_one_thread_100k_entries", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(big.get(black_box(&hot)).await.expect("hit"));
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("aws_caching_all_threads", |b| {
        b.iter_custom(|iters| {
            on_all_threads(iters, |rt, iters| {
                rt.block_on(async {
                    for _ in 0..iters {
                        black_box(
                            aws.get_secret_value(black_box(SECRET), None, None, false)
                                .await
                                .expect("hit"),
                        );
                    }
                });
            })
        });
    });
    group.finish();
}

/// A cache holding 100,000 entries (filled in batches of 1,000), with `TTL`.
fn big_cache(rt: &tokio::runtime::Runtime) -> Cache<StaticBackend> {
    rt.block_on(async {
        let cache = Cache::new(
            StaticBackend,
            CacheConfig {
                ttl: TTL,
                max_entries: 100_000,
                batch_window: Duration::ZERO,
                ..CacheConfig::default()
            },
        );
        let all = names(100_000);
        for chunk in all.chunks(1_000) {
            for answer in cache.get_many(chunk).await {
                answer.expect("fill");
            }
        }
        assert_eq!(cache.len(), 100_000);
        cache
    })
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_hits(&mut c);
    c.final_summary();
}
