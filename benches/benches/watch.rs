//! What one `exec --watch` / `render --watch` poll costs when nothing changed: 100 secrets read
//! with the batched prefix read a poll makes (lockbox-env's `load`), on Secrets Manager and on
//! SSM, against the emulator (`LOCKBOX_IT_ENDPOINT`; skipped without it). A TCP relay in front
//! of the emulator counts the HTTP requests of each poll. Writes the calls per poll (and per
//! secret) to `target/lockbox-bench/watch.json`; criterion times the polls (the emulator is
//! single-threaded Python, so the time is its, not lockbox's: read the counts).
//!
//! Targets from issue 24: at most 1 call per 20 secrets on Secrets Manager, 1 per 10 on SSM.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

mod common;

use common::configure;
use criterion::Criterion;
use lockbox_benches::write_counts;
use lockbox_core::{PutMode, SecretName, SecretValue, SecretsManager};
use lockbox_env::{Source, load};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SECRETS: usize = 100;

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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
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
        // One poll, counted.
        let before = count.load(Ordering::Relaxed);
        let loaded = rt.block_on(load(&sources)).expect("a poll");
        assert_eq!(loaded.len(), SECRETS);
        let calls = count.load(Ordering::Relaxed) - before;
        eprintln!(
            "watch poll, {label}: {calls} API calls for {SECRETS} unchanged secrets ({:.2} per secret)",
            calls as f64 / SECRETS as f64
        );
        counts.push((format!("{label}_calls_per_poll"), calls as f64));
        counts.push((
            format!("{label}_calls_per_secret"),
            calls as f64 / SECRETS as f64,
        ));
        group.bench_function(*label, |b| {
            b.iter(|| rt.block_on(load(&sources)).expect("a poll"));
        });
    }
    group.finish();
    let refs: Vec<(&str, f64)> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    write_counts("watch", &refs);
    c.final_summary();
}
