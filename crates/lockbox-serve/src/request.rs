//! What a read asks for, as the cache's key: typed (service, id, version selector,
//! decryption), owned in the cache and borrowed from the query string on the hot path, so a
//! hit builds no key of its own.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use lockbox_cache::Equivalent;

/// One read, owned: the key of the response cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// GetSecretValue.
    Secret {
        /// Name or ARN as asked.
        id: Box<str>,
        /// `versionId`, when given.
        version_id: Option<Box<str>>,
        /// `versionStage`, when given.
        stage: Option<Box<str>>,
    },
    /// GetParameter.
    Parameter {
        /// The parameter's name as asked.
        name: Box<str>,
        /// `version` or `label`, sent after the name (`name:3`, `name:prod`).
        selector: Option<Box<str>>,
        /// `withDecryption`.
        decrypt: bool,
    },
}

/// One read, borrowed from the request (a query value that needed no unescaping is not
/// copied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RequestRef<'a> {
    /// GetSecretValue.
    Secret {
        /// Name or ARN as asked.
        id: Cow<'a, str>,
        /// `versionId`.
        version_id: Option<Cow<'a, str>>,
        /// `versionStage`.
        stage: Option<Cow<'a, str>>,
    },
    /// GetParameter.
    Parameter {
        /// The parameter's name.
        name: Cow<'a, str>,
        /// `version` or `label`.
        selector: Option<Cow<'a, str>>,
        /// `withDecryption`.
        decrypt: bool,
    },
}

/// What both forms are made of, in one shape: (kind, id or name, version id or selector,
/// stage). Hashing and comparing go through it, so a borrowed request finds its owned key.
type Parts<'a> = (u8, &'a str, Option<&'a str>, Option<&'a str>);

impl Request {
    fn parts(&self) -> Parts<'_> {
        match self {
            Self::Secret {
                id,
                version_id,
                stage,
            } => (0, id, version_id.as_deref(), stage.as_deref()),
            Self::Parameter {
                name,
                selector,
                decrypt,
            } => (1 + u8::from(*decrypt), name, selector.as_deref(), None),
        }
    }
}

impl RequestRef<'_> {
    fn parts(&self) -> Parts<'_> {
        match self {
            Self::Secret {
                id,
                version_id,
                stage,
            } => (0, id, version_id.as_deref(), stage.as_deref()),
            Self::Parameter {
                name,
                selector,
                decrypt,
            } => (1 + u8::from(*decrypt), name, selector.as_deref(), None),
        }
    }
}

impl Hash for Request {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.parts().hash(h);
    }
}

impl Hash for RequestRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.parts().hash(h);
    }
}

impl Equivalent<Arc<Request>> for RequestRef<'_> {
    fn equivalent(&self, key: &Arc<Request>) -> bool {
        self.parts() == key.parts()
    }
}

impl RequestRef<'_> {
    /// The owned key (built on a miss only).
    pub(crate) fn to_owned(&self) -> Request {
        let b = |s: &Cow<'_, str>| Box::<str>::from(s.as_ref());
        match self {
            Self::Secret {
                id,
                version_id,
                stage,
            } => Request::Secret {
                id: b(id),
                version_id: version_id.as_ref().map(b),
                stage: stage.as_ref().map(b),
            },
            Self::Parameter {
                name,
                selector,
                decrypt,
            } => Request::Parameter {
                name: b(name),
                selector: selector.as_ref().map(b),
                decrypt: *decrypt,
            },
        }
    }

    /// The id or name, for logs and errors.
    pub(crate) fn target(&self) -> &str {
        match self {
            Self::Secret { id, .. } => id,
            Self::Parameter { name, .. } => name,
        }
    }
}

impl Request {
    /// The id or name, for logs and errors.
    pub(crate) fn target(&self) -> &str {
        match self {
            Self::Secret { id, .. } => id,
            Self::Parameter { name, .. } => name,
        }
    }

    /// A secret's AWSCURRENT (no version id, no stage): what a batch call can read.
    pub(crate) fn current_secret(&self) -> Option<&str> {
        match self {
            Self::Secret {
                id,
                version_id: None,
                stage: None,
            } => Some(id),
            _ => None,
        }
    }

    /// A parameter's name with its selector (`name:3`), as SSM takes it.
    pub(crate) fn parameter_name(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Parameter {
                name,
                selector: None,
                ..
            } => Some(Cow::Borrowed(name)),
            Self::Parameter {
                name,
                selector: Some(s),
                ..
            } => Some(Cow::Owned(format!("{name}:{s}"))),
            Self::Secret { .. } => None,
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.target())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash_of(x: &impl Hash) -> u64 {
        std::hash::RandomState::new().hash_one(x)
    }

    #[test]
    fn borrowed_requests_find_their_owned_key() {
        let state = std::hash::RandomState::new();
        for r in [
            RequestRef::Secret {
                id: "a/b".into(),
                version_id: None,
                stage: Some("AWSPREVIOUS".into()),
            },
            RequestRef::Parameter {
                name: "/p".into(),
                selector: Some("3".into()),
                decrypt: true,
            },
        ] {
            let owned = Arc::new(r.to_owned());
            assert!(r.equivalent(&owned));
            assert_eq!(state.hash_one(&r), state.hash_one(&*owned));
        }
        let plain = RequestRef::Parameter {
            name: "/p".into(),
            selector: None,
            decrypt: false,
        };
        let decrypted = Arc::new(
            RequestRef::Parameter {
                name: "/p".into(),
                selector: None,
                decrypt: true,
            }
            .to_owned(),
        );
        assert!(!plain.equivalent(&decrypted));
        // A stage is not a version id.
        let stage = RequestRef::Secret {
            id: "a".into(),
            version_id: None,
            stage: Some("x".into()),
        };
        let version = Arc::new(
            RequestRef::Secret {
                id: "a".into(),
                version_id: Some("x".into()),
                stage: None,
            }
            .to_owned(),
        );
        assert!(!stage.equivalent(&version));
        let _ = hash_of(&stage);
    }
}
