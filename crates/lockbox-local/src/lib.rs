//! lockbox-local: secrets as files under a data directory, in Polygon Edge's layout.
//!
//! | secret name         | file (relative to the data dir) |
//! |---------------------|---------------------------------|
//! | `validator-key`     | `consensus/validator.key`       |
//! | `validator-bls-key` | `consensus/validator-bls.key`   |
//! | `network-key`       | `libp2p/libp2p.key`             |
//! | any other `a/b`     | `secrets/a/b`                   |
//!
//! Writes are atomic: a temporary file in the same directory is written, fsynced, renamed into
//! place (without replacing an existing file for creates) and the directory is fsynced, so a
//! crash leaves either the old file or the new one, never a partial key. Directories are created
//! 0700 (each new directory's parent fsynced) and files 0600; temporary files of a killed
//! earlier write are removed by the next write in that directory.
//!
//! Files are trusted only if they are ours: a key file must be a regular file (not a symbolic
//! link, FIFO or directory) owned by this user with no group or other bits, and at most
//! 64 KiB ([`MAX_KEY_FILE_LEN`]; other secrets [`MAX_SECRET_FILE_LEN`]). The directories keys
//! are kept in (`consensus/`, `libp2p/`, `secrets/...`) must be real directories owned by this
//! user and not writable by group or others: writes tighten ours and refuse others, reads
//! refuse both, each naming the `chmod`/`chown` that fixes it. The data directory itself may
//! be a symbolic link, but must be owned by this user (or root) and not writable by others.
//! Something of the wrong kind where a node key or its directory should be is reported as
//! what it is, with its path.
//!
//! Files are stored unencrypted: anyone with the owner's rights can read them.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use lockbox_core::{Error, ErrorKind, PutMode, Result, SecretName, SecretValue, SecretsManager};
use lockbox_fs::{
    DirChange, FileKind, FsError, MAX_KEY_FILE_LEN, TMP_PREFIX, check_key_dirs, ensure_key_dirs,
    read_trusted, sync_dir, write_file_atomic,
};

const BACKEND: &str = "local";

/// The largest file of a secret that is not a node key the backend reads: 16 MiB. (Node key
/// files are capped at [`MAX_KEY_FILE_LEN`], 64 KiB.) Larger files are refused before reading.
pub const MAX_SECRET_FILE_LEN: u64 = 16 * 1024 * 1024;

/// Directory, under the data dir, of secrets that are not node keys.
pub const OTHER_SECRETS_DIR: &str = "secrets";

/// Polygon Edge's fixed files for node secrets: (secret name, path under the data dir).
pub const NODE_SECRET_FILES: [(&str, &str); 3] = [
    ("validator-key", "consensus/validator.key"),
    ("validator-bls-key", "consensus/validator-bls.key"),
    ("network-key", "libp2p/libp2p.key"),
];

/// Secrets stored as files under one data directory.
#[derive(Clone, Debug)]
pub struct LocalBackend {
    root: Arc<PathBuf>,
}

