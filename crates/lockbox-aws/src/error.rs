//! The transport and HTTP-status half of mapping SDK errors to lockbox errors.
//!
//! Only the HTTP status, the error code and AWS's message are used: an SDK error printed whole
//! can carry the raw response body, which for a read may hold the secret.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lockbox_core::ErrorKind;

use crate::status::{service_detail, service_kind, status_kind};

/// What a failed SDK call comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No usable answer: a timeout, a connection or credentials failure, a request that could
    /// not be built, or an answer that could not be read. The kind and detail are decided.
    Transport {
        /// What kind of failure it is.
        kind: ErrorKind,
        /// What went wrong, for the error message.
        detail: String,
    },
    /// The service answered with an error; its kind depends on the service's codes.
    Service {
        /// AWS's error code, or empty.
        code: String,
        /// AWS's message, or empty.
        message: String,
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
    },
}

impl Failure {
    /// The kind and the detail for the error message; a service error is classified by
    /// `service_codes` first (see [`service_kind`]).
    pub fn resolve(
        &self,
        service_codes: impl Fn(&str) -> Option<ErrorKind>,
    ) -> (ErrorKind, String) {
        match self {
            Self::Transport { kind, detail } => (*kind, detail.clone()),
            Self::Service {
                code,
                message,
                status,
            } => (
                service_kind(code, message, *status, service_codes),
                service_detail(code, message, *status),
            ),
        }
    }

    /// AWS's error code, or empty.
    pub fn code(&self) -> &str {
        match self {
            Self::Transport { .. } => "",
            Self::Service { code, .. } => code,
        }
    }
}

/// Sorts an SDK error into a [`Failure`].
pub fn sdk_failure<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let transport = |kind, detail| Failure::Transport { kind, detail };
    match err {
        SdkError::TimeoutError(_) => transport(ErrorKind::Unavailable, "timed out".into()),
        SdkError::DispatchFailure(f) => {
            let what = if f.is_timeout() {
                "timed out connecting"
            } else if f.is_io() {
                "connection failed"
            } else {
                "request could not be sent"
            };
            let context = connector_context(err);
            credentials_failure(&context)
                .unwrap_or_else(|| transport(ErrorKind::Unavailable, format!("{what}: {context}")))
        }
        SdkError::ConstructionFailure(_) => {
            let context = connector_context(err);
            credentials_failure(&context).unwrap_or_else(|| {
                transport(
                    ErrorKind::Backend,
                    format!("request could not be built: {context}"),
                )
            })
        }
        // An answer the SDK could not parse: its body is never looked at, only its status.
        SdkError::ResponseError(_) => transport(
            status_kind(status),
            format!(
                "unreadable response (HTTP {})",
                status.map_or("?".into(), |s| s.to_string())
            ),
        ),
        _ => Failure::Service {
            code: err.code().unwrap_or("").to_owned(),
            message: err.message().unwrap_or("").to_owned(),
            status,
        },
    }
}

/// `Unauthenticated` when a failure's context says the credentials were the problem.
fn credentials_failure(context: &str) -> Option<Failure> {
    (context.contains("credentials") || context.contains("Credentials")).then(|| {
        Failure::Transport {
            kind: ErrorKind::Unauthenticated,
            detail: format!("no usable AWS credentials: {context}"),
        }
    })
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
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty())
    }

    #[test]
    fn a_bare_401_is_unauthenticated_for_every_service() {
        let unreadable: SdkError<ErrorMetadata, HttpResponse> =
            SdkError::response_error("cannot parse", response(401));
        let f = sdk_failure(&unreadable);
        assert_eq!(
            f.resolve(|_| None),
            (
                ErrorKind::Unauthenticated,
                "unreadable response (HTTP 401)".to_string()
            )
        );
        let no_code: SdkError<ErrorMetadata, HttpResponse> =
            SdkError::service_error(ErrorMetadata::builder().build(), response(401));
        let (kind, detail) = sdk_failure(&no_code).resolve(|_| None);
        assert_eq!(kind, ErrorKind::Unauthenticated);
        assert_eq!(
            detail,
            "HTTP 401 not authenticated (the answer had no error code)"
        );
    }

    #[test]
    fn service_errors_keep_code_message_and_status() {
        let err: SdkError<ErrorMetadata, HttpResponse> = SdkError::service_error(
            ErrorMetadata::builder()
                .code("ParameterNotFound")
                .message("nope")
                .build(),
            response(400),
        );
        let f = sdk_failure(&err);
        assert_eq!(f.code(), "ParameterNotFound");
        let table = |c: &str| (c == "ParameterNotFound").then_some(ErrorKind::NotFound);
        assert_eq!(
            f.resolve(table),
            (
                ErrorKind::NotFound,
                "HTTP 400 ParameterNotFound: nope".to_string()
            )
        );
        let timeout: SdkError<ErrorMetadata, HttpResponse> = SdkError::timeout_error("slow");
        assert_eq!(
            sdk_failure(&timeout).resolve(table),
            (ErrorKind::Unavailable, "timed out".to_string())
        );
    }
}
