//! Issue 13 on the built binary: a FIFO in place of a key file, store key, config, manifest or
//! store is refused at once (without waiting for a writer); an oversized store or key file is
//! refused by its size before it is read; a planted or linked key file, or a linked key
//! directory, is refused; the wrong kind of thing where a key or its directory should be is
//! named.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lockbox_testkit::cli::{code, ok_json, stderr};

/// Runs `lockbox args`; a run that has not ended after a generous guard (it would be blocked
/// on a FIFO forever) is killed and fails the test. Nothing is timed.
fn lockbox(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lockbox"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("LOCKBOX_TEST_CRASH_AT")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > guard {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!("lockbox {args:?} blocked: {}", stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

fn refused(o: &Output, what: &str) -> String {
    assert_eq!(code(o), 1, "{}", stderr(o));
    let err = stderr(o);
    assert!(err.contains(what), "{err}");
    err
}

fn owner_only(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn fifo_key_file_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    ok_json(&lockbox(&["init", "--data-dir", d, "--json"]));
    let key = tmp.path().join("consensus/validator.key");
    fs::remove_file(&key).unwrap();
    mkfifo(&key);
    let err = refused(&lockbox(&["output", "--data-dir", d]), "FIFO");
    assert!(err.contains(&key.display().to_string()), "{err}");
}

#[test]
fn fifo_config_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.json");
    mkfifo(&config);
    refused(
        &lockbox(&["output", "--config", config.to_str().unwrap()]),
        "is a FIFO (named pipe), not a regular file",
    );
}

#[test]
fn fifo_store_and_store_key_are_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    fs::create_dir(&store).unwrap();
    let sealed = store.join("secrets.sealed");
    mkfifo(&sealed);
    let s = store.to_str().unwrap();
    refused(
        &lockbox(&["read", "--store", s, "--secret-id", "db"]),
        "is a FIFO (named pipe)",
    );
    // A store file, and a FIFO for its key.
    fs::remove_file(&sealed).unwrap();
    fs::write(&sealed, "junk").unwrap();
    owner_only(&sealed);
    let key = tmp.path().join("store.key");
    mkfifo(&key);
    refused(
        &lockbox(&["read", "--store", s, "--secret-id", "db"]),
        "is a FIFO (named pipe)",
    );
}

#[test]
fn fifo_manifest_and_fifo_store_key_stop_sync_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let s = store.to_str().unwrap();
    let manifest = tmp.path().join("manifest.json");
    mkfifo(&manifest);
    let m = manifest.to_str().unwrap();
    let sync = [
        "sync",
        "--manifest",
        m,
        "--store",
        s,
        "--region",
        "us-east-1",
        "--endpoint-url",
        "http://127.0.0.1:9",
    ];
    refused(&lockbox(&sync), "is a FIFO (named pipe)");
    fs::remove_file(&manifest).unwrap();
    fs::write(&manifest, r#"{"cloudSecrets": [{"arn": "db"}]}"#).unwrap();
    mkfifo(&tmp.path().join("store.key"));
    refused(&lockbox(&sync), "is a FIFO (named pipe)");
}

#[test]
fn huge_store_and_key_files_are_refused_by_size_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    fs::create_dir(&store).unwrap();
    let sealed = store.join("secrets.sealed");
    // 2 GiB of holes: reading it first would take 2 GiB of memory.
    let f = fs::File::create(&sealed).unwrap();
    f.set_len(2 << 30).unwrap();
    owner_only(&sealed);
    refused(
        &lockbox(&[
            "read",
            "--store",
            store.to_str().unwrap(),
            "--secret-id",
            "db",
        ]),
        "is 2147483648 bytes, more than the 1073741824 bytes allowed",
    );

    let node = tmp.path().join("node");
    let d = node.to_str().unwrap();
    ok_json(&lockbox(&["init", "--data-dir", d, "--json"]));
    let key = node.join("consensus/validator.key");
    fs::OpenOptions::new()
        .write(true)
        .open(&key)
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    refused(
        &lockbox(&["output", "--data-dir", d]),
        "is 68719476736 bytes",
    );
}

#[test]
fn planted_and_linked_key_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    ok_json(&lockbox(&["init", "--data-dir", d, "--json"]));
    let key = tmp.path().join("consensus/validator.key");
    let elsewhere = tmp.path().join("planted.key");
    fs::rename(&key, &elsewhere).unwrap();
    symlink(&elsewhere, &key).unwrap();
    refused(&lockbox(&["output", "--data-dir", d]), "symbolic link");
    fs::remove_file(&key).unwrap();
    fs::rename(&elsewhere, &key).unwrap();
    ok_json(&lockbox(&["output", "--data-dir", d, "--json"]));

    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped the other-user part: chown needs root");
        return;
    }
    std::os::unix::fs::chown(&key, Some(65534), None).unwrap();
    refused(
        &lockbox(&["output", "--data-dir", d]),
        &format!("chown 0 {}", key.display()),
    );
}

#[test]
fn linked_key_dir_makes_init_write_nothing_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    symlink(elsewhere.path(), tmp.path().join("consensus")).unwrap();
    let d = tmp.path().to_str().unwrap();
    refused(
        &lockbox(&["init", "--data-dir", d]),
        "is a symbolic link where a directory should be",
    );
    assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn open_key_dir_is_tightened_by_init() {
    let tmp = tempfile::tempdir().unwrap();
    let consensus = tmp.path().join("consensus");
    fs::create_dir(&consensus).unwrap();
    fs::set_permissions(&consensus, fs::Permissions::from_mode(0o777)).unwrap();
    ok_json(&lockbox(&[
        "init",
        "--data-dir",
        tmp.path().to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(
        fs::metadata(&consensus).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn wrong_kinds_where_keys_belong_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let key_dir = tmp.path().join("consensus/validator.key");
    fs::create_dir_all(&key_dir).unwrap();
    refused(
        &lockbox(&["output", "--data-dir", d]),
        &format!(
            "{} is a directory where the file of validator-key should be",
            key_dir.display()
        ),
    );
    let err = refused(&lockbox(&["init", "--data-dir", d]), "is a directory");
    assert!(!err.contains("not found"), "{err}");
    fs::remove_dir(&key_dir).unwrap();

    let libp2p = tmp.path().join("libp2p");
    fs::write(&libp2p, "").unwrap();
    let err = refused(
        &lockbox(&["init", "--data-dir", d]),
        &format!(
            "{} is a regular file where the directory holding network-key should be",
            libp2p.display()
        ),
    );
    assert!(!err.contains("already exists"), "{err}");
}
