//! Cold fetches against an SSM endpoint on wiremock that answers every request after a fixed
//! 2 ms, counting the requests it gets.
//!
//! - `cold_100/lockbox_cache`: 100 concurrent `get`s of different parameters through a fresh
//!   cache (misses gathered into one `get_many`, which SSM sends as GetParameters of 10).
//! - `cold_100/sdk_loop`: the same 100 parameters read by a plain loop of SDK GetParameter.
//! - `stampede_1000/lockbox_cache`: 1,000 concurrent `get`s of one parameter through a fresh
//!   cache.
//!
//! The most requests any single iteration sent are written to `target/lockbox-bench/cold.json`,
//! with, for comparison, the requests the official AWS caching client sends for the same
//! 1,000-reader stampede on a cold cache (Secrets Manager GetSecretValue on the same server).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod common;

use common::{configure, timed_rounds};
use criterion::Criterion;
use lockbox_benches::{SsmServer, VALUE, name, ssm_backend, write_counts};
use lockbox_cache::{Cache, CacheConfig};
use lockbox_core::SecretName;

const DELAY: Duration = Duration::from_millis(2);

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let rt = lockbox_benches::multi_thread_runtime();
    let server = rt.block_on(SsmServer::start(DELAY, None));
    let counts = &server.counts;
    let client = server.client();
    let backend = ssm_backend(client.clone(), "node-1");
    let names: Vec<SecretName> = (0..100).map(|i| name(&format!("cold/key-{i}"))).collect();
    let parameters: Vec<String> = names
        .iter()
        .map(|n| backend.parameter_name(n).expect("valid parameter name"))
        .collect();

    let cold_calls = AtomicU64::new(0);
    let loop_calls = AtomicU64::new(0);
    let stampede_calls = AtomicU64::new(0);

    let mut group = c.benchmark_group("cold_100");
    configure(&mut group);
    group.bench_function("lockbox_cache", |b| {
        b.iter_custom(|iters| {
            rt.block_on(timed_rounds(
                iters,
                || counts.total(),
                &cold_calls,
                || {
                    let cache = Cache::new(backend.clone(), CacheConfig::default());
                    let names = &names;
                    async move {
                        let mut tasks = tokio::task::JoinSet::new();
                        for name in names {
                            let cache = cache.clone();
                            let name = name.clone();
                            tasks.spawn(async move { cache.get(&name).await });
                        }
                        while let Some(r) = tasks.join_next().await {
                            let value = r.expect("task").expect("cold get");
                            assert_eq!(value.expose_str(), Some(VALUE));
                        }
                    }
                },
            ))
        });
    });
    group.bench_function("sdk_loop", |b| {
        b.iter_custom(|iters| {
            rt.block_on(timed_rounds(
                iters,
                || counts.total(),
                &loop_calls,
                || async {
                    for parameter in &parameters {
                        let out = client
                            .get_parameter()
                            .name(parameter)
                            .with_decryption(true)
                            .send()
                            .await
                            .expect("GetParameter");
                        assert!(out.parameter.is_some_and(|p| p.value.is_some()));
                    }
                },
            ))
        });
    });
    group.finish();

    let hot = name("stampede/key");
    let mut group = c.benchmark_group("stampede_1000");
    configure(&mut group);
    group.bench_function("lockbox_cache", |b| {
        b.iter_custom(|iters| {
            rt.block_on(timed_rounds(
                iters,
                || counts.total(),
                &stampede_calls,
                || {
                    let cache = Cache::new(backend.clone(), CacheConfig::default());
                    let hot = &hot;
                    async move {
                        let mut tasks = tokio::task::JoinSet::new();
                        for _ in 0..1000 {
                            let cache = cache.clone();
                            let hot = hot.clone();
                            tasks.spawn(async move { cache.get(&hot).await });
                        }
                        while let Some(r) = tasks.join_next().await {
                            r.expect("task").expect("stampede get");
                        }
                    }
                },
            ))
        });
    });
    group.finish();
    c.final_summary();

    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --benches`: each routine ran once; no counts to report
    }
    let aws_stampede = aws_caching_stampede(&server);
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    write_counts(
        "cold",
        &[
            ("cold_100_backend_calls", get(&cold_calls)),
            ("cold_100_sdk_loop_backend_calls", get(&loop_calls)),
            ("stampede_1000_backend_calls", get(&stampede_calls)),
            ("aws_caching_stampede_1000_backend_calls", aws_stampede),
        ],
    );
}

/// 1,000 concurrent reads of one secret through a cold official AWS caching client: how many
/// GetSecretValue requests reach the server. (Its futures are not `Send`, so the readers are
/// local tasks on one thread; they still overlap at every network wait.)
fn aws_caching_stampede(server: &SsmServer) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let aws = Rc::new(server.aws_caching_client(Duration::from_secs(3600)));
    let before = server.counts.get_secret_value.load(Ordering::Relaxed);
    let failures = Rc::new(RefCell::new(0u32));
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut handles = Vec::new();
        for _ in 0..1000 {
            let aws = Rc::clone(&aws);
            let failures = Rc::clone(&failures);
            handles.push(tokio::task::spawn_local(async move {
                if aws
                    .get_secret_value("svc/db-password", None, None, false)
                    .await
                    .is_err()
                {
                    *failures.borrow_mut() += 1;
                }
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
    });
    if *failures.borrow() > 0 {
        eprintln!("aws caching stampede: {} reads failed", failures.borrow());
    }
    (server.counts.get_secret_value.load(Ordering::Relaxed) - before) as f64
}
