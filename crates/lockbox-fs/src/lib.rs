//! lockbox-fs: the file helpers every crate that keeps secrets on disk shares.
//!
//! - [`write_file_atomic`]: a crash leaves either the old file or the whole new one, never a
//!   part; new files are 0600 and new directories 0700.
//! - [`check_owner_only`]: refuses a file that group or others can access, and names the fix
//!   (`chmod 600 <path>`).
//!
//! Blocking `std::fs` calls only; async callers run them on a blocking thread.
//!
//! ```
//! use lockbox_core::PutMode;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("keys/node.key");
//! lockbox_fs::write_file_atomic(&path, b"secret", PutMode::Create).unwrap();
//! let meta = std::fs::metadata(&path).unwrap();
//! assert!(lockbox_fs::check_owner_only(&path, &meta).is_ok());
//! ```
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

use std::fs::{self, DirBuilder, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use lockbox_core::PutMode;

/// Prefix of the temporary files [`write_file_atomic`] creates; secret names with a segment
/// starting with it are refused, and cleanup code may remove such files after a crash.
pub const TMP_PREFIX: &str = ".lockbox-tmp-";

/// Writes `bytes` to `path` so that readers see the old file or the whole new one, never a
/// part: a 0600 temporary file in the same directory is written and fsynced, then renamed into
/// place and the directory fsynced. [`PutMode::Create`] never replaces an existing file (the
/// rename itself refuses, so there is no check-then-write race) and fails with
/// `io::ErrorKind::AlreadyExists`. Missing parent directories are created 0700. Errors name the
/// path and the step that failed; on error no temporary file is left behind.
pub fn write_file_atomic(path: &Path, bytes: &[u8], mode: PutMode) -> io::Result<()> {
    let with_path = |step: &str, p: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{step} {}: {e}", p.display()))
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    create_private_dirs(dir).map_err(|e| with_path("create directory", dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| with_path("create temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| with_path("write", tmp.path(), e))?;
    // On failure the temporary file is removed when the returned handle drops.
    match mode {
        PutMode::Create => tmp.persist_noclobber(path).map(drop),
        PutMode::Overwrite => tmp.persist(path).map(drop),
    }
    .map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already exists", path.display()),
            )
        } else {
            with_path("rename into", path, e.error)
        }
    })?;
    sync_dir(dir).map_err(|e| with_path("fsync", dir, e))
}

/// Creates `dir` and missing parents with mode 0700.
pub fn create_private_dirs(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Makes a rename or unlink in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new().read(true).open(dir)?.sync_all()
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
