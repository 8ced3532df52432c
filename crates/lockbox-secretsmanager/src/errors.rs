//! The one place Secrets Manager's errors become lockbox errors: Secrets Manager's own error
//! codes and messages here, the transport and HTTP-status half in [`lockbox_aws::AwsFailure`].

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use lockbox_aws::AwsFailure;
use lockbox_core::{Error, ErrorKind};

use crate::BACKEND;
use crate::actions::CREATE;

/// Maps an SDK error from `action` (e.g. `secretsmanager:GetSecretValue`) on the secret
/// `secret_id` to lockbox's error, naming the action and the secret. The error carries the
/// [`AwsFailure`] as its source.
pub(crate) fn map_sdk_error<E>(
    err: &SdkError<E, HttpResponse>,
    action: &str,
    secret_id: &str,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    map_failure(AwsFailure::from_sdk(err), action, secret_id)
}

/// Maps an error code and message AWS returned for one secret: a whole call's service error,
/// or one entry of BatchGetSecretValue's per-secret `Errors`.
pub(crate) fn map_service_error(
    code: &str,
    aws_message: &str,
    status: Option<u16>,
    action: &str,
    secret_id: &str,
) -> Error {
    map_failure(
        AwsFailure::service(status, code, aws_message),
        action,
        secret_id,
    )
}

/// Maps a failure of `action` on `secret_id`; the error carries `failure` as its source.
fn map_failure(failure: AwsFailure, action: &str, secret_id: &str) -> Error {
    let (code, aws_message) = (failure.code.as_str(), failure.message.as_str());
    if failure.transport.is_none() && is_deletion_state(code, aws_message) {
        let err = if action == CREATE.name {
            scheduled_for_deletion_on_create(secret_id)
        } else {
            scheduled_for_deletion(action, secret_id)
        };
        let code = code.to_owned();
        return err.with_code(code).with_source(failure);
    }
    let (kind, detail) = failure.resolve(error_kind);
    let message = match (kind, code) {
        (ErrorKind::NotFound | ErrorKind::AlreadyExists, _) => {
            format!("Secrets Manager secret {secret_id}")
        }
        (_, "DecryptionFailure") => format!(
            "{action} on secret {secret_id}: Secrets Manager could not decrypt the value with the \
             secret's KMS key; the caller needs kms:Decrypt on that key and the key must be \
             enabled ({detail})"
        ),
        (_, "EncryptionFailure") => format!(
            "{action} on secret {secret_id}: Secrets Manager could not encrypt the value with the \
             KMS key; the key must exist and be enabled, and the caller needs \
             kms:GenerateDataKey on it ({detail})"
        ),
        _ => format!("{action} on secret {secret_id}: {detail}"),
    };
    failure
        .into_error(kind, BACKEND, message)
        .with_secret(secret_id)
}

/// True when AWS's answer says the secret asked for is gone: ResourceNotFoundException (no
/// such secret, or no such version of it), or InvalidRequestException about a secret
/// scheduled for (or undergoing) deletion. A transport failure, a refusal or throttling is
/// never "gone".
pub fn is_gone(failure: &AwsFailure) -> bool {
    failure.transport.is_none()
        && (failure.code == "ResourceNotFoundException"
            || is_deletion_state(&failure.code, &failure.message))
}

/// [`is_gone`] for a lockbox error from this crate's calls (false when it carries no
/// [`AwsFailure`]).
pub fn error_is_gone(err: &Error) -> bool {
    AwsFailure::of(err).is_some_and(is_gone)
}

/// `AlreadyExists` for a create that found the name held by a secret scheduled for deletion.
pub(crate) fn scheduled_for_deletion_on_create(secret_id: &str) -> Error {
    Error::already_exists(BACKEND, secret_id).with_message(format!(
        "Secrets Manager secret {secret_id} is scheduled for deletion and still holds its name: \
         restore it with RestoreSecret (`aws secretsmanager restore-secret --secret-id \
         {secret_id}`), or wait until its recovery window ends (or delete it for good with \
         DeleteSecret and --force-delete-without-recovery) before creating it again"
    ))
}

/// The error for a read or write of a secret scheduled for deletion. The secret still exists
/// (it blocks a create of its name, and `has` says true), so this is not `NotFound`: a caller
/// that creates on NotFound would only meet `AlreadyExists`.
fn scheduled_for_deletion(action: &str, secret_id: &str) -> Error {
    Error::new(
        ErrorKind::Backend,
        BACKEND,
        format!(
            "{action} on secret {secret_id}: the secret is scheduled for deletion, so it can be \
             neither read nor written; restore it with RestoreSecret (`aws secretsmanager \
             restore-secret --secret-id {secret_id}`) or delete it for good"
        ),
    )
    .with_secret(secret_id)
}

/// True for AWS's InvalidRequestException about a secret scheduled for (or undergoing)
/// deletion. AWS says "already scheduled for deletion" (CreateSecret), "marked for deletion"
/// or "because it was deleted"; moto says "currently marked deleted".
fn is_deletion_state(code: &str, message: &str) -> bool {
    if code != "InvalidRequestException" {
        return false;
    }
    let m = message.to_ascii_lowercase();
    m.contains("scheduled for deletion")
        || m.contains("marked for deletion")
        || m.contains("marked deleted")
        || m.contains("was deleted")
}

/// The kind of a Secrets Manager error code: its own codes, then the ones every AWS service
/// shares ([`lockbox_aws::common_kind`]: access, throttling, credentials, internal failures).
/// `None` for a code neither knows (then the HTTP status decides, see
/// [`AwsFailure::kind`]). The one table of Secrets Manager's codes. A secret scheduled for
/// deletion answers InvalidRequestException (`Backend` here); see [`is_gone`].
pub fn error_kind(code: &str) -> Option<ErrorKind> {
    sm_kind(code).or_else(|| lockbox_aws::common_kind(code))
}

