//! Fixtures shared by lockbox's benchmarks (`benches/*.rs`): an SSM endpoint on wiremock that
//! answers with a fixed delay and, optionally, throttles like SSM's account limit; SDK clients
//! for it; the official AWS caching client over a mocked SDK; and the JSON file of counts each
//! benchmark leaves under `target/lockbox-bench/` for `cargo xtask bench`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ssm::config::retry::RetryConfig;
use aws_sdk_ssm::config::timeout::TimeoutConfig;
use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
use lockbox_core::{SecretName, SecretValue};
use lockbox_ssm::{SsmBackend, SsmSettings};
use lockbox_testkit::wire;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The value every benchmark reads: a 32-byte key in hex, like a validator key.
pub const VALUE: &str = "4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d";

/// The parameter path the SSM benchmarks use.
pub const PATH: &str = "/bench";

/// True when `cargo xtask bench --quick` asked for short measurements
/// (`LOCKBOX_BENCH_QUICK=1`).
pub fn quick() -> bool {
    std::env::var("LOCKBOX_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// A multi-threaded Tokio runtime with I/O and timers, for the benchmarks against a server.
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A current-thread Tokio runtime with I/O and timers, for the in-process benchmarks.
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `name` as a [`SecretName`]; panics on an invalid name (fixtures only).
pub fn name(name: &str) -> SecretName {
    SecretName::new(name).expect("benchmark names are valid")
}

/// Requests the mock SSM endpoint answered, by outcome.
#[derive(Debug, Default)]
pub struct Counts {
    /// GetParameter requests answered with a value.
    pub get_parameter: AtomicU64,
    /// GetParameters requests answered with values.
    pub get_parameters: AtomicU64,
    /// Secrets Manager GetSecretValue requests answered with a value.
    pub get_secret_value: AtomicU64,
    /// Requests refused with ThrottlingException.
    pub throttled: AtomicU64,
}

impl Counts {
    /// Requests answered with values.
    pub fn ok(&self) -> u64 {
        self.get_parameter.load(Ordering::Relaxed)
            + self.get_parameters.load(Ordering::Relaxed)
            + self.get_secret_value.load(Ordering::Relaxed)
    }

    /// Every request, throttled ones included.
    pub fn total(&self) -> u64 {
        self.ok() + self.throttled.load(Ordering::Relaxed)
    }
}

/// A token bucket: `rate` tokens a second, holding at most `burst`, starting full.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn take(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            true
        } else {
            *state = (tokens, now);
            false
        }
    }
}

/// Answers SSM's JSON protocol (and Secrets Manager's GetSecretValue): every parameter or
/// secret asked for exists, with value [`VALUE`].
struct Ssm {
    delay: Duration,
    bucket: Option<Bucket>,
    counts: Arc<Counts>,
}

impl Respond for Ssm {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let answer = if self.bucket.as_ref().is_some_and(|b| !b.take()) {
            self.counts.throttled.fetch_add(1, Ordering::Relaxed);
            wire::throttled()
        } else {
            self.answer(request)
        };
        answer.set_delay(self.delay)
    }
}

impl Ssm {
    /// The answer to a request the bucket let through, counted.
    fn answer(&self, request: &Request) -> ResponseTemplate {
        let body = wire::request_json(request);
        if wire::is_op(request, wire::SSM, "GetParameters") {
            self.counts.get_parameters.fetch_add(1, Ordering::Relaxed);
            let params: Vec<Value> = body["Names"]
                .as_array()
                .map(|names| {
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|name| wire::parameter_record(name, VALUE))
                        .collect()
                })
                .unwrap_or_default();
            wire::ok(json!({"Parameters": params, "InvalidParameters": []}))
        } else if wire::is_op(request, wire::SECRETS_MANAGER, "GetSecretValue") {
            self.counts.get_secret_value.fetch_add(1, Ordering::Relaxed);
            wire::secret_string(body["SecretId"].as_str().unwrap_or(""), VALUE)
        } else if wire::is_op(request, wire::SSM, "GetParameter") {
            self.counts.get_parameter.fetch_add(1, Ordering::Relaxed);
            wire::ssm_parameter(body["Name"].as_str().unwrap_or(""), VALUE)
        } else {
            wire::not_mocked(request)
        }
    }
}

/// A wiremock server speaking SSM (and Secrets Manager's GetSecretValue), and what it
/// answered.
pub struct SsmServer {
    /// The server (keep it alive while clients use it).
    pub server: MockServer,
    /// Requests answered so far.
    pub counts: Arc<Counts>,
}

impl SsmServer {
    /// Starts a server that answers every request after `delay`; with `limit = Some((rate,
    /// burst))` it answers ThrottlingException (HTTP 400) to requests beyond a token bucket
    /// of `rate` requests a second holding `burst`.
    pub async fn start(delay: Duration, limit: Option<(f64, f64)>) -> Self {
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        let counts = Arc::new(Counts::default());
        let responder = Ssm {
            delay,
            bucket: limit.map(|(rate, burst)| Bucket {
                rate,
                burst,
                state: Mutex::new((burst, Instant::now())),
            }),
            counts: Arc::clone(&counts),
        };
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(responder)
            .mount(&server)
            .await;
        Self { server, counts }
    }

