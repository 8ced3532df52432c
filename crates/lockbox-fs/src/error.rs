//! Why a file or directory was refused: what is there, and the command that fixes it.

use std::fmt;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use lockbox_core::ErrorKind;

/// What kind of file system object is at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (not followed).
    Symlink,
    /// A FIFO (named pipe).
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// Anything else.
    Other,
}

impl FileKind {
    /// The kind of the object `meta` describes (from `lstat` or `fstat`).
    pub fn of(meta: &Metadata) -> Self {
        let t = meta.file_type();
        if t.is_symlink() {
            Self::Symlink
        } else if t.is_file() {
            Self::File
        } else if t.is_dir() {
            Self::Directory
        } else if t.is_fifo() {
            Self::Fifo
        } else if t.is_socket() {
            Self::Socket
        } else if t.is_char_device() {
            Self::CharDevice
        } else if t.is_block_device() {
            Self::BlockDevice
        } else {
            Self::Other
        }
    }
}

impl fmt::Display for FileKind {
    /// `a regular file`, `a directory`, `a FIFO (named pipe)`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::File => "a regular file",
            Self::Directory => "a directory",
            Self::Symlink => "a symbolic link",
            Self::Fifo => "a FIFO (named pipe)",
            Self::Socket => "a socket",
            Self::CharDevice => "a character device",
            Self::BlockDevice => "a block device",
            Self::Other => "a special file",
        })
    }
}

/// A file or directory lockbox refuses to use, or an I/O error on it. `Display` names the
/// path and what is there and, where one command fixes it, ends with `(fix: <command>)`;
/// [`FsError::fix`] returns that command alone.
#[derive(Debug)]
#[non_exhaustive]
pub enum FsError {
    /// An I/O error (`NotFound`, `PermissionDenied`, ...) while doing `action` on `path`.
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done: `open`, `read`, `create directory`, ...
        action: &'static str,
        /// The error.
        source: io::Error,
    },
    /// Something other than a regular file where a file should be (a directory, a FIFO, a
    /// symbolic link lockbox does not follow, ...).
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What is there.
        found: FileKind,
    },
    /// Something other than a directory where a directory should be (a regular file, a
    /// symbolic link lockbox does not follow, ...).
    NotADirectory {
        /// The path.
        path: PathBuf,
        /// What is there.
        found: FileKind,
    },
    /// A file or directory owned by another user.
    NotOwned {
        /// The path.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// This process's effective uid.
        euid: u32,
    },
    /// A file that group or others can access.
    OpenToOthers {
        /// The path.
        path: PathBuf,
        /// Its permission bits (`0o644`, ...).
        mode: u32,
    },
    /// A directory that group or others can write to (so they could replace what is in it).
    WritableByOthers {
        /// The path.
        path: PathBuf,
        /// Its permission bits (`0o777`, ...).
        mode: u32,
    },
    /// A file that group or others can write to (so they could change what lockbox obeys).
    FileWritableByOthers {
        /// The path.
        path: PathBuf,
        /// Its permission bits (`0o664`, ...).
        mode: u32,
    },
    /// A file larger than what may be read there.
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size in bytes (at least; a file read to its cap may be larger).
        len: u64,
        /// The most bytes allowed.
        max: u64,
    },
}

