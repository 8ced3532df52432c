//! `lockbox exec`, `env`, `export`, `import` and `history` on SSM, Secrets Manager and the
//! sealed store, against the emulator `cargo xtask` starts (skipped with a note without it).

use lockbox_testkit::aws::{aws_sdk_secretsmanager, aws_sdk_ssm};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use lockbox_testkit::aws::setup_config;
use lockbox_testkit::cli::{aws_command, code, json, stderr, stdout};
use lockbox_testkit::{emulator, tag};

/// Values SSM and Secrets Manager both hold (neither takes an empty value).
const VALUES: [(&str, &str); 6] = [
    ("db/password", "it's \"quoted\"\n$HOME ${X}"),
    ("db/user", "admin=root # not a comment"),
    ("api-key", "ünïcödé 😀"),
    ("tls/2fa", "123456"),
    ("multi", "line1\r\nline2\n"),
    ("plain", "hunter2"),
];

fn want_vars() -> BTreeMap<String, String> {
    [
        ("PASSWORD", VALUES[0].1),
        ("USER", VALUES[1].1),
        ("API_KEY", VALUES[2].1),
        ("_2FA", VALUES[3].1),
        ("MULTI", VALUES[4].1),
        ("PLAIN", VALUES[5].1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn lockbox(endpoint: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = aws_command(env!("CARGO_BIN_EXE_lockbox"), args);
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> &Output {
    assert_eq!(code(o), 0, "stderr: {}", stderr(o));
    o
}

fn env_map(bytes: &[u8]) -> BTreeMap<String, String> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let kv = String::from_utf8(kv.to_vec()).unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// A config for `kind` (aws-ssm or aws-secretsmanager) of node `app` under a fresh path.
fn config(dir: &Path, endpoint: &str, kind: &str) -> PathBuf {
    let path_key = if kind == "aws-ssm" {
        "ssm-parameter-path"
    } else {
        "secrets-manager-path"
    };
    let cfg = dir.join(format!("{kind}.json"));
    std::fs::write(
        &cfg,
        serde_json::json!({
            "type": kind,
            "name": "app",
            "server_url": endpoint,
            "extra": { "region": "us-east-1", path_key: format!("/lockbox-it/exec-{}", tag()) },
        })
        .to_string(),
    )
    .unwrap();
    cfg
}

fn put_all(endpoint: &str, cfg: &str) {
    for (name, value) in VALUES {
        ok(&lockbox(
            endpoint,
            &["put", "--config", cfg, name],
            Some(value.as_bytes()),
        ));
    }
}

fn exec_env(endpoint: &str, sources: &[&str]) -> BTreeMap<String, String> {
    let args = [
        &["exec"][..],
        sources,
        &["--pristine", "--", "/usr/bin/env", "-0"],
    ]
    .concat();
    env_map(&ok(&lockbox(endpoint, &args, None)).stdout)
}

async fn exec_on(kind: &str) {
    let test = format!("it_exec_reads_a_{kind}_service");
    let Some(endpoint) = emulator(&test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &endpoint, kind);
    let c = cfg.to_str().unwrap();
    put_all(&endpoint, c);
    assert_eq!(exec_env(&endpoint, &["--config", c]), want_vars());

    // --prefix narrows; a later source wins.
    let local = tmp.path().join("node");
    ok(&lockbox(
        &endpoint,
        &[
            "put",
            "--data-dir",
            local.to_str().unwrap(),
            "override/password",
        ],
        Some(b"from-local"),
    ));
    let got = exec_env(
        &endpoint,
        &[
            "--config",
            c,
            "--prefix",
            "db/",
            "--data-dir",
            local.to_str().unwrap(),
        ],
    );
    let want: BTreeMap<String, String> = [
        ("PASSWORD".to_owned(), "from-local".to_owned()),
        ("USER".to_owned(), VALUES[1].1.to_owned()),
    ]
    .into();
    assert_eq!(got, want);

    // export json by name; never a value on stderr.
    let o = lockbox(&endpoint, &["export", "--config", c, "-f", "json"], None);
    let got: BTreeMap<String, String> = serde_json::from_slice(&ok(&o).stdout).unwrap();
    let want: BTreeMap<String, String> = VALUES
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(got, want);
    assert!(!stderr(&o).contains("hunter2"));
}

#[tokio::test]
async fn it_exec_reads_an_ssm_service() {
    exec_on("aws-ssm").await;
}

#[tokio::test]
async fn it_exec_reads_a_secretsmanager_service() {
    exec_on("aws-secretsmanager").await;
}

#[tokio::test]
async fn it_exec_reads_the_sealed_store() {
    let Some(endpoint) = emulator("it_exec_reads_the_sealed_store") else {
        return;
    };
    let raw = aws_sdk_secretsmanager::Client::new(&setup_config(&endpoint));
    let base = format!("lockbox-it/exec-store-{}", tag());
    let mut manifest = Vec::new();
    for (name, value) in VALUES {
        let id = format!("{base}/{name}");
        raw.create_secret()
            .name(&id)
            .secret_string(value)
            .send()
            .await
            .unwrap();
        manifest.push(serde_json::json!({ "arn": id, "labels": [] }));
    }
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("manifest.json");
    std::fs::write(
        &m,
        serde_json::json!({ "cloudSecrets": manifest }).to_string(),
    )
    .unwrap();
    let store = tmp.path().join("store");
    let s = store.to_str().unwrap();
    ok(&lockbox(
        &endpoint,
        &[
            "sync",
            "--manifest",
            m.to_str().unwrap(),
            "--store",
            s,
            "--region",
            "us-east-1",
            "--endpoint-url",
            &endpoint,
        ],
        None,
    ));
    // Offline: no endpoint at all.
    let o = lockbox(
        "http://127.0.0.1:9",
        &[
            "exec",
            "--store",
            s,
            "--pristine",
            "--",
            "/usr/bin/env",
            "-0",
        ],
        None,
    );
    assert_eq!(env_map(&ok(&o).stdout), want_vars());
    let o = lockbox(
        "http://127.0.0.1:9",
        &["--json", "history", "--store", s, &format!("{base}/plain")],
        None,
    );
    let h = json(&stdout(ok(&o)));
    assert_eq!(
        h["versions"][0]["labels"],
        serde_json::json!(["AWSCURRENT"])
    );
}

#[tokio::test]
async fn it_history_on_ssm_names_versions_labels_and_users() {
    let Some(endpoint) = emulator("it_history_on_ssm_names_versions_labels_and_users") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &endpoint, "aws-ssm");
    let c = cfg.to_str().unwrap();
    ok(&lockbox(
        &endpoint,
        &["put", "--config", c, "k"],
        Some(b"first-value"),
    ));
    ok(&lockbox(
        &endpoint,
        &["put", "--config", c, "k", "--overwrite"],
        Some(b"second-value"),
    ));
    let settings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    let parameter = format!(
        "{}/app/k",
        settings["extra"]["ssm-parameter-path"].as_str().unwrap()
    );
    let ssm = aws_sdk_ssm::Client::new(&setup_config(&endpoint));
    ssm.label_parameter_version()
        .name(&parameter)
        .parameter_version(1)
        .labels("stable")
        .send()
        .await
        .unwrap();
    let o = lockbox(&endpoint, &["--json", "history", "--config", c, "k"], None);
    let text = stdout(ok(&o));
    assert!(
        !text.contains("first-value") && !text.contains("second-value"),
        "{text}"
    );
    let h = json(&text);
    let versions = h["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{h}");
    assert_eq!(versions[0]["version"], "1");
    assert_eq!(versions[0]["labels"], serde_json::json!(["stable"]));
    assert_eq!(versions[1]["version"], "2");
    assert!(
        versions[0]["created"].as_str().unwrap().ends_with('Z'),
        "{h}"
    );
    assert!(versions[0].get("changed_by").is_some(), "{h}");
    // Text form: a header and one line per version; `get NAME:1` reads the old one.
    let o = lockbox(&endpoint, &["history", "--config", c, "k"], None);
    let text = stdout(ok(&o));
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("stable"), "{text}");
    let o = lockbox(&endpoint, &["get", "--config", c, "k:stable"], None);
    assert_eq!(stdout(ok(&o)), "first-value");
}

#[tokio::test]
async fn it_history_on_secretsmanager_names_versions_and_stages() {
    let Some(endpoint) = emulator("it_history_on_secretsmanager_names_versions_and_stages") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &endpoint, "aws-secretsmanager");
    let c = cfg.to_str().unwrap();
    ok(&lockbox(
        &endpoint,
        &["put", "--config", c, "k"],
        Some(b"first-value"),
    ));
    ok(&lockbox(
        &endpoint,
        &["put", "--config", c, "k", "--overwrite"],
        Some(b"second-value"),
    ));
    let o = lockbox(&endpoint, &["--json", "history", "--config", c, "k"], None);
    let text = stdout(ok(&o));
    assert!(
        !text.contains("first-value") && !text.contains("second-value"),
        "{text}"
    );
    let h = json(&text);
    let mut stages: Vec<String> = h["versions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["labels"].as_array().unwrap().clone())
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    stages.sort();
    assert_eq!(stages, ["AWSCURRENT", "AWSPREVIOUS"], "{h}");
    let current = h["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["labels"] == serde_json::json!(["AWSCURRENT"]))
        .unwrap();
    assert!(current["created"].as_str().is_some(), "{h}");
    // A missing secret is an error naming it.
    let o = lockbox(&endpoint, &["history", "--config", c, "nope"], None);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
}

#[tokio::test]
async fn it_import_on_ssm_writes_nothing_when_one_entry_is_bad() {
    let Some(endpoint) = emulator("it_import_on_ssm_writes_nothing_when_one_entry_is_bad") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &endpoint, "aws-ssm");
    let c = cfg.to_str().unwrap();
    let file = tmp.path().join("in.json");
    let big = "x".repeat(5000);
    std::fs::write(
        &file,
        serde_json::json!({ "a": "1", "too-big": big, "aws-reserved": "2", "b": "3" }).to_string(),
    )
    .unwrap();
    let o = lockbox(
        &endpoint,
        &["import", "--config", c, file.to_str().unwrap()],
        None,
    );
    assert_eq!(code(&o), 1);
    let e = stderr(&o);
    assert!(
        e.contains("\"too-big\"") && e.contains("nothing was written"),
        "{e}"
    );
    assert!(!e.contains(&big[..100]), "no value in errors");
    let o = lockbox(&endpoint, &["list", "--config", c], None);
    assert_eq!(stdout(ok(&o)), "");

    std::fs::write(&file, serde_json::json!({ "a": "1", "b": "2" }).to_string()).unwrap();
    let o = lockbox(
        &endpoint,
        &["--json", "import", "--config", c, file.to_str().unwrap()],
        None,
    );
    assert_eq!(
        json(&stdout(ok(&o)))["stored"],
        serde_json::json!(["a", "b"])
    );
    let o = lockbox(&endpoint, &["env", "--config", c], None);
    assert_eq!(stdout(ok(&o)), "export A='1'\nexport B='2'\n");
}

#[tokio::test]
async fn it_exec_and_history_on_vault() {
    let Some((addr, token)) = lockbox_testkit::vault_server("it_exec_and_history_on_vault") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("vault.json");
    std::fs::write(
        &cfg,
        serde_json::json!({
            "type": "hashicorp-vault",
            "name": format!("exec-{}", tag()),
            "server_url": addr,
        })
        .to_string(),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let vault = |args: &[&str], stdin: Option<&[u8]>| {
        let mut cmd = aws_command(env!("CARGO_BIN_EXE_lockbox"), args);
        cmd.env("VAULT_TOKEN", &token)
            .env_remove("LOCKBOX_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or_default())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    for (name, value) in VALUES {
        ok(&vault(
            &["put", "--config", c, name],
            Some(value.as_bytes()),
        ));
    }
    ok(&vault(
        &["put", "--config", c, "plain", "--overwrite"],
        Some(b"hunter3"),
    ));
    let o = vault(
        &[
            "exec",
            "--config",
            c,
            "--pristine",
            "--",
            "/usr/bin/env",
            "-0",
        ],
        None,
    );
    let mut want = want_vars();
    want.insert("PLAIN".into(), "hunter3".into());
    assert_eq!(env_map(&ok(&o).stdout), want);
    let o = vault(&["--json", "history", "--config", c, "plain"], None);
    let text = stdout(ok(&o));
    assert!(!text.contains("hunter"), "{text}");
    let h = json(&text);
    assert_eq!(h["versions"][0]["version"], "1");
    assert_eq!(h["versions"][1]["version"], "2");
    assert_eq!(h["versions"][1]["labels"], serde_json::json!(["current"]));
    assert!(h["versions"][0]["created"].as_str().unwrap().ends_with('Z'));
}
