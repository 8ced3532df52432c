//! The store key: 256 bits in an owner-only file, separate from the store.
//!
//! The file holds 64 lowercase hex characters (an optional trailing newline is accepted, so
//! `openssl rand -hex 32 > FILE; chmod 600 FILE` makes one). `lockbox sync` creates it on first
//! use with mode 0600 from the operating system's random source. A key file that group or others
//! can access is refused, for reading and for syncing.

use std::path::{Path, PathBuf};

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{KeyInit, OsRng};
use lockbox_core::{Error, ErrorKind, PutMode, Result};
use zeroize::Zeroizing;

use crate::BACKEND;

/// Key length in bytes.
pub const KEY_LEN: usize = 32;

/// Suffix added to the store directory's name to make the default key file: the key for store
/// `/var/lib/lockbox/resources` is `/var/lib/lockbox/resources.key`, outside the store
/// directory, so copying or backing up the store does not carry the key along.
pub const KEY_FILE_SUFFIX: &str = ".key";

/// The default key file of the store in `store_dir`: a sibling file named after the directory
/// with [`KEY_FILE_SUFFIX`] (`DIR.key`). A store path without a final name (`.`, `/`) is
/// resolved first; if that fails the caller must name a key file.
pub fn default_key_file(store_dir: &Path) -> Result<PathBuf> {
    store_sibling(store_dir, KEY_FILE_SUFFIX, "key file (--key-file)")
}

/// `<store dir><suffix>`, a sibling of the store directory; `what` names the file in errors.
pub(crate) fn store_sibling(store_dir: &Path, suffix: &str, what: &str) -> Result<PathBuf> {
    let resolved;
    let dir = if store_dir.file_name().is_some() {
        store_dir
    } else {
        resolved = std::fs::canonicalize(store_dir).map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfig,
                BACKEND,
                format!(
                    "cannot derive the default {what} from store directory {}: {e}; name \
                     the store directory by its path",
                    store_dir.display()
                ),
            )
        })?;
        &resolved
    };
    match dir.file_name() {
        Some(name) => {
            let mut file = name.to_os_string();
            file.push(suffix);
            Ok(dir.with_file_name(file))
        }
        None => Err(Error::new(
            ErrorKind::InvalidConfig,
            BACKEND,
            format!(
                "store directory {} has no name to derive the {what} from",
                store_dir.display()
            ),
        )),
    }
}

