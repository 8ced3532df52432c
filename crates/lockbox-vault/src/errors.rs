//! The one place Vault's answers and transport failures become lockbox errors.
//!
//! Only the HTTP status and Vault's `errors` strings (shortened) are used, never a response body
//! or a request: the token travels in a header and never reaches an error.

use lockbox_core::{Error, ErrorKind};

use crate::backend::BACKEND;

/// What the failed request was doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Read a secret's data.
    Read,
    /// Write with check-and-set 0 (create only).
    Create,
    /// Write without check-and-set.
    Write,
    /// Read or delete a secret's metadata.
    Delete,
    /// List metadata keys.
    List,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Read => "reading",
            Op::Create => "creating",
            Op::Write => "writing",
            Op::Delete => "deleting",
            Op::List => "listing",
        }
    }
}

/// Vault's `{"errors": [...]}`, joined and cut to 300 characters. Only called on error answers,
/// which never carry a secret value.
pub(crate) fn vault_messages(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let joined = json
        .get("errors")
        .and_then(|e| e.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|m| m.as_str())
                .map(|m| m.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|m| !m.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    joined.chars().take(300).collect()
}

/// Maps an answer with a non-success `status` from `op` on `path` (the location, such as
/// `secret/data/node1/validator-key`) for `secret`.
pub(crate) fn from_status(status: u16, messages: &str, op: Op, secret: &str, path: &str) -> Error {
    let lower = messages.to_ascii_lowercase();
    let kind = match status {
        404 => ErrorKind::NotFound,
        400 if op == Op::Create && lower.contains("check-and-set") => ErrorKind::AlreadyExists,
        401 => ErrorKind::Unauthenticated,
        403 if lower.contains("invalid token") || lower.contains("token is expired") => {
            ErrorKind::Unauthenticated
        }
        403 => ErrorKind::PermissionDenied,
        429 => ErrorKind::Throttled,
        // 412: a performance standby has not caught up yet; 5xx: sealed, standby, failing.
        412 | 500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Backend,
    };
    let why = if messages.is_empty() {
        String::new()
    } else {
        format!(": {messages}")
    };
    let message = match kind {
        ErrorKind::NotFound | ErrorKind::AlreadyExists => format!("Vault path {path}"),
        ErrorKind::PermissionDenied => format!(
            "{} Vault path {path}: the token's policies do not allow it (HTTP 403{why})",
            op.verb()
        ),
        ErrorKind::Unauthenticated => format!(
            "{} Vault path {path}: the token is not valid (HTTP {status}{why})",
            op.verb()
        ),
        ErrorKind::Unavailable if status == 503 => format!(
            "{} Vault path {path}: the server is sealed, in standby or unavailable (HTTP 503{why})",
            op.verb()
        ),
        _ => format!("{} Vault path {path}: HTTP {status}{why}", op.verb()),
    };
    Error::new(kind, BACKEND, message)
        .with_secret(secret)
        .with_code(status.to_string())
}

/// Maps a request that got no usable answer (connection refused, timeout, TLS, body cut off).
pub(crate) fn from_transport(err: &reqwest::Error, op: Op, secret: &str, path: &str) -> Error {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_redirect() {
        "was redirected (lockbox does not follow redirects, so the token never goes elsewhere)"
    } else if err.is_body() || err.is_decode() {
        "the answer was cut off"
    } else {
        "the request failed"
    };
    // reqwest's Display names the URL (no token: it travels in a header); the chain says why.
    let mut chain = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    let detail = if chain.is_empty() {
        String::new()
    } else {
        format!(": {}", chain.join(": "))
    };
    // A certificate the roots do not vouch for will not get better on retry.
    if detail.contains("certificate") {
        return Error::new(
            ErrorKind::InvalidConfig,
            BACKEND,
            format!(
                "{} Vault path {path}: TLS failed{detail} (a private CA goes in {})",
                op.verb(),
                crate::settings::ENV_CACERT
            ),
        )
        .with_secret(secret);
    }
    Error::new(
        ErrorKind::Unavailable,
        BACKEND,
        format!("{} Vault path {path}: {what}{detail}", op.verb()),
    )
    .with_secret(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let cas = "check-and-set parameter did not match the current version";
        let cases = [
            (404, "", Op::Read, ErrorKind::NotFound),
            (400, cas, Op::Create, ErrorKind::AlreadyExists),
            (400, cas, Op::Write, ErrorKind::Backend),
            (
                403,
                "permission denied",
                Op::Read,
                ErrorKind::PermissionDenied,
            ),
            (
                403,
                "2 errors occurred: * permission denied * invalid token",
                Op::Read,
                ErrorKind::Unauthenticated,
            ),
            (401, "", Op::Read, ErrorKind::Unauthenticated),
            (429, "", Op::Read, ErrorKind::Throttled),
            (503, "Vault is sealed", Op::Read, ErrorKind::Unavailable),
            (500, "", Op::List, ErrorKind::Unavailable),
            (412, "", Op::Read, ErrorKind::Unavailable),
            (405, "", Op::Read, ErrorKind::Backend),
        ];
        for (status, msg, op, kind) in cases {
            assert_eq!(
                from_status(status, msg, op, "s", "p").kind(),
                kind,
                "{status} {msg}"
            );
        }
    }

    #[test]
    fn permission_denied_names_the_path_and_never_says_not_found() {
        let e = from_status(
            403,
            "permission denied",
            Op::Read,
            "validator-key",
            "secret/data/n/validator-key",
        );
        let text = e.to_string();
        assert!(text.contains("secret/data/n/validator-key"), "{text}");
        assert!(!text.contains("not found"), "{text}");
        let sealed = from_status(503, "Vault is sealed", Op::Read, "k", "p").to_string();
        assert!(sealed.contains("sealed"), "{sealed}");
        assert!(from_status(503, "", Op::Read, "k", "p").is_retryable());
    }

    #[test]
    fn messages_come_only_from_the_errors_list() {
        assert_eq!(
            vault_messages(br#"{"errors":["permission denied"]}"#),
            "permission denied"
        );
        assert_eq!(vault_messages(br#"{"errors":["a"," b "]}"#), "a; b");
        assert_eq!(
            vault_messages(br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#),
            "1 error occurred: * permission denied"
        );
        assert_eq!(vault_messages(b"<html>secret</html>"), "");
        assert_eq!(vault_messages(br#"{"data":{"k":"v"}}"#), "");
    }
}
