//! Greengrass parity (issue 17) end to end: the built binary against the AWS emulator (moto).
//! v1 resource definitions sync and read by resource id, name and ARN; other resource types are
//! skipped with a note; a secret referenced twice is refused; the refresh period comes from the
//! manifest; a secret deleted in the cloud is reported by name and the last store kept; a
//! resource removed from the definition leaves the store. Without LOCKBOX_IT_ENDPOINT the
//! emulator tests say they were skipped.

use lockbox_testkit::aws::aws_sdk_secretsmanager;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::primitives::Blob;
use base64::Engine;
use lockbox_testkit::aws::setup_config;
use lockbox_testkit::cli::{StoreDirs, aws_command, code, json, stderr, stdout, stop_with_sigterm};
use lockbox_testkit::{emulator, tag};

fn command(args: &[&str]) -> Command {
    let mut cmd = aws_command(env!("CARGO_BIN_EXE_lockbox"), args);
    cmd.env_remove("AWS_DEFAULT_REGION")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null());
    cmd
}

fn lockbox(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

fn ok(o: &Output) -> Vec<u8> {
    assert_eq!(code(o), 0, "stderr: {}", stderr(o));
    o.stdout.clone()
}

fn sdk(endpoint: &str, region: &str) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::config::Builder::from(&setup_config(endpoint))
        .region(aws_sdk_secretsmanager::config::Region::new(
            region.to_owned(),
        ))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

/// The account of the ARNs in Greengrass's documentation: moto's default account, and the one
/// LocalStack uses when it is the access key id (LocalStack takes a 12-digit access key id as
/// the account; with any other key it is 000000000000).
const DOC_ACCOUNT: &str = "123456789012";

/// [`sdk`] signing with access key id [`DOC_ACCOUNT`], so the emulator's account is that of
/// the documentation's ARNs on moto and LocalStack alike.
fn sdk_in_doc_account(endpoint: &str, region: &str) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::config::Builder::from(&setup_config(endpoint))
        .region(aws_sdk_secretsmanager::config::Region::new(
            region.to_owned(),
        ))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            DOC_ACCOUNT,
            "test",
            None,
            None,
            "lockbox-tests",
        ))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

type Dirs = StoreDirs;

/// `lockbox read --store <d.store> ARGS`.
fn read(d: &Dirs, args: &[&str]) -> Output {
    let mut all = vec!["read", "--store", d.store()];
    all.extend_from_slice(args);
    lockbox(&all)
}

/// A v1 resource of a secret.
fn secret_resource(id: &str, arn: &str, labels: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "Id": id,
        "Name": format!("{id}-name"),
        "ResourceDataContainer": {"SecretsManagerSecretResourceData": {
            "ARN": arn, "AdditionalStagingLabelsToDownload": labels}}
    })
}

fn local_volume(id: &str) -> serde_json::Value {
    serde_json::json!({
        "Id": id,
        "Name": format!("{id}-name"),
        "ResourceDataContainer": {"LocalVolumeResourceData": {
            "SourcePath": "/src/LRAtest", "DestinationPath": "/dest/LRAtest",
            "GroupOwnerSetting": {"AutoAddGroupOwner": true}}}
    })
}

