//! The transport and HTTP-status half of mapping SDK errors to lockbox errors, and
//! [`AwsFailure`], what a failed call leaves on the lockbox error it becomes.
//!
//! Only the HTTP status, the error code and AWS's message are used: an SDK error printed whole
//! can carry the raw response body, which for a read may hold the secret.

use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lockbox_core::{Error, ErrorKind};

use crate::status::{service_detail, service_kind, status_kind};

/// Why a call got no usable answer from the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// The call or its connection attempt timed out.
    Timeout,
    /// The connection failed (refused, reset, DNS, other I/O).
    Connect,
    /// The request could not be sent for another reason (the connector refused it, TLS).
    Send,
    /// An answer came but could not be read (not the service's format); its status is kept.
    Unreadable,
    /// No usable credentials.
    Credentials,
    /// The request could not be built (bad input, missing region or endpoint).
    Request,
}

/// What a failed AWS call comes to: the HTTP status, AWS's error code and message, and for a
/// call that got no usable answer, why. The error a service crate makes of a failed call
/// carries it as its `source`; [`AwsFailure::of`] finds it again.
///
/// It holds no response body: its Display and Debug cannot leak a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsFailure {
    /// The HTTP status of the answer, when there was one.
    pub status: Option<u16>,
    /// AWS's error code (`ParameterNotFound`, `ThrottlingException`, ...), or empty.
    pub code: String,
    /// AWS's message, or empty.
    pub message: String,
    /// Why there was no usable answer; `None` when the service answered with an error.
    pub transport: Option<Transport>,
    /// For a transport failure, what went wrong (the connector's error chain); else empty.
    pub detail: String,
}

impl AwsFailure {
    /// Sorts an SDK error.
    pub fn from_sdk<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        match err {
            SdkError::TimeoutError(_) => Self::transport(Transport::Timeout, None, "timed out"),
            SdkError::DispatchFailure(f) => {
                let (what, detail) = if f.is_timeout() {
                    (Transport::Timeout, "timed out connecting")
                } else if f.is_io() {
                    (Transport::Connect, "connection failed")
                } else {
                    (Transport::Send, "request could not be sent")
                };
                let context = connector_context(err);
                credentials_failure(&context)
                    .unwrap_or_else(|| Self::transport(what, None, format!("{detail}: {context}")))
            }
            SdkError::ConstructionFailure(_) => {
                let context = connector_context(err);
                credentials_failure(&context).unwrap_or_else(|| {
                    Self::transport(
                        Transport::Request,
                        None,
                        format!("request could not be built: {context}"),
                    )
                })
            }
            // An answer the SDK could not parse: its body is never looked at, only its status.
            SdkError::ResponseError(_) => Self::transport(
                Transport::Unreadable,
                status,
                format!(
                    "unreadable response (HTTP {})",
                    status.map_or("?".into(), |s| s.to_string())
                ),
            ),
            _ => Self::service(
                status,
                err.code().unwrap_or(""),
                err.message().unwrap_or(""),
            ),
        }
    }

    /// A service's error answer (also one entry of a batch call's per-item errors, which has
    /// no status of its own).
    pub fn service(status: Option<u16>, code: &str, message: &str) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            transport: None,
            detail: String::new(),
        }
    }

    fn transport(what: Transport, status: Option<u16>, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: String::new(),
            message: String::new(),
            transport: Some(what),
            detail: detail.into(),
        }
    }

    /// The failure a lockbox error carries as its source, when it came from an AWS call.
    pub fn of(err: &Error) -> Option<&AwsFailure> {
        std::error::Error::source(err)?.downcast_ref::<AwsFailure>()
    }

    /// The kind of lockbox error this is: a transport failure by what it was (timeouts and
    /// connection failures `Unavailable`, credentials `Unauthenticated`, an unreadable answer
    /// by its status, a request not built `Backend`); a service error by `service_codes`
    /// first, then [`service_kind`]. A 4xx answer without a code is never `Unavailable`.
    pub fn kind(&self, service_codes: impl Fn(&str) -> Option<ErrorKind>) -> ErrorKind {
        match self.transport {
            Some(Transport::Timeout | Transport::Connect | Transport::Send) => {
                ErrorKind::Unavailable
            }
            Some(Transport::Unreadable) => status_kind(self.status),
            Some(Transport::Credentials) => ErrorKind::Unauthenticated,
            Some(Transport::Request) => ErrorKind::Backend,
            None => service_kind(&self.code, &self.message, self.status, service_codes),
        }
    }

    /// What went wrong, for an error message: the transport detail, or status, code and
    /// AWS's message.
    pub fn detail(&self) -> String {
        match self.transport {
            Some(_) => self.detail.clone(),
            None => service_detail(&self.code, &self.message, self.status),
        }
    }

    /// The kind and the detail for the error message (see [`AwsFailure::kind`]).
    pub fn resolve(
        &self,
        service_codes: impl Fn(&str) -> Option<ErrorKind>,
    ) -> (ErrorKind, String) {
        (self.kind(service_codes), self.detail())
    }

    /// A lockbox error of `kind` from `backend` with `message`, carrying AWS's code and this
    /// failure as its source.
    pub fn into_error(self, kind: ErrorKind, backend: &'static str, message: String) -> Error {
        let code = self.code.clone();
        Error::new(kind, backend, message)
            .with_code(code)
            .with_source(self)
    }
}

