//! `lockbox` on AWS Secrets Manager, against the emulator `cargo xtask` starts.

use lockbox_testkit::aws::aws_sdk_secretsmanager;
use std::process::Output;

use lockbox_testkit::aws::setup_config;
use lockbox_testkit::cli::{aws_command, ok_json as ok, output_of_init};
use lockbox_testkit::emulator;

fn lockbox(args: &[&str]) -> Output {
    aws_command(env!("CARGO_BIN_EXE_lockbox"), args)
        .output()
        .unwrap()
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
    assert_eq!(
        ok(&lockbox(&["output", "--config", c, "--json"])),
        output_of_init(&init)
    );
    let o = lockbox(&["output", "--config", c, "--node-id"]);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap().trim(),
        init["node_id"].as_str().unwrap()
    );

    // Any other client reads the key at the documented name.
    let raw = aws_sdk_secretsmanager::Client::new(&setup_config(&endpoint));
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
    assert_eq!(
        ok(&lockbox(&["output", "--config", c, "--json"])),
        output_of_init(&init)
    );

    // Delete one key: init still refuses (the others exist), and writes nothing.
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
    assert_eq!(
        listed,
        serde_json::json!(["validator-bls-key", "validator-key"])
    );
}