impl FsError {
    pub(crate) fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            action,
            source,
        }
    }

    /// The path refused.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::NotAFile { path, .. }
            | Self::NotADirectory { path, .. }
            | Self::NotOwned { path, .. }
            | Self::OpenToOthers { path, .. }
            | Self::WritableByOthers { path, .. }
            | Self::FileWritableByOthers { path, .. }
            | Self::TooLarge { path, .. } => path,
        }
    }

    /// Nothing is at the path (or a parent directory is missing).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// The command that fixes it, when one does: `chmod 600 <path>` (a file others can
    /// access), `chmod go-w <path>` (a directory or file others can write to), `chown <uid> <path>`
    /// (another user's file or directory).
    pub fn fix(&self) -> Option<String> {
        match self {
            Self::OpenToOthers { path, .. } => Some(format!("chmod 600 {}", path.display())),
            Self::WritableByOthers { path, .. } | Self::FileWritableByOthers { path, .. } => {
                Some(format!("chmod go-w {}", path.display()))
            }
            Self::NotOwned { path, euid, .. } => Some(format!("chown {euid} {}", path.display())),
            _ => None,
        }
    }

    /// lockbox's error kind for it: `NotFound` and `PermissionDenied` for those I/O errors;
    /// `PermissionDenied` for a file or directory that is not ours or is open to others (and
    /// for a symbolic link where none is followed); `InvalidConfig` for the wrong kind of
    /// object or a file over its size cap; `Backend` for other I/O errors.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => ErrorKind::NotFound,
                io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Backend,
            },
            Self::NotAFile {
                found: FileKind::Symlink,
                ..
            }
            | Self::NotADirectory {
                found: FileKind::Symlink,
                ..
            }
            | Self::NotOwned { .. }
            | Self::OpenToOthers { .. }
            | Self::WritableByOthers { .. }
            | Self::FileWritableByOthers { .. } => ErrorKind::PermissionDenied,
            Self::NotAFile { .. } | Self::NotADirectory { .. } | Self::TooLarge { .. } => {
                ErrorKind::InvalidConfig
            }
        }
    }

    /// The closest `io::ErrorKind`.
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Self::Io { source, .. } => source.kind(),
            Self::NotAFile {
                found: FileKind::Directory,
                ..
            } => io::ErrorKind::IsADirectory,
            Self::NotADirectory { .. } => io::ErrorKind::NotADirectory,
            Self::NotAFile { .. } | Self::TooLarge { .. } => io::ErrorKind::InvalidData,
            Self::NotOwned { .. }
            | Self::OpenToOthers { .. }
            | Self::WritableByOthers { .. }
            | Self::FileWritableByOthers { .. } => io::ErrorKind::PermissionDenied,
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io {
                path,
                action,
                source,
            } => write!(f, "{action} {}: {source}", path.display()),
            Self::NotAFile {
                path,
                found: FileKind::Symlink,
            } => write!(
                f,
                "{} is a symbolic link; refusing to follow it (put the file itself there)",
                path.display()
            ),
            Self::NotAFile { path, found } => write!(
                f,
                "{} is {found}, not a regular file; refusing to read it",
                path.display()
            ),
            Self::NotADirectory {
                path,
                found: FileKind::Symlink,
            } => write!(
                f,
                "{} is a symbolic link where a directory should be; refusing to follow it \
                 (put the directory itself there)",
                path.display()
            ),
            Self::NotADirectory { path, found } => write!(
                f,
                "{} is {found} where a directory should be",
                path.display()
            ),
            Self::NotOwned { path, owner, euid } => write!(
                f,
                "{} is owned by uid {owner}, not by this user (uid {euid}); refusing to trust \
                 it (fix: chown {euid} {})",
                path.display(),
                path.display()
            ),
            Self::OpenToOthers { path, mode } => write!(
                f,
                "{} has mode {mode:04o}, so group or others can access it (fix: chmod 600 {})",
                path.display(),
                path.display()
            ),
            Self::WritableByOthers { path, mode } => write!(
                f,
                "directory {} has mode {mode:04o}, so group or others can replace what is in \
                 it (fix: chmod go-w {})",
                path.display(),
                path.display()
            ),
            Self::FileWritableByOthers { path, mode } => write!(
                f,
                "{} has mode {mode:04o}, so group or others can change it (fix: chmod go-w {})",
                path.display(),
                path.display()
            ),
            Self::TooLarge { path, len, max } => write!(
                f,
                "{} is {len} bytes, more than the {max} bytes allowed there; refusing to read it",
                path.display()
            ),
        }
    }
}

impl std::error::Error for FsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<FsError> for io::Error {
    /// Keeps [`FsError::io_kind`]; the message is the `Display` text.
    fn from(e: FsError) -> Self {
        io::Error::new(e.io_kind(), e.to_string())
    }
}
