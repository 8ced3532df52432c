//! lockbox-fs: the file helpers every crate that keeps secrets on disk shares, and the one
//! place lockbox opens files it must not be tricked by.
//!
//! - [`write_file_atomic`]: a crash leaves either the old file or the whole new one, never a
//!   part; new files are 0600 and new directories 0700 (each new directory's parent is
//!   fsynced); the temporary file is held under an exclusive `flock` while it is written, and
//!   temporary files a killed earlier write left in that directory (no lock held) are removed.
//! - [`read_trusted`] / [`open_trusted`]: a file that holds a secret is read only if it is
//!   ours: no symbolic link, a regular file owned by the effective user, no group or other
//!   bits, under a size cap, opened without blocking (a FIFO is refused at once).
//! - [`read_protected`] / [`open_protected`]: a file lockbox takes orders from (a consumers
//!   file, a token file): no symbolic link, no FIFO, a regular file owned by the effective user
//!   or root that group and others cannot write (with [`Readers::OwnerOnly`], nor read), in a
//!   directory owned by the effective user or root that group and others cannot write.
//! - [`read_regular`] / [`open_regular`]: a config file or manifest: any owner, but a regular
//!   file under a size cap, opened without blocking.
//! - [`check_key_dirs`] / [`ensure_key_dirs`]: the directories keys are kept in are ours and
//!   not writable by others (ours are tightened, others refused with the fix).
//! - [`check_owner_only`]: refuses a file that group or others can access, and names the fix
//!   (`chmod 600 <path>`).
//!
//! Every refusal is an [`FsError`] that names the path, says what is there, and where one
//! command fixes it, names that command.
//!
//! Blocking `std::fs` calls only; async callers run them on a blocking thread.
//!
//! ```
//! use lockbox_core::PutMode;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("keys/node.key");
//! lockbox_fs::write_file_atomic(&path, b"secret", PutMode::Create).unwrap();
//! let bytes = lockbox_fs::read_trusted(&path, lockbox_fs::MAX_KEY_FILE_LEN).unwrap();
//! assert_eq!(bytes, b"secret");
//! ```
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod dirs;
mod error;
mod read;

use std::fs::{self, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use lockbox_core::PutMode;
use rustix::fs::{FlockOperation, Mode, OFlags};

pub use dirs::{DirChange, check_key_dirs, create_private_dirs, ensure_key_dirs, sync_dir};
pub use error::{FileKind, FsError};
pub use read::{
    CheckedFile, MAX_INPUT_FILE_LEN, MAX_KEY_FILE_LEN, MAX_STORE_FILE_LEN, Readers, open_protected,
    open_regular, open_trusted, read_protected, read_regular, read_trusted,
};

/// Prefix of the temporary files [`write_file_atomic`] creates; secret names with a segment
/// starting with it are refused, and cleanup code may remove such files after a crash.
pub const TMP_PREFIX: &str = ".lockbox-tmp-";

/// Random characters `tempfile` appends to [`TMP_PREFIX`].
const TMP_RANDOM_LEN: usize = 6;

/// Writes `bytes` to `path` so that readers see the old file or the whole new one, never a
/// part: a 0600 temporary file in the same directory is written and fsynced, then renamed into
/// place and the directory fsynced. [`PutMode::Create`] never replaces an existing file (the
/// rename itself refuses, so there is no check-then-write race) and fails with
/// `io::ErrorKind::AlreadyExists`. Missing parent directories are created 0700, each new
/// directory's parent fsynced. The temporary file is held under an exclusive `flock` from
/// before its first byte until it is renamed, so no cleanup removes it; before writing,
/// temporary files an earlier, killed write left in the directory are removed
/// ([`remove_stale_temp_files`]). Errors name the path and the step that failed; on error no
/// temporary file is left behind.
pub fn write_file_atomic(path: &Path, bytes: &[u8], mode: PutMode) -> io::Result<()> {
    let with_path = |step: &str, p: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{step} {}: {e}", p.display()))
    };
    let dir = dirs::parent_of(path);
    create_private_dirs(dir)?;
    remove_stale_temp_files(dir);
    let mut tmp =
        locked_temp_file(dir).map_err(|e| with_path("create temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| with_path("write", tmp.path(), e))?;
    crash_point("wrote a temporary file");
    // On failure the temporary file is removed when the returned handle drops. On success
    // the renamed file's descriptor (and so the lock) is closed only after the rename.
    match mode {
        PutMode::Create => tmp.persist_noclobber(path).map(drop),
        PutMode::Overwrite => tmp.persist(path).map(drop),
    }
    .map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            match fs::symlink_metadata(path).map(|m| FileKind::of(&m)) {
                Ok(found) if found != FileKind::File => io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} is {found} where a file should be", path.display()),
                ),
                _ => io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists", path.display()),
                ),
            }
        } else {
            with_path("rename into", path, e.error)
        }
    })?;
    crash_point("renamed a file into place");
    sync_dir(dir).map_err(|e| with_path("fsync", dir, e))
}

/// How often [`locked_temp_file`] creates a new temporary file when a cleanup removed the
/// one it had just created before it could lock it.
const LOCK_ATTEMPTS: usize = 16;