async fn create(sm: &aws_sdk_secretsmanager::Client, name: &str, value: &str) -> String {
    sm.create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

async fn put_with_stage(sm: &aws_sdk_secretsmanager::Client, name: &str, value: &str, stage: &str) {
    sm.put_secret_value()
        .secret_id(name)
        .secret_string(value)
        .version_stages(stage)
        .send()
        .await
        .unwrap();
}

/// A v1 definition (in the `--initial-version` wrapper) with two labels, a binary secret and a
/// local volume: syncs (the volume skipped with a note), reads by resource id, name and ARN, by
/// label, binary raw and base64; then a resource removed from the definition leaves the store.
#[tokio::test]
async fn v1_definition_syncs_reads_by_resource_id_name_and_arn_and_drops_removed_resources() {
    let Some(endpoint) = emulator("v1_definition_reads_by_resource") else {
        return;
    };
    let sm = sdk(&endpoint, "us-east-1");
    let p = format!("it-gg/v1/{}", tag());
    let db = format!("{p}/db");
    let db_arn = create(&sm, &db, "db-current").await;
    put_with_stage(&sm, &db, "db-label1", "Label1").await;
    put_with_stage(&sm, &db, "db-label2", "Label2").await;
    let bin = format!("{p}/bin");
    let bin_value = [0u8, 0xff, 0x80, b'\n', 0xfe];
    let bin_arn = sm
        .create_secret()
        .name(&bin)
        .secret_binary(Blob::new(bin_value.to_vec()))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let d = Dirs::new();
    let definition = |with_bin: bool| {
        let mut resources = vec![
            local_volume("data-volume"),
            secret_resource("db-resource", &db_arn, &["Label1", "Label2"]),
        ];
        if with_bin {
            resources.push(secret_resource("bin-resource", &bin_arn, &[]));
        }
        serde_json::json!({"InitialVersion": {"Resources": resources}}).to_string()
    };
    d.write_manifest_text(&definition(true));
    let mut args = d.sync_args(&endpoint);
    args.push("--json");
    let o = lockbox(&args);
    let report = json(&String::from_utf8(ok(&o)).unwrap());
    let err = stderr(&o);
    assert!(
        err.contains("InitialVersion.Resources[0] (Id \\\"data-volume\\\") is a LocalVolumeResourceData, not a secret; skipped"),
        "{err}"
    );
    assert_eq!(report["notes"].as_array().unwrap().len(), 1, "{report}");
    let secrets = report["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2, "{report}");
    assert_eq!(secrets[0]["resource_id"], "db-resource");
    assert_eq!(secrets[0]["versions"].as_array().unwrap().len(), 3);

    // Text mode prints the note on stderr as `note: ...`.
    let o = lockbox(&d.sync_args(&endpoint));
    ok(&o);
    assert!(
        stderr(&o).contains("note: ") && stderr(&o).contains("LocalVolumeResourceData"),
        "{}",
        stderr(&o)
    );

    for by in [
        ["--resource-id", "db-resource"],
        ["--secret-id", db.as_str()],
        ["--secret-id", db_arn.as_str()],
    ] {
        assert_eq!(ok(&read(&d, &by)), b"db-current", "{by:?}");
    }
    for (label, want) in [("Label1", "db-label1"), ("Label2", "db-label2")] {
        let o = read(
            &d,
            &["--resource-id", "db-resource", "--version-stage", label],
        );
        assert_eq!(ok(&o), want.as_bytes());
    }
    let o = read(&d, &["--resource-id", "db-resource", "--json"]);
    let j = json(&String::from_utf8(ok(&o)).unwrap());
    assert_eq!(j["resource_id"], "db-resource");
    assert_eq!(j["secret_string"], "db-current");
    assert_eq!(j["arn"], db_arn.as_str());
    // Binary: raw bytes on stdout, base64 in --json.
    assert_eq!(ok(&read(&d, &["--resource-id", "bin-resource"])), bin_value);
    let o = read(&d, &["--resource-id", "bin-resource", "--json"]);
    let j = json(&String::from_utf8(ok(&o)).unwrap());
    assert_eq!(
        j["secret_binary"],
        base64::engine::general_purpose::STANDARD.encode(bin_value)
    );
    assert!(j.get("secret_string").is_none());
    // A resource id that is not there, and the two ids at once.
    let o = read(&d, &["--resource-id", "data-volume"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("resource data-volume was not synced"),
        "{}",
        stderr(&o)
    );
    let o = read(&d, &["--resource-id", "db-resource", "--secret-id", &db]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));

    // The binary resource removed from the definition: gone after the next sync.
    d.write_manifest_text(&definition(false));
    let o = lockbox(&args);
    let report = json(&String::from_utf8(ok(&o)).unwrap());
    assert_eq!(report["removed"], serde_json::json!([bin_arn]), "{report}");
    let o = read(&d, &["--resource-id", "bin-resource"]);
    assert_eq!(code(&o), 1);
    let o = read(&d, &["--secret-id", &bin]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("was not synced"), "{}", stderr(&o));
    assert_eq!(
        ok(&read(&d, &["--resource-id", "db-resource"])),
        b"db-current"
    );
}

/// The resource definition from Greengrass's documentation (create-resource-definition), used
/// as is: its ARN names account 123456789012 in us-west-2, secret
/// `greengrass-SomeSecret-KUj89s`, labels Label1 and Label2. The test and the sync sign with
/// access key id [`DOC_ACCOUNT`], which makes that the account on LocalStack too.
#[tokio::test]
async fn greengrass_documented_definition_as_is() {
    let Some(endpoint) = emulator("greengrass_documented_definition_as_is") else {
        return;
    };
    const DOC: &str = r#"{
    "Resources": [
        {
            "Id": "my-resource-id",
            "Name": "MySecretResource",
            "ResourceDataContainer": {
                "SecretsManagerSecretResourceData": {
                    "ARN": "arn:aws:secretsmanager:us-west-2:123456789012:secret:greengrass-SomeSecret-KUj89s",
                    "AdditionalStagingLabelsToDownload": [
                        "Label1",
                        "Label2"
                    ]
                }
            }
        }
    ]
}"#;
    let sm = sdk_in_doc_account(&endpoint, "us-west-2");
    let name = "greengrass-SomeSecret-KUj89s";
    let run = tag();
    let current = format!("current-{run}");
    // The name is fixed by the documentation: create it, or add versions to it.
    if sm
        .create_secret()
        .name(name)
        .secret_string(&current)
        .send()
        .await
        .is_err()
    {
        sm.put_secret_value()
            .secret_id(name)
            .secret_string(&current)
            .send()
            .await
            .unwrap();
    }
    put_with_stage(&sm, name, &format!("one-{run}"), "Label1").await;
    put_with_stage(&sm, name, &format!("two-{run}"), "Label2").await;
    let d = Dirs::new();
    d.write_manifest_text(DOC);
    let mut args = d.sync_args(&endpoint);
    args.extend(["--region", "us-west-2"]);
    ok(&command(&args)
        .env("AWS_ACCESS_KEY_ID", DOC_ACCOUNT)
        .output()
        .unwrap());
    assert_eq!(
        ok(&read(&d, &["--resource-id", "my-resource-id"])),
        current.as_bytes()
    );
    assert_eq!(
        ok(&read(
            &d,
            &[
                "--resource-id",
                "my-resource-id",
                "--version-stage",
                "Label2"
            ]
        )),
        format!("two-{run}").as_bytes()
    );
    assert_eq!(ok(&read(&d, &["--secret-id", name])), current.as_bytes());
}

/// Two resources naming one secret: refused naming both, nothing written.
#[test]
fn a_secret_referenced_by_two_resources_is_refused() {
    let d = Dirs::new();
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
    d.write_manifest_text(
        &serde_json::json!({"Resources": [
            secret_resource("first", arn, &[]),
            secret_resource("second", arn, &["blue"]),
        ]})
        .to_string(),
    );
    let o = lockbox(&d.sync_args("http://127.0.0.1:9"));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("Resources[0] (Id \"first\")"), "{err}");
    assert!(err.contains("Resources[1] (Id \"second\")"), "{err}");
    assert!(!d.store.exists());
}

