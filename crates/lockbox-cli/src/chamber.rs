//! chamber services as sources: `lockbox exec myapp -- cmd` reads what `chamber exec myapp --
//! cmd` reads, chosen by chamber's own environment variables.
//!
//! As chamber (segmentio/chamber v3) does: a service is lower-cased and must match
//! `^[\w\-.]+(/[\w\-.]+)*$` (so `a/b` nests); its secrets are the SSM parameters
//! `/<service>/<key>`, read one level deep (GetParametersByPath without `Recursive`);
//! `CHAMBER_SECRET_BACKEND` picks the backend (default `ssm`, any case; `secretsmanager`
//! reads a service as chamber stores it there, see [`crate::chamber_sm`]),
//! `CHAMBER_KMS_KEY_ALIAS` the KMS key of written values (default `alias/parameter_store_key`,
//! `alias/` put before a bare name), `CHAMBER_AWS_REGION` overrides the AWS region chain and
//! `CHAMBER_AWS_SSM_ENDPOINT` the SSM endpoint.

use std::sync::Arc;

use lockbox_core::{Error, ErrorKind, Retry, RetryPolicy, SecretsManager};

/// chamber's backend variable: `ssm` (the default), `secretsmanager`, `s3`, `s3-kms`, `null`.
pub const ENV_BACKEND: &str = "CHAMBER_SECRET_BACKEND";
/// chamber's KMS key variable, for values written to SSM.
pub const ENV_KMS_KEY: &str = "CHAMBER_KMS_KEY_ALIAS";
/// chamber's region override, ahead of the AWS region chain.
pub const ENV_REGION: &str = "CHAMBER_AWS_REGION";
/// chamber's custom SSM endpoint.
pub const ENV_SSM_ENDPOINT: &str = "CHAMBER_AWS_SSM_ENDPOINT";
/// chamber's default KMS key alias.
pub const DEFAULT_KMS_KEY: &str = "alias/parameter_store_key";

/// A service as chamber normalises it: lower-cased, then checked against chamber's rule.
pub fn normalize_service(service: &str) -> Result<String, Error> {
    let lower = service.to_lowercase();
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if lower.split('/').all(segment_ok) {
        Ok(lower)
    } else {
        Err(Error::input(
            ErrorKind::InvalidName,
            format!(
                "service {service:?}: a chamber service is one or more /-separated segments of \
                 a-z 0-9 _ - . (like myapp or myapp/prod)"
            ),
        ))
    }
}

/// A key as chamber normalises it (`chamber write`, `chamber history`): lower-cased.
pub fn normalize_key(key: &str) -> String {
    key.to_lowercase()
}

/// The KMS key chamber writes SSM values with: `CHAMBER_KMS_KEY_ALIAS`, `alias/` put before a
/// bare name, else `alias/parameter_store_key`.
pub fn kms_key(from_env: Option<&str>) -> String {
    match from_env.filter(|k| !k.is_empty()) {
        None => DEFAULT_KMS_KEY.to_owned(),
        Some(k) if k.starts_with("alias/") => k.to_owned(),
        Some(k) => format!("alias/{k}"),
    }
}

/// The chamber backends lockbox reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SSM Parameter Store (chamber's default).
    Ssm,
    /// Secrets Manager, one secret per service (read-only here).
    SecretsManager,
}

/// Reads `CHAMBER_SECRET_BACKEND` (any case; unset or empty: SSM). chamber's S3 backends are
/// refused by name.
pub fn check_backend(value: Option<&str>) -> Result<Backend, Error> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(Backend::Ssm);
    };
    match value.to_ascii_uppercase().as_str() {
        "SSM" => Ok(Backend::Ssm),
        "SECRETSMANAGER" => Ok(Backend::SecretsManager),
        "S3" | "S3-KMS" | "NULL" => Err(Error::input(
            ErrorKind::Unsupported,
            format!(
                "{ENV_BACKEND}={value}: lockbox reads chamber services from SSM Parameter Store \
                 and Secrets Manager only; unset it (or set it to ssm or secretsmanager), or \
                 give the secrets as --config FILE"
            ),
        )),
        _ => Err(Error::input(
            ErrorKind::InvalidConfig,
            format!(
                "{ENV_BACKEND}={value}: not a chamber backend (ssm, secretsmanager, s3, s3-kms, \
                 null)"
            ),
        )),
    }
}

/// Opens service `service` (already normalised) as chamber's SSM store would read it: one
/// level deep unless `recursive`, wrapped in lockbox's retry.
pub async fn open(service: &str, recursive: bool) -> lockbox_core::Result<Arc<dyn SecretsManager>> {
    let backend = check_backend(std::env::var(ENV_BACKEND).ok().as_deref())?;
    let region = match std::env::var(ENV_REGION).ok().filter(|r| !r.is_empty()) {
        Some(r) => r,
        None => lockbox_aws::region_from_chain().await.ok_or_else(|| {
            Error::input(
                ErrorKind::InvalidConfig,
                format!(
                    "no AWS region for service {service}: set AWS_REGION (or {ENV_REGION}, or a \
                     region in the AWS profile)"
                ),
            )
        })?,
    };
    if backend == Backend::SecretsManager {
        let endpoint = std::env::var(crate::chamber_sm::ENV_ENDPOINT)
            .ok()
            .filter(|e| !e.is_empty());
        let client =
            lockbox_secretsmanager::SecretsManagerClient::connect(&region, endpoint.as_deref())
                .await?;
        let service = crate::chamber_sm::ServiceSecret::new(client, service.to_owned());
        return Ok(Arc::new(Retry::new(service, RetryPolicy::default())));
    }
    let settings = lockbox_ssm::SsmSettings {
        region,
        path: "/".into(),
        node_name: service.to_owned(),
        kms_key_id: Some(kms_key(std::env::var(ENV_KMS_KEY).ok().as_deref())),
        endpoint_url: std::env::var(ENV_SSM_ENDPOINT)
            .ok()
            .filter(|e| !e.is_empty()),
    };
    let backend = lockbox_ssm::SsmBackend::connect(settings).await?;
    let backend = if recursive {
        backend
    } else {
        backend.one_level()
    };
    Ok(Arc::new(Retry::new(backend, RetryPolicy::default())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_and_keys_normalise_as_chamber_does() {
        assert_eq!(normalize_service("MyApp").unwrap(), "myapp");
        assert_eq!(normalize_service("a/B.c-d_e").unwrap(), "a/b.c-d_e");
        for bad in ["", "/a", "a/", "a//b", "a b", "a:label", "é"] {
            assert!(normalize_service(bad).is_err(), "{bad:?}");
        }
        assert_eq!(normalize_key("DB_Password"), "db_password");
    }

    #[test]
    fn kms_key_and_backend_follow_chamber() {
        assert_eq!(kms_key(None), "alias/parameter_store_key");
        assert_eq!(kms_key(Some("")), "alias/parameter_store_key");
        assert_eq!(kms_key(Some("mine")), "alias/mine");
        assert_eq!(kms_key(Some("alias/mine")), "alias/mine");
        assert_eq!(check_backend(None).unwrap(), Backend::Ssm);
        assert_eq!(check_backend(Some("ssm")).unwrap(), Backend::Ssm);
        assert_eq!(check_backend(Some("SSM")).unwrap(), Backend::Ssm);
        assert_eq!(
            check_backend(Some("secretsmanager")).unwrap(),
            Backend::SecretsManager
        );
        assert!(check_backend(Some("s3")).is_err());
        assert!(check_backend(Some("nope")).is_err());
    }
}
