//! Error codes every AWS JSON service shares, and what a bare HTTP status means.

use lockbox_core::ErrorKind;

/// The kind an HTTP status alone says: 401 unauthenticated, 403 denied, 429 throttled, 5xx
/// unavailable, anything else a backend error.
pub fn status_kind(status: Option<u16>) -> ErrorKind {
    match status {
        Some(401) => ErrorKind::Unauthenticated,
        Some(403) => ErrorKind::PermissionDenied,
        Some(429) => ErrorKind::Throttled,
        Some(s) if s >= 500 => ErrorKind::Unavailable,
        _ => ErrorKind::Backend,
    }
}

/// The kind of the error codes every AWS service answers with (access, throttling,
/// credentials, internal failures); `None` for any other code.
pub fn common_kind(code: &str) -> Option<ErrorKind> {
    Some(match code {
        "AccessDeniedException" | "AccessDenied" | "AuthorizationError" => {
            ErrorKind::PermissionDenied
        }
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => ErrorKind::Throttled,
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => ErrorKind::Unauthenticated,
        "InternalFailure" | "InternalServerError" | "ServiceUnavailable" => ErrorKind::Unavailable,
        _ => return None,
    })
}

/// The kind of a service error: by the service's own table of codes, then by
/// [`common_kind`], then by AWS's message ("not authorized"), then by [`status_kind`].
pub fn service_kind(
    code: &str,
    message: &str,
    status: Option<u16>,
    service_codes: impl Fn(&str) -> Option<ErrorKind>,
) -> ErrorKind {
    service_codes(code)
        .or_else(|| common_kind(code))
        .unwrap_or_else(|| {
            if message.contains("not authorized") {
                ErrorKind::PermissionDenied
            } else {
                status_kind(status)
            }
        })
}

/// What an error message says about a service error: HTTP status, code and AWS's message,
/// as far as there are any. Never the response body.
pub fn service_detail(code: &str, message: &str, status: Option<u16>) -> String {
    let prefix = status.map_or(String::new(), |s| format!("HTTP {s} "));
    match (code, message) {
        ("", "") => match status_hint(status) {
            Some(hint) => format!("{prefix}{hint} (the answer had no error code)"),
            None => format!("{prefix}error with no code"),
        },
        (code, "") => format!("{prefix}{code}"),
        ("", message) => format!("{prefix}{message}"),
        (code, message) => format!("{prefix}{code}: {message}"),
    }
}

/// What a bare HTTP status says, for answers without an error code (moto's denials are
/// HTTP 403 with an XML body a JSON client cannot read).
fn status_hint(status: Option<u16>) -> Option<&'static str> {
    match status? {
        403 => Some("access denied"),
        401 => Some("not authenticated"),
        429 => Some("too many requests"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<ErrorKind> {
        None
    }

    #[test]
    fn a_bare_status_has_a_kind() {
        for (status, kind) in [
            (Some(401), ErrorKind::Unauthenticated),
            (Some(403), ErrorKind::PermissionDenied),
            (Some(429), ErrorKind::Throttled),
            (Some(500), ErrorKind::Unavailable),
            (Some(503), ErrorKind::Unavailable),
            (Some(400), ErrorKind::Backend),
            (None, ErrorKind::Backend),
        ] {
            assert_eq!(status_kind(status), kind, "{status:?}");
            assert_eq!(service_kind("", "", status, none), kind, "{status:?}");
        }
        assert_eq!(
            service_detail("", "", Some(401)),
            "HTTP 401 not authenticated (the answer had no error code)"
        );
        assert_eq!(
            service_detail("", "", Some(400)),
            "HTTP 400 error with no code"
        );
    }

    #[test]
    fn every_shared_code_has_its_kind_before_the_status_decides() {
        let table = [
            (
                ErrorKind::PermissionDenied,
                "AccessDeniedException AccessDenied AuthorizationError",
            ),
            (
                ErrorKind::Throttled,
                "ThrottlingException Throttling TooManyRequestsException RequestLimitExceeded",
            ),
            (
                ErrorKind::Unauthenticated,
                "UnrecognizedClientException InvalidClientTokenId ExpiredTokenException \
                 ExpiredToken InvalidSignatureException IncompleteSignature \
                 MissingAuthenticationToken",
            ),
            (
                ErrorKind::Unavailable,
                "InternalFailure InternalServerError ServiceUnavailable",
            ),
        ];
        for (kind, codes) in table {
            for code in codes.split_whitespace() {
                assert_eq!(common_kind(code), Some(kind), "{code}");
                // A service without a code of its own gets the shared kind, not the status's.
                assert_eq!(service_kind(code, "", Some(400), none), kind, "{code}");
            }
        }
        assert_eq!(common_kind("ValidationException"), None);
    }

    #[test]
    fn the_service_table_comes_first_then_common_codes_then_message() {
        let table = |code: &str| (code == "Mine").then_some(ErrorKind::NotFound);
        assert_eq!(
            service_kind("Mine", "", Some(400), table),
            ErrorKind::NotFound
        );
        assert_eq!(
            service_kind("ExpiredTokenException", "", Some(400), table),
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            service_kind(
                "Whatever",
                "User: x is not authorized to perform: y",
                Some(400),
                table
            ),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            service_kind("Other", "", Some(400), table),
            ErrorKind::Backend
        );
        assert_eq!(service_detail("C", "m", Some(400)), "HTTP 400 C: m");
        assert_eq!(service_detail("C", "", None), "C");
        assert_eq!(service_detail("", "m", None), "m");
    }
}
