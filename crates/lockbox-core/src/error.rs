//! The one error type every backend returns.

use std::fmt;
use std::sync::Arc;

/// Result with lockbox's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The secret does not exist (the backend said so; never a guess).
    NotFound,
    /// A create found the secret already there; nothing was overwritten.
    AlreadyExists,
    /// The caller is known but not allowed to do this.
    PermissionDenied,
    /// The caller could not be identified (missing or expired credentials).
    Unauthenticated,
    /// The backend asked us to slow down.
    Throttled,
    /// The backend could not be reached or failed (network, timeout, 5xx).
    Unavailable,
    /// A secret name breaks a naming rule.
    InvalidName,
    /// A configuration or an argument is wrong.
    InvalidConfig,
    /// Stored bytes exist but cannot be decoded or may not be read as they are.
    Corrupt,
    /// The backend cannot do this.
    Unsupported,
    /// Anything else the backend reported.
    Backend,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::NotFound => "not found",
            Self::AlreadyExists => "already exists",
            Self::PermissionDenied => "permission denied",
            Self::Unauthenticated => "not authenticated",
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
            Self::InvalidName => "invalid name",
            Self::InvalidConfig => "invalid configuration",
            Self::Corrupt => "corrupt",
            Self::Unsupported => "unsupported",
            Self::Backend => "backend error",
        }
    }
}

/// A lockbox error: its kind, the backend and secret it concerns, and a message that says what
/// rule was broken or what the backend answered. It never carries a secret value.
///
/// One struct with a kind (rather than an enum with the same fields in every variant) keeps the
/// context uniform and lets every backend map its errors in one place.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    backend: &'static str,
    secret: Option<String>,
    message: String,
    code: Option<String>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error of `kind` from `backend` with a message. The message must not contain a
    /// secret value.
    pub fn new(kind: ErrorKind, backend: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            backend,
            secret: None,
            message: message.into(),
            code: None,
            source: None,
        }
    }

    /// Names the secret this error is about.
    pub fn with_secret(mut self, name: impl fmt::Display) -> Self {
        self.secret = Some(name.to_string());
        self
    }

    /// Replaces the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Records the backend's own error code (such as AWS's `ResourceNotFoundException`), so
    /// callers that follow another tool's rules can match on it without parsing messages.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        let code = code.into();
        self.code = (!code.is_empty()).then_some(code);
        self
    }

    /// Keeps the underlying error. Only attach sources whose Display cannot hold a secret value.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// `NotFound` for `name` in `backend`.
    pub fn not_found(backend: &'static str, name: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, backend, "").with_secret(name)
    }

    /// `AlreadyExists` for `name` in `backend`.
    pub fn already_exists(backend: &'static str, name: impl fmt::Display) -> Self {
        Self::new(ErrorKind::AlreadyExists, backend, "").with_secret(name)
    }

    /// An error in lockbox's own checks of its input (a config, a name, a manifest, a stored
    /// value's encoding) that no backend reported: its [`backend`](Self::backend) is empty and
    /// its Display starts with the kind.
    pub fn input(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, "", message)
    }

    /// `InvalidName`: `name` breaks `rule`.
    pub fn invalid_name(name: &str, rule: impl Into<String>) -> Self {
        Self::input(ErrorKind::InvalidName, rule).with_secret(format!("{name:?}"))
    }

    /// `InvalidConfig`: `field` breaks `rule`.
    pub fn invalid_config(field: impl fmt::Display, rule: impl fmt::Display) -> Self {
        Self::input(ErrorKind::InvalidConfig, format!("{field}: {rule}"))
    }

    /// `Unsupported` from `backend`: `version` of secret `name` selects a kind of version the
    /// backend does not keep. `has` says what it keeps (such as "SSM parameters have version
    /// numbers and labels"); the message reads `<has>, not <kind of version> (<version>)`.
    pub fn unsupported_version(
        backend: &'static str,
        name: impl fmt::Display,
        version: &crate::Version,
        has: &str,
    ) -> Self {
        use crate::Version;
        let (kind, value) = match version {
            Version::Current => ("the current version", None),
            Version::Number(n) => ("version numbers", Some(n.to_string())),
            Version::Label(label) => ("labels", Some(format!("{label:?}"))),
            Version::Id(id) => ("version ids", Some(format!("{id:?}"))),
        };
        let message = match value {
            Some(value) => format!("{has}, not {kind} ({value})"),
            None => format!("{has}, not {kind}"),
        };
        Self::new(ErrorKind::Unsupported, backend, message).with_secret(name)
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The backend that reported the error (`local`, `memory`, `aws-ssm`, ...); empty for an
    /// [`input`](Self::input) error, which no backend reported.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The secret the error concerns, when there is one.
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    /// The backend's own error code, when it gave one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The message alone, without kind, backend or secret.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True for errors a retry may cure: throttling and unavailability. Never for NotFound,
    /// PermissionDenied or anything that will fail the same way again.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Throttled | ErrorKind::Unavailable)
    }

    /// True when the backend said the secret does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.backend.is_empty() {
            write!(f, "{}: ", self.backend)?;
        }
        match &self.secret {
            Some(name) => write!(f, "secret {name}: {}", self.kind.describe())?,
            None => write!(f, "{}", self.kind.describe())?,
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("backend", &self.backend)
            .field("secret", &self.secret)
            .field("message", &self.message)
            .field("code", &self.code)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_backend_secret_and_rule() {
        let e = Error::not_found("local", "network-key");
        assert_eq!(e.to_string(), "local: secret network-key: not found");
        let e = Error::new(ErrorKind::Corrupt, "local", "expected 64 hex characters")
            .with_secret("validator-key");
        assert_eq!(
            e.to_string(),
            "local: secret validator-key: corrupt: expected 64 hex characters"
        );
        let e = Error::invalid_config("extra.region", "is required for type aws-ssm");
        assert_eq!(
            e.to_string(),
            "invalid configuration: extra.region: is required for type aws-ssm"
        );
        assert_eq!(
            e.backend(),
            "",
            "no pseudo backend for lockbox's own checks"
        );
    }

    #[test]
    fn unsupported_versions_say_what_the_backend_keeps() {
        let e = Error::unsupported_version(
            "aws-ssm",
            "k",
            &crate::Version::Id("abc".into()),
            "SSM parameters have version numbers and labels",
        );
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(e.secret(), Some("k"));
        assert_eq!(
            e.to_string(),
            "aws-ssm: secret k: unsupported: SSM parameters have version numbers and labels, \
             not version ids (\"abc\")"
        );
        let e = Error::unsupported_version(
            "aws-secretsmanager",
            "k",
            &crate::Version::Number(3),
            "Secrets Manager versions have ids and staging labels",
        );
        assert_eq!(
            e.message(),
            "Secrets Manager versions have ids and staging labels, not version numbers (3)"
        );
    }

    #[test]
    fn only_transient_kinds_are_retryable() {
        for (kind, retry) in [
            (ErrorKind::Throttled, true),
            (ErrorKind::Unavailable, true),
            (ErrorKind::NotFound, false),
            (ErrorKind::PermissionDenied, false),
            (ErrorKind::Unauthenticated, false),
            (ErrorKind::AlreadyExists, false),
            (ErrorKind::Backend, false),
        ] {
            assert_eq!(Error::new(kind, "x", "").is_retryable(), retry, "{kind:?}");
        }
    }
}
