//! Directories: created 0700 with their parent fsynced, and the directories keys are kept in
//! checked to be ours and not writable by others.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{FileKind, FsError};
use crate::read::what_is_there;

/// Creates `dir` and missing parents with mode 0700, fsyncing each new directory's parent so
/// the new entry survives a power cut. A regular file (or anything else) where a directory
/// should be is an `io::ErrorKind::NotADirectory` error that names it and says what it is.
pub fn create_private_dirs(dir: &Path) -> io::Result<()> {
    create_dirs(dir).map(drop).map_err(io::Error::from)
}

/// [`create_private_dirs`], returning the directories it created, outermost first.
fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>, FsError> {
    let mut missing = Vec::new();
    for p in dir.ancestors() {
        if p.as_os_str().is_empty() {
            break;
        }
        match fs::metadata(p) {
            Ok(meta) if meta.is_dir() => break,
            Ok(meta) => {
                return Err(FsError::NotADirectory {
                    path: p.to_owned(),
                    found: FileKind::of(&fs::symlink_metadata(p).unwrap_or(meta)),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(p),
            Err(e) => return Err(what_is_there(p, e, "create directory")),
        }
    }
    let mut created = Vec::new();
    for p in missing.into_iter().rev() {
        match DirBuilder::new().mode(0o700).create(p) {
            Ok(()) => {}
            // Created meanwhile by someone else: fine if it is a directory.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => continue,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let found = fs::symlink_metadata(p).map_or(FileKind::Other, |m| FileKind::of(&m));
                return Err(FsError::NotADirectory {
                    path: p.to_owned(),
                    found,
                });
            }
            Err(e) => return Err(what_is_there(p, e, "create directory")),
        }
        crate::crash_point("created a directory");
        let parent = parent_of(p);
        sync_dir(parent).map_err(|e| FsError::io(parent, "fsync", e))?;
        created.push(p.to_owned());
    }
    Ok(created)
}

/// Makes a rename, unlink or new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new().read(true).open(dir)?.sync_all()
}

/// The directory holding `p` (`.` for a bare name).
pub(crate) fn parent_of(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// What [`ensure_key_dirs`] did to one directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirChange {
    /// Created it (mode 0700, parent fsynced).
    Created(PathBuf),
    /// It was ours but group or others could write to it: its group and other bits were
    /// cleared (`from` is the mode it had).
    Tightened {
        /// The directory.
        path: PathBuf,
        /// Its mode before (`0o777`, ...).
        from: u32,
    },
}

/// Checks the directories keys are kept in, without changing anything: `base` (a data
/// directory the user named; a symbolic link to it is followed) must be a directory owned by
/// this user or root, and not writable by group or others; every directory of `rel` under it
/// (`consensus`, `secrets/app`, ...; relative, no `..`) must be a real directory (not a
/// symbolic link), owned by this user, not writable by group or others. A missing one is an
/// `Io` error of kind `NotFound`; anything else wrong says what is there and how to fix it.
pub fn check_key_dirs(base: &Path, rel: &Path) -> Result<(), FsError> {
    check_base(base)?;
    let mut dir = base.to_owned();
    for part in normal_parts(rel)? {
        dir.push(part);
        let meta = fs::symlink_metadata(&dir).map_err(|e| what_is_there(&dir, e, "open"))?;
        check_key_dir(&dir, &meta)?;
    }
    Ok(())
}

/// [`check_key_dirs`], creating what is missing (mode 0700, each parent fsynced) and
/// tightening what is ours: a directory of `rel` owned by this user that group or others can
/// write to has its group and other bits cleared. Another user's directory, a symbolic link
/// or a file in the way is refused, and so is a `base` that others can write to (it was not
/// created by lockbox, so lockbox does not change it). Returns what it changed.
pub fn ensure_key_dirs(base: &Path, rel: &Path) -> Result<Vec<DirChange>, FsError> {
    let mut changes: Vec<DirChange> = create_dirs(base)?
        .into_iter()
        .map(DirChange::Created)
        .collect();
    check_base(base)?;
    let mut dir = base.to_owned();
    for part in normal_parts(rel)? {
        dir.push(part);
        let meta = match fs::symlink_metadata(&dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                changes.extend(create_dirs(&dir)?.into_iter().map(DirChange::Created));
                continue;
            }
            Err(e) => return Err(what_is_there(&dir, e, "open")),
        };
        match check_key_dir(&dir, &meta) {
            Ok(()) => {}
            Err(FsError::WritableByOthers { path, mode }) => {
                let tightened = mode & !0o077;
                fs::set_permissions(&path, fs::Permissions::from_mode(tightened))
                    .map_err(|e| FsError::io(&path, "chmod", e))?;
                tracing::warn!(
                    dir = %path.display(),
                    from = %format_args!("{mode:04o}"),
                    to = %format_args!("{tightened:04o}"),
                    "key directory was writable by group or others; tightened it"
                );
                changes.push(DirChange::Tightened { path, from: mode });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(changes)
}

fn normal_parts(rel: &Path) -> Result<Vec<&std::ffi::OsStr>, FsError> {
    rel.components()
        .map(|c| match c {
            Component::Normal(s) => Ok(s),
            Component::CurDir => Ok(std::ffi::OsStr::new("")),
            _ => Err(FsError::io(
                rel,
                "check",
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a relative path inside the data directory",
                ),
            )),
        })
        .filter(|p| !matches!(p, Ok(s) if s.is_empty()))
        .collect()
}

fn check_base(base: &Path) -> Result<(), FsError> {
    let meta = fs::metadata(base).map_err(|e| what_is_there(base, e, "open"))?;
    if !meta.is_dir() {
        return Err(FsError::NotADirectory {
            path: base.to_owned(),
            found: FileKind::of(&meta),
        });
    }
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid && meta.uid() != 0 {
        return Err(FsError::NotOwned {
            path: base.to_owned(),
            owner: meta.uid(),
            euid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(FsError::WritableByOthers {
            path: base.to_owned(),
            mode,
        });
    }
    Ok(())
}

fn check_key_dir(dir: &Path, meta: &fs::Metadata) -> Result<(), FsError> {
    let found = FileKind::of(meta);
    if found != FileKind::Directory {
        return Err(FsError::NotADirectory {
            path: dir.to_owned(),
            found,
        });
    }
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(FsError::NotOwned {
            path: dir.to_owned(),
            owner: meta.uid(),
            euid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(FsError::WritableByOthers {
            path: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}