/// A new, empty 0600 temporary file in `dir` under an exclusive `flock`. Between creating the
/// file and locking it, a cleanup in another thread or process may lock and remove it (it
/// looks like a killed write's leftover): then the file has no link left, and a new one is
/// made.
fn locked_temp_file(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    for _ in 0..LOCK_ATTEMPTS {
        let tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .rand_bytes(TMP_RANDOM_LEN)
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)?;
        rustix::fs::flock(tmp.as_file(), FlockOperation::LockExclusive)?;
        if tmp.as_file().metadata()?.nlink() > 0 {
            return Ok(tmp);
        }
        // Removed by a cleanup: forget its name (another file may take it) and try again.
        drop(tmp.keep().map_err(|e| e.error)?);
    }
    Err(io::Error::other(format!(
        "temporary files kept being removed before they could be locked ({LOCK_ATTEMPTS} tries)"
    )))
}

/// Removes temporary files of [`write_file_atomic`] in `dir` that a killed earlier write left
/// behind: only names of its pattern ([`TMP_PREFIX`] and six random letters or digits), only
/// regular files owned by the effective user, and only those it can lock (`flock`, without
/// waiting): a write in progress, in this process or another, holds its temporary file's lock
/// until it has renamed it, so it is left alone however old the file looks. Returns how many
/// were removed; errors are logged, never fatal.
pub fn remove_stale_temp_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_temp_name) {
            continue;
        }
        let path = entry.path();
        match remove_if_unlocked(&path) {
            Ok(true) => {
                tracing::info!(path = %path.display(), "removed a temporary file a killed write left behind");
                removed += 1;
            }
            Ok(false) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a stale temporary file");
            }
        }
    }
    if removed > 0
        && let Err(e) = sync_dir(dir)
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot fsync after removing temporary files");
    }
    removed
}

/// Removes `path` if it is our regular file and no one holds its lock; whether it did.
fn remove_if_unlocked(path: &Path) -> io::Result<bool> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let file = fs::File::from(rustix::fs::open(path, flags, Mode::empty())?);
    let meta = file.metadata()?;
    if !meta.file_type().is_file() || meta.uid() != rustix::process::geteuid().as_raw() {
        return Ok(false);
    }
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    // Still the file we locked at that name (a writer renames its file only while it holds
    // the lock, so the name cannot change hands between this check and the removal).
    let now = fs::symlink_metadata(path)?;
    if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
        return Ok(false);
    }
    fs::remove_file(path)?;
    Ok(true)
}

/// Whether `name` is one of [`write_file_atomic`]'s temporary file names.
pub fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(TMP_PREFIX).is_some_and(|rest| {
        rest.len() == TMP_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// Environment variable of the crash-test hook; see [`crash_point`].
#[doc(hidden)]
pub const CRASH_AT_ENV: &str = "LOCKBOX_TEST_CRASH_AT";

/// A testing hook, not for users: when the environment variable `LOCKBOX_TEST_CRASH_AT` is
/// `k`, the `k`-th call of this function in the process kills the process with `SIGKILL`
/// (as `kill -9` would: no destructor runs, no file is cleaned up), after printing `label`
/// to stderr. Crash tests run a command with `k = 1, 2, ...` until it finishes without being
/// killed, so every point is tried. Without the variable it does nothing.
#[doc(hidden)]
pub fn crash_point(label: &str) {
    static TARGET: OnceLock<Option<usize>> = OnceLock::new();
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let Some(target) = *TARGET.get_or_init(|| {
        std::env::var(CRASH_AT_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
    }) else {
        return;
    };
    if COUNT.fetch_add(1, Ordering::SeqCst) + 1 == target {
        eprintln!("{CRASH_AT_ENV}={target}: killing the process after: {label}");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}

/// A file that group or others can access, found by [`check_owner_only`]. Callers word the
/// refusal for what the file holds and end it with [`OpenToOthers::fix`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenToOthers {
    /// The file.
    pub path: PathBuf,
    /// Its permission bits (`0o644`, ...); print them with `{:04o}`.
    pub mode: u32,
}

impl OpenToOthers {
    /// The command that makes the file owner-only: `chmod 600 <path>`.
    pub fn fix(&self) -> String {
        format!("chmod 600 {}", self.path.display())
    }
}

/// Refuses `path` (whose metadata is `meta`) when any group or other permission bit is set.
pub fn check_owner_only(path: &Path, meta: &Metadata) -> Result<(), OpenToOthers> {
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        Ok(())
    } else {
        Err(OpenToOthers {
            path: path.to_owned(),
            mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_owner_only_files_in_private_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/f");
        write_file_atomic(&path, b"one", PutMode::Create).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        write_file_atomic(&path, b"two", PutMode::Overwrite).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
    }

    #[test]
    fn create_never_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_file_atomic(&path, b"old", PutMode::Create).unwrap();
        let e = write_file_atomic(&path, b"new", PutMode::Create).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(e.to_string(), format!("{} already exists", path.display()));
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn owner_only_refuses_group_and_other_bits_and_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_file_atomic(&path, b"k", PutMode::Create).unwrap();
        for ok in [0o600, 0o400, 0o700] {
            fs::set_permissions(&path, fs::Permissions::from_mode(ok)).unwrap();
            assert!(check_owner_only(&path, &fs::metadata(&path).unwrap()).is_ok());
        }
        for bad in [0o644, 0o640, 0o604, 0o660, 0o601] {
            fs::set_permissions(&path, fs::Permissions::from_mode(bad)).unwrap();
            let e = check_owner_only(&path, &fs::metadata(&path).unwrap()).unwrap_err();
            assert_eq!(e.mode, bad);
            assert_eq!(e.fix(), format!("chmod 600 {}", path.display()));
        }
    }
}
