//! The one place SSM's errors become lockbox errors.
//!
//! Only the HTTP status, the error code and AWS's message are used: an SDK error printed whole
//! can carry the raw response body, which for a read may hold the secret.

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use lockbox_core::{Error, ErrorKind};

use crate::backend::BACKEND;

/// Maps an SDK error from `action` (e.g. `ssm:GetParameter`) on `parameter` to lockbox's
/// error, naming the secret, the action and the parameter.
pub(crate) fn map_sdk_error<E>(
    err: &SdkError<E, HttpResponse>,
    action: &str,
    secret: &str,
    parameter: &str,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().unwrap_or("");
    let aws_message = err.message().unwrap_or("");
    let (kind, detail) = match err {
        SdkError::TimeoutError(_) => (ErrorKind::Unavailable, "timed out".to_string()),
        SdkError::DispatchFailure(f) => {
            let what = if f.is_timeout() {
                "timed out connecting"
            } else if f.is_io() {
                "connection failed"
            } else {
                "request could not be sent"
            };
            let context = connector_context(err);
            if context.contains("credentials") || context.contains("Credentials") {
                (
                    ErrorKind::Unauthenticated,
                    format!("no usable AWS credentials: {context}"),
                )
            } else {
                (ErrorKind::Unavailable, format!("{what}: {context}"))
            }
        }
        SdkError::ConstructionFailure(_) => {
            let context = connector_context(err);
            if context.contains("credentials") || context.contains("Credentials") {
                (
                    ErrorKind::Unauthenticated,
                    format!("no usable AWS credentials: {context}"),
                )
            } else {
                (
                    ErrorKind::Backend,
                    format!("request could not be built: {context}"),
                )
            }
        }
        SdkError::ResponseError(_) => {
            let kind = match status {
                Some(s) if s >= 500 => ErrorKind::Unavailable,
                Some(403) => ErrorKind::PermissionDenied,
                Some(429) => ErrorKind::Throttled,
                _ => ErrorKind::Backend,
            };
            (
                kind,
                format!(
                    "unreadable response (HTTP {})",
                    status.map_or("?".into(), |s| s.to_string())
                ),
            )
        }
        _ => (
            classify(code, aws_message, status),
            service_detail(code, aws_message, status),
        ),
    };
    let message = match kind {
        ErrorKind::NotFound | ErrorKind::AlreadyExists => format!("parameter {parameter}"),
        _ => format!("{action} on parameter {parameter}: {detail}"),
    };
    Error::new(kind, BACKEND, message)
        .with_secret(secret)
        .with_code(code)
}

/// The kind of a service error, by AWS error code, then by HTTP status.
fn classify(code: &str, message: &str, status: Option<u16>) -> ErrorKind {
    match code {
        "ParameterNotFound" | "ParameterVersionNotFound" => ErrorKind::NotFound,
        "ParameterAlreadyExists" => ErrorKind::AlreadyExists,
        "AccessDeniedException" | "AccessDenied" | "AuthorizationError" => {
            ErrorKind::PermissionDenied
        }
        "ThrottlingException"
        | "Throttling"
        | "TooManyUpdates"
        | "RequestLimitExceeded"
        | "TooManyRequestsException" => ErrorKind::Throttled,
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => ErrorKind::Unauthenticated,
        "InternalServerError" | "InternalFailure" | "ServiceUnavailable" => ErrorKind::Unavailable,
        _ if message.contains("not authorized") => ErrorKind::PermissionDenied,
        _ => match status {
            Some(403) => ErrorKind::PermissionDenied,
            Some(401) => ErrorKind::Unauthenticated,
            Some(429) => ErrorKind::Throttled,
            Some(s) if s >= 500 => ErrorKind::Unavailable,
            _ => ErrorKind::Backend,
        },
    }
}

fn service_detail(code: &str, message: &str, status: Option<u16>) -> String {
    let status = status.map_or(String::new(), |s| format!("HTTP {s} "));
    match (code, message) {
        ("", "") => format!("{status}error with no code"),
        (code, "") => format!("{status}{code}"),
        ("", message) => format!("{status}{message}"),
        (code, message) => format!("{status}{code}: {message}"),
    }
}

/// The source chain of an error that carries no response body (dispatch or construction
/// failures), joined with ": ".
fn connector_context<E, R>(err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        let cases = [
            ("ParameterNotFound", None, ErrorKind::NotFound),
            ("ParameterAlreadyExists", None, ErrorKind::AlreadyExists),
            (
                "AccessDeniedException",
                Some(400),
                ErrorKind::PermissionDenied,
            ),
            ("ThrottlingException", Some(400), ErrorKind::Throttled),
            (
                "ExpiredTokenException",
                Some(400),
                ErrorKind::Unauthenticated,
            ),
            ("InternalServerError", Some(500), ErrorKind::Unavailable),
            ("", Some(503), ErrorKind::Unavailable),
            ("", Some(403), ErrorKind::PermissionDenied),
            ("ValidationException", Some(400), ErrorKind::Backend),
        ];
        for (code, status, kind) in cases {
            assert_eq!(classify(code, "", status), kind, "{code} {status:?}");
        }
        assert_eq!(
            classify(
                "Whatever",
                "User: x is not authorized to perform: ssm:GetParameter",
                Some(400)
            ),
            ErrorKind::PermissionDenied
        );
    }
}
