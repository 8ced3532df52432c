//! `lockbox sync` / `lockbox read` end to end: the built binary against the AWS emulator
//! `cargo xtask` starts (moto serves Secrets Manager). Tests that need the emulator say they
//! were skipped when LOCKBOX_IT_ENDPOINT is unset; the others always run.

use lockbox_testkit::aws::aws_sdk_secretsmanager;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::primitives::Blob;
use lockbox_resources::{STORE_FILE, Selector, Store, TEMP_PREFIX};
use lockbox_testkit::aws::setup_config;
use lockbox_testkit::cli::{StoreDirs, aws_command, stop_with_sigterm};
use lockbox_testkit::{emulator, tag};

/// A prefix no other test (or run) uses.
fn prefix(test: &str) -> String {
    format!("it-cli-res/{test}/{}", tag())
}

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

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> &[u8] {
    assert_eq!(code(o), 0, "stderr: {}", stderr(o));
    &o.stdout
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON: {}: {e}", String::from_utf8_lossy(bytes)))
}

fn sdk(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&setup_config(endpoint))
}

type Dirs = StoreDirs;

/// `p` as an argument.
fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The sealed store file's bytes.
fn store_bytes(d: &Dirs) -> Vec<u8> {
    std::fs::read(d.store.join(STORE_FILE)).unwrap()
}

// ---- without the emulator -------------------------------------------------------------

