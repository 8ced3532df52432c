//! Files and directories lockbox must not be tricked by: each attack of issue 13 that
//! lockbox-fs answers, refused at once and named for what it is.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use lockbox_core::{ErrorKind, PutMode};
use lockbox_fs::{
    DirChange, FileKind, FsError, MAX_INPUT_FILE_LEN, MAX_KEY_FILE_LEN, check_key_dirs,
    ensure_key_dirs, read_regular, read_trusted, write_file_atomic,
};

/// uid of `nobody`, the "other user" of these tests.
const OTHER_UID: u32 = 65534;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

fn key(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    write_file_atomic(&path, b"00ff", PutMode::Create).unwrap();
    path
}

#[test]
fn reads_our_owner_only_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = key(dir.path(), "k");
    assert_eq!(read_trusted(&path, MAX_KEY_FILE_LEN).unwrap(), b"00ff");
    assert_eq!(read_regular(&path, MAX_INPUT_FILE_LEN).unwrap(), b"00ff");
}

#[test]
fn symlinked_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = key(dir.path(), "real");
    let link = dir.path().join("link");
    symlink(&target, &link).unwrap();
    let e = read_trusted(&link, MAX_KEY_FILE_LEN).unwrap_err();
    assert!(
        matches!(
            e,
            FsError::NotAFile {
                found: FileKind::Symlink,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(e.to_string().contains(&link.display().to_string()), "{e}");
    // A config or manifest may be a link.
    assert_eq!(read_regular(&link, MAX_INPUT_FILE_LEN).unwrap(), b"00ff");
}

#[test]
fn another_users_key_file_is_refused_with_the_chown_that_fixes_it() {
    if !is_root() {
        eprintln!("skipped: chown to another user needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = key(dir.path(), "k");
    std::os::unix::fs::chown(&path, Some(OTHER_UID), None).unwrap();
    let e = read_trusted(&path, MAX_KEY_FILE_LEN).unwrap_err();
    assert!(
        matches!(
            e,
            FsError::NotOwned {
                owner: OTHER_UID,
                euid: 0,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.fix().unwrap(), format!("chown 0 {}", path.display()));
    assert!(e.to_string().contains("uid 65534"), "{e}");
}

#[test]
fn key_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = key(dir.path(), "k");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let e = read_trusted(&path, MAX_KEY_FILE_LEN).unwrap_err();
    assert!(
        matches!(e, FsError::OpenToOthers { mode: 0o640, .. }),
        "{e:?}"
    );
    assert_eq!(e.fix().unwrap(), format!("chmod 600 {}", path.display()));
}

#[test]
fn fifo_is_refused_at_once_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fifo");
    mkfifo(&path);
    // Without a non-blocking open, each of these would wait forever for a writer.
    for e in [
        read_trusted(&path, MAX_KEY_FILE_LEN).unwrap_err(),
        read_regular(&path, MAX_INPUT_FILE_LEN).unwrap_err(),
    ] {
        assert!(
            matches!(
                e,
                FsError::NotAFile {
                    found: FileKind::Fifo,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("FIFO"), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    }
}

#[test]
fn huge_sparse_file_is_refused_by_size_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = key(dir.path(), "k");
    // 64 GiB of holes: reading it would allocate 64 GiB.
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    let e = read_trusted(&path, MAX_KEY_FILE_LEN).unwrap_err();
    assert!(
        matches!(e, FsError::TooLarge { len, max: MAX_KEY_FILE_LEN, .. } if len == 64 << 30),
        "{e:?}"
    );
    let e = read_regular(&path, MAX_INPUT_FILE_LEN).unwrap_err();
    assert!(matches!(e, FsError::TooLarge { .. }), "{e:?}");
}

#[test]
fn directory_where_a_file_should_be_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("validator.key");
    fs::create_dir(&path).unwrap();
    let e = read_trusted(&path, MAX_KEY_FILE_LEN).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{} is a directory, not a regular file; refusing to read it",
            path.display()
        )
    );
    let e = write_file_atomic(&path, b"x", PutMode::Create).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
}

#[test]
fn file_where_a_directory_should_be_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let file = key(dir.path(), "libp2p");
    let e = read_trusted(&file.join("libp2p.key"), MAX_KEY_FILE_LEN).unwrap_err();
    assert!(
        matches!(&e, FsError::NotADirectory { path, found: FileKind::File } if path == &file),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "{} is a regular file where a directory should be",
            file.display()
        )
    );
    let e = write_file_atomic(&file.join("libp2p.key"), b"x", PutMode::Create).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotADirectory);
    assert!(
        e.to_string()
            .contains("a regular file where a directory should be"),
        "{e}"
    );
    let e = ensure_key_dirs(dir.path(), Path::new("libp2p")).unwrap_err();
    assert!(matches!(e, FsError::NotADirectory { .. }), "{e:?}");
}

