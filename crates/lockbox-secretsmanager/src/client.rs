//! The raw client: any secret by name or ARN, every version, and the table of actions it calls.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use aws_smithy_types::{Blob, DateTime};
use lockbox_core::{Error, ErrorKind, Result, SecretValue, Version, VersionInfo};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::BACKEND;
use crate::SecretVersion;
use crate::actions::{CREATE, DELETE, DESCRIBE, GET, HISTORY, LIST, PUT};
use crate::errors::{map_sdk_error, scheduled_for_deletion_on_create};
use crate::names::MAX_VALUE_BYTES;

/// Most staging labels one version may carry.
const MAX_STAGES: usize = 20;

/// Longest staging label AWS accepts.
const MAX_STAGE_CHARS: usize = 256;

/// Most secrets one ListSecrets page answers.
const LIST_PAGE: i32 = 100;

/// What versions a secret keeps, for the error of a version it cannot have.
const VERSIONS: &str = "Secrets Manager versions have ids and staging labels";

/// What DescribeSecret says about a secret that exists.
#[derive(Clone, Debug)]
pub(crate) struct Described {
    /// When the secret is scheduled for deletion, the date (Unix seconds) it goes.
    pub(crate) deleted_date: Option<i64>,
}

/// Raw client for any secret by name or ARN (no node prefix): used by Greengrass-style sync
/// and by [`crate::SecretsManagerBackend`], which adds the node prefix.
#[derive(Clone, Debug)]
pub struct SecretsManagerClient {
    pub(crate) client: Client,
    /// Set once BatchGetSecretValue was denied (it needs `"Resource": "*"`, which a
    /// least-privilege policy does not grant) or is not supported: later batches go straight
    /// to concurrent GetSecretValue calls.
    pub(crate) batch_denied: Arc<AtomicBool>,
    /// Set once a BatchGetSecretValue call was answered: until then a `fetch_many` sends its
    /// first batch alone, so a refusal is learnt from one call, not from several at once.
    pub(crate) batch_answered: Arc<AtomicBool>,
}

impl SecretsManagerClient {
    /// Loads credentials with aws-config's default chain (environment, profile, SSO, web
    /// identity, IMDS) for `region`, with [`lockbox_aws::SdkOptions`]: the SDK's own retries off
    /// (wrap backends in [`lockbox_core::Retry`]) and bounded timeouts. Without
    /// `endpoint_url`, aws-config also honours `AWS_ENDPOINT_URL`.
    pub async fn connect(region: &str, endpoint_url: Option<&str>) -> Result<Self> {
        Ok(Self::new(
            &lockbox_aws::SdkOptions::load_for(region, endpoint_url).await?,
        ))
    }

