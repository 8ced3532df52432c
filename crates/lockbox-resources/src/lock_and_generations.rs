//! One writer per store, and rollback detection.
//!
//! - **Lock**: a sync holds an advisory lock (`flock`, exclusive) on `<store dir>.lock`
//!   ([`lock_file`]), a sibling of the store directory like the default key file, from before
//!   it reads the old store until the new one is written. A second sync waits (up to
//!   [`SyncOptions::lock_wait`]) and then fails with "another sync is running". Readers never
//!   take the lock: the store is replaced by an atomic rename, so they see the old file or
//!   the new one.
//! - **Generations**: every store a sync writes carries a generation one above the highest
//!   seen for it. The highest generation seen is remembered in `<key file>.generation`
//!   ([`generation_file`]), owner-only, next to the key: a JSON object from the store
//!   directory's canonical path to its generation (one key file can seal several stores). A
//!   store whose generation is lower than the remembered one (an older `secrets.sealed`
//!   copied back) is refused by [`Store::open`](crate::Store::open) and by a sync, unless the
//!   caller accepts it ([`SyncOptions::allow_rollback`], `--allow-rollback`).
//!   The same map is also kept in an extended attribute of the key file itself
//!   ([`GENERATION_XATTR`]), which only who may change the key can remove: a deleted or older
//!   generation file does not hide a rollback (the higher of the two counts, with a loud
//!   warning). Where the file system keeps no extended attributes, the file alone counts and a
//!   warning says so.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lockbox_core::{Error, ErrorKind, PutMode, Result};
use rustix::fs::{FlockOperation, OFlags, flock};
use serde_json::Value;

use crate::BACKEND;
use crate::key::store_sibling;

/// Suffix of the lock file next to the store directory (`/var/lib/lockbox/resources.lock`).
pub const LOCK_FILE_SUFFIX: &str = ".lock";

/// Suffix added to the key file's name to make the file remembering generations
/// (`/var/lib/lockbox/resources.key.generation`).
pub const GENERATION_FILE_SUFFIX: &str = ".generation";

/// Extended attribute of the key file that keeps the generation map too (the file's
/// JSON), so removing the generation file does not reset rollback detection.
pub const GENERATION_XATTR: &str = "user.lockbox.generations";

/// Largest generation map kept in [`GENERATION_XATTR`] (ext4 keeps a value in one block).
const MAX_GENERATION_XATTR: usize = 4000;

/// How long a sync waits for another sync of the same store by default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);

/// Longest generation file accepted (it holds one short line per store).
const MAX_GENERATION_FILE: u64 = 1 << 20;

/// How a sync treats the lock and the store's generation.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// How long to wait for another sync of the same store before failing.
    pub lock_wait: Duration,
    /// Accept a store older than the highest generation seen (a rollback) instead of
    /// refusing it; the store written next still gets a higher generation than any seen.
    pub allow_rollback: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            lock_wait: DEFAULT_LOCK_WAIT,
            allow_rollback: false,
        }
    }
}

/// The lock file of the store in `store_dir`: `<store dir>.lock`.
pub fn lock_file(store_dir: &Path) -> Result<PathBuf> {
    store_sibling(store_dir, LOCK_FILE_SUFFIX, "lock file")
}

/// The file remembering the highest generation seen per store sealed with `key_file`:
/// `<key file>.generation`.
pub fn generation_file(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(GENERATION_FILE_SUFFIX);
    PathBuf::from(name)
}

/// An exclusive lock on a store, released when dropped (closing the file releases the flock).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
}

impl StoreLock {
    /// Takes the lock of the store in `store_dir`, waiting up to `wait` for another holder.
    pub async fn acquire(store_dir: &Path, wait: Duration) -> Result<Self> {
        let path = lock_file(store_dir)?;
        let file = open_lock_file(&path)?;
        let start = Instant::now();
        let mut said = false;
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Self { _file: file, path }),
                Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {}
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Backend,
                        BACKEND,
                        format!("cannot lock {}: {e}", path.display()),
                    ));
                }
            }
            if start.elapsed() >= wait {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    BACKEND,
                    format!(
                        "another sync is running on store {} (it holds {}); waited {}s; the \
                         local store was not changed",
                        store_dir.display(),
                        path.display(),
                        wait.as_secs_f64().round()
                    ),
                ));
            }
            if !said {
                tracing::info!(lock = %path.display(), "another sync is running; waiting for it");
                said = true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    if let Some(parent) = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.exists())
    {
        lockbox_fs::create_private_dirs(parent).map_err(|e| {
            Error::new(
                ErrorKind::Backend,
                BACKEND,
                format!("cannot create directory {}: {e}", parent.display()),
            )
        })?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC).bits() as i32)
        .open(path)
        .and_then(|f| {
            if f.metadata()?.is_file() {
                Ok(f)
            } else {
                Err(std::io::Error::other("not a regular file"))
            }
        })
        .map_err(|e| {
            Error::new(
                match e.kind() {
                    std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                    _ => ErrorKind::Backend,
                },
                BACKEND,
                format!("cannot open lock file {}: {e}", path.display()),
            )
        })
}

