//! Secrets Manager as a [`VersionSource`].

use async_trait::async_trait;
use lockbox_core::{Result, Version};
use lockbox_secretsmanager::SmClient;

use crate::manifest::AWSCURRENT;
use crate::sync::{FetchedVersion, VersionSource};

#[async_trait]
impl VersionSource for SmClient {
    async fn fetch(&self, secret_id: &str, stage: &str) -> Result<FetchedVersion> {
        let version = if stage == AWSCURRENT {
            Version::Current
        } else {
            Version::Label(stage.to_owned())
        };
        let v = self.fetch_version(secret_id, &version).await?;
        Ok(FetchedVersion {
            arn: v.arn,
            name: v.name,
            version_id: v.version_id,
            version_stages: v.version_stages,
            created_date: v.created_date,
            value: v.value,
            binary: v.binary,
        })
    }
}