    /// Wraps a client the caller configured (tests, custom credentials).
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            batch_denied: Arc::default(),
            batch_answered: Arc::default(),
        }
    }

    /// A client on a loaded SDK configuration (see [`lockbox_aws::SdkOptions::load`]).
    pub fn new(sdk: &lockbox_aws::SdkConfig) -> Self {
        Self::from_client(Client::new(sdk))
    }

    /// GetSecretValue as AWS takes it: `secret_id` (a name or ARN), and a version id and a
    /// staging label, each optional, sent as given (both, one, or neither: AWSCURRENT). No
    /// local check: what AWS answers is the answer, its error carrying a
    /// [`lockbox_aws::AwsFailure`] as its source.
    pub async fn get_secret_value(
        &self,
        secret_id: &str,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<SecretVersion> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .set_version_id(version_id.map(str::to_owned))
            .set_version_stage(version_stage.map(str::to_owned))
            .send()
            .await
            .map_err(|e| map_sdk_error(&e, GET.name, secret_id))?;
        let (value, binary) =
            value_of(out.secret_string, out.secret_binary).ok_or_else(|| no_value(secret_id))?;
        let (created_date, created_date_nanos) = date_parts(out.created_date.as_ref());
        Ok(SecretVersion {
            arn: out.arn.unwrap_or_default(),
            name: out.name.unwrap_or_default(),
            version_id: out.version_id.unwrap_or_default(),
            version_stages: out.version_stages.unwrap_or_default(),
            created_date,
            created_date_nanos,
            value,
            binary,
        })
    }

    /// One version of a secret: [`Version::Current`] (AWSCURRENT), [`Version::Label`] (a
    /// staging label) or [`Version::Id`] (a version id). [`Version::Number`] is `Unsupported`:
    /// Secrets Manager versions have no numbers. The id and the label are checked first.
    pub async fn fetch_version(&self, secret_id: &str, version: &Version) -> Result<SecretVersion> {
        check_id(secret_id)?;
        let (id, stage) = match version {
            Version::Current => (None, None),
            Version::Label(label) => {
                check_stage(secret_id, label)?;
                (None, Some(label.as_str()))
            }
            Version::Id(id) => {
                if id.is_empty() {
                    return Err(invalid(secret_id, "a version id must not be empty"));
                }
                (Some(id.as_str()), None)
            }
            Version::Number(_) => {
                return Err(Error::unsupported_version(
                    BACKEND, secret_id, version, VERSIONS,
                ));
            }
        };
        self.get_secret_value(secret_id, id, stage)
            .await
            .map_err(|err| {
                if err.is_not_found() && *version != Version::Current {
                    err.with_message(format!(
                        "Secrets Manager secret {secret_id}, version {version:?}"
                    ))
                } else {
                    err
                }
            })
    }

    /// Every version of the secret (ListSecretVersionIds, deprecated versions included),
    /// oldest first, with its staging labels and creation date: never values.
    pub async fn versions(&self, secret_id: &str) -> Result<Vec<VersionInfo>> {
        check_id(secret_id)?;
        let request = self
            .client
            .list_secret_version_ids()
            .secret_id(secret_id)
            .include_deprecated(true);
        let pages = lockbox_aws::all_pages(request.into_paginator().send(), |e| {
            map_sdk_error(e, HISTORY.name, secret_id)
        })
        .await?;
        let mut out: Vec<VersionInfo> = pages
            .iter()
            .flat_map(|page| page.versions())
            .map(|v| {
                let id = v.version_id().unwrap_or_default();
                lockbox_aws::version_info(id, v.version_stages(), v.created_date())
            })
            .collect();
        out.sort_by_key(|v| v.created.unwrap_or(i64::MAX));
        Ok(out)
    }

    /// Puts a new version of an existing secret with the given staging labels (none means
    /// AWSCURRENT, as AWS does; AWS then moves AWSPREVIOUS to the version that was current).
    /// A value that is UTF-8 is stored as SecretString, any other as SecretBinary. Returns the
    /// new version's id.
    pub async fn put_version(
        &self,
        secret_id: &str,
        value: &SecretValue,
        stages: &[String],
    ) -> Result<String> {
        check_id(secret_id)?;
        check_value(secret_id, value)?;
        if stages.len() > MAX_STAGES {
            return Err(invalid(
                secret_id,
                format!(
                    "{} staging labels given, but a version carries at most {MAX_STAGES}",
                    stages.len()
                ),
            ));
        }
        for stage in stages {
            check_stage(secret_id, stage)?;
        }
        let mut request = self
            .client
            .put_secret_value()
            .secret_id(secret_id)
            .set_version_stages((!stages.is_empty()).then(|| stages.to_vec()));
        request = match value.expose_str() {
            Some(text) => request.secret_string(text),
            None => request.secret_binary(Blob::new(value.expose_bytes())),
        };
        let out = request
            .send()
            .await
            .map_err(|e| map_sdk_error(&e, PUT.name, secret_id))?;
        tracing::debug!(secret_id, stages = ?stages, "put a Secrets Manager secret version");
        out.version_id.ok_or_else(|| {
            Error::new(
                ErrorKind::Backend,
                BACKEND,
                format!("{} on secret {secret_id} returned no version id", PUT.name),
            )
            .with_secret(secret_id)
        })
    }

    /// Creates the secret with `value` as its AWSCURRENT version, encrypted with `kms_key_id`
    /// (AWS's `aws/secretsmanager` key when `None`). `AlreadyExists` when the name is taken,
    /// also by a secret scheduled for deletion (then the message says so and how to restore).
    pub(crate) async fn create(
        &self,
        secret_id: &str,
        value: &SecretValue,
        kms_key_id: Option<&str>,
    ) -> Result<()> {
        check_id(secret_id)?;
        check_value(secret_id, value)?;
        let mut request = self
            .client
            .create_secret()
            .name(secret_id)
            .set_kms_key_id(kms_key_id.map(str::to_owned));
        request = match value.expose_str() {
            Some(text) => request.secret_string(text),
            None => request.secret_binary(Blob::new(value.expose_bytes())),
        };
        match request.send().await {
            Ok(_) => {
                tracing::debug!(secret_id, "created a Secrets Manager secret");
                Ok(())
            }
            Err(e) => {
                let err = map_sdk_error(&e, CREATE.name, secret_id);
                if err.kind() != ErrorKind::AlreadyExists {
                    return Err(err);
                }
                // AWS names a scheduled deletion in its answer (mapped above); an emulator
                // may only say "exists". Ask, so the message tells how to get the name back.
                match self.describe(secret_id).await {
                    Ok(Described {
                        deleted_date: Some(_),
                    }) => Err(scheduled_for_deletion_on_create(secret_id)),
                    _ => Err(err),
                }
            }
        }
    }

    /// DescribeSecret: metadata only, so no decryption (and no kms:Decrypt) is needed.
    /// `NotFound` when no secret has that name; a secret scheduled for deletion is found.
    pub(crate) async fn describe(&self, secret_id: &str) -> Result<Described> {
        check_id(secret_id)?;
        let out = self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| map_sdk_error(&e, DESCRIBE.name, secret_id))?;
        Ok(Described {
            deleted_date: out.deleted_date.map(|d| d.secs()),
        })
    }

    /// DeleteSecret with ForceDeleteWithoutRecovery: gone at once, with no recovery window.
    /// AWS answers success even when no such secret exists, so callers that must report
    /// `NotFound` check first.
    pub(crate) async fn delete_now(&self, secret_id: &str) -> Result<()> {
        check_id(secret_id)?;
        self.client
            .delete_secret()
            .secret_id(secret_id)
            .force_delete_without_recovery(true)
            .send()
            .await
            .map_err(|e| map_sdk_error(&e, DELETE.name, secret_id))?;
        tracing::debug!(
            secret_id,
            "deleted a Secrets Manager secret without recovery"
        );
        Ok(())
    }

    /// The secrets whose name starts with `name_prefix` (case-sensitive), leaving out secrets
    /// scheduled for deletion, each with the id of its AWSCURRENT version (from
    /// `SecretVersionsToStages`; `None` when the answer has none). Every page of ListSecrets
    /// is read, a hundred secrets a page; no values move.
    pub(crate) async fn list_current_versions(
        &self,
        name_prefix: &str,
    ) -> Result<Vec<(String, Option<String>)>> {
        let filter = Filter::builder()
            .key(FilterNameStringType::Name)
            .values(name_prefix)
            .build();
        let request = self
            .client
            .list_secrets()
            .filters(filter)
            .include_planned_deletion(false)
            .max_results(LIST_PAGE);
        let pages = lockbox_aws::all_pages(request.into_paginator().send(), |e| {
            map_sdk_error(e, LIST.name, &format!("{name_prefix}*"))
        })
        .await?;
        Ok(pages
            .iter()
            .flat_map(|page| page.secret_list())
            // The filter is a prefix match already; check again, case and all, and skip
            // anything scheduled for deletion an emulator might still return.
            .filter(|s| s.deleted_date().is_none())
            .filter_map(|s| {
                let name = s.name().filter(|name| name.starts_with(name_prefix))?;
                let current = s.secret_versions_to_stages().and_then(|versions| {
                    versions
                        .iter()
                        .find(|(_, stages)| stages.iter().any(|st| st == "AWSCURRENT"))
                        .map(|(id, _)| id.clone())
                });
                Some((name.to_owned(), current))
            })
            .collect())
    }
}