/// Secrets Manager's own error codes.
fn sm_kind(code: &str) -> Option<ErrorKind> {
    Some(match code {
        "ResourceNotFoundException" => ErrorKind::NotFound,
        "ResourceExistsException" => ErrorKind::AlreadyExists,
        // The KMS key refused: a permission or key-state problem an administrator must fix;
        // retrying cannot help.
        "DecryptionFailure" | "EncryptionFailure" => ErrorKind::PermissionDenied,
        "InternalServiceError" => ErrorKind::Unavailable,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use lockbox_aws::service_kind;

    use super::*;
    use crate::actions::{DELETE, GET, PUT};

    fn classify(code: &str, message: &str, status: Option<u16>) -> ErrorKind {
        service_kind(code, message, status, sm_kind)
    }

    #[test]
    fn secrets_manager_codes_map_to_kinds_and_others_to_the_shared_rules() {
        // The shared codes, statuses and messages are lockbox-aws's, tested there.
        let table = [
            (ErrorKind::NotFound, "ResourceNotFoundException"),
            (ErrorKind::AlreadyExists, "ResourceExistsException"),
            (
                ErrorKind::PermissionDenied,
                "DecryptionFailure EncryptionFailure",
            ),
            (ErrorKind::Unavailable, "InternalServiceError"),
            (ErrorKind::Unauthenticated, "UnrecognizedClientException"),
            (
                ErrorKind::Backend,
                "InvalidParameterException LimitExceededException InvalidRequestException",
            ),
        ];
        for (kind, codes) in table {
            for code in codes.split_whitespace() {
                assert_eq!(classify(code, "", Some(400)), kind, "{code}");
            }
        }
    }

    #[test]
    fn messages_name_action_and_secret() {
        let e = map_service_error(
            "AccessDeniedException",
            "User: u is not authorized to perform: secretsmanager:GetSecretValue",
            Some(400),
            GET.name,
            "p/n/validator-key",
        );
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        let msg = e.to_string();
        assert!(
            msg.contains("secretsmanager:GetSecretValue on secret p/n/validator-key"),
            "{msg}"
        );
        let e = map_service_error("ResourceNotFoundException", "", None, GET.name, "p/n/k");
        assert!(e.is_not_found());
        assert_eq!(e.message(), "Secrets Manager secret p/n/k");
        let e = map_service_error("DecryptionFailure", "", Some(400), GET.name, "p/n/k");
        assert!(e.to_string().contains("kms:Decrypt"), "{e}");
    }

    #[test]
    fn scheduled_deletion_is_already_exists_on_create_and_named_elsewhere() {
        let aws = "You can't create this secret because a secret with this name is already \
                   scheduled for deletion.";
        let e = map_service_error(
            "InvalidRequestException",
            aws,
            Some(400),
            CREATE.name,
            "a/b",
        );
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert!(
            e.to_string().contains("scheduled for deletion")
                && e.to_string().contains("RestoreSecret"),
            "{e}"
        );
        for message in [
            "You can't perform this operation on the secret because it was marked for deletion.",
            "You tried to perform the operation on a secret that's currently marked deleted.",
            "You can't perform this operation on the secret because it was deleted.",
        ] {
            for action in [GET.name, PUT.name] {
                let e =
                    map_service_error("InvalidRequestException", message, Some(400), action, "a/b");
                assert_eq!(e.kind(), ErrorKind::Backend, "{message}");
                assert!(!e.is_not_found() && !e.is_retryable());
                assert!(e.to_string().contains("scheduled for deletion"), "{e}");
                assert!(e.to_string().contains(action), "{e}");
            }
        }
        // Other invalid requests are not about deletion.
        let e = map_service_error(
            "InvalidRequestException",
            "You can't perform this operation on a secret that's managed by another service.",
            Some(400),
            DELETE.name,
            "a/b",
        );
        assert_eq!(e.kind(), ErrorKind::Backend);
        assert!(!e.to_string().contains("scheduled"), "{e}");
    }

    #[test]
    fn gone_is_not_found_or_deletion_and_the_failure_is_kept() {
        let e = map_service_error("ResourceNotFoundException", "no", Some(400), GET.name, "a");
        assert!(error_is_gone(&e));
        let f = AwsFailure::of(&e).unwrap();
        assert_eq!(
            (f.status, f.code.as_str(), f.message.as_str()),
            (Some(400), "ResourceNotFoundException", "no")
        );
        let e = map_service_error(
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was marked for deletion.",
            Some(400),
            GET.name,
            "a",
        );
        assert!(error_is_gone(&e));
        assert_eq!(e.code(), Some("InvalidRequestException"));
        for (code, message) in [
            ("InvalidRequestException", "managed by another service"),
            ("AccessDeniedException", ""),
            ("ThrottlingException", ""),
        ] {
            let e = map_service_error(code, message, Some(400), GET.name, "a");
            assert!(!error_is_gone(&e), "{code}");
        }
        assert!(!error_is_gone(&Error::not_found(BACKEND, "a")));
        assert_eq!(
            error_kind("RequestLimitExceeded"),
            Some(ErrorKind::Throttled)
        );
        assert_eq!(
            error_kind("ExpiredTokenException"),
            Some(ErrorKind::Unauthenticated)
        );
        assert_eq!(
            error_kind("ResourceNotFoundException"),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(error_kind("InvalidRequestException"), None);
    }
}