#[test]
fn both_version_selectors_is_a_usage_error() {
    let o = lockbox(&[
        "read",
        "--store",
        "/nonexistent",
        "--secret-id",
        "x",
        "--version-stage",
        "AWSCURRENT",
        "--version-id",
        "abc",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
    let o = lockbox(&["sync", "--manifest", "m", "--store", "s", "--interval", "0"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn invalid_manifest_names_file_entry_and_field() {
    let d = Dirs::new();
    std::fs::write(
        &d.manifest,
        r#"{"cloudSecrets": [{"arn": "ok"}, {"arn": "x", "labels": [7]}]}"#,
    )
    .unwrap();
    let o = lockbox(&["sync", "--manifest", s(&d.manifest), "--store", d.store()]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("manifest.json: cloudSecrets[1].labels[0]: must be a string"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let o = lockbox(&[
        "--json",
        "sync",
        "--manifest",
        s(&d.manifest),
        "--store",
        d.store(),
    ]);
    assert_eq!(code(&o), 1);
    let v = json(&o.stderr);
    assert!(
        v["error"].as_str().unwrap().contains("cloudSecrets[1]"),
        "{v}"
    );
    assert!(!d.store.exists(), "nothing created");
}

#[test]
fn sync_without_a_region_says_how_to_give_one() {
    let d = Dirs::new();
    d.write_manifest(&[("name-only", &[])]);
    let o = command(&["sync", "--manifest", s(&d.manifest), "--store", d.store()])
        .env_remove("AWS_REGION")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("--region"), "{}", stderr(&o));
}

#[test]
fn read_without_a_store_says_to_sync() {
    let d = Dirs::new();
    let o = lockbox(&["read", "--store", d.store(), "--secret-id", "x"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("lockbox sync"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

// ---- against the emulator -------------------------------------------------------------

#[tokio::test]
async fn sync_then_read_raw_and_json() {
    let Some(endpoint) = emulator("sync_then_read_raw_and_json") else {
        return;
    };
    let sm = sdk(&endpoint);
    let p = prefix("read");
    let text_name = format!("{p}/text");
    let bin_name = format!("{p}/bin");
    let text = "päss\nword with trailing newline\n";
    let created = sm
        .create_secret()
        .name(&text_name)
        .secret_string(text)
        .send()
        .await
        .unwrap();
    let (text_arn, v1) = (created.arn.unwrap(), created.version_id.unwrap());
    let blue = sm
        .put_secret_value()
        .secret_id(&text_name)
        .secret_string("blue-value")
        .version_stages("blue")
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap();
    let bin: Vec<u8> = (0..=255u8).rev().collect();
    sm.create_secret()
        .name(&bin_name)
        .secret_binary(Blob::new(bin.clone()))
        .send()
        .await
        .unwrap();

    let d = Dirs::new();
    d.write_manifest(&[(&text_arn, &["blue"]), (&bin_name, &[])]);
    let mut args = d.sync_args(&endpoint);
    args.insert(0, "--json");
    let out = json(ok(&lockbox(&args)));
    assert_eq!(out["key_created"], true);
    assert_eq!(out["secrets"].as_array().unwrap().len(), 2);
    assert_eq!(out["key_file"], s(&d.key()));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.key()), 0o600);
    assert_eq!(mode(&d.store.join(STORE_FILE)), 0o600);

    let read = |extra: &[&str]| {
        let mut a = vec!["read", "--store", d.store()];
        a.extend_from_slice(extra);
        lockbox(&a)
    };
    // Raw, byte-exact, no newline added; by name and by ARN.
    assert_eq!(ok(&read(&["--secret-id", &text_name])), text.as_bytes());
    assert_eq!(ok(&read(&["--secret-id", &text_arn])), text.as_bytes());
    assert_eq!(ok(&read(&["--secret-id", &bin_name])), &bin[..]);
    assert_eq!(
        ok(&read(&[
            "--secret-id",
            &text_name,
            "--version-stage",
            "blue"
        ])),
        b"blue-value"
    );
    assert_eq!(
        ok(&read(&["--secret-id", &text_name, "--version-id", &v1])),
        text.as_bytes()
    );
    // JSON.
    let v = json(ok(&read(&["--secret-id", &text_name, "--json"])));
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "arn",
            "created_date",
            "name",
            "secret_string",
            "version_id",
            "version_stages"
        ]
    );
    assert_eq!(v["arn"], text_arn.as_str());
    assert_eq!(v["name"], text_name.as_str());
    assert_eq!(v["version_id"], v1.as_str());
    assert_eq!(v["version_stages"], serde_json::json!(["AWSCURRENT"]));
    assert_eq!(v["secret_string"], text);
    assert!(v["created_date"].is_i64(), "{v}");
    let v = json(ok(&read(&[
        "--secret-id",
        &text_arn,
        "--version-stage",
        "blue",
        "--json",
    ])));
    assert_eq!(v["version_id"], blue.as_str());
    let v = json(ok(&read(&["--json", "--secret-id", &bin_name])));
    assert!(v.get("secret_string").is_none(), "{v}");
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(v["secret_binary"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, bin);

    // Not synced: a stage, a secret.
    let o = read(&["--secret-id", &text_name, "--version-stage", "green"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("stage green"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let o = read(&["--secret-id", "nope", "--json"]);
    assert_eq!(code(&o), 1);
    assert!(
        json(&o.stderr)["error"]
            .as_str()
            .unwrap()
            .contains("secret nope")
    );

    // Key file others can read: refused with the fix.
    std::fs::set_permissions(d.key(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = read(&["--secret-id", &text_name]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    std::fs::set_permissions(d.key(), std::fs::Permissions::from_mode(0o600)).unwrap();

    // Another key file: refused, named as a key mismatch.
    let other = d.root.join("other.key");
    std::fs::write(&other, "11".repeat(32)).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = read(&["--secret-id", &text_name, "--key-file", s(&other)]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("sealed with another key"),
        "{}",
        stderr(&o)
    );

    // A flipped byte inside a ciphertext: refused, naming the secret.
    let mut file: serde_json::Value = json(&store_bytes(&d));
    let ct = file["secrets"][1]["versions"][0]["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(ct)
        .unwrap();
    raw[0] ^= 0x80;
    file["secrets"][1]["versions"][0]["ciphertext"] =
        base64::engine::general_purpose::STANDARD.encode(raw).into();
    let good = store_bytes(&d);
    std::fs::write(d.store.join(STORE_FILE), file.to_string()).unwrap();
    let o = read(&["--secret-id", &text_name]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains(&bin_name), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("failed authentication"),
        "{}",
        stderr(&o)
    );
    std::fs::write(d.store.join(STORE_FILE), good).unwrap();
    assert_eq!(ok(&read(&["--secret-id", &bin_name])), &bin[..]);
}

#[tokio::test]
async fn missing_secret_exits_1_and_keeps_the_store() {
    let Some(endpoint) = emulator("missing_secret_exits_1_and_keeps_the_store") else {
        return;
    };
    let sm = sdk(&endpoint);
    let p = prefix("missing");
    let here = format!("{p}/here");
    sm.create_secret()
        .name(&here)
        .secret_string("v")
        .send()
        .await
        .unwrap();
    let d = Dirs::new();
    d.write_manifest(&[(&here, &[])]);
    ok(&lockbox(&d.sync_args(&endpoint)));
    let before = store_bytes(&d);
    let ghost = format!("{p}/ghost");
    d.write_manifest(&[(&here, &[]), (&ghost, &[])]);
    let o = lockbox(&d.sync_args(&endpoint));
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains(&ghost) && err.contains("does not exist"),
        "{err}"
    );
    assert_eq!(store_bytes(&d), before);
    // Offline: a closed port fails quickly; the store stays and reads work.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    d.write_manifest(&[(&here, &[])]);
    let closed = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    let o = lockbox(&d.sync_args(&closed));
    assert_eq!(code(&o), 1);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    assert!(stderr(&o).contains("unavailable"), "{}", stderr(&o));
    assert_eq!(store_bytes(&d), before);
    assert_eq!(
        ok(&lockbox(&[
            "read",
            "--store",
            d.store(),
            "--secret-id",
            &here
        ])),
        b"v"
    );
}

/// Kills `lockbox sync` at random moments while the cloud moves through generations of
/// values; the store must always open and hold one whole generation, never a mix, and temp
/// files must not pile up.
#[tokio::test]
async fn crash_test_store_is_always_old_or_new() {
    let Some(endpoint) = emulator("crash_test_store_is_always_old_or_new") else {
        return;
    };
    const SECRETS: usize = 6;
    const ITERATIONS: usize = 20;
    let sm = sdk(&endpoint);
    let p = prefix("crash");
    let names: Vec<String> = (0..SECRETS).map(|i| format!("{p}/s{i}")).collect();
    let value = |generation: usize, i: usize| {
        format!("gen-{generation:03}-secret-{i}-{}", "x".repeat(2000))
    };
    for (i, n) in names.iter().enumerate() {
        sm.create_secret()
            .name(n)
            .secret_string(value(0, i))
            .send()
            .await
            .unwrap();
        sm.put_secret_value()
            .secret_id(n)
            .secret_string(value(0, i))
            .version_stages("blue")
            .send()
            .await
            .unwrap();
    }
    let d = Dirs::new();
    let entries: Vec<(&str, &[&str])> = names.iter().map(|n| (n.as_str(), &["blue"][..])).collect();
    d.write_manifest(&entries);
    let t = Instant::now();
    ok(&lockbox(&d.sync_args(&endpoint)));
    // Kill moments spread over 0..1.5x a full run (at least 0-150 ms), so some land before
    // the fetches end, some during the write, some after.
    let window_ms = u64::try_from(t.elapsed().as_millis() * 3 / 2)
        .unwrap()
        .max(150);

    let generation_of = |store: &Store| -> usize {
        let mut gens = Vec::new();
        for (i, n) in names.iter().enumerate() {
            for sel in [Selector::current(), Selector::stage("blue")] {
                let v = store.read(n, &sel).unwrap();
                let text = v.value.expose_str().unwrap().to_owned();
                let g: usize = text[4..7].parse().unwrap();
                assert!(text == value(g, i), "secret {i}: {text:.40}");
                gens.push(g);
            }
        }
        assert!(
            gens.iter().all(|g| *g == gens[0]),
            "a mix of generations: {gens:?}"
        );
        gens[0]
    };

    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let start = Instant::now();
    let mut stored = 0usize;
    let (mut killed, mut finished, mut advanced) = (0, 0, 0);
    for generation in 1..=ITERATIONS {
        for (i, n) in names.iter().enumerate() {
            for stages in [None, Some("blue")] {
                let mut put = sm
                    .put_secret_value()
                    .secret_id(n)
                    .secret_string(value(generation, i));
                if let Some(s) = stages {
                    put = put.version_stages(s);
                }
                put.send().await.unwrap();
            }
        }
        let mut child = command(&d.sync_args(&endpoint))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rand() % (window_ms + 1)));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "sync failed on its own: {status}");
                finished += 1;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                killed += 1;
            }
        }
        child.wait().unwrap();
        let store = Store::open(&d.store, &d.key())
            .unwrap_or_else(|e| panic!("generation {generation}: {e}"));
        let g = generation_of(&store);
        assert!(
            g == stored || g == generation,
            "store holds generation {g}, expected {stored} or {generation}"
        );
        advanced += usize::from(g == generation);
        stored = g;
        assert!(
            d.files_starting_with(TEMP_PREFIX) <= 1,
            "{} temp files after generation {generation}",
            d.files_starting_with(TEMP_PREFIX)
        );
    }
    eprintln!(
        "MEASURED: crash test: {ITERATIONS} runs, kill window {window_ms} ms, {killed} killed, \
         {finished} finished, store advanced {advanced} times, took {:?}",
        start.elapsed()
    );
    // One more clean sync removes any leftover temp file and brings the last generation.
    ok(&lockbox(&d.sync_args(&endpoint)));
    assert_eq!(d.files_starting_with(TEMP_PREFIX), 0);
    let store = Store::open(&d.store, &d.key()).unwrap();
    assert_eq!(generation_of(&store), ITERATIONS);
    assert!(start.elapsed() < Duration::from_secs(120));
}

/// `--interval`: keeps refreshing; a failed round is reported and the store kept; SIGTERM
/// stops it with exit 0.
#[tokio::test]
async fn interval_refreshes_survives_failures_and_stops_on_sigterm() {
    let Some(endpoint) = emulator("interval_refreshes_survives_failures_and_stops_on_sigterm")
    else {
        return;
    };
    let sm = sdk(&endpoint);
    let p = prefix("interval");
    let name = format!("{p}/s");
    sm.create_secret()
        .name(&name)
        .secret_string("first")
        .send()
        .await
        .unwrap();
    let d = Dirs::new();
    d.write_manifest(&[(&name, &[])]);
    let mut args = d.sync_args(&endpoint);
    args.extend(["--interval", "1"]);
    let mut child = command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err_lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = err_lines.clone();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let read_value = || {
        let o = lockbox(&["read", "--store", d.store(), "--secret-id", &name]);
        (o.status.success()).then_some(o.stdout)
    };
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        let until = Instant::now() + Duration::from_secs(15);
        while !f() {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("the first sync", &|| {
        read_value().as_deref() == Some(b"first")
    });
    wait_for("the note that it keeps running", &|| {
        err_lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == "note: next sync in 1 s (--interval); Ctrl-C to stop")
    });
    sm.put_secret_value()
        .secret_id(&name)
        .secret_string("second")
        .send()
        .await
        .unwrap();
    wait_for("the refresh", &|| {
        read_value().as_deref() == Some(b"second")
    });
    // Break the next rounds: the manifest names a secret that does not exist.
    let ghost = format!("{p}/ghost");
    d.write_manifest(&[(&name, &[]), (&ghost, &[])]);
    wait_for("a failed round on stderr", &|| {
        err_lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("sync failed") && l.contains(&ghost))
    });
    assert_eq!(
        read_value().as_deref(),
        Some(&b"second"[..]),
        "old store kept"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running after a failed round"
    );
    let status = stop_with_sigterm(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{:?}", err_lines.lock().unwrap());
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
    assert_eq!(d.files_starting_with(TEMP_PREFIX), 0);
}
