//! The one place SSM's errors become lockbox errors: SSM's own error codes here, the transport
//! and HTTP-status half in [`lockbox_aws::AwsFailure`].

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use lockbox_aws::AwsFailure;
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
    map_failure(AwsFailure::from_sdk(err), action, secret, parameter)
}

/// Maps a failure of `action` on `parameter` to lockbox's error, which carries it as its
/// source (see [`AwsFailure::of`]).
pub(crate) fn map_failure(
    failure: AwsFailure,
    action: &str,
    secret: &str,
    parameter: &str,
) -> Error {
    let (kind, detail) = failure.resolve(error_kind);
    let message = match kind {
        ErrorKind::NotFound | ErrorKind::AlreadyExists => format!("parameter {parameter}"),
        _ => format!("{action} on parameter {parameter}: {detail}"),
    };
    failure
        .into_error(kind, BACKEND, message)
        .with_secret(secret)
}

/// The error codes that say the parameter exists but the version or label selected after its
/// name (`name:9`, `name:label`) does not.
const SELECTOR_NOT_FOUND: [&str; 1] = ["ParameterVersionNotFound"];

/// For reads where only ParameterNotFound means absent (Airflow-style lookups): a missing
/// version or label becomes a `Backend` error that keeps its AWS code.
pub(crate) fn selector_not_found_is_an_error(err: Error) -> Error {
    let Some(code) = err.code().filter(|c| SELECTOR_NOT_FOUND.contains(c)) else {
        return err;
    };
    if err.kind() != ErrorKind::NotFound {
        return err;
    }
    let code = code.to_string();
    let secret = err.secret().map(str::to_string);
    let mut mapped = Error::new(
        ErrorKind::Backend,
        BACKEND,
        format!(
            "{}: the parameter has no such version or label ({code}); only a missing \
             parameter counts as absent",
            err.message()
        ),
    )
    .with_code(code);
    if let Some(s) = secret {
        mapped = mapped.with_secret(s);
    }
    if let Some(failure) = AwsFailure::of(&err) {
        mapped = mapped.with_source(failure.clone());
    }
    mapped
}

/// The kind of an SSM error code: SSM's own codes, then the ones every AWS service shares
/// ([`lockbox_aws::common_kind`]: access, throttling, credentials, internal failures). `None`
/// for a code neither knows (then the HTTP status decides, see [`AwsFailure::kind`]). The one
/// table of SSM's codes.
pub fn error_kind(code: &str) -> Option<ErrorKind> {
    ssm_kind(code).or_else(|| lockbox_aws::common_kind(code))
}

/// SSM's own error codes.
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
    fn a_missing_version_is_an_error_only_where_asked() {
        let e = Error::new(ErrorKind::NotFound, BACKEND, "parameter /a/b:9")
            .with_secret("x")
            .with_code("ParameterVersionNotFound");
        let mapped = selector_not_found_is_an_error(e);
        assert_eq!(mapped.kind(), ErrorKind::Backend);
        assert_eq!(mapped.code(), Some("ParameterVersionNotFound"));
        assert!(mapped.to_string().contains("/a/b:9"), "{mapped}");
        let e = Error::new(ErrorKind::NotFound, BACKEND, "parameter /a/b")
            .with_code("ParameterNotFound");
        assert_eq!(
            selector_not_found_is_an_error(e).kind(),
            ErrorKind::NotFound
        );
        // The backend's own mapping still calls a missing version NotFound.
        assert_eq!(
            service_kind("ParameterVersionNotFound", "", Some(400), ssm_kind),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn the_public_table_covers_shared_codes_and_errors_keep_the_failure() {
        // Statuses and messages without a known code are lockbox-aws's rules, tested there.
        for (code, kind) in [
            ("ThrottlingException", ErrorKind::Throttled),
            ("RequestLimitExceeded", ErrorKind::Throttled),
            ("TooManyUpdates", ErrorKind::Throttled),
            ("ExpiredTokenException", ErrorKind::Unauthenticated),
            ("ParameterNotFound", ErrorKind::NotFound),
            ("ParameterVersionNotFound", ErrorKind::NotFound),
            ("ParameterAlreadyExists", ErrorKind::AlreadyExists),
            ("AccessDeniedException", ErrorKind::PermissionDenied),
        ] {
            assert_eq!(error_kind(code), Some(kind), "{code}");
        }
        assert_eq!(error_kind("ValidationException"), None);
        let e = map_failure(
            AwsFailure::service(Some(400), "ParameterVersionNotFound", "no v9"),
            "ssm:GetParameter",
            "s",
            "/a:9",
        );
        assert!(e.is_not_found());
        let e = selector_not_found_is_an_error(e);
        assert_eq!(e.kind(), ErrorKind::Backend);
        let f = AwsFailure::of(&e).expect("kept through the remapping");
        assert_eq!(
            (f.status, f.code.as_str()),
            (Some(400), "ParameterVersionNotFound")
        );
    }
}
