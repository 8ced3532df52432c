//! Secrets Manager as a [`VersionSource`].

use async_trait::async_trait;
use lockbox_core::{Result, Version};
use lockbox_secretsmanager::{FetchManyOptions, FetchedMany, SecretVersion, SecretsManagerClient};

use crate::manifest::AWSCURRENT;
use crate::sync::VersionSource;

#[async_trait]
impl VersionSource for SecretsManagerClient {
    async fn fetch(&self, secret_id: &str, stage: &str) -> Result<SecretVersion> {
        let version = if stage == AWSCURRENT {
            Version::Current
        } else {
            Version::Label(stage.to_owned())
        };
        self.fetch_version(secret_id, &version).await
    }

    /// BatchGetSecretValue, 20 ids a call (concurrent GetSecretValue where it is denied).
    async fn fetch_current_many(&self, secret_ids: &[String]) -> Option<FetchedMany> {
        Some(
            self.fetch_many(secret_ids, &FetchManyOptions::default())
                .await,
        )
    }
}