/// Whole seconds and the nanoseconds of a date AWS answered.
pub(crate) fn date_parts(d: Option<&DateTime>) -> (Option<i64>, u32) {
    d.map_or((None, 0), |d| (Some(d.secs()), d.subsec_nanos()))
}

/// The value of a GetSecretValue answer and whether it was binary; `None` when it has neither.
pub(crate) fn value_of(
    string: Option<String>,
    binary: Option<Blob>,
) -> Option<(SecretValue, bool)> {
    match (string, binary) {
        (Some(s), _) => Some((SecretValue::from_string(s), false)),
        (None, Some(b)) => Some((SecretValue::new(b.into_inner()), true)),
        (None, None) => None,
    }
}

pub(crate) fn no_value(secret_id: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        BACKEND,
        format!("Secrets Manager secret {secret_id} has neither SecretString nor SecretBinary"),
    )
    .with_secret(secret_id)
}

fn invalid(secret_id: &str, rule: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidConfig, BACKEND, rule).with_secret(secret_id)
}

/// A secret id is a name or an ARN; AWS checks the rest.
pub(crate) fn check_id(secret_id: &str) -> Result<()> {
    if secret_id.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidName,
            BACKEND,
            "a secret id (name or ARN) must not be empty",
        ));
    }
    Ok(())
}

