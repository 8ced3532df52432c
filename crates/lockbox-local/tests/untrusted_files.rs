//! Issue 13's attacks on the local backend: planted, linked, special and oversized files and
//! directories are refused (at once, naming what is there and the fix), never read or written
//! through.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use lockbox_core::{ErrorKind, SecretName, SecretValue, SecretsManager, SecretsManagerExt};
use lockbox_local::LocalBackend;

const OTHER_UID: u32 = 65534;

fn n(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

const KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";

async fn node() -> (tempfile::TempDir, LocalBackend) {
    let dir = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(dir.path());
    b.create(&n("validator-key"), &SecretValue::from(KEY))
        .await
        .unwrap();
    (dir, b)
}

#[tokio::test]
async fn key_file_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: chown to another user needs root");
        return;
    }
    let (dir, b) = node().await;
    let path = dir.path().join("consensus/validator.key");
    std::os::unix::fs::chown(&path, Some(OTHER_UID), None).unwrap();
    let e = b.get(&n("validator-key")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("chown 0 {}", path.display())),
        "{e}"
    );
}

#[tokio::test]
async fn symlinked_key_file_is_refused() {
    let (dir, b) = node().await;
    let planted = dir.path().join("planted.key");
    fs::write(&planted, KEY).unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.path().join("consensus/validator.key");
    fs::remove_file(&path).unwrap();
    symlink(&planted, &path).unwrap();
    let e = b.get(&n("validator-key")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("symbolic link"), "{e}");
}

#[tokio::test]
async fn symlinked_key_dir_is_refused_and_nothing_is_written_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    symlink(elsewhere.path(), dir.path().join("consensus")).unwrap();
    let b = LocalBackend::new(dir.path());
    let e = b
        .create(&n("validator-key"), &SecretValue::from(KEY))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(
        e.to_string()
            .contains("symbolic link where a directory should be"),
        "{e}"
    );
    assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    fs::write(elsewhere.path().join("validator.key"), KEY).unwrap();
    let e = b.get(&n("validator-key")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(b.has(&n("validator-key")).await.is_err());
}

#[tokio::test]
async fn our_0777_key_dir_is_tightened_by_a_write_and_refused_by_a_read() {
    let (dir, b) = node().await;
    let consensus = dir.path().join("consensus");
    fs::set_permissions(&consensus, fs::Permissions::from_mode(0o777)).unwrap();
    let e = b.get(&n("validator-key")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("chmod go-w {}", consensus.display())),
        "{e}"
    );
    b.create(&n("validator-bls-key"), &SecretValue::from(KEY))
        .await
        .unwrap();
    assert_eq!(mode(&consensus), 0o700);
    assert_eq!(
        b.get(&n("validator-key")).await.unwrap().expose_str(),
        Some(KEY)
    );
}

#[tokio::test]
async fn another_users_0777_key_dir_is_refused_and_left_alone() {
    if !is_root() {
        eprintln!("skipped: chown to another user needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let consensus = dir.path().join("consensus");
    fs::create_dir(&consensus).unwrap();
    fs::set_permissions(&consensus, fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(&consensus, Some(OTHER_UID), None).unwrap();
    let b = LocalBackend::new(dir.path());
    let e = b
        .create(&n("validator-key"), &SecretValue::from(KEY))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("chown 0 {}", consensus.display())),
        "{e}"
    );
    assert_eq!(mode(&consensus), 0o777);
    assert_eq!(fs::read_dir(&consensus).unwrap().count(), 0);
}

#[tokio::test]
async fn fifo_key_file_is_refused_at_once() {
    let (dir, b) = node().await;
    let path = dir.path().join("consensus/validator.key");
    fs::remove_file(&path).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    let e = b.get(&n("validator-key")).await.unwrap_err();
    assert!(e.to_string().contains("FIFO"), "{e}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[tokio::test]
async fn huge_sparse_key_file_is_refused_without_reading_it() {
    let (dir, b) = node().await;
    let path = dir.path().join("consensus/validator.key");
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    let e = b.get(&n("validator-key")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(e.to_string().contains("68719476736 bytes"), "{e}");
}

#[tokio::test]
async fn a_directory_where_a_key_file_should_be_is_reported_as_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(dir.path());
    let path = dir.path().join("consensus/validator.key");
    fs::create_dir_all(&path).unwrap();
    let want = format!(
        "{} is a directory where the file of validator-key should be",
        path.display()
    );
    // No key is there; reads and writes say what is.
    assert!(!b.has(&n("validator-key")).await.unwrap());
    for e in [
        b.get(&n("validator-key")).await.unwrap_err(),
        b.create(&n("validator-key"), &SecretValue::from(KEY))
            .await
            .unwrap_err(),
        b.delete(&n("validator-key")).await.unwrap_err(),
    ] {
        assert!(e.to_string().contains(&want), "{e}");
        // Something is there: not an absent key.
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    }
}

#[tokio::test]
async fn a_file_where_a_key_directory_should_be_is_reported_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(dir.path());
    let libp2p = dir.path().join("libp2p");
    fs::write(&libp2p, "x").unwrap();
    let want = format!(
        "{} is a regular file where the directory holding network-key should be",
        libp2p.display()
    );
    assert!(!b.has(&n("network-key")).await.unwrap());
    for e in [
        b.get(&n("network-key")).await.unwrap_err(),
        b.create(&n("network-key"), &SecretValue::from(KEY))
            .await
            .unwrap_err(),
    ] {
        assert!(e.to_string().contains(&want), "{e}");
        assert!(!e.to_string().contains("already exists"), "{e}");
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    }
}

#[tokio::test]
async fn a_killed_puts_temp_file_is_removed_by_the_next_write_in_that_dir() {
    let (dir, b) = node().await;
    let temp = dir.path().join("consensus/.lockbox-tmp-a1B2c3");
    fs::write(&temp, &KEY[..10]).unwrap();
    fs::File::options()
        .write(true)
        .open(&temp)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    b.create(&n("validator-bls-key"), &SecretValue::from(KEY))
        .await
        .unwrap();
    assert!(!temp.exists());
}