impl fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail())
    }
}

impl std::error::Error for AwsFailure {}

/// `Unauthenticated` when a failure's context says the credentials were the problem.
fn credentials_failure(context: &str) -> Option<AwsFailure> {
    (context.contains("credentials") || context.contains("Credentials")).then(|| {
        AwsFailure::transport(
            Transport::Credentials,
            None,
            format!("no usable AWS credentials: {context}"),
        )
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
        let f = AwsFailure::from_sdk(&unreadable);
        assert_eq!(
            f.resolve(|_| None),
            (
                ErrorKind::Unauthenticated,
                "unreadable response (HTTP 401)".to_string()
            )
        );
        let no_code: SdkError<ErrorMetadata, HttpResponse> =
            SdkError::service_error(ErrorMetadata::builder().build(), response(401));
        let (kind, detail) = AwsFailure::from_sdk(&no_code).resolve(|_| None);
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
        let f = AwsFailure::from_sdk(&err);
        assert_eq!(f.code, "ParameterNotFound");
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
            AwsFailure::from_sdk(&timeout).resolve(table),
            (ErrorKind::Unavailable, "timed out".to_string())
        );
    }

    #[test]
    fn the_failure_survives_on_the_lockbox_error() {
        let err: SdkError<ErrorMetadata, HttpResponse> = SdkError::service_error(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
            response(400),
        );
        let f = AwsFailure::from_sdk(&err);
        let kind = f.kind(|_| None);
        assert_eq!(kind, ErrorKind::Throttled);
        let e = f
            .clone()
            .into_error(kind, "aws-ssm", "GetParameter: x".into());
        assert_eq!(e.code(), Some("ThrottlingException"));
        let back = AwsFailure::of(&e).expect("the failure is the source");
        assert_eq!(back, &f);
        assert_eq!(back.status, Some(400));
        assert_eq!(back.message, "Rate exceeded");
        assert_eq!(back.transport, None);
        assert!(AwsFailure::of(&Error::not_found("x", "y")).is_none());
        // Cloning the lockbox error keeps it.
        assert!(AwsFailure::of(&e.clone()).is_some());
    }

    #[test]
    fn transport_failures_say_which() {
        let timeout: SdkError<ErrorMetadata, HttpResponse> = SdkError::timeout_error("slow");
        let f = AwsFailure::from_sdk(&timeout);
        assert_eq!(f.transport, Some(Transport::Timeout));
        assert_eq!(f.kind(|_| None), ErrorKind::Unavailable);
        let unreadable: SdkError<ErrorMetadata, HttpResponse> =
            SdkError::response_error("cannot parse", response(502));
        let f = AwsFailure::from_sdk(&unreadable);
        assert_eq!(
            (f.transport, f.status, f.kind(|_| None)),
            (
                Some(Transport::Unreadable),
                Some(502),
                ErrorKind::Unavailable
            )
        );
        let built: SdkError<ErrorMetadata, HttpResponse> =
            SdkError::construction_failure("no region");
        let f = AwsFailure::from_sdk(&built);
        assert_eq!(f.transport, Some(Transport::Request));
        assert_eq!(f.kind(|_| None), ErrorKind::Backend);
        let creds: SdkError<ErrorMetadata, HttpResponse> =
            SdkError::construction_failure("no credentials in the chain");
        let f = AwsFailure::from_sdk(&creds);
        assert_eq!(f.transport, Some(Transport::Credentials));
        assert_eq!(f.kind(|_| None), ErrorKind::Unauthenticated);
    }

    #[test]
    fn a_4xx_without_a_code_is_never_an_outage() {
        for (status, kind) in [
            (403, ErrorKind::PermissionDenied),
            (429, ErrorKind::Throttled),
            (401, ErrorKind::Unauthenticated),
            (400, ErrorKind::Backend),
            (404, ErrorKind::Backend),
        ] {
            for err in [
                SdkError::<ErrorMetadata, HttpResponse>::service_error(
                    ErrorMetadata::builder().build(),
                    response(status),
                ),
                SdkError::response_error("xml", response(status)),
            ] {
                let f = AwsFailure::from_sdk(&err);
                assert_eq!(f.status, Some(status));
                assert_eq!(f.kind(|_| None), kind, "{status} {f:?}");
            }
        }
    }
}