/// A synced secret deleted in Secrets Manager: the sync fails (exit 1) naming it, and the last
/// store is kept and still read; removed from the manifest, it leaves the store.
#[tokio::test]
async fn a_secret_deleted_in_the_cloud_is_named_and_the_last_store_kept() {
    let Some(endpoint) = emulator("a_secret_deleted_in_the_cloud") else {
        return;
    };
    let sm = sdk(&endpoint, "us-east-1");
    let p = format!("it-gg/deleted/{}", tag());
    let keep = format!("{p}/keep");
    let gone = format!("{p}/gone");
    create(&sm, &keep, "kept").await;
    let gone_arn = create(&sm, &gone, "last-copy").await;
    let d = Dirs::new();
    let manifest = |ids: &[&str]| {
        let entries: Vec<_> = ids
            .iter()
            .map(|id| serde_json::json!({"arn": id}))
            .collect();
        serde_json::json!({ "cloudSecrets": entries }).to_string()
    };
    d.write_manifest_text(&manifest(&[&keep, &gone_arn]));
    ok(&lockbox(&d.sync_args(&endpoint)));
    let before = std::fs::read(d.store.join("secrets.sealed")).unwrap();
    sm.delete_secret()
        .secret_id(&gone)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    for json_mode in [false, true] {
        let mut args = d.sync_args(&endpoint);
        if json_mode {
            args.push("--json");
        }
        let o = lockbox(&args);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        let err = stderr(&o);
        let line = if json_mode {
            json(err.trim())
                .get("error")
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            err.clone()
        };
        assert!(
            line.contains(&format!("secret {gone}: not found")),
            "{line}"
        );
        assert!(line.contains("gone from Secrets Manager"), "{line}");
        assert!(line.contains("the last store is kept"), "{line}");
        assert!(line.contains(&gone_arn), "{line}");
    }
    assert_eq!(
        std::fs::read(d.store.join("secrets.sealed")).unwrap(),
        before,
        "store unchanged"
    );
    assert_eq!(ok(&read(&d, &["--secret-id", &gone])), b"last-copy");
    // Dropped from the manifest: the next sync succeeds and removes it.
    d.write_manifest_text(&manifest(&[&keep]));
    let mut args = d.sync_args(&endpoint);
    args.push("--json");
    let report = json(&stdout(&lockbox(&args)));
    assert_eq!(report["removed"], serde_json::json!([gone_arn]), "{report}");
    assert_eq!(code(&read(&d, &["--secret-id", &gone])), 1);
    assert_eq!(ok(&read(&d, &["--secret-id", &keep])), b"kept");
}