#[test]
fn symlinked_key_dir_is_refused_for_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    symlink(elsewhere.path(), dir.path().join("consensus")).unwrap();
    for e in [
        check_key_dirs(dir.path(), Path::new("consensus")).unwrap_err(),
        ensure_key_dirs(dir.path(), Path::new("consensus")).unwrap_err(),
    ] {
        assert!(
            matches!(
                e,
                FsError::NotADirectory {
                    found: FileKind::Symlink,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    }
    assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn our_open_key_dir_is_tightened_and_check_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let consensus = dir.path().join("consensus");
    fs::create_dir(&consensus).unwrap();
    fs::set_permissions(&consensus, fs::Permissions::from_mode(0o777)).unwrap();
    let e = check_key_dirs(dir.path(), Path::new("consensus")).unwrap_err();
    assert_eq!(
        e.fix().unwrap(),
        format!("chmod go-w {}", consensus.display())
    );
    let changes = ensure_key_dirs(dir.path(), Path::new("consensus")).unwrap();
    assert_eq!(
        changes,
        vec![DirChange::Tightened {
            path: consensus.clone(),
            from: 0o777
        }]
    );
    assert_eq!(mode(&consensus), 0o700);
    check_key_dirs(dir.path(), Path::new("consensus")).unwrap();
    // A 0755 directory is not writable by others: left as it is.
    fs::set_permissions(&consensus, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        ensure_key_dirs(dir.path(), Path::new("consensus"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(mode(&consensus), 0o755);
}

#[test]
fn another_users_key_dir_is_refused_not_changed() {
    if !is_root() {
        eprintln!("skipped: chown to another user needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let consensus = dir.path().join("consensus");
    fs::create_dir(&consensus).unwrap();
    fs::set_permissions(&consensus, fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(&consensus, Some(OTHER_UID), None).unwrap();
    let e = ensure_key_dirs(dir.path(), Path::new("consensus")).unwrap_err();
    assert!(
        matches!(
            e,
            FsError::NotOwned {
                owner: OTHER_UID,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.fix().unwrap(), format!("chown 0 {}", consensus.display()));
    assert_eq!(mode(&consensus), 0o777);
}

#[test]
fn data_dir_others_can_write_is_refused_not_changed() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let e = ensure_key_dirs(dir.path(), Path::new("consensus")).unwrap_err();
    assert!(
        matches!(e, FsError::WritableByOthers { mode: 0o777, .. }),
        "{e:?}"
    );
    assert_eq!(mode(dir.path()), 0o777);
    assert!(!dir.path().join("consensus").exists());
}

#[test]
fn missing_key_dirs_are_created_private_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("node");
    let changes = ensure_key_dirs(&base, Path::new("secrets/app")).unwrap();
    assert_eq!(
        changes,
        vec![
            DirChange::Created(base.clone()),
            DirChange::Created(base.join("secrets")),
            DirChange::Created(base.join("secrets/app")),
        ]
    );
    for d in ["node", "node/secrets", "node/secrets/app"] {
        assert_eq!(mode(&dir.path().join(d)), 0o700, "{d}");
    }
    let e = check_key_dirs(&base, Path::new("consensus")).unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
}

#[test]
fn a_killed_writes_temp_file_is_removed_by_the_next_write_and_nothing_else_is() {
    let dir = tempfile::tempdir().unwrap();
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    let stale = dir.path().join(".lockbox-tmp-AbC123");
    let not_ours = dir.path().join(".lockbox-tmp-other-name");
    for p in [&stale, &not_ours] {
        fs::write(p, "part of a secret").unwrap();
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
    }
    write_file_atomic(&dir.path().join("k"), b"v", PutMode::Create).unwrap();
    assert!(!stale.exists(), "the stale temp file was removed");
    assert!(
        not_ours.exists(),
        "a name outside the pattern is left alone"
    );
}

/// Files lockbox takes orders from (a consumers file, a token file), issue 23 item 4: a
/// symbolic link, a FIFO, a file others can write (or read, for a token), a file in a
/// directory others can write, another user's file: each refused at once, naming the fix.
#[test]
fn protected_files_are_trusted_like_key_files() {
    use lockbox_fs::{Readers, read_protected};
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    fs::create_dir(&conf).unwrap();
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o755)).unwrap();
    let file = conf.join("consumers.json");
    fs::write(&file, "{}").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(read_protected(&file, 64, Readers::Anyone).unwrap(), b"{}");
    // Readable by others: fine for rules, not for a token.
    let e = read_protected(&file, 64, Readers::OwnerOnly).unwrap_err();
    assert_eq!(
        e.fix(),
        Some(format!("chmod 600 {}", file.display())),
        "{e}"
    );
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        read_protected(&file, 64, Readers::OwnerOnly).unwrap(),
        b"{}"
    );
    // Writable by group or others.
    for bad in [0o666, 0o620, 0o602] {
        fs::set_permissions(&file, fs::Permissions::from_mode(bad)).unwrap();
        let e = read_protected(&file, 64, Readers::Anyone).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert_eq!(
            e.fix(),
            Some(format!("chmod go-w {}", file.display())),
            "{e}"
        );
        assert!(e.to_string().contains("can change it"), "{e}");
    }
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    // In a directory others can write: they could replace it.
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o777)).unwrap();
    let e = read_protected(&file, 64, Readers::Anyone).unwrap_err();
    assert_eq!(
        e.fix(),
        Some(format!("chmod go-w {}", conf.display())),
        "{e}"
    );
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o700)).unwrap();
    // A symbolic link, a FIFO (refused at once, not waited on), a directory.
    let link = conf.join("link");
    symlink(&file, &link).unwrap();
    let e = read_protected(&link, 64, Readers::Anyone).unwrap_err();
    assert!(
        matches!(
            e,
            FsError::NotAFile {
                found: FileKind::Symlink,
                ..
            }
        ),
        "{e}"
    );
    let fifo = conf.join("fifo");
    mkfifo(&fifo);
    let e = read_protected(&fifo, 64, Readers::OwnerOnly).unwrap_err();
    assert!(
        matches!(
            e,
            FsError::NotAFile {
                found: FileKind::Fifo,
                ..
            }
        ),
        "{e}"
    );
    let e = read_protected(&conf, 64, Readers::Anyone).unwrap_err();
    assert!(matches!(e, FsError::NotAFile { .. }), "{e}");
    // Another user's file (root may make one).
    if is_root() {
        rustix::fs::chown(&file, Some(rustix::process::Uid::from_raw(OTHER_UID)), None).unwrap();
        let e = read_protected(&file, 64, Readers::Anyone).unwrap_err();
        assert!(
            matches!(
                e,
                FsError::NotOwned {
                    owner: OTHER_UID,
                    ..
                }
            ),
            "{e}"
        );
    }
}