fn check_stage(secret_id: &str, stage: &str) -> Result<()> {
    let len = stage.chars().count();
    if len == 0 || len > MAX_STAGE_CHARS {
        return Err(invalid(
            secret_id,
            format!("staging label {stage:?}: a label has 1 to {MAX_STAGE_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Values are 1 to 65,536 bytes; checked before any call so AWS never sees an oversized one.
pub(crate) fn check_value(secret_id: &str, value: &SecretValue) -> Result<()> {
    if value.is_empty() || value.len() > MAX_VALUE_BYTES {
        return Err(invalid(
            secret_id,
            format!(
                "value is {} bytes; a Secrets Manager secret holds 1 to {MAX_VALUE_BYTES} bytes",
                value.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ACTIONS;

    #[test]
    fn every_action_is_a_secretsmanager_action_and_listed_once() {
        let mut names: Vec<_> = ACTIONS.iter().map(|a| a.name).collect();
        assert!(names.iter().all(|n| n.starts_with("secretsmanager:")));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ACTIONS.len());
        let writes: Vec<_> = ACTIONS.iter().filter(|a| !a.read).map(|a| a.name).collect();
        assert_eq!(
            writes,
            [
                "secretsmanager:CreateSecret",
                "secretsmanager:PutSecretValue",
                "secretsmanager:DeleteSecret"
            ]
        );
    }

    #[test]
    fn values_are_checked_against_the_limit_before_any_call() {
        let e = check_value("s", &SecretValue::new(vec![b'x'; MAX_VALUE_BYTES + 1])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(
            e.to_string().contains("65537 bytes") && e.to_string().contains("65536"),
            "{e}"
        );
        assert!(check_value("s", &SecretValue::new(vec![0; MAX_VALUE_BYTES])).is_ok());
        let e = check_value("s", &SecretValue::from("")).unwrap_err();
        assert!(e.to_string().contains("0 bytes"), "{e}");
    }

    #[test]
    fn strings_stay_strings_and_bytes_stay_binary() {
        let (v, binary) = value_of(Some("text".into()), None).unwrap();
        assert_eq!((v.expose_bytes(), binary), (&b"text"[..], false));
        let (v, binary) = value_of(None, Some(Blob::new(vec![0xff, 0]))).unwrap();
        assert_eq!((v.expose_bytes(), binary), (&[0xff, 0][..], true));
        assert!(value_of(None, None).is_none());
    }
}
