//! The node-secrets backend: `<secrets-manager-path>/<node name>/<secret>`.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use lockbox_core::{
    Error, ErrorKind, PutMode, Result, SecretName, SecretValue, SecretsManager, Version,
    VersionInfo,
};

use crate::BACKEND;
use crate::batch::FetchManyOptions;
use crate::client::{SecretsManagerClient, check_value};
use crate::names::{MAX_NAME_CHARS, check_secret_id, is_allowed, secret_prefix};

/// What an `aws-secretsmanager` config says: [`lockbox_aws::NodeSettings`], whose `path` is
/// `extra.secrets-manager-path` (normalised without a leading `/`, see
/// [`crate::normalize_path`]) and whose KMS key (AWS's `aws/secretsmanager` when `None`)
/// encrypts new secrets.
pub type SecretsManagerSettings = lockbox_aws::NodeSettings;

/// Node secrets under `<secrets-manager-path>/<node name>/<secret>`; implements
/// [`lockbox_core::SecretsManager`].
///
/// - `get`/`get_version` read with GetSecretValue: AWSCURRENT, a staging label or a version id.
///   UTF-8 values are written as SecretString, other bytes as SecretBinary.
/// - `put` with [`PutMode::Create`] is CreateSecret, which AWS refuses when the name is taken,
///   also by a secret scheduled for deletion. [`PutMode::Overwrite`] is PutSecretValue (a new
///   AWSCURRENT version; the old one becomes AWSPREVIOUS), or CreateSecret when absent.
/// - `delete` is DeleteSecret with ForceDeleteWithoutRecovery: the secret is gone at once,
///   with no recovery window, so a failed `init` can be rolled back and retried straight away
///   (a 7 to 30 day window would hold the name and block the retry). A secret already
///   scheduled for deletion is deleted for good too; `NotFound` only when there is none.
/// - `has` is DescribeSecret (no decryption); a secret scheduled for deletion counts as
///   existing, because it still blocks CreateSecret of its name. Reading or writing it fails
///   with a `Backend` error that says it is scheduled for deletion and how to restore it.
/// - `list` is ListSecrets with a name filter on the node prefix, leaving out secrets
///   scheduled for deletion. AWS documents ListSecrets as eventually consistent: a secret
///   created or deleted moments ago may be missing from, or still in, its answer.
/// - `get_many` is BatchGetSecretValue, 20 names a call, with per-name errors; where that is
///   denied (it needs `"Resource": "*"`) or unsupported, concurrent GetSecretValue calls.
/// - `read_prefix` is `list` then `get_many`; `history` is ListSecretVersionIds.
/// - `version_tags` is ListSecrets too: each secret's AWSCURRENT version id, 100 a call.
#[derive(Clone, Debug)]
pub struct SecretsManagerBackend {
    client: SecretsManagerClient,
    prefix: String,
    kms_key_id: Option<String>,
}

impl SecretsManagerBackend {
    /// Loads credentials with aws-config's default chain and builds the backend, with the
    /// SDK's retries off and the timeouts of [`SecretsManagerClient::connect`]. Wrap the backend in
    /// [`lockbox_core::Retry`] for retries.
    pub async fn connect(settings: SecretsManagerSettings) -> Result<Self> {
        let prefix = secret_prefix(&settings.path, &settings.node_name)?;
        let sdk = settings.load_sdk().await?;
        Ok(Self::from_parts(
            SecretsManagerClient::new(&sdk),
            prefix,
            settings,
        ))
    }

    /// Builds the backend on a client the caller configured (tests, custom credentials).
    /// `region` and `endpoint_url` of `settings` are not used: the client has its own.
    pub fn with_client(client: Client, settings: SecretsManagerSettings) -> Result<Self> {
        let prefix = secret_prefix(&settings.path, &settings.node_name)?;
        Ok(Self::from_parts(
            SecretsManagerClient::from_client(client),
            prefix,
            settings,
        ))
    }

