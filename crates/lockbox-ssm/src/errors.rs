//! The one place SSM's errors become lockbox errors: SSM's own error codes here, the transport
//! and HTTP-status half in [`lockbox_aws::sdk_failure`].

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
    let failure = lockbox_aws::sdk_failure(err);
    let (kind, detail) = failure.resolve(ssm_kind);
    let message = match kind {
        ErrorKind::NotFound | ErrorKind::AlreadyExists => format!("parameter {parameter}"),
        _ => format!("{action} on parameter {parameter}: {detail}"),
    };
    Error::new(kind, BACKEND, message)
        .with_secret(secret)
        .with_code(failure.code())
}

/// SSM's own error codes; the ones every service shares are in [`lockbox_aws::common_kind`].
fn ssm_kind(code: &str) -> Option<ErrorKind> {
    Some(match code {
        "ParameterNotFound" | "ParameterVersionNotFound" => ErrorKind::NotFound,
        "ParameterAlreadyExists" => ErrorKind::AlreadyExists,
        "TooManyUpdates" => ErrorKind::Throttled,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use lockbox_aws::service_kind;

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
            ("TooManyUpdates", Some(400), ErrorKind::Throttled),
            (
                "ExpiredTokenException",
                Some(400),
                ErrorKind::Unauthenticated,
            ),
            ("InternalServerError", Some(500), ErrorKind::Unavailable),
            ("", Some(503), ErrorKind::Unavailable),
            ("", Some(403), ErrorKind::PermissionDenied),
            ("", Some(401), ErrorKind::Unauthenticated),
            ("ValidationException", Some(400), ErrorKind::Backend),
        ];
        for (code, status, kind) in cases {
            assert_eq!(
                service_kind(code, "", status, ssm_kind),
                kind,
                "{code} {status:?}"
            );
        }
        assert_eq!(
            service_kind(
                "Whatever",
                "User: x is not authorized to perform: ssm:GetParameter",
                Some(400),
                ssm_kind
            ),
            ErrorKind::PermissionDenied
        );
    }
}
