//! `lockbox sync` of 200 secrets x 2 labels (AWSCURRENT and AWSPREVIOUS) against a Secrets
//! Manager endpoint on wiremock that answers every request after a fixed 2 ms, counting the
//! requests it gets.
//!
//! - `sync_400/lockbox`: `lockbox_resources::sync` into a sealed store (AWSCURRENT of all 200
//!   with BatchGetSecretValue, 20 a call; then AWSPREVIOUS of each, several secrets at once;
//!   then the sealed store is written and fsynced).
//! - `sync_400/sequential`: a plain loop of SDK GetSecretValue, one (secret, label) after the
//!   other: AWS IoT Greengrass's secret manager component's approach.
//!
//! The most requests any single iteration sent are written to `target/lockbox-bench/sync.json`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod common;

use common::{configure, timed_rounds};
use criterion::Criterion;
use lockbox_benches::{VALUE, target_dir, write_counts};
use lockbox_resources::{CloudSecret, Manifest};
use lockbox_secretsmanager::SecretsManagerClient;
use lockbox_testkit::wire;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const DELAY: Duration = Duration::from_millis(2);
const SECRETS: usize = 200;
const PREVIOUS: &str = "AWSPREVIOUS";

/// Every secret `<name>` exists, with version `<name>-cur` (AWSCURRENT) and `<name>-prev`
/// (AWSPREVIOUS), both holding [`VALUE`].
struct SecretsManager {
    calls: Arc<AtomicU64>,
}

fn secret(id: &str, stage: &str) -> Value {
    let name = id.strip_prefix(wire::SECRET_ARN_PREFIX).map_or(id, |rest| {
        rest.rsplit_once('-').map_or(rest, |(name, _)| name)
    });
    let version = if stage == PREVIOUS { "prev" } else { "cur" };
    json!({
        "ARN": format!("{}{name}-AbCdEf", wire::SECRET_ARN_PREFIX),
        "Name": name,
        "VersionId": format!("{name}-{version}"),
        "SecretString": VALUE,
        "VersionStages": [stage],
        "CreatedDate": 1.7e9
    })
}

impl Respond for SecretsManager {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let body = wire::request_json(request);
        let answer = if wire::is_op(request, wire::SECRETS_MANAGER, "GetSecretValue") {
            let id = body["SecretId"].as_str().unwrap_or("");
            let stage = body["VersionStage"].as_str().unwrap_or("AWSCURRENT");
            wire::ok(secret(id, stage))
        } else if wire::is_op(request, wire::SECRETS_MANAGER, "BatchGetSecretValue") {
            let values: Vec<Value> = body["SecretIdList"]
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .filter_map(Value::as_str)
                        .map(|id| secret(id, "AWSCURRENT"))
                        .collect()
                })
                .unwrap_or_default();
            wire::ok(json!({"SecretValues": values, "Errors": []}))
        } else {
            wire::not_mocked(request)
        };
        answer.set_delay(DELAY)
    }
}

fn client(uri: &str) -> aws_sdk_secretsmanager::Client {
    use aws_sdk_secretsmanager::config as sm;
    let config = sm::Builder::new()
        .behavior_version(sm::BehaviorVersion::latest())
        .region(sm::Region::new("us-east-1"))
        .endpoint_url(uri)
        .credentials_provider(sm::Credentials::new("bench", "bench", None, None, "bench"))
        .retry_config(sm::retry::RetryConfig::disabled())
        .timeout_config(
            sm::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let rt = lockbox_benches::multi_thread_runtime();
    let calls = Arc::new(AtomicU64::new(0));
    let server = rt.block_on(async {
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(SecretsManager {
                calls: Arc::clone(&calls),
            })
            .mount(&server)
            .await;
        server
    });
    let sdk = client(&server.uri());
    let source = SecretsManagerClient::from_client(sdk.clone());
    let names: Vec<String> = (0..SECRETS).map(|i| format!("bench/svc-{i}")).collect();
    let manifest = Manifest {
        cloud_secrets: names
            .iter()
            .map(|n| CloudSecret::new(n.as_str(), [PREVIOUS]))
            .collect(),
        ..Manifest::default()
    };
    let dir = target_dir()
        .join("lockbox-bench")
        .join(format!("sync-store-{}", std::process::id()));
    let store = dir.join("store");
    let key = dir.join("store.key");

    let lockbox_calls = AtomicU64::new(0);
    let sequential_calls = AtomicU64::new(0);
    let requests = || calls.load(Ordering::Relaxed);
    let mut group = c.benchmark_group("sync_400");
    configure(&mut group);
    group.bench_function("lockbox", |b| {
        b.iter_custom(|iters| {
            rt.block_on(timed_rounds(iters, requests, &lockbox_calls, || async {
                let report = lockbox_resources::sync(
                    &manifest,
                    &store,
                    &key,
                    &source,
                    &lockbox_resources::SyncOptions::default(),
                )
                .await
                .expect("sync");
                assert_eq!(report.secrets.len(), SECRETS);
                assert!(report.secrets.iter().all(|s| s.versions.len() == 2));
            }))
        });
    });
    group.bench_function("sequential", |b| {
        b.iter_custom(|iters| {
            rt.block_on(timed_rounds(iters, requests, &sequential_calls, || async {
                for name in &names {
                    for stage in ["AWSCURRENT", PREVIOUS] {
                        let out = sdk
                            .get_secret_value()
                            .secret_id(name)
                            .version_stage(stage)
                            .send()
                            .await
                            .expect("GetSecretValue");
                        assert!(out.secret_string.is_some());
                    }
                }
            }))
        });
    });
    group.finish();
    c.final_summary();
    let _ = std::fs::remove_dir_all(&dir);

    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --benches`: each routine ran once; no counts to report
    }
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    write_counts(
        "sync",
        &[
            ("sync_400_backend_calls", get(&lockbox_calls)),
            ("sync_400_sequential_calls", get(&sequential_calls)),
        ],
    );
}