impl LocalBackend {
    /// A backend rooted at `data_dir`. Nothing is created until the first write.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            root: Arc::new(data_dir.into()),
        }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `name`.
    pub fn path_of(&self, name: &SecretName) -> PathBuf {
        match NODE_SECRET_FILES.iter().find(|(n, _)| *n == name.as_str()) {
            Some((_, rel)) => self.root.join(rel),
            None => name
                .segments()
                .fold(self.root.join(OTHER_SECRETS_DIR), |p, s| p.join(s)),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LocalBackend) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Backend,
                    BACKEND,
                    format!("file task failed: {e}"),
                )
            })?
    }

    /// Whether `name` is one of Polygon Edge's node keys (kept in `consensus/`, `libp2p/`).
    fn is_node_key(name: &SecretName) -> bool {
        NODE_SECRET_FILES.iter().any(|(n, _)| *n == name.as_str())
    }

    /// The file of `name` and its directory relative to the data dir.
    fn locate(&self, name: &SecretName) -> (PathBuf, PathBuf) {
        let path = self.path_of(name);
        let rel_dir = path
            .strip_prefix(self.root.as_path())
            .ok()
            .and_then(Path::parent)
            .map(Path::to_owned)
            .unwrap_or_default();
        (path, rel_dir)
    }

    /// Maps a refusal or I/O error of lockbox-fs on `name`'s file or directories. Under
    /// `secrets/`, a missing directory or a secret's file where a directory of a longer name
    /// would be means the secret is absent. For node keys, something of the wrong kind where
    /// the key file or its directory should be is reported as what it is, with its path, as
    /// `Corrupt`: it is not an absent key (a read must not say "not found"). A
    /// symbolic link, another user's file or directory, or one open to others is refused
    /// (`PermissionDenied`); a file over its cap is `Corrupt`.
    fn fs_error(name: &SecretName, e: FsError) -> Error {
        let absent = e.is_not_found()
            || (!Self::is_node_key(name)
                && matches!(
                    e,
                    FsError::NotADirectory {
                        found: FileKind::File,
                        ..
                    }
                ));
        if absent {
            return Error::not_found(BACKEND, name);
        }
        let kind = match &e {
            FsError::NotAFile { found, .. } | FsError::NotADirectory { found, .. }
                if *found != FileKind::Symlink =>
            {
                ErrorKind::Corrupt
            }
            FsError::TooLarge { .. } => ErrorKind::Corrupt,
            _ => e.kind(),
        };
        let message = match &e {
            FsError::OpenToOthers { path, mode } => format!(
                "{} has mode {mode:04o}, so group or others can read it; refusing to use a \
                 secret others can read (fix: chmod 600 {})",
                path.display(),
                path.display()
            ),
            FsError::NotAFile {
                path,
                found:
                    found @ (FileKind::Directory
                    | FileKind::Fifo
                    | FileKind::Socket
                    | FileKind::CharDevice
                    | FileKind::BlockDevice
                    | FileKind::Other),
            } => format!(
                "{} is {found} where the file of {name} should be",
                path.display()
            ),
            FsError::NotADirectory {
                path,
                found:
                    found @ (FileKind::File
                    | FileKind::Fifo
                    | FileKind::Socket
                    | FileKind::CharDevice
                    | FileKind::BlockDevice
                    | FileKind::Other),
            } => format!(
                "{} is {found} where the directory holding {name} should be",
                path.display()
            ),
            _ => e.to_string(),
        };
        Error::new(kind, BACKEND, message).with_secret(name)
    }

    fn read(&self, name: &SecretName) -> Result<SecretValue> {
        let (path, rel_dir) = self.locate(name);
        check_key_dirs(&self.root, &rel_dir).map_err(|e| Self::fs_error(name, e))?;
        let cap = if Self::is_node_key(name) {
            MAX_KEY_FILE_LEN
        } else {
            MAX_SECRET_FILE_LEN
        };
        match read_trusted(&path, cap) {
            Ok(bytes) => Ok(SecretValue::new(bytes)),
            // Under `secrets/`, a directory is a prefix of longer names, not a secret.
            Err(FsError::NotAFile {
                found: FileKind::Directory,
                ..
            }) if !Self::is_node_key(name) => Err(Error::not_found(BACKEND, name)),
            Err(e) => Err(Self::fs_error(name, e)),
        }
    }

    fn write(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
        if name.segments().any(|s| s.starts_with(TMP_PREFIX)) {
            return Err(Error::invalid_name(
                name.as_str(),
                format!("the local backend reserves names starting with {TMP_PREFIX}"),
            ));
        }
        let (path, rel_dir) = self.locate(name);
        let dirs = ensure_key_dirs(&self.root, &rel_dir).map_err(|e| Self::fs_error(name, e))?;
        for change in dirs {
            if let DirChange::Tightened { path, from } = change {
                tracing::warn!(
                    dir = %path.display(),
                    "{} had mode {from:04o}, writable by group or others; cleared their bits",
                    path.display()
                );
            }
        }
        if let Ok(meta) = fs::symlink_metadata(&path) {
            let found = FileKind::of(&meta);
            if found != FileKind::File {
                return Err(Self::fs_error(name, FsError::NotAFile { path, found }));
            }
        }
        write_file_atomic(&path, value.expose_bytes(), mode).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => Error::already_exists(BACKEND, name).with_message(
                format!("{} already exists; it was left as it was", path.display()),
            ),
            _ => Error::new(map_io_kind(&e), BACKEND, e.to_string()).with_secret(name),
        })?;
        tracing::debug!(secret = %name, path = %path.display(), "wrote secret file");
        Ok(())
    }

    fn remove(&self, name: &SecretName) -> Result<()> {
        let (path, rel_dir) = self.locate(name);
        check_key_dirs(&self.root, &rel_dir).map_err(|e| Self::fs_error(name, e))?;
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() && !Self::is_node_key(name) => {
                return Err(Error::not_found(BACKEND, name));
            }
            Ok(m) if m.is_dir() => {
                return Err(Self::fs_error(
                    name,
                    FsError::NotAFile {
                        path,
                        found: FileKind::Directory,
                    },
                ));
            }
            _ => {}
        }
        fs::remove_file(&path).map_err(|e| io_error(e, name, &path, "remove"))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir).map_err(|e| io_error(e, name, dir, "fsync"))?;
        }
        tracing::debug!(secret = %name, path = %path.display(), "removed secret file");
        Ok(())
    }

    /// Whether a secret's file is there. Something of another kind where the file or one of
    /// its directories should be is no secret (`false`; reads and writes report what it is),
    /// but a symbolic link or another user's directory is an error: what it hides is unknown.
    fn exists(&self, name: &SecretName) -> Result<bool> {
        let (path, rel_dir) = self.locate(name);
        match check_key_dirs(&self.root, &rel_dir) {
            // Existence only: a write tightens such a directory of ours, a read refuses it.
            Ok(()) | Err(FsError::WritableByOthers { .. }) => {}
            Err(e) if e.is_not_found() => return Ok(false),
            Err(FsError::NotADirectory { found, .. }) if found != FileKind::Symlink => {
                return Ok(false);
            }
            Err(e) => return Err(Self::fs_error(name, e)),
        }
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => Ok(true),
            Ok(m) if m.file_type().is_symlink() => Err(Self::fs_error(
                name,
                FsError::NotAFile {
                    path,
                    found: FileKind::Symlink,
                },
            )),
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(e, name, &path, "stat")),
        }
    }

    fn names(&self, prefix: &str) -> Result<Vec<SecretName>> {
        let mut out = Vec::new();
        for (name, rel) in NODE_SECRET_FILES {
            let is_file = fs::symlink_metadata(self.root.join(rel)).is_ok_and(|m| m.is_file());
            if name.starts_with(prefix) && is_file {
                out.push(SecretName::new(name)?);
            }
        }
        let others = self.root.join(OTHER_SECRETS_DIR);
        walk(&others, "", &mut |rel| {
            if rel.starts_with(prefix) {
                // Files whose path is not a valid name were not written by lockbox; skip them.
                if let Ok(n) = SecretName::new(rel) {
                    out.push(n);
                }
            }
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::Backend,
                BACKEND,
                format!("listing {}: {e}", others.display()),
            )
        })?;
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// Calls `f` with the `/`-joined relative path of every regular file under `dir`, skipping
/// temporary files. A missing `dir` has no files.
fn walk(dir: &Path, rel: &str, f: &mut dyn FnMut(&str)) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if file_name.starts_with(TMP_PREFIX) {
            continue;
        }
        let child = if rel.is_empty() {
            file_name
        } else {
            format!("{rel}/{file_name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &child, f)?;
        } else if kind.is_file() {
            f(&child);
        }
    }
    Ok(())
}

