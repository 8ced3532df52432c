//! Opening the backend a config describes.

use std::path::Path;
use std::sync::Arc;

use lockbox_core::{Error, ErrorKind, SecretsManager};
#[cfg(any(
    feature = "aws-ssm",
    feature = "aws-secretsmanager",
    feature = "hashicorp-vault"
))]
use lockbox_core::{Retry, RetryPolicy};

use crate::{SecretsManagerConfig, Settings};

/// The local backend on a data directory, as `--data-dir` selects it.
#[cfg(feature = "local")]
pub fn open_data_dir(dir: &Path) -> Arc<dyn SecretsManager> {
    Arc::new(lockbox_local::LocalBackend::new(dir))
}

/// Opens the backend `config` describes. Cloud backends are wrapped in [`Retry`] with the
/// default policy (their SDK's own retries are off, so attempts do not multiply). `config_dir`
/// is the directory of the config file: a relative `extra.path` of a local config is resolved
/// against it, so the config works from any working directory.
///
/// Each backend needs its cargo feature (`local`, `aws-ssm`, `aws-secretsmanager`,
/// `hashicorp-vault`, all on by default); a type whose backend is not built is an [`ErrorKind::Unsupported`] error.
///
/// [`Retry`]: lockbox_core::Retry
#[cfg_attr(not(feature = "local"), allow(unused_variables))]
pub async fn open(
    config: &SecretsManagerConfig,
    config_dir: &Path,
) -> Result<Arc<dyn SecretsManager>, Error> {
    let settings: Settings = config.validate()?;
    match settings {
        #[cfg(feature = "local")]
        Settings::Local { path } => Ok(open_data_dir(&config_dir.join(path))),
        #[cfg(feature = "aws-ssm")]
        Settings::AwsSsm {
            region,
            parameter_path,
            kms_key_id,
        } => {
            let backend = lockbox_ssm::SsmBackend::connect(lockbox_ssm::SsmSettings {
                region,
                path: parameter_path,
                node_name: config.name.clone(),
                kms_key_id,
                endpoint_url: config.server_url.clone(),
            })
            .await?;
            Ok(Arc::new(Retry::new(backend, RetryPolicy::default())))
        }
        #[cfg(feature = "aws-secretsmanager")]
        Settings::AwsSecretsManager {
            region,
            secrets_manager_path,
            kms_key_id,
        } => {
            let backend = lockbox_secretsmanager::SecretsManagerBackend::connect(
                lockbox_secretsmanager::SecretsManagerSettings {
                    region,
                    path: secrets_manager_path,
                    node_name: config.name.clone(),
                    kms_key_id,
                    endpoint_url: config.server_url.clone(),
                },
            )
            .await?;
            Ok(Arc::new(Retry::new(backend, RetryPolicy::default())))
        }
        #[cfg(feature = "hashicorp-vault")]
        Settings::HashicorpVault {
            server_url,
            token,
            namespace,
        } => {
            let mut settings = lockbox_vault::VaultSettings::new(server_url, config.name.clone())
                .namespace(namespace);
            if let Some(token) = token {
                settings = settings.token(token.expose());
            }
            let backend = lockbox_vault::VaultBackend::from_env(settings)?;
            Ok(Arc::new(Retry::new(backend, RetryPolicy::default())))
        }
        other => Err(Error::input(
            ErrorKind::Unsupported,
            format!(
                "type {} is recognised but this build of lockbox has no backend for it",
                other.manager_type()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "local")]
    #[tokio::test]
    async fn local_config_resolves_path_against_the_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        let c = SecretsManagerConfig::from_json(
            r#"{"type": "local", "name": "n", "extra": {"path": "node"}}"#,
        )
        .unwrap();
        use lockbox_core::{SecretName, SecretValue, SecretsManagerExt};
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
