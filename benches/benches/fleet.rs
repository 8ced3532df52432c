//! Fleet start: 500 simulated nodes each read their 3 node secrets at the same moment from one
//! SSM endpoint (wiremock) that enforces SSM's default 40 reads a second per account with a
//! token bucket (40 tokens a second, holding one: never more than one request per 25 ms), and
//! answers ThrottlingException beyond it.
//!
//! Each node is what a lockbox program runs: `Cache<Retry<SsmBackend>>`, its own cache and
//! retry state, the three reads issued together (so the cache batches them into one
//! GetParameters). Reported: the share of reads that succeeded, and the time until the last
//! node had its secrets relative to the ideal: requests that got values / 40 per second (with
//! a one-token bucket no client can do better).
//!
//! This is a single timed run, not a criterion statistic: one run takes ~15-40 s. Under
//! `cargo test --benches` (no `--bench` flag) it runs a small fleet instead.
//!
//! `Retry::get_many` retries a throttled batch's failed names together, so after a throttled
//! GetParameters a node sends one GetParameters again, not three GetParameter calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lockbox_benches::{SsmServer, VALUE, name, ssm_backend, write_counts};
use lockbox_cache::{Cache, CacheConfig};
use lockbox_core::{Result, Retry, RetryPolicy, SecretName, SecretValue, SecretsManager};

const SECRETS: [&str; 3] = ["validator-key", "validator-bls-key", "network-key"];

/// The retry policy every node runs. The default policy (5 attempts within 15 s) is made for
/// one client meeting a transient fault; a fleet that needs ~12-40 s of the account's whole
/// read budget must not give up by attempt count, so the budget here is time (2 minutes).
/// Full-jitter backoff from 50 ms spreads the nodes out; the 1 s cap keeps the retrying
/// population dense enough that a freed token is taken within milliseconds, and bounds the
/// tail once few nodes are left.
fn fleet_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 10_000,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
        max_elapsed: Duration::from_secs(120),
    }
}

struct Outcome {
    nodes: usize,
    reads: usize,
    reads_ok: usize,
    seconds: f64,
    ok_calls: u64,
    throttled_calls: u64,
    rate: f64,
}

fn simulate(nodes: usize, rate: f64) -> Outcome {
    let rt = lockbox_benches::multi_thread_runtime();
    rt.block_on(async {
        let server = SsmServer::start(Duration::from_millis(2), Some((rate, 1.0))).await;
        let client = server.client();
        let names: Arc<Vec<_>> = Arc::new(SECRETS.iter().map(|s| name(s)).collect());
        let fleet: Vec<Arc<dyn Node>> = (0..nodes)
            .map(|i| {
                let backend = ssm_backend(client.clone(), &format!("node-{i}"));
                Arc::new(Cache::new(
                    Retry::new(backend, fleet_policy()),
                    CacheConfig::default(),
                )) as Arc<dyn Node>
            })
            .collect();
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for node in fleet {
            let names = Arc::clone(&names);
            tasks.spawn(async move {
                let (a, b, c) = tokio::join!(
                    node.read(&names[0]),
                    node.read(&names[1]),
                    node.read(&names[2])
                );
                [a, b, c]
                    .iter()
                    .filter(|r| r.as_ref().is_ok_and(|v| v.expose_str() == Some(VALUE)))
                    .count()
            });
        }
        let mut reads_ok = 0;
        while let Some(r) = tasks.join_next().await {
            reads_ok += r.expect("node task");
        }
        let seconds = start.elapsed().as_secs_f64();
        Outcome {
            nodes,
            reads: nodes * SECRETS.len(),
            reads_ok,
            seconds,
            ok_calls: server.counts.ok(),
            throttled_calls: server
                .counts
                .throttled
                .load(std::sync::atomic::Ordering::Relaxed),
            rate,
        }
    })
}

/// A node's cache, whichever retry wrapper it runs on.
#[async_trait]
trait Node: Send + Sync {
    async fn read(&self, name: &SecretName) -> Result<SecretValue>;
}

#[async_trait]
impl<B: SecretsManager + 'static> Node for Cache<B> {
    async fn read(&self, name: &SecretName) -> Result<SecretValue> {
        self.get(name).await
    }
}

/// Whether `args` (criterion-style) select this benchmark: no positional filter, or one that
/// `fleet` contains.
fn selected(args: &[String]) -> bool {
    const WITH_VALUE: [&str; 14] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--output-format",
        "--color",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
        "--profile-time",
        "--plotting-backend",
    ];
    let mut filters = Vec::new();
    let mut skip = false;
    for arg in args {
        if skip {
            skip = false;
        } else if WITH_VALUE.contains(&arg.as_str()) {
            skip = true;
        } else if !arg.starts_with('-') {
            filters.push(arg.as_str());
        }
    }
    filters.is_empty() || filters.iter().any(|f| "fleet".contains(f))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("fleet: bench");
        return;
    }
    if !selected(&args) {
        return;
    }
    let bench_mode = args.iter().any(|a| a == "--bench");
    let (nodes, rate) = if bench_mode { (500, 40.0) } else { (20, 400.0) };
    let o = simulate(nodes, rate);
    let success = o.reads_ok as f64 / o.reads as f64;
    let ideal = o.ok_calls as f64 / o.rate;
    let ratio = o.seconds / ideal;
    println!(
        "fleet: {} nodes x {} secrets at {} req/s: {}/{} reads ok ({:.3}), {:.2} s; \
         {} requests got values, {} throttled; ideal {:.2} s; time/ideal {:.3}",
        o.nodes,
        SECRETS.len(),
        o.rate,
        o.reads_ok,
        o.reads,
        success,
        o.seconds,
        o.ok_calls,
        o.throttled_calls,
        ideal,
        ratio
    );
    if bench_mode {
        write_counts(
            "fleet",
            &[
                ("fleet_nodes", o.nodes as f64),
                ("fleet_success_rate", success),
                ("fleet_seconds", o.seconds),
                ("fleet_ideal_seconds", ideal),
                ("fleet_time_vs_ideal", ratio),
                ("fleet_ok_calls", o.ok_calls as f64),
                ("fleet_throttled_calls", o.throttled_calls as f64),
            ],
        );
    }
}