/// `periodicRefreshIntervalMin` without `--interval`: keeps refreshing on that period (a
/// minute shortened to 1 s with the test-only LOCKBOX_TEST_REFRESH_MINUTE_SECS), and stops
/// cleanly on SIGTERM.
#[tokio::test]
async fn the_manifest_refresh_period_keeps_syncing() {
    let Some(endpoint) = emulator("the_manifest_refresh_period_keeps_syncing") else {
        return;
    };
    let sm = sdk(&endpoint, "us-east-1");
    let name = format!("it-gg/refresh/{}/s", tag());
    create(&sm, &name, "first").await;
    let d = Dirs::new();
    d.write_manifest_text(
        &serde_json::json!({"cloudSecrets": [{"arn": name}], "periodicRefreshIntervalMin": 1})
            .to_string(),
    );
    let mut child = command(&d.sync_args(&endpoint))
        .env("LOCKBOX_TEST_REFRESH_MINUTE_SECS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let read = || {
        let o = read(&d, &["--secret-id", &name]);
        o.status.success().then_some(o.stdout)
    };
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        let until = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}: {:?}",
                lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("the first sync", &|| read().as_deref() == Some(b"first"));
    sm.put_secret_value()
        .secret_id(&name)
        .secret_string("second")
        .send()
        .await
        .unwrap();
    let changed = Instant::now();
    wait_for("the refresh", &|| read().as_deref() == Some(b"second"));
    assert!(
        changed.elapsed() < Duration::from_secs(5),
        "refreshed on the 1 s period"
    );
    assert!(child.try_wait().unwrap().is_none(), "still running");
    let status = stop_with_sigterm(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{:?}", lines.lock().unwrap());
    reader.join().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(
        out.lines()
            .filter(|l| l.starts_with("synced 1 secret ("))
            .count()
            >= 2,
        "{out}"
    );
    // Between rounds it says it keeps running, and why.
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == "note: next sync in 1 min (periodicRefreshIntervalMin); Ctrl-C to stop"),
        "{:?}",
        lines.lock().unwrap()
    );
    // A bad test minute is refused.
    let o = command(&d.sync_args(&endpoint))
        .env("LOCKBOX_TEST_REFRESH_MINUTE_SECS", "0")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("LOCKBOX_TEST_REFRESH_MINUTE_SECS"),
        "{}",
        stderr(&o)
    );
}