/// Maps an I/O error on `path` to lockbox's error, naming the file and the operation.
fn io_error(e: io::Error, name: &SecretName, path: &Path, op: &str) -> Error {
    if matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) {
        return Error::not_found(BACKEND, name);
    }
    Error::new(
        map_io_kind(&e),
        BACKEND,
        format!("{op} {}: {e}", path.display()),
    )
    .with_secret(name)
}

fn map_io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => ErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        _ => ErrorKind::Backend,
    }
}

#[async_trait]
impl SecretsManager for LocalBackend {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self, name: &SecretName) -> String {
        self.path_of(name).display().to_string()
    }

    async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
        let name = name.clone();
        self.blocking(move |b| b.read(&name)).await
    }

    async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
        let (name, value) = (name.clone(), value.clone());
        self.blocking(move |b| b.write(&name, &value, mode)).await
    }

    async fn delete(&self, name: &SecretName) -> Result<()> {
        let name = name.clone();
        self.blocking(move |b| b.remove(&name)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        let prefix = prefix.to_owned();
        self.blocking(move |b| b.names(&prefix)).await
    }

    async fn has(&self, name: &SecretName) -> Result<bool> {
        let name = name.clone();
        self.blocking(move |b| b.exists(&name)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockbox_core::SecretsManagerExt;
    use proptest::prelude::*;
    use std::os::unix::fs::PermissionsExt;

    fn n(s: &str) -> SecretName {
        SecretName::new(s).unwrap()
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn node_secrets_use_polygon_edge_paths() {
        let b = LocalBackend::new("/data");
        assert_eq!(
            b.path_of(&n("validator-key")),
            Path::new("/data/consensus/validator.key")
        );
        assert_eq!(
            b.path_of(&n("validator-bls-key")),
            Path::new("/data/consensus/validator-bls.key")
        );
        assert_eq!(
            b.path_of(&n("network-key")),
            Path::new("/data/libp2p/libp2p.key")
        );
        assert_eq!(b.path_of(&n("app/db")), Path::new("/data/secrets/app/db"));
    }

    #[tokio::test]
    async fn files_are_owner_only_and_dirs_0700() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("node"));
        b.create(&n("validator-key"), &SecretValue::from("k"))
            .await
            .unwrap();
        b.create(&n("app/deep/x"), &SecretValue::from("v"))
            .await
            .unwrap();
        assert_eq!(
            mode(&dir.path().join("node/consensus/validator.key")),
            0o600
        );
        for d in [
            "node",
            "node/consensus",
            "node/secrets",
            "node/secrets/app",
            "node/secrets/app/deep",
        ] {
            assert_eq!(mode(&dir.path().join(d)), 0o700, "{d}");
        }
    }

    #[tokio::test]
    async fn refuses_files_others_can_read_and_says_how_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create(&n("network-key"), &SecretValue::from("k"))
            .await
            .unwrap();
        let path = dir.path().join("libp2p/libp2p.key");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = b.get(&n("network-key")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("chmod 600 {}", path.display())),
            "{msg}"
        );
        assert!(msg.contains("0644"), "{msg}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(b.get(&n("network-key")).await.unwrap().expose_bytes(), b"k");
    }

    #[tokio::test]
    async fn refused_create_keeps_the_file_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create(&n("validator-key"), &SecretValue::from("old"))
            .await
            .unwrap();
        let e = b
            .create(&n("validator-key"), &SecretValue::from("new"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert!(e.to_string().contains("validator.key"), "{e}");
        assert_eq!(
            fs::read(dir.path().join("consensus/validator.key")).unwrap(),
            b"old"
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("consensus"))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "only the key file may remain");
    }

    #[tokio::test]
    async fn write_into_unwritable_dir_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create(&n("a/x"), &SecretValue::from("1")).await.unwrap();
        let sub = dir.path().join("secrets/a");
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o500)).unwrap();
        let result = b.create(&n("a/y"), &SecretValue::from("2")).await;
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
        // Root ignores directory permissions; only assert the failure where it can happen.
        if let Err(e) = result {
            assert!(e.to_string().contains("secrets/a"), "{e}");
            assert_eq!(fs::read_dir(&sub).unwrap().count(), 1);
        }
    }

    #[tokio::test]
    async fn has_is_false_below_a_file_and_list_skips_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create(&n("a"), &SecretValue::from("1")).await.unwrap();
        assert!(!b.has(&n("a/b")).await.unwrap());
        assert_eq!(
            b.get(&n("a/b")).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        fs::write(dir.path().join("secrets/.lockbox-tmp-abc"), "partial").unwrap();
        assert_eq!(b.list("").await.unwrap(), vec![n("a")]);
        let e = b
            .create(&n(".lockbox-tmp-x"), &SecretValue::from("1"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidName);
    }

    #[tokio::test]
    async fn list_includes_node_keys() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create(&n("network-key"), &SecretValue::from("1"))
            .await
            .unwrap();
        b.create(&n("validator-key"), &SecretValue::from("1"))
            .await
            .unwrap();
        b.create(&n("zz/other"), &SecretValue::from("1"))
            .await
            .unwrap();
        assert_eq!(
            b.list("").await.unwrap(),
            vec![n("network-key"), n("validator-key"), n("zz/other")]
        );
        assert_eq!(b.list("valid").await.unwrap(), vec![n("validator-key")]);
    }

    proptest! {
        #[test]
        fn every_name_maps_inside_the_data_dir(segs in prop::collection::vec("[A-Za-z0-9_.=@+-]{1,10}", 1..5)) {
            prop_assume!(segs.iter().all(|s| s != "." && s != ".."));
            let name = SecretName::new(segs.join("/")).unwrap();
            let b = LocalBackend::new("/data");
            let p = b.path_of(&name);
            prop_assert!(p.starts_with("/data"));
            let rel = p.strip_prefix("/data").unwrap();
            prop_assert!(rel.components().all(|c| matches!(c, std::path::Component::Normal(_))));
        }
    }
}