/// A 256-bit store key, zeroed when dropped. Its Debug prints no key material.
pub struct StoreKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    path: PathBuf,
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreKey")
            .field("path", &self.path)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl StoreKey {
    /// Loads the key at `path`, refusing a file that group or others can access and content
    /// that is not 64 hex characters.
    pub fn load(path: &Path) -> Result<Self> {
        // Trusted only if ours: no symlink, a regular file owned by this user with no group
        // or other bits, under the cap, opened without blocking (lockbox-fs).
        let text = Zeroizing::new(
            lockbox_fs::read_trusted(path, lockbox_fs::MAX_KEY_FILE_LEN).map_err(|e| {
                let message = match &e {
                    lockbox_fs::FsError::Io { source, action, .. } => {
                        format!("key file {}: cannot {action}: {source}", path.display())
                    }
                    lockbox_fs::FsError::OpenToOthers { mode, .. } => format!(
                        "key file {} has mode {mode:04o}, so group or others can access it; \
                         refusing to use a store key others can read (fix: chmod 600 {})",
                        path.display(),
                        path.display()
                    ),
                    other => format!("key file: {other}"),
                };
                Error::new(e.kind(), BACKEND, message)
            })?,
        );
        let body: &[u8] = text.strip_suffix(b"\n").unwrap_or(&text);
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        if body.len() != 2 * KEY_LEN || hex::decode_to_slice(body, &mut bytes[..]).is_err() {
            return Err(Error::new(
                ErrorKind::Corrupt,
                BACKEND,
                format!(
                    "key file {} must hold exactly {} hex characters (a 256-bit key), \
                     optionally followed by a newline",
                    path.display(),
                    2 * KEY_LEN
                ),
            ));
        }
        Ok(Self {
            bytes,
            path: path.to_owned(),
        })
    }

    /// Creates a new random key at `path` (mode 0600, parent directories 0700), never
    /// replacing an existing file: if one appeared meanwhile, it is loaded instead.
    pub fn create(path: &Path) -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(&mut bytes[..]);
        let text = Zeroizing::new(hex::encode(&bytes[..]));
        match lockbox_fs::write_file_atomic(path, text.as_bytes(), PutMode::Create) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "created store key file");
                Ok(Self {
                    bytes,
                    path: path.to_owned(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(Error::new(
                match e.kind() {
                    std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                    _ => ErrorKind::Backend,
                },
                BACKEND,
                format!("cannot create key file {}: {e}", path.display()),
            )),
        }
    }

    /// A key from raw bytes (tests, keys kept elsewhere). `path` is only used in messages.
    pub fn from_bytes(bytes: [u8; KEY_LEN], path: impl Into<PathBuf>) -> Self {
        let mut b = Zeroizing::new([0u8; KEY_LEN]);
        b.copy_from_slice(&bytes);
        Self {
            bytes: b,
            path: path.into(),
        }
    }

    /// Where the key was loaded from (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The AEAD instance for this key; it zeroes its copy of the key when dropped.
    pub(crate) fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new_from_slice(&self.bytes[..]).expect("a 32-byte key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn create_then_load_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("deep/store.key");
        let k = StoreKey::create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 64);
        assert!(text.chars().all(|c| c.is_ascii_hexdigit()));
        let l = StoreKey::load(&path).unwrap();
        assert_eq!(*k.bytes, *l.bytes);
        // A second create keeps the existing key.
        let again = StoreKey::create(&path).unwrap();
        assert_eq!(*again.bytes, *k.bytes);
        assert!(!format!("{k:?}").contains(&text));
    }

    #[test]
    fn refuses_a_key_others_can_read_with_a_fix_hint() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k");
        StoreKey::create(&path).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let e = StoreKey::load(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PermissionDenied);
            let msg = e.to_string();
            assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
            assert!(msg.contains("chmod 600"), "{msg}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        StoreKey::load(&path).unwrap();
    }

    #[test]
    fn accepts_a_trailing_newline_and_refuses_bad_content() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k");
        let write = |text: &str| {
            let _ = fs::remove_file(&path);
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        };
        write(&format!("{}\n", "ab".repeat(32)));
        StoreKey::load(&path).unwrap();
        for bad in [
            "ab".repeat(31),
            "ab".repeat(33),
            format!("{}zz", "ab".repeat(31)),
            format!("{}\n\n", "ab".repeat(32)),
            String::new(),
        ] {
            write(&bad);
            let e = StoreKey::load(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{bad:?}");
            assert!(e.to_string().contains("64 hex characters"), "{e}");
        }
        let e = StoreKey::load(&tmp.path().join("missing")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = StoreKey::load(tmp.path()).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Fuzzing: a key file with arbitrary content loads only when it is 64 hex characters
        /// (and a newline); anything else is Corrupt, never a panic.
        #[test]
        fn arbitrary_key_files_never_panic(bytes in proptest::prop_oneof![
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..140),
            proptest::strategy::Strategy::prop_map("[0-9a-fA-F]{62,66}\n{0,2}", String::into_bytes),
        ]) {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("k");
            fs::write(&path, &bytes).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            match StoreKey::load(&path) {
                Ok(_) => {
                    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
                    proptest::prop_assert!(body.len() == 64 && body.iter().all(u8::is_ascii_hexdigit));
                }
                Err(e) => proptest::prop_assert_eq!(e.kind(), ErrorKind::Corrupt),
            }
        }
    }

    #[test]
    fn default_key_file_is_a_sibling_of_the_store() {
        assert_eq!(
            default_key_file(Path::new("/var/lib/lockbox/resources")).unwrap(),
            Path::new("/var/lib/lockbox/resources.key")
        );
        assert_eq!(
            default_key_file(Path::new("store/")).unwrap(),
            Path::new("store.key")
        );
        let here = std::env::current_dir().unwrap();
        let k = default_key_file(Path::new(".")).unwrap();
        assert_eq!(k.parent(), here.parent());
        assert!(default_key_file(Path::new("/")).is_err());
    }
}
