//! `lockbox` on AWS Secrets Manager, against the emulator `cargo xtask` starts.

use std::process::{Command, Output};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};

fn emulator(test: &str) -> Option<String> {
    match std::env::var("LOCKBOX_IT_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            eprintln!(
                "SKIPPED {test}: LOCKBOX_IT_ENDPOINT is not set; run `cargo xtask it`, which starts the AWS emulator"
            );
            None
        }
    }
}

fn lockbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lockbox"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> serde_json::Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[tokio::test]
async fn it_init_then_output_on_secrets_manager() {
    let Some(endpoint) = emulator("it_init_then_output_on_secrets_manager") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let tag = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let cfg = tmp.path().join("secretsManagerConfig.json");
    let c = cfg.to_str().unwrap();
    let extra = format!("region=us-east-1,secrets-manager-path=/lockbox-it/sm-{tag}/");
    let o = lockbox(&[
        "generate",
        "--type",
        "aws-secretsmanager",
        "--name",
        "node1",
        "--dir",
        c,
        "--extra",
        &extra,
        "--server-url",
        &endpoint,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let init = ok(&lockbox(&["init", "--config", c, "--json"]));
    assert_eq!(ok(&lockbox(&["output", "--config", c, "--json"])), init);
    let o = lockbox(&["output", "--config", c, "--node-id"]);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap().trim(),
        init["node_id"].as_str().unwrap()
    );

    // Any other client reads the key at the documented name.
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "it"))
        .build();
    let raw = aws_sdk_secretsmanager::Client::from_conf(config);
    let id = format!("lockbox-it/sm-{tag}/node1/validator-key");
    let value = raw.get_secret_value().secret_id(&id).send().await.unwrap();
    let key = lockbox_keys::ValidatorKey::decode(&value.secret_string().unwrap().into()).unwrap();
    assert_eq!(key.address().to_string(), init["address"].as_str().unwrap());

    // A second init refuses and changes nothing.
    let o = lockbox(&["init", "--config", c]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already exist") && err.contains("validator-key"),
        "{err}"
    );
    assert_eq!(ok(&lockbox(&["output", "--config", c, "--json"])), init);

    // Delete one key: init still refuses (the other exists), and writes nothing.
    let o = lockbox(&["delete", "--config", c, "network-key"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = lockbox(&["init", "--config", c, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let listed = ok(&lockbox(&["list", "--config", c, "--json"]));
    assert_eq!(listed, serde_json::json!(["validator-key"]));
}