    fn from_parts(
        client: SecretsManagerClient,
        prefix: String,
        settings: SecretsManagerSettings,
    ) -> Self {
        Self {
            client,
            prefix,
            kms_key_id: settings.kms_key_id,
        }
    }

    /// `<normalised path>/<node name>`, the prefix of every secret this backend touches.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full secret name of `name`: `<normalised path>/<node name>/<name>`, such as
    /// `polygon-edge/nodes/node1/validator-key` (no leading `/`; see
    /// [`crate::normalize_path`]), checked against AWS's rules (1 to 512 characters of
    /// `a-z A-Z 0-9 / _ + = . @ -`).
    pub fn secret_id(&self, name: &SecretName) -> Result<String> {
        let id = format!("{}/{}", self.prefix, name);
        check_secret_id(&id).map_err(|rule| {
            Error::new(ErrorKind::InvalidName, BACKEND, rule.message()).with_secret(name)
        })?;
        Ok(id)
    }

    /// The raw client this backend calls, for any secret by name or ARN.
    pub fn client(&self) -> &SecretsManagerClient {
        &self.client
    }

    /// PutSecretValue, or CreateSecret when the secret does not exist yet.
    async fn overwrite(&self, id: &str, value: &SecretValue) -> Result<()> {
        match self.client.put_version(id, value, &[]).await {
            Err(e) if e.is_not_found() => {}
            other => return other.map(drop),
        }
        match self
            .client
            .create(id, value, self.kms_key_id.as_deref())
            .await
        {
            // Created by someone else in between: overwrite it after all.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                self.client.put_version(id, value, &[]).await.map(drop)
            }
            other => other,
        }
    }
}