/// The highest generation seen per store, as kept in a generation file.
#[derive(Debug, Default)]
pub(crate) struct Generations {
    path: PathBuf,
    seen: BTreeMap<String, u64>,
}

impl Generations {
    /// Reads the generation file of `key_file`; a missing file remembers nothing.
    fn read_file(key_file: &Path) -> Result<Self> {
        let path = generation_file(key_file);
        let text = match read_owner_only(&path)? {
            Some(text) => text,
            None => {
                return Ok(Self {
                    path,
                    seen: BTreeMap::new(),
                });
            }
        };
        let seen = parse_generations(&text).map_err(|why| {
            Error::new(
                ErrorKind::Corrupt,
                BACKEND,
                format!(
                    "generation file {}: {}; it remembers the newest store seen, to detect \
                     rollbacks: remove it to start remembering again",
                    path.display(),
                    why.message(),
                ),
            )
        })?;
        Ok(Self { path, seen })
    }

    /// [`Generations::read_file`] raised to what the key file's [`GENERATION_XATTR`] keeps.
    pub(crate) fn load(key_file: &Path) -> Result<Self> {
        let mut me = Self::read_file(key_file)?;
        for (store, kept) in key_file_generations(key_file) {
            let slot = me.seen.entry(store.clone()).or_insert(0);
            if kept > *slot {
                tracing::warn!(
                    store = %store,
                    generation = kept,
                    file_says = *slot,
                    "the generation file {} is missing or older than the generations kept with \
                     the key file {}; using those (was it deleted or copied back?)",
                    me.path.display(),
                    key_file.display()
                );
                *slot = kept;
            }
        }
        Ok(me)
    }

    /// The highest generation seen for the store in `store_dir` (0 when none).
    pub(crate) fn get(&self, store_dir: &Path) -> u64 {
        store_id(store_dir)
            .and_then(|id| self.seen.get(&id).copied())
            .unwrap_or(0)
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Remembers `generation` for `store_dir` (never lowering what is there), holding an
    /// exclusive lock on the key file so two stores sharing a key do not lose each other's
    /// update.
    pub(crate) fn record(key_file: &Path, store_dir: &Path, generation: u64) -> Result<()> {
        let Some(id) = store_id(store_dir) else {
            return Err(Error::new(
                ErrorKind::Backend,
                BACKEND,
                format!("cannot resolve store directory {}", store_dir.display()),
            ));
        };
        let key = File::open(key_file).map_err(|e| {
            Error::new(
                ErrorKind::Backend,
                BACKEND,
                format!("cannot open key file {}: {e}", key_file.display()),
            )
        })?;
        flock(&key, FlockOperation::LockExclusive).map_err(|e| {
            Error::new(
                ErrorKind::Backend,
                BACKEND,
                format!("cannot lock key file {}: {e}", key_file.display()),
            )
        })?;
        let mut current = Self::load(key_file)?;
        let slot = current.seen.entry(id).or_insert(0);
        if *slot >= generation {
            return Ok(());
        }
        *slot = generation;
        let text = serde_json::to_string_pretty(&current.seen).map_err(|e| {
            Error::new(
                ErrorKind::Backend,
                BACKEND,
                format!("encoding generations: {e}"),
            )
        })? + "\n";
        lockbox_fs::write_file_atomic(&current.path, text.as_bytes(), PutMode::Overwrite).map_err(
            |e| {
                Error::new(
                    ErrorKind::Backend,
                    BACKEND,
                    format!("writing generation file {}: {e}", current.path.display()),
                )
            },
        )?;
        keep_with_key(&key, key_file, text.trim_end().as_bytes());
        Ok(())
        // The key file's lock is released when `key` is dropped.
    }
}

/// The generation map kept in the key file's [`GENERATION_XATTR`] (empty when there is none
/// or it cannot be read).
fn key_file_generations(key_file: &Path) -> BTreeMap<String, u64> {
    let Ok(key) = File::open(key_file) else {
        return BTreeMap::new();
    };
    let mut buf = vec![0u8; MAX_GENERATION_XATTR];
    match rustix::fs::fgetxattr(&key, GENERATION_XATTR, &mut buf[..]) {
        Ok(len) => std::str::from_utf8(&buf[..len])
            .ok()
            .and_then(|text| parse_generations(text).ok())
            .unwrap_or_else(|| {
                tracing::warn!(
                    key = %key_file.display(),
                    "the generations kept with the key file are unreadable; ignoring them"
                );
                BTreeMap::new()
            }),
        Err(_) => BTreeMap::new(),
    }
}

/// Keeps the generation map `json` in the key file's [`GENERATION_XATTR`]; a file system
/// without extended attributes (or a map too large) is a warning: the generation file alone
/// then remembers, and deleting it resets rollback detection.
fn keep_with_key(key: &File, key_file: &Path, json: &[u8]) {
    let result = if json.len() > MAX_GENERATION_XATTR {
        Err(format!(
            "the map is {} bytes, more than {MAX_GENERATION_XATTR}",
            json.len()
        ))
    } else {
        rustix::fs::fsetxattr(key, GENERATION_XATTR, json, rustix::fs::XattrFlags::empty())
            .map_err(|e| e.to_string())
    };
    if let Err(e) = result {
        tracing::warn!(
            key = %key_file.display(),
            error = %e,
            "cannot keep the store generations with the key file; only {} remembers them, and \
             deleting it would hide a rollback",
            generation_file(key_file).display()
        );
    }
}

/// The generation file's JSON broken: the message says how, without naming the file.
fn corrupt_generations(why: impl Into<String>) -> Error {
    Error::input(ErrorKind::Corrupt, why)
}

/// The generation file's JSON: an object of store path -> whole number.
pub(crate) fn parse_generations(text: &str) -> Result<BTreeMap<String, u64>> {
    let value =
        lockbox_config::strict::parse(text).map_err(|e| corrupt_generations(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(corrupt_generations(
            "must be a JSON object of store directory -> generation",
        ));
    };
    map.into_iter()
        .map(|(k, v)| match v.as_u64() {
            Some(n) => Ok((k, n)),
            None => Err(corrupt_generations(format!(
                "{k}: must be a whole number, found {v}"
            ))),
        })
        .collect()
}

/// How a store is named in the generation file: its directory's canonical path (for a
/// directory not created yet, its parent's canonical path joined with its name).
fn store_id(store_dir: &Path) -> Option<String> {
    let path = std::fs::canonicalize(store_dir).ok().or_else(|| {
        let name = store_dir.file_name()?;
        let parent = store_dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(std::fs::canonicalize(parent).ok()?.join(name))
    })?;
    path.to_str().map(str::to_owned)
}

/// Reads a small owner-only file; `None` when it does not exist.
fn read_owner_only(path: &Path) -> Result<Option<String>> {
    use std::io::Read;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC).bits() as i32)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Backend,
                BACKEND,
                format!("cannot open generation file {}: {e}", path.display()),
            ));
        }
    };
    let meta = file.metadata().map_err(|e| {
        Error::new(
            ErrorKind::Backend,
            BACKEND,
            format!("cannot stat {}: {e}", path.display()),
        )
    })?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            BACKEND,
            format!("generation file {} is not a regular file", path.display()),
        ));
    }
    if let Err(open) = lockbox_fs::check_owner_only(path, &meta) {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            BACKEND,
            format!(
                "generation file {} has mode {:04o}; it must be owner-only like the key next to \
                 it (fix: {})",
                path.display(),
                open.mode,
                open.fix()
            ),
        ));
    }
    let mut text = String::new();
    file.take(MAX_GENERATION_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| {
            Error::new(
                ErrorKind::Corrupt,
                BACKEND,
                format!("cannot read generation file {}: {e}", path.display()),
            )
        })?;
    if text.len() as u64 > MAX_GENERATION_FILE {
        return Err(Error::new(
            ErrorKind::Corrupt,
            BACKEND,
            format!(
                "generation file {} is larger than {MAX_GENERATION_FILE} bytes",
                path.display()
            ),
        ));
    }
    Ok(Some(text))
}

