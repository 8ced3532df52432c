//! SDK clients for tests (static test credentials, `us-east-1`, an explicit endpoint, no SDK
//! retries, short timeouts) and the SSM / Secrets Manager backends built on them.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use lockbox_core::SecretsManager;
use lockbox_secretsmanager::{SecretsManagerBackend, SecretsManagerSettings};
use lockbox_ssm::{SsmBackend, SsmSettings};

use crate::conformance::Subject;

/// The SDK crates, for tests that arrange data on the emulator with the raw SDK: other crates'
/// tests reach them through the test kit, so only lockbox-ssm and lockbox-secretsmanager
/// depend on them directly.
pub use {aws_sdk_secretsmanager, aws_sdk_ssm};

/// The region every test client and backend uses.
pub const REGION: &str = "us-east-1";

/// How long one attempt of a test client's call may take unless a test says otherwise.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared SDK configuration for `endpoint`: static `test`/`test` credentials, [`REGION`], no
/// SDK retries, a 2 s connect timeout and `attempt_timeout` per attempt, and lockbox's own
/// HTTP client (the one [`lockbox_aws::SdkOptions`] gives every command).
pub fn sdk_config(endpoint: &str, attempt_timeout: Duration) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(lockbox_aws::http_client())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test",
            "test",
            None,
            None,
            "lockbox-tests",
        )))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .build()
}

/// [`sdk_config`] with the SDK's standard retries, for clients that arrange or inspect data
/// on the emulator rather than being tested: they ride out its occasional HTTP 500.
pub fn setup_config(endpoint: &str) -> SdkConfig {
    sdk_config(endpoint, ATTEMPT_TIMEOUT)
        .into_builder()
        .retry_config(RetryConfig::standard())
        .build()
}

/// An SSM client for `endpoint` (see [`sdk_config`]).
pub fn ssm_client(endpoint: &str, attempt_timeout: Duration) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config(endpoint, attempt_timeout))
}

/// A Secrets Manager client for `endpoint` (see [`sdk_config`]).
pub fn secretsmanager_client(
    endpoint: &str,
    attempt_timeout: Duration,
) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk_config(endpoint, attempt_timeout))
}

/// SSM settings for node `node` under `path`.
pub fn ssm_settings(path: &str, node: &str) -> SsmSettings {
    SsmSettings {
        region: REGION.into(),
        path: path.into(),
        node_name: node.into(),
        kms_key_id: None,
        endpoint_url: None,
    }
}

/// Secrets Manager settings for node `node` under `path`.
pub fn secretsmanager_settings(path: &str, node: &str) -> SecretsManagerSettings {
    SecretsManagerSettings {
        region: REGION.into(),
        path: path.into(),
        node_name: node.into(),
        kms_key_id: None,
        endpoint_url: None,
    }
}

/// An SSM backend on `endpoint` for node `node` under `path`.
pub fn ssm_backend(endpoint: &str, path: &str, node: &str) -> SsmBackend {
    SsmBackend::with_client(
        ssm_client(endpoint, ATTEMPT_TIMEOUT),
        ssm_settings(path, node),
    )
    .expect("test settings are valid")
}

/// A Secrets Manager backend on `endpoint` for node `node` under `path`.
pub fn secretsmanager_backend(endpoint: &str, path: &str, node: &str) -> SecretsManagerBackend {
    SecretsManagerBackend::with_client(
        secretsmanager_client(endpoint, ATTEMPT_TIMEOUT),
        secretsmanager_settings(path, node),
    )
    .expect("test settings are valid")
}

/// For the conformance suite: `make`'s backend on the emulator, for a fresh node under
/// `/lockbox-it`; `None` (after saying why `test` skips) without an emulator.
pub fn emulator_subject<B: SecretsManager + 'static>(
    test: &str,
    make: fn(&str, &str, &str) -> B,
) -> Option<Subject> {
    let endpoint = crate::emulator(test)?;
    Some(Subject::new(make(
        &endpoint,
        "/lockbox-it",
        &crate::prefix("conf"),
    )))
}
