//! The secret value: bytes in a zeroizing box that never print themselves.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretSlice};
use zeroize::Zeroize;

/// A secret's bytes. Debug and Display print a redaction marker, there is no Serialize, and the
/// bytes are zeroed when the last clone is dropped. Cloning is cheap (a shared handle), so caches
/// can hand out copies without copying the secret.
#[derive(Clone)]
pub struct SecretValue(Arc<SecretSlice<u8>>);

impl SecretValue {
    /// Takes ownership of `bytes`; they are zeroed when the value is dropped. A vector with
    /// spare capacity is not shrunk in place (a reallocation would leave the old buffer behind,
    /// unzeroed): its bytes are copied into an exact-size buffer and the vector is zeroed,
    /// spare capacity included, before it is freed.
    pub fn new(mut bytes: Vec<u8>) -> Self {
        if bytes.len() == bytes.capacity() {
            // `into_boxed_slice` keeps the allocation as it is.
            return Self(Arc::new(SecretSlice::from(bytes)));
        }
        let exact: Box<[u8]> = Box::from(bytes.as_slice());
        bytes.zeroize();
        Self(Arc::new(SecretSlice::from(exact)))
    }

    /// Copies `bytes` into a new value; the caller keeps (and should zero) its own copy.
    pub fn copy_from(bytes: &[u8]) -> Self {
        Self(Arc::new(SecretSlice::from(Box::<[u8]>::from(bytes))))
    }

    /// Takes ownership of a UTF-8 string (see [`SecretValue::new`]).
    pub fn from_string(s: String) -> Self {
        Self::new(s.into_bytes())
    }

    /// The raw bytes. Call this only at a boundary: an SDK call, a file write, output the user
    /// asked for.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// The bytes as UTF-8 text, or `None` when they are not valid UTF-8 (a binary secret).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(self.expose_bytes()).ok()
    }

    /// Length in bytes (not secret: backends check it against their size limits).
    pub fn len(&self) -> usize {
        self.expose_bytes().len()
    }

    /// True when the value holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<String> for SecretValue {
    fn from(s: String) -> Self {
        Self::from_string(s)
    }
}

impl From<&str> for SecretValue {
    fn from(s: &str) -> Self {
        Self::copy_from(s.as_bytes())
    }
}

/// The marker printed instead of a secret.
pub const REDACTED: &str = "[REDACTED]";

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue({REDACTED})")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_bytes() {
        let v = SecretValue::from("hunter2-very-secret");
        assert_eq!(format!("{v:?}"), "SecretValue([REDACTED])");
        assert_eq!(format!("{v}"), "[REDACTED]");
        assert!(!format!("{v:#?}").contains("hunter2"));
    }

    #[test]
    fn clone_shares_the_bytes() {
        let v = SecretValue::from("abc");
        let w = v.clone();
        assert_eq!(w.expose_bytes(), b"abc");
        assert_eq!(v.expose_str(), Some("abc"));
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn vectors_with_spare_capacity_keep_their_bytes() {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(b"spare-capacity-secret");
        let s = SecretValue::new(v);
        assert_eq!(s.expose_bytes(), b"spare-capacity-secret");
        assert_eq!(SecretValue::copy_from(b"abc").expose_bytes(), b"abc");
        assert!(SecretValue::new(Vec::new()).is_empty());
    }

    #[test]
    fn binary_values_are_not_text() {
        let v = SecretValue::new(vec![0xff, 0x00, 0xfe]);
        assert_eq!(v.expose_str(), None);
    }
}