/// The error for a store older than the newest one seen.
pub(crate) fn rollback_error(
    store_file: &Path,
    found: u64,
    seen: u64,
    remembered_in: &Path,
) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        BACKEND,
        format!(
            "sealed store {} is generation {found}, but generation {seen} was already seen \
             (remembered in {}): an older copy of the store was put back (a rollback); \
             refusing it. Sync again to fetch the current secrets, or pass --allow-rollback to \
             accept this store knowingly",
            store_file.display(),
            remembered_in.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[tokio::test]
    async fn a_second_lock_waits_then_says_another_sync_is_running() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let first = StoreLock::acquire(&store, Duration::ZERO).await.unwrap();
        assert_eq!(first.path(), tmp.path().join("store.lock"));
        let e = StoreLock::acquire(&store, Duration::from_millis(100))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains("another sync is running"), "{e}");
        drop(first);
        StoreLock::acquire(&store, Duration::ZERO).await.unwrap();
    }

    #[test]
    fn generations_are_remembered_per_store_and_never_lowered() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("k");
        std::fs::write(&key, "x").unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        assert_eq!(Generations::load(&key).unwrap().get(&a), 0);
        Generations::record(&key, &a, 5).unwrap();
        Generations::record(&key, &b, 2).unwrap();
        Generations::record(&key, &a, 3).unwrap();
        let g = Generations::load(&key).unwrap();
        assert_eq!((g.get(&a), g.get(&b)), (5, 2));
        let file = generation_file(&key);
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Generations::load(&key).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&file, r#"{"/x": 1, "/X": 2}"#).unwrap();
        let e = Generations::load(&key).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(e.to_string().contains("\"/X\""), "{e}");
    }

    proptest! {
        #[test]
        fn arbitrary_generation_files_never_panic(text in "\\PC{0,120}") {
            let _ = parse_generations(&text);
        }
    }
}
