//! Helpers shared by this crate's integration and fault tests.
#![allow(dead_code)]

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use lockbox_secretsmanager::{SmBackend, SmSettings};

/// An SDK client for `endpoint` with static test credentials, no SDK retries, and short
/// timeouts.
pub fn client(endpoint: &str, attempt_timeout: Duration) -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "lockbox-tests",
        ))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// Settings for node `node` under `path`.
pub fn settings(path: &str, node: &str) -> SmSettings {
    SmSettings {
        region: "us-east-1".into(),
        secrets_manager_path: path.into(),
        node_name: node.into(),
        kms_key_id: None,
        endpoint_url: None,
    }
}

/// A backend on `endpoint` for node `node` under `path`.
pub fn backend(endpoint: &str, path: &str, node: &str) -> SmBackend {
    SmBackend::with_client(
        client(endpoint, Duration::from_secs(10)),
        settings(path, node),
    )
    .unwrap()
}

/// The emulator endpoint `cargo xtask` started, or `None` (after saying why the test skips).
pub fn emulator(test: &str) -> Option<String> {
    match std::env::var("LOCKBOX_IT_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            eprintln!(
                "SKIPPED {test}: LOCKBOX_IT_ENDPOINT is not set; run `cargo xtask it` (or `cargo xtask ci`), \
                 which starts the AWS emulator and sets it"
            );
            None
        }
    }
}
