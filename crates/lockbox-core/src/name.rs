//! Validated secret names.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The longest name accepted, in bytes (Secrets Manager's limit; every backend can hold it).
pub const MAX_NAME_LEN: usize = 512;

/// A secret's name inside a backend, such as `validator-key` or `app/db-password`.
///
/// Valid names are 1 to 512 bytes of `A-Z a-z 0-9 _ . - + = @` and `/`, where `/` separates
/// non-empty segments (no leading, trailing or doubled `/`) and no segment is `.` or `..`.
/// These rules keep a name safe to use as a relative file path and as part of an AWS name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(String);

impl SecretName {
    /// Validates `name`, or says which rule it breaks.
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        match broken_rule(&name) {
            None => Ok(Self(name)),
            Some(rule) => Err(Error::invalid_name(&name, rule)),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name's `/`-separated segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

/// Returns the first naming rule `name` breaks, if any.
fn broken_rule(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a secret name must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "a secret name must be at most {MAX_NAME_LEN} bytes (this one has {})",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| !is_allowed(*c)) {
        return Some(format!(
            "character {c:?} is not allowed (use A-Z a-z 0-9 _ . - + = @ and / between segments)"
        ));
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Some("a secret name must not start or end with '/'".into());
    }
    if name.contains("//") {
        return Some("a secret name must not contain '//'".into());
    }
    if name.split('/').any(|s| s == "." || s == "..") {
        return Some("a segment of a secret name must not be '.' or '..'".into());
    }
    None
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '+' | '=' | '@' | '/')
}

impl FromStr for SecretName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl TryFrom<&str> for SecretName {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl AsRef<str> for SecretName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretName({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use proptest::prelude::*;

    #[test]
    fn accepts_node_secret_names() {
        for n in [
            "validator-key",
            "validator-bls-key",
            "network-key",
            "a/b.c/d_e",
            "x@y=z+1",
        ] {
            assert_eq!(SecretName::new(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn rejects_with_the_rule() {
        let cases = [
            ("", "empty"),
            ("/abs", "start or end"),
            ("trail/", "start or end"),
            ("a//b", "'//'"),
            ("a/../b", "'.' or '..'"),
            ("..", "'.' or '..'"),
            ("has space", "not allowed"),
            ("ünï", "not allowed"),
        ];
        for (name, rule) in cases {
            let err = SecretName::new(name).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidName, "{name}");
            assert!(err.to_string().contains(rule), "{name}: {err}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(
            SecretName::new(long)
                .unwrap_err()
                .to_string()
                .contains("at most 512")
        );
    }

    fn segment() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.+=@-]{1,12}".prop_filter("dot segments", |s| s != "." && s != "..")
    }

    proptest! {
        #[test]
        fn joined_valid_segments_are_valid(segs in prop::collection::vec(segment(), 1..6)) {
            let name = segs.join("/");
            let parsed = SecretName::new(name.clone()).unwrap();
            prop_assert_eq!(parsed.as_str(), name.as_str());
            prop_assert_eq!(parsed.segments().count(), segs.len());
        }

        #[test]
        fn valid_names_are_safe_relative_paths(s in "\\PC{0,40}") {
            if let Ok(n) = SecretName::new(s) {
                let p = std::path::Path::new(n.as_str());
                prop_assert!(p.is_relative());
                prop_assert!(p.components().all(|c| matches!(c, std::path::Component::Normal(_))));
            }
        }
    }
}