    /// An SDK client for this server: static test credentials, the SDK's own retries off (the
    /// lockbox Retry wrapper retries), generous timeouts.
    pub fn client(&self) -> aws_sdk_ssm::Client {
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.server.uri())
            .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            )
            .build();
        aws_sdk_ssm::Client::from_conf(config)
    }

    /// The official AWS caching client over a Secrets Manager SDK client for this server (SDK
    /// retries off).
    pub fn aws_caching_client(
        &self,
        ttl: Duration,
    ) -> aws_secretsmanager_caching::SecretsManagerCachingClient {
        use aws_sdk_secretsmanager::config as sm;
        let config = sm::Builder::new()
            .behavior_version(sm::BehaviorVersion::latest())
            .region(sm::Region::new("us-east-1"))
            .endpoint_url(self.server.uri())
            .credentials_provider(sm::Credentials::new("bench", "bench", None, None, "bench"))
            .retry_config(sm::retry::RetryConfig::disabled())
            .build();
        aws_secretsmanager_caching::SecretsManagerCachingClient::new(
            aws_sdk_secretsmanager::Client::from_conf(config),
            std::num::NonZeroUsize::new(1000).expect("nonzero"),
            ttl,
            false,
        )
        .expect("caching client")
    }
}

/// The SSM backend of node `node` under [`PATH`] on `client`.
pub fn ssm_backend(client: aws_sdk_ssm::Client, node: &str) -> SsmBackend {
    let settings = SsmSettings {
        region: "us-east-1".into(),
        path: PATH.into(),
        node_name: node.into(),
        kms_key_id: None,
        endpoint_url: None,
    };
    SsmBackend::with_client(client, settings).expect("valid benchmark settings")
}

/// The official AWS caching client (`aws_secretsmanager_caching`) over a Secrets Manager SDK
/// client whose every GetSecretValue is answered in process by aws-smithy-mocks with
/// [`VALUE`]. Returns the client and the mock rule (its `num_calls()` counts SDK calls).
pub fn aws_caching_client(
    ttl: Duration,
) -> (
    aws_secretsmanager_caching::SecretsManagerCachingClient,
    aws_smithy_mocks::Rule,
) {
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client, mock};

    let rule = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
        .sequence()
        .output(|| {
            GetSecretValueOutput::builder()
                .name("svc/db-password")
                .arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:svc/db-password-AbCdEf")
                .version_id("01234567-89ab-cdef-0123-456789abcdef")
                .secret_string(VALUE)
                .version_stages("AWSCURRENT")
                .build()
        })
        .repeatedly()
        .build();
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(&rule);
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    let sdk = aws_sdk_secretsmanager::Client::from_conf(config);
    let client = aws_secretsmanager_caching::SecretsManagerCachingClient::new(
        sdk,
        std::num::NonZeroUsize::new(1000).expect("nonzero"),
        ttl,
        false,
    )
    .expect("caching client");
    (client, rule)
}

/// Cargo's target directory, found from this executable (`<target>/release/deps/<bench>`) by
/// the `CACHEDIR.TAG` cargo writes at its root; `CARGO_TARGET_DIR` when that fails.
pub fn target_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe
            .ancestors()
            .skip(1)
            .find(|dir| dir.join("CACHEDIR.TAG").is_file())
    {
        return dir.to_path_buf();
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Writes `values` as a flat JSON object to `target/lockbox-bench/<file>.json`, where
/// `cargo xtask bench` reads them.
pub fn write_counts(file: &str, values: &[(&str, f64)]) {
    let dir = target_dir().join("lockbox-bench");
    let object: serde_json::Map<String, Value> = values
        .iter()
        .map(|(k, v)| ((*k).to_string(), json!(v)))
        .collect();
    let text = serde_json::to_string_pretty(&Value::Object(object)).expect("plain JSON");
    if let Err(e) = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(format!("{file}.json")), text))
    {
        eprintln!("could not write counts to {}: {e}", dir.display());
    } else {
        eprintln!(
            "counts written to {}",
            dir.join(format!("{file}.json")).display()
        );
    }
}

/// A backend that answers every name with [`VALUE`] at once, for benchmarks of the cache's
/// own costs (fills, hits in a large cache) with no store behind it whose cost grows with the
/// number of names. Writes are accepted and forgotten; listing finds nothing.
#[derive(Debug, Default)]
pub struct StaticBackend;

#[async_trait::async_trait]
impl lockbox_core::SecretsManager for StaticBackend {
    fn backend(&self) -> &'static str {
        "static"
    }

    async fn get_uncached(&self, _name: &SecretName) -> lockbox_core::Result<SecretValue> {
        Ok(SecretValue::from(VALUE))
    }

    async fn put(
        &self,
        _name: &SecretName,
        _value: &SecretValue,
        _mode: lockbox_core::PutMode,
    ) -> lockbox_core::Result<()> {
        Ok(())
    }

    async fn delete(&self, _name: &SecretName) -> lockbox_core::Result<()> {
        Ok(())
    }

    async fn list(&self, _prefix: &str) -> lockbox_core::Result<Vec<SecretName>> {
        Ok(Vec::new())
    }
}

/// `n` distinct secret names, `fill/000000` onwards.
pub fn names(n: usize) -> Vec<SecretName> {
    (0..n).map(|i| name(&format!("fill/{i:06}"))).collect()
}
