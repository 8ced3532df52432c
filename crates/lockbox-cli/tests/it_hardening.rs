//! Attacks on the sealed store, the manifest, the config, argv and tracing (issue 13, items 3,
//! 4, 5, 7 and 8), run as the built binary. Tests marked with the emulator read
//! LOCKBOX_IT_ENDPOINT and skip (saying so) without it; the others always run.

use lockbox_testkit::aws::aws_sdk_secretsmanager;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use lockbox_resources::{STORE_FILE, Store, StoreLock, TEMP_PREFIX};
use lockbox_testkit::aws::setup_config;
use lockbox_testkit::cli::{StoreDirs, aws_command, code, json, stderr, stdout};
use lockbox_testkit::{emulator, tag};

fn command(args: &[&str]) -> Command {
    let mut cmd = aws_command(env!("CARGO_BIN_EXE_lockbox"), args);
    cmd.env_remove("AWS_DEFAULT_REGION")
        .env_remove("LOCKBOX_TOKEN")
        .env_remove("LOCKBOX_LOG_CREDENTIALS")
        .env_remove("AIRFLOW__SECRETS__BACKEND")
        .env_remove("AIRFLOW__SECRETS__BACKEND_KWARGS")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null());
    cmd
}

fn lockbox(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

fn ok(o: &Output) -> &[u8] {
    assert_eq!(code(o), 0, "stderr: {}", stderr(o));
    &o.stdout
}

type Dirs = StoreDirs;

async fn create_secret(endpoint: &str, name: &str, value: &str) {
    aws_sdk_secretsmanager::Client::new(&setup_config(endpoint))
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap();
}

// ---- item 3: one writer per store ---------------------------------------------------------

/// 64 syncs started at once on one store all succeed, one after the other (before: each
/// deleted the others' temporary files, and 9 of 64 failed).
#[tokio::test]
async fn sixty_four_concurrent_syncs_on_one_store_all_succeed() {
    let Some(endpoint) = emulator("sixty_four_concurrent_syncs_on_one_store_all_succeed") else {
        return;
    };
    let name = format!("it-hard/concurrent/{}", tag());
    create_secret(&endpoint, &name, "v").await;
    let d = Dirs::new();
    std::fs::write(
        &d.manifest,
        serde_json::json!({"cloudSecrets": [{"arn": name}]}).to_string(),
    )
    .unwrap();
    let mut args = d.sync_args(&endpoint);
    args.extend(["--lock-wait", "600", "--json"]);
    let children: Vec<_> = (0..64)
        .map(|_| {
            command(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut generations = Vec::new();
    for child in children {
        let o = child.wait_with_output().unwrap();
        let v = json(&String::from_utf8_lossy(ok(&o)));
        generations.push(v["generation"].as_u64().unwrap());
    }
    generations.sort_unstable();
    assert_eq!(generations, (1..=64).collect::<Vec<u64>>());
    assert_eq!(d.files_starting_with(TEMP_PREFIX), 0);
    let store = Store::open(&d.store, &d.key()).unwrap();
    assert_eq!(store.generation(), 64);
    assert_eq!(store.secrets().len(), 1);
}

/// While another sync holds the store, a sync waits `--lock-wait` seconds and then fails with
/// a clear message, touching nothing; readers are not blocked.
#[tokio::test]
async fn a_second_sync_waits_then_says_another_sync_is_running() {
    let d = Dirs::new();
    std::fs::write(&d.manifest, r#"{"cloudSecrets": [{"arn": "x"}]}"#).unwrap();
    let held = StoreLock::acquire(&d.store, Duration::ZERO).await.unwrap();
    assert_eq!(held.path(), d.root.join("store.lock"));
    let mut args = d.sync_args("http://127.0.0.1:1");
    args.extend(["--lock-wait", "1"]);
    let o = lockbox(&args);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("another sync is running on store"),
        "{}",
        stderr(&o)
    );
    assert!(!d.store.exists() && !d.key().exists());
    // A reader does not wait for the lock (there is no store yet: it says so at once).
    let o = lockbox(&["read", "--store", d.store(), "--secret-id", "x"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("no sealed store"), "{}", stderr(&o));
}

// ---- item 4: rollback ----------------------------------------------------------------------

/// An older secrets.sealed copied back over the current one is refused by `read` and `sync`,
/// and accepted only with `--allow-rollback`.
#[tokio::test]
async fn an_older_store_copied_back_is_refused() {
    let Some(endpoint) = emulator("an_older_store_copied_back_is_refused") else {
        return;
    };
    let name = format!("it-hard/rollback/{}", tag());
    create_secret(&endpoint, &name, "old-value").await;
    let d = Dirs::new();
    std::fs::write(
        &d.manifest,
        serde_json::json!({"cloudSecrets": [{"arn": name}]}).to_string(),
    )
    .unwrap();
    ok(&lockbox(&d.sync_args(&endpoint)));
    let old = std::fs::read(d.store.join(STORE_FILE)).unwrap();
    aws_sdk_secretsmanager::Client::new(&setup_config(&endpoint))
        .put_secret_value()
        .secret_id(&name)
        .secret_string("new-value")
        .send()
        .await
        .unwrap();
    ok(&lockbox(&d.sync_args(&endpoint)));
    let read = |extra: &[&str]| {
        let mut args = vec!["read", "--store", d.store(), "--secret-id", &name];
        args.extend(extra);
        lockbox(&args)
    };
    assert_eq!(ok(&read(&[])), b"new-value");
    assert_eq!(
        std::fs::metadata(lockbox_resources::generation_file(&d.key()))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    std::fs::write(d.store.join(STORE_FILE), &old).unwrap();
    let o = read(&[]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("rollback"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--allow-rollback"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert_eq!(ok(&read(&["--allow-rollback"])), b"old-value");

    let o = lockbox(&d.sync_args(&endpoint));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("rollback"), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.store.join(STORE_FILE)).unwrap(), old);
    let mut args = d.sync_args(&endpoint);
    args.extend(["--allow-rollback", "--json"]);
    let v = json(&String::from_utf8_lossy(ok(&lockbox(&args))));
    assert_eq!(v["accepted_rollback"], true);
    assert_eq!(v["generation"], 3);
    assert_eq!(ok(&read(&[])), b"new-value");
}

// ---- item 5: strict JSON -------------------------------------------------------------------

/// `cloudSecrets` twice (the second an empty list that would empty the store) is refused,
/// naming the key; nothing is written.
#[test]
fn a_manifest_with_cloud_secrets_twice_is_refused() {
    let d = Dirs::new();
    for (text, key) in [
        (
            r#"{"cloudSecrets": [{"arn": "a"}], "cloudSecrets": []}"#,
            "cloudSecrets",
        ),
        (
            r#"{"cloudSecrets": [{"arn": "a", "labels": ["x"], "LABELS": []}]}"#,
            "cloudSecrets[0].LABELS",
        ),
    ] {
        std::fs::write(&d.manifest, text).unwrap();
        let o = lockbox(&d.sync_args("http://127.0.0.1:1"));
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("manifest.json: {key}: duplicates")),
            "{err}"
        );
        assert!(!d.store.exists());
    }
}

/// A config with `"type"` and `"TYPE"` is refused naming the second key.
#[test]
fn a_config_with_type_twice_is_refused() {
    let d = Dirs::new();
    let config = d.root.join("secretsManagerConfig.json");
    std::fs::write(
        &config,
        r#"{"type": "local", "name": "n", "TYPE": "aws-ssm", "extra": {"path": "d"}}"#,
    )
    .unwrap();
    let o = lockbox(&["list", "--config", config.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("key \"TYPE\": given twice"),
        "{}",
        stderr(&o)
    );
}

// ---- item 7: secrets off argv --------------------------------------------------------------

/// `--token` on the command line is refused naming LOCKBOX_TOKEN; from the environment it is
/// used, and the config holding it is owner-only (and refused when it is not).
#[test]
fn a_token_on_the_command_line_is_refused() {
    let d = Dirs::new();
    let config = d.root.join("c.json");
    let args = [
        "generate",
        "--type",
        "hashicorp-vault",
        "--name",
        "n",
        "--server-url",
        "http://127.0.0.1:1",
        "--dir",
        config.to_str().unwrap(),
    ];
    let mut with_token = args.to_vec();
    with_token.extend(["--token", "s.ARGVTOKEN"]);
    let o = lockbox(&with_token);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("LOCKBOX_TOKEN"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("s.ARGVTOKEN"), "{}", stderr(&o));
    assert!(!config.exists());
    let o = command(&args)
        .env("LOCKBOX_TOKEN", "s.ENVTOKEN")
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = lockbox(&["list", "--config", config.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("holds a token"), "{}", stderr(&o));
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
}

/// `--backend-kwargs` with AWS keys on the command line is refused naming the environment
/// variable and `@FILE`; the same kwargs from an owner-only file are used.
#[test]
fn backend_kwargs_with_credentials_on_the_command_line_are_refused() {
    let kwargs = r#"{"region_name": "us-east-1", "endpoint_url": "http://127.0.0.1:1", "aws_access_key_id": "AKID", "aws_secret_access_key": "ARGVSECRET"}"#;
    let base = ["lookup", "variable", "v", "--backend", "aws-ssm"];
    let mut args = base.to_vec();
    args.extend(["--backend-kwargs", kwargs]);
    let o = lockbox(&args);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("AIRFLOW__SECRETS__BACKEND_KWARGS"), "{err}");
    assert!(err.contains("@FILE"), "{err}");
    assert!(!err.contains("ARGVSECRET"), "{err}");
    // From the environment it is not refused (it fails later, reaching no endpoint).
    let o = command(&base)
        .env("AIRFLOW__SECRETS__BACKEND_KWARGS", kwargs)
        .output()
        .unwrap();
    assert_ne!(code(&o), 2, "{}", stderr(&o));
    // From a file: refused while others can read it, used once it is owner-only.
    let d = Dirs::new();
    let file = d.root.join("kwargs.json");
    std::fs::write(&file, kwargs).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let at = format!("@{}", file.display());
    let mut args = base.to_vec();
    args.extend(["--backend-kwargs", &at]);
    let o = lockbox(&args);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = lockbox(&args);
    assert_ne!(code(&o), 2, "{}", stderr(&o));
    assert!(!stderr(&o).contains("chmod"), "{}", stderr(&o));
}

// ---- item 8: tracing shows no credential ----------------------------------------------------

/// `RUST_LOG=trace` output of a real SSM call (and a Secrets Manager sync) with a session
/// token set holds no token, secret key or value; LOCKBOX_LOG_CREDENTIALS=1 lifts the cap
/// (which shows the test would see a leak).
#[tokio::test]
async fn trace_logs_of_real_calls_hold_no_credential() {
    let Some(endpoint) = emulator("trace_logs_of_real_calls_hold_no_credential") else {
        return;
    };
    const TOKEN: &str = "SESSIONTOKEN-it-hard-3c9f";
    const SECRET_KEY: &str = "SECRETKEY-it-hard-81ad";
    let t = tag();
    let d = Dirs::new();
    let config = d.root.join("ssm.json");
    std::fs::write(
        &config,
        serde_json::json!({"type": "aws-ssm", "name": t, "server_url": endpoint,
            "extra": {"region": "us-east-1", "ssm-parameter-path": "/it-hard-trace"}})
        .to_string(),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let value = format!("trace-canary-{t}");
    let run = |args: &[&str], stdin: Option<&str>, lift: bool| {
        let mut cmd = command(args);
        cmd.env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_SESSION_TOKEN", TOKEN)
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if lift {
            cmd.env("LOCKBOX_LOG_CREDENTIALS", "1");
        }
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    };
    let clean = |o: &Output| {
        let err = stderr(o);
        assert!(err.lines().count() > 20, "trace output expected: {err}");
        for secret in [TOKEN, SECRET_KEY, value.as_str()] {
            assert!(!err.contains(secret), "{secret} in trace output");
        }
    };
    let put = run(&["put", "--config", cfg, "hello"], Some(&value), false);
    ok(&put);
    clean(&put);
    let get = run(&["get", "--config", cfg, "hello"], None, false);
    assert_eq!(ok(&get), value.as_bytes());
    clean(&get);
    let lifted = run(&["get", "--config", cfg, "hello"], None, true);
    assert!(
        stderr(&lifted).contains(TOKEN),
        "LOCKBOX_LOG_CREDENTIALS=1 lifts the cap"
    );

    let name = format!("it-hard/trace/{t}");
    create_secret(&endpoint, &name, &value).await;
    std::fs::write(
        &d.manifest,
        serde_json::json!({"cloudSecrets": [{"arn": name}]}).to_string(),
    )
    .unwrap();
    let sync = run(&d.sync_args(&endpoint), None, false);
    ok(&sync);
    clean(&sync);
}

/// The lock file sits next to the store directory, the generation file next to the key.
#[test]
fn lock_and_generation_files_are_named_as_documented() {
    let d = Dirs::new();
    assert_eq!(
        lockbox_resources::lock_file(&d.store).unwrap(),
        d.root.join("store.lock")
    );
    assert_eq!(
        lockbox_resources::generation_file(&d.key()),
        Path::new(&format!("{}.generation", d.key().display()))
    );
}
