//! Opening and reading files without trusting the path: no blocking on FIFOs, no reading
//! past a size cap, and (for secrets) no symbolic link, no other user's file, no file others
//! can access.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::error::{FileKind, FsError};

/// The most bytes of a key file (node key, store key) lockbox reads: 64 KiB. Keys are tens of
/// bytes; anything larger is refused before reading.
pub const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// The most bytes of a config file or manifest lockbox reads: 4 MiB.
pub const MAX_INPUT_FILE_LEN: u64 = 4 * 1024 * 1024;

/// The most bytes of a sealed store lockbox reads: 1 GiB, room for 8,192 secrets of Secrets
/// Manager's largest value (64 KiB) with two versions each. A larger store is refused before
/// reading (a junk file of gigabytes is not read into memory first).
pub const MAX_STORE_FILE_LEN: u64 = 1 << 30;

/// A file opened by [`open_trusted`] or [`open_regular`]: its descriptor has been checked
/// (`fstat`, not the path), and it is at most the cap given.
#[derive(Debug)]
pub struct CheckedFile {
    file: File,
    path: PathBuf,
    meta: Metadata,
    max_len: u64,
}

impl CheckedFile {
    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The metadata of the open descriptor (owner, mode, size).
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Reads the whole file in one allocation of its size (plus one byte, so a read to the
    /// end never reallocates, which would leave a copy in freed memory). A file that grew past
    /// the cap since it was opened is [`FsError::TooLarge`].
    pub fn read_all(self) -> Result<Vec<u8>, FsError> {
        let len = self.meta.len();
        // Fits: `len <= max_len`, and the caps are far below `usize::MAX`.
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
        let read = (&self.file)
            .take(self.max_len.saturating_add(1))
            .read_to_end(&mut bytes);
        if let Err(e) = read {
            return Err(FsError::io(&self.path, "read", e));
        }
        if bytes.len() as u64 > self.max_len {
            return Err(FsError::TooLarge {
                path: self.path,
                len: bytes.len() as u64,
                max: self.max_len,
            });
        }
        Ok(bytes)
    }

    /// The open file.
    pub fn into_file(self) -> File {
        self.file
    }
}

/// Opens a file that holds a secret (a key file, a sealed store, a store key), trusting it
/// only if it is ours: opened with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` (a symbolic link is
/// refused, a FIFO does not block), then the descriptor must be a regular file, owned by the
/// effective user, with no group or other permission bit, and at most `max_len` bytes. Each
/// refusal says what is there and, where one command fixes it, names it (see [`FsError`]).
pub fn open_trusted(path: &Path, max_len: u64) -> Result<CheckedFile, FsError> {
    let file = open_nonblocking(path, OFlags::NOFOLLOW)?;
    let meta = file.metadata().map_err(|e| FsError::io(path, "stat", e))?;
    check_regular(path, &meta, max_len)?;
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(FsError::NotOwned {
            path: path.to_owned(),
            owner: meta.uid(),
            euid,
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(FsError::OpenToOthers {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(CheckedFile {
        file,
        path: path.to_owned(),
        meta,
        max_len,
    })
}

/// [`open_trusted`] and [`CheckedFile::read_all`].
pub fn read_trusted(path: &Path, max_len: u64) -> Result<Vec<u8>, FsError> {
    open_trusted(path, max_len)?.read_all()
}

/// Who besides its owner may read a file [`open_protected`] opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readers {
    /// Anyone may read it (it holds rules, not secrets): group and others may not write.
    Anyone,
    /// Only its owner (it holds a secret, such as a token): no group or other bit at all.
    OwnerOnly,
}

/// Opens a file lockbox takes orders from without holding its own secret in it (a consumers
/// file, an SSRF token file), trusting it as a key file: its directory must be owned by the
/// effective user or root and not writable by group or others (else they could replace the
/// file); the file is opened with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` (a symbolic link is
/// refused, a FIFO does not block) and must be a regular file owned by the effective user or
/// root, not writable by group or others (with [`Readers::OwnerOnly`], no group or other bit
/// at all), at most `max_len` bytes. Each refusal names the path and the fix.
pub fn open_protected(path: &Path, max_len: u64, readers: Readers) -> Result<CheckedFile, FsError> {
    let euid = rustix::process::geteuid().as_raw();
    let dir = crate::dirs::parent_of(path);
    let dir_meta = std::fs::metadata(dir).map_err(|e| what_is_there(dir, e, "open"))?;
    if dir_meta.uid() != euid && dir_meta.uid() != 0 {
        return Err(FsError::NotOwned {
            path: dir.to_owned(),
            owner: dir_meta.uid(),
            euid,
        });
    }
    if dir_meta.mode() & 0o022 != 0 {
        return Err(FsError::WritableByOthers {
            path: dir.to_owned(),
            mode: dir_meta.mode() & 0o7777,
        });
    }
    let file = open_nonblocking(path, OFlags::NOFOLLOW)?;
    let meta = file.metadata().map_err(|e| FsError::io(path, "stat", e))?;
    check_regular(path, &meta, max_len)?;
    if meta.uid() != euid && meta.uid() != 0 {
        return Err(FsError::NotOwned {
            path: path.to_owned(),
            owner: meta.uid(),
            euid,
        });
    }
    let mode = meta.mode() & 0o777;
    if readers == Readers::OwnerOnly && mode & 0o077 != 0 {
        return Err(FsError::OpenToOthers {
            path: path.to_owned(),
            mode,
        });
    }
    if mode & 0o022 != 0 {
        return Err(FsError::FileWritableByOthers {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(CheckedFile {
        file,
        path: path.to_owned(),
        meta,
        max_len,
    })
}

/// [`open_protected`] and [`CheckedFile::read_all`].
pub fn read_protected(path: &Path, max_len: u64, readers: Readers) -> Result<Vec<u8>, FsError> {
    open_protected(path, max_len, readers)?.read_all()
}

/// Opens a file a user points lockbox at (a config file, a manifest): symbolic links are
/// followed and any owner and mode is accepted, but the open does not block (a FIFO is
/// refused at once), the descriptor must be a regular file, and at most `max_len` bytes.
pub fn open_regular(path: &Path, max_len: u64) -> Result<CheckedFile, FsError> {
    let file = open_nonblocking(path, OFlags::empty())?;
    let meta = file.metadata().map_err(|e| FsError::io(path, "stat", e))?;
    check_regular(path, &meta, max_len)?;
    Ok(CheckedFile {
        file,
        path: path.to_owned(),
        meta,
        max_len,
    })
}

/// [`open_regular`] and [`CheckedFile::read_all`].
pub fn read_regular(path: &Path, max_len: u64) -> Result<Vec<u8>, FsError> {
    open_regular(path, max_len)?.read_all()
}

fn open_nonblocking(path: &Path, extra: OFlags) -> Result<File, FsError> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | extra;
    match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => Ok(File::from(fd)),
        Err(errno) => Err(what_is_there(path, std::io::Error::from(errno), "open")),
    }
}

fn check_regular(path: &Path, meta: &Metadata, max_len: u64) -> Result<(), FsError> {
    let found = FileKind::of(meta);
    if found != FileKind::File {
        return Err(FsError::NotAFile {
            path: path.to_owned(),
            found,
        });
    }
    if meta.len() > max_len {
        return Err(FsError::TooLarge {
            path: path.to_owned(),
            len: meta.len(),
            max: max_len,
        });
    }
    Ok(())
}

/// Turns an error from opening or creating `path` into one that says what is there: a
/// symbolic link (`ELOOP` under `O_NOFOLLOW`), a socket (`ENXIO`), a directory, or a file
/// where one of the parent directories should be (`ENOTDIR`).
pub(crate) fn what_is_there(path: &Path, e: std::io::Error, action: &'static str) -> FsError {
    use std::io::ErrorKind as K;
    if e.kind() == K::NotADirectory {
        // Which parent is not a directory?
        for parent in path.ancestors().skip(1) {
            if let Ok(meta) = std::fs::symlink_metadata(parent) {
                let found = FileKind::of(&meta);
                if found != FileKind::Directory {
                    return FsError::NotADirectory {
                        path: parent.to_owned(),
                        found,
                    };
                }
            }
        }
        return FsError::io(path, action, e);
    }
    if matches!(e.kind(), K::NotFound | K::PermissionDenied) {
        return FsError::io(path, action, e);
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if FileKind::of(&meta) != FileKind::File => FsError::NotAFile {
            path: path.to_owned(),
            found: FileKind::of(&meta),
        },
        _ => FsError::io(path, action, e),
    }
}
