//! `lockbox read --json` in both namings: lockbox's snake_case keys and, with `--aws-fields`,
//! the agent's (as `lockbox serve` answers), against the emulator (skipped without it).

use lockbox_testkit::aws::{aws_sdk_secretsmanager, setup_config};
use lockbox_testkit::cli::{StoreDirs, aws_command, code, json, stderr, stdout};
use lockbox_testkit::{emulator, tag};

#[tokio::test]
async fn read_json_offers_the_agents_field_names() {
    let Some(endpoint) = emulator("read_json_offers_the_agents_field_names") else {
        return;
    };
    let name = format!("fields-{}", tag());
    aws_sdk_secretsmanager::Client::new(&setup_config(&endpoint))
        .create_secret()
        .name(&name)
        .secret_string("s3cret")
        .send()
        .await
        .unwrap();
    let d = StoreDirs::new();
    d.write_manifest(&[(&name, &[])]);
    let run = |args: &[&str]| {
        aws_command(env!("CARGO_BIN_EXE_lockbox"), args)
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap()
    };
    let o = run(&d.sync_args(&endpoint));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("synced 1 secret (1 version, "),
        "{}",
        stdout(&o)
    );
    let read = ["--json", "read", "--store", d.store(), "--secret-id", &name];
    let snake = json(&stdout(&run(&read)));
    assert_eq!(snake["secret_string"], "s3cret");
    assert_eq!(snake["name"], name.as_str());
    let mut aws_args = read.to_vec();
    aws_args.push("--aws-fields");
    let aws = json(&stdout(&run(&aws_args)));
    assert_eq!(aws["SecretString"], "s3cret");
    assert_eq!(aws["Name"], name.as_str());
    assert_eq!(aws["ARN"], snake["arn"]);
    assert_eq!(aws["VersionId"], snake["version_id"]);
    assert_eq!(aws["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    assert!(aws["CreatedDate"].is_string());
    assert!(aws.get("secret_string").is_none());
}