#[async_trait]
impl SecretsManager for SecretsManagerBackend {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self, name: &SecretName) -> String {
        format!("Secrets Manager secret {}/{}", self.prefix, name)
    }

    async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
        self.get_version(name, &Version::Current).await
    }

    async fn get_version(&self, name: &SecretName, version: &Version) -> Result<SecretValue> {
        let id = self.secret_id(name)?;
        self.client
            .fetch_version(&id, version)
            .await
            .map(|v| v.value)
            .map_err(|e| e.with_secret(name))
    }

    fn check_put(&self, name: &SecretName, value: &SecretValue) -> Result<()> {
        let id = self.secret_id(name)?;
        check_value(&id, value).map_err(|e| e.with_secret(name))
    }

    async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
        let id = self.secret_id(name)?;
        check_value(&id, value).map_err(|e| e.with_secret(name))?;
        let result = match mode {
            PutMode::Create => {
                self.client
                    .create(&id, value, self.kms_key_id.as_deref())
                    .await
            }
            PutMode::Overwrite => self.overwrite(&id, value).await,
        };
        result.map_err(|e| e.with_secret(name))
    }

    async fn delete(&self, name: &SecretName) -> Result<()> {
        let id = self.secret_id(name)?;
        // A forced DeleteSecret of a missing secret succeeds, so ask first to report NotFound.
        self.client
            .describe(&id)
            .await
            .map_err(|e| e.with_secret(name))?;
        self.client
            .delete_now(&id)
            .await
            .map_err(|e| e.with_secret(name))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        Ok(self
            .version_tags(prefix)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// ListSecrets, a hundred secrets a call: each secret's AWSCURRENT version id, no values.
    async fn version_tags(&self, prefix: &str) -> Result<Vec<(SecretName, Option<String>)>> {
        let wanted = format!("{}/{}", self.prefix, prefix);
        // No secret name can hold these, so no secret can match: spare the call.
        if !prefix.chars().all(is_allowed) || wanted.chars().count() > MAX_NAME_CHARS {
            return Ok(Vec::new());
        }
        let strip = format!("{}/", self.prefix);
        let mut tags: Vec<(SecretName, Option<String>)> = self
            .client
            .list_current_versions(&wanted)
            .await
            .map_err(|e| e.with_secret(format!("{prefix}*")))?
            .into_iter()
            .filter_map(|(full, tag)| {
                let rel = full.strip_prefix(&strip)?;
                Some((SecretName::new(rel).ok()?, tag))
            })
            .collect();
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        tags.dedup_by(|a, b| a.0 == b.0);
        Ok(tags)
    }

    async fn has(&self, name: &SecretName) -> Result<bool> {
        let id = self.secret_id(name)?;
        match self.client.describe(&id).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.with_secret(name)),
        }
    }

    /// ListSecretVersionIds: every version with its stages and date, never values.
    async fn history(&self, name: &SecretName) -> Result<Vec<VersionInfo>> {
        let id = self.secret_id(name)?;
        self.client
            .versions(&id)
            .await
            .map_err(|e| e.with_secret(name))
    }

    async fn get_many(&self, names: &[SecretName]) -> Vec<Result<SecretValue>> {
        let fetch = |ids: Vec<String>| async move {
            let fetched = self
                .client
                .fetch_many(&ids, &FetchManyOptions::default())
                .await;
            fetched
                .results
                .into_iter()
                .map(|v| v.map(|v| v.value))
                .collect()
        };
        lockbox_core::get_many_by_key(names, |name| self.secret_id(name), fetch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(path: &str, node: &str) -> Result<SecretsManagerBackend> {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .build();
        SecretsManagerBackend::with_client(
            Client::from_conf(config),
            SecretsManagerSettings {
                region: "us-east-1".into(),
                path: path.into(),
                node_name: node.into(),
                kms_key_id: None,
                endpoint_url: None,
            },
        )
    }

    fn n(s: &str) -> SecretName {
        SecretName::new(s).unwrap()
    }

    #[test]
    fn secret_ids_join_the_normalised_path_node_and_name() {
        let b = backend("/polygon-edge//nodes/", "node1").unwrap();
        assert_eq!(b.prefix(), "polygon-edge/nodes/node1");
        assert_eq!(
            b.secret_id(&n("validator-key")).unwrap(),
            "polygon-edge/nodes/node1/validator-key"
        );
        assert_eq!(
            b.location(&n("network-key")),
            "Secrets Manager secret polygon-edge/nodes/node1/network-key"
        );
        let b = backend("", "node1").unwrap();
        assert_eq!(b.secret_id(&n("a/b")).unwrap(), "node1/a/b");
    }

    #[test]
    fn too_long_ids_are_invalid_names() {
        let b = backend(&"p".repeat(400), "node").unwrap();
        let e = b.secret_id(&n(&"x".repeat(200))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidName);
        assert!(e.to_string().contains("at most 512"), "{e}");
    }

    #[test]
    fn bad_settings_name_the_field() {
        let e = backend("/ok", "").unwrap_err();
        assert!(e.to_string().contains("name"), "{e}");
        let e = backend("/has space", "n").unwrap_err();
        assert!(e.to_string().contains("extra.secrets-manager-path"), "{e}");
    }

    #[tokio::test]
    async fn bad_input_is_refused_before_any_call() {
        // The client points nowhere: any call would fail as Unavailable or Unauthenticated.
        let b = backend("/p", "n").unwrap();
        let e = b
            .put(
                &n("big"),
                &SecretValue::new(vec![1; 65_537]),
                PutMode::Create,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
        assert!(e.to_string().contains("65536"), "{e}");
        assert_eq!(e.secret(), Some("big"));
        let e = b
            .put(&n("empty"), &SecretValue::from(""), PutMode::Overwrite)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
        let e = b
            .get_version(&n("k"), &Version::Number(3))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        assert_eq!(e.secret(), Some("k"));
        assert_eq!(
            e.message(),
            "Secrets Manager versions have ids and staging labels, not version numbers (3)"
        );
        assert!(b.list("has space").await.unwrap().is_empty());
    }
}
