//! The secret value: bytes in a zeroizing box that never print themselves.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretSlice};

/// A secret's bytes. Debug and Display print a redaction marker, there is no Serialize, and the
/// bytes are zeroed when the last clone is dropped. Cloning is cheap (a shared handle), so caches
/// can hand out copies without copying the secret.
#[derive(Clone)]
pub struct SecretValue(Arc<SecretSlice<u8>>);

impl SecretValue {
    /// Takes ownership of `bytes`; they are zeroed when the value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Arc::new(SecretSlice::from(bytes)))
    }

    /// Takes ownership of a UTF-8 string.
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
        Self::new(s.as_bytes().to_vec())
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
    fn binary_values_are_not_text() {
        let v = SecretValue::new(vec![0xff, 0x00, 0xfe]);
        assert_eq!(v.expose_str(), None);
    }
}
