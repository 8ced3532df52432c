//! What one `exec --watch` / `render --watch` poll costs when nothing changed: 100 secrets
//! polled by lockbox-env's `Poller` (what the `Watcher` runs: list version tags, read only the
//! values whose tag changed), on Secrets Manager and on SSM, against the emulator
//! (`LOCKBOX_IT_ENDPOINT`, which `cargo xtask bench` starts; skipped without it). A TCP relay in
//! front of the emulator counts the HTTP requests of each poll. Writes the calls per poll (and
//! per secret), the calls of a full read of the same secrets (`load`, what a poll cost before
//! tags) and the mean wall time per poll to `target/lockbox-bench/watch.json`; criterion times
//! the polls too (the emulator is single-threaded Python, so the time is mostly its).
//!
//! Targets from issue 24: at most 1 call per 20 secrets on Secrets Manager, 1 per 10 on SSM.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

mod common;

use common::configure;
use criterion::Criterion;
use lockbox_benches::write_counts;
use lockbox_core::{PutMode, SecretName, SecretValue, SecretsManager};
use lockbox_env::{Poller, Source, load};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SECRETS: usize = 100;

/// Polls timed for the wall-time figure.
const TIMED_POLLS: u32 = 10;

/// A relay on 127.0.0.1 to `target` that counts HTTP requests (request lines) going through.
async fn counting_relay(target: String, count: Arc<AtomicU64>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(server) = TcpStream::connect(&target).await else {
                continue;
            };
            let count = count.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 65536];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let requests = buf[..n]
                            .windows(6)
                            .filter(|w| *w == b"POST /" || *w == b"GET /v")
                            .count();
                        count.fetch_add(requests as u64, Ordering::Relaxed);
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                };
                tokio::join!(up, down);
            });
        }
    });
    format!("http://{addr}")
}

fn main() {
    let Ok(endpoint) = std::env::var("LOCKBOX_IT_ENDPOINT") else {
        eprintln!("SKIPPED watch bench: LOCKBOX_IT_ENDPOINT is not set (it needs the emulator)");
        return;
    };
    let mut c = Criterion::default().configure_from_args();
    let rt = lockbox_benches::multi_thread_runtime();
    let count = Arc::new(AtomicU64::new(0));
    let target = endpoint.trim_start_matches("http://").to_owned();
    let relay = rt.block_on(counting_relay(target, count.clone()));
    let path = format!("/lockbox-bench/watch-{}", std::process::id());
    let backends: [(&str, Arc<dyn SecretsManager>); 2] = [
        (
            "secretsmanager",
            Arc::new(lockbox_testkit::aws::secretsmanager_backend(
                &relay, &path, "node",
            )),
        ),
        (
            "ssm",
            Arc::new(lockbox_testkit::aws::ssm_backend(&relay, &path, "node")),
        ),
    ];
    let mut counts = Vec::new();
    let mut group = c.benchmark_group("watch_poll_100_unchanged");
    configure(&mut group);
    for (label, backend) in &backends {
        rt.block_on(async {
            for i in 0..SECRETS {
                let name = SecretName::new(format!("app/key-{i:03}")).expect("valid name");
                backend
                    .put(
                        &name,
                        &SecretValue::from(format!("value-{i}")),
                        PutMode::Overwrite,
                    )
                    .await
                    .expect("seeding the emulator");
            }
        });
        let sources = vec![Source::Backend {
            backend: backend.clone(),
            prefix: "app/".into(),
            label: (*label).to_owned(),
        }];
        // A full read of the prefix, counted: what every poll cost before version tags.
        let before = count.load(Ordering::Relaxed);
        let loaded = rt.block_on(load(&sources)).expect("a full read");
        assert_eq!(loaded.len(), SECRETS);
        let full = count.load(Ordering::Relaxed) - before;
        counts.push((format!("{label}_full_read_calls"), full as f64));
        // The first poll reads every value; the next finds nothing changed.
        let mut poller = Poller::new(sources);
        assert_eq!(
            rt.block_on(poller.poll()).expect("first poll").len(),
            SECRETS
        );
        let before = count.load(Ordering::Relaxed);
        let started = std::time::Instant::now();
        for _ in 0..TIMED_POLLS {
            assert_eq!(rt.block_on(poller.poll()).expect("a poll").len(), SECRETS);
        }
        let ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(TIMED_POLLS);
        let calls = (count.load(Ordering::Relaxed) - before) as f64 / f64::from(TIMED_POLLS);
        eprintln!(
            "watch poll, {label}: {calls} API calls for {SECRETS} unchanged secrets ({:.2} per \
             secret; a full read: {full}), {ms:.1} ms per poll",
            calls / SECRETS as f64
        );
        counts.push((format!("{label}_calls_per_poll"), calls));
        counts.push((format!("{label}_calls_per_secret"), calls / SECRETS as f64));
        counts.push((format!("{label}_ms_per_poll"), ms));
        group.bench_function(*label, |b| {
            b.iter(|| rt.block_on(poller.poll()).expect("a poll"));
        });
    }
    group.finish();
    let refs: Vec<(&str, f64)> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    write_counts("watch", &refs);
    c.final_summary();
}
