//! Opening the backend a config describes.

use std::path::Path;
use std::sync::Arc;

use lockbox_core::{Error, ErrorKind, Retry, RetryPolicy, SecretsManager};
use lockbox_local::LocalBackend;
use lockbox_secretsmanager::{SmBackend, SmSettings};
use lockbox_ssm::{SsmBackend, SsmSettings};

use crate::{ManagerType, SecretsManagerConfig};

/// The local backend on a data directory, as `--data-dir` selects it.
pub fn open_data_dir(dir: &Path) -> Arc<dyn SecretsManager> {
    Arc::new(LocalBackend::new(dir))
}

/// Opens the backend `config` describes. Cloud backends are wrapped in [`Retry`] with the
/// default policy (their SDK's own retries are off, so attempts do not multiply). `config_dir` is the directory of the config file:
/// a relative `extra.path` of a local config is resolved against it, so the config works from
/// any working directory.
pub async fn open(
    config: &SecretsManagerConfig,
    config_dir: &Path,
) -> Result<Arc<dyn SecretsManager>, Error> {
    config.validate()?;
    match config.manager_type {
        ManagerType::Local => {
            let path = Path::new(&config.extra["path"]);
            Ok(open_data_dir(&config_dir.join(path)))
        }
        ManagerType::AwsSsm => {
            let backend = SsmBackend::connect(SsmSettings {
                region: config.extra["region"].clone(),
                parameter_path: config.extra["ssm-parameter-path"].clone(),
                node_name: config.name.clone(),
                kms_key_id: config
                    .extra
                    .get("kms-key-id")
                    .filter(|k| !k.is_empty())
                    .cloned(),
                endpoint_url: config.server_url.clone(),
            })
            .await?;
            Ok(Arc::new(Retry::new(backend, RetryPolicy::default())))
        }
        ManagerType::AwsSecretsManager => {
            let backend = SmBackend::connect(SmSettings {
                region: config.extra["region"].clone(),
                secrets_manager_path: config.extra["secrets-manager-path"].clone(),
                node_name: config.name.clone(),
                kms_key_id: config
                    .extra
                    .get("kms-key-id")
                    .filter(|k| !k.is_empty())
                    .cloned(),
                endpoint_url: config.server_url.clone(),
            })
            .await?;
            Ok(Arc::new(Retry::new(backend, RetryPolicy::default())))
        }
        other => Err(Error::new(
            ErrorKind::Unsupported,
            "lockbox",
            format!("type {other} is recognised but this build of lockbox has no backend for it"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockbox_core::{SecretName, SecretValue, SecretsManagerExt};

    #[tokio::test]
    async fn local_config_resolves_path_against_the_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        let c = SecretsManagerConfig::from_json(
            r#"{"type": "local", "name": "n", "extra": {"path": "node"}}"#,
        )
        .unwrap();
        let backend = open(&c, dir.path()).await.unwrap();
        backend
            .create(&SecretName::new("x").unwrap(), &SecretValue::from("v"))
            .await
            .unwrap();
        assert!(dir.path().join("node/secrets/x").is_file());
    }

    #[tokio::test]
    async fn types_without_a_backend_say_so() {
        let c = SecretsManagerConfig::from_json(
            r#"{"type": "gcp-ssm", "name": "n", "extra": {"project-id": "p", "gcp-ssm-cred": "/c.json"}}"#,
        )
        .unwrap();
        let e = open(&c, Path::new(".")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.to_string().contains("gcp-ssm"), "{e}");
    }
}
