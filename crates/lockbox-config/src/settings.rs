//! Validation: from a config's strings to typed [`Settings`].

use std::path::PathBuf;

use lockbox_core::{Error, SecretName};

use crate::{ManagerType, SecretsManagerConfig, Token, is_region_name};

/// The `extra` keys, as the config file spells them. Only the parser reads them; everything
/// else takes [`Settings`]. They are public for messages that name a field (`extra.KEY`).
pub mod keys {
    /// `local`: the data directory.
    pub const PATH: &str = "path";
    /// `aws-ssm`, `aws-secretsmanager`: the AWS region.
    pub const REGION: &str = "region";
    /// `aws-ssm`: the parameter path nodes live under.
    pub const SSM_PARAMETER_PATH: &str = "ssm-parameter-path";
    /// `aws-secretsmanager`: the secret name prefix nodes live under.
    pub const SECRETS_MANAGER_PATH: &str = "secrets-manager-path";
    /// `aws-ssm`, `aws-secretsmanager`: a customer managed KMS key (optional).
    pub const KMS_KEY_ID: &str = "kms-key-id";
    /// `gcp-ssm`: the Google Cloud project.
    pub const PROJECT_ID: &str = "project-id";
    /// `gcp-ssm`: the credentials file.
    pub const GCP_SSM_CRED: &str = "gcp-ssm-cred";
    /// `hashicorp-vault`: environment variables that may carry the token instead of the
    /// config file, first set wins (a token on disk or in argv is easier to leak).
    pub const VAULT_TOKEN_ENV: [&str; 2] = ["LOCKBOX_TOKEN", "VAULT_TOKEN"];
}

/// The name errors give an `extra` key: `extra.KEY`.
pub fn extra_field(key: &str) -> String {
    format!("extra.{key}")
}

/// A valid config's type-specific settings, typed: what [`open`](crate::open) and policies
/// consume. [`SecretsManagerConfig::validate`] makes them; the node's name and `server_url`
/// stay on the config.
#[derive(Clone, Debug)]
pub enum Settings {
    /// Files under a data directory.
    Local {
        /// `extra.path`, as written (a relative path is relative to the config file's directory).
        path: PathBuf,
    },
    /// AWS Systems Manager Parameter Store.
    AwsSsm {
        /// `extra.region`, a region name.
        region: String,
        /// `extra.ssm-parameter-path`, not empty.
        parameter_path: String,
        /// `extra.kms-key-id`, when set and not empty.
        kms_key_id: Option<String>,
    },
    /// AWS Secrets Manager.
    AwsSecretsManager {
        /// `extra.region`, a region name.
        region: String,
        /// `extra.secrets-manager-path`, not empty.
        secrets_manager_path: String,
        /// `extra.kms-key-id`, when set and not empty.
        kms_key_id: Option<String>,
    },
    /// HashiCorp Vault or OpenBao, KV version 2 under mount `secret`.
    HashicorpVault {
        /// `server_url`.
        server_url: String,
        /// `token`; redacted in Debug. `None` when the config has none and one of
        /// [`keys::VAULT_TOKEN_ENV`] is set: the backend reads it from there.
        token: Option<Token>,
        /// `namespace`, when set.
        namespace: Option<String>,
    },
    /// Google Cloud Secret Manager (lockbox has no backend for it).
    GcpSsm {
        /// `extra.project-id`.
        project_id: String,
        /// `extra.gcp-ssm-cred`.
        credentials_file: PathBuf,
    },
}

impl Settings {
    /// The type these settings are for.
    pub fn manager_type(&self) -> ManagerType {
        match self {
            Self::Local { .. } => ManagerType::Local,
            Self::AwsSsm { .. } => ManagerType::AwsSsm,
            Self::AwsSecretsManager { .. } => ManagerType::AwsSecretsManager,
            Self::HashicorpVault { .. } => ManagerType::HashicorpVault,
            Self::GcpSsm { .. } => ManagerType::GcpSsm,
        }
    }

    /// The AWS region, for the AWS types.
    pub fn region(&self) -> Option<&str> {
        match self {
            Self::AwsSsm { region, .. } | Self::AwsSecretsManager { region, .. } => Some(region),
            _ => None,
        }
    }

    /// The customer managed KMS key, for the AWS types that name one.
    pub fn kms_key_id(&self) -> Option<&str> {
        match self {
            Self::AwsSsm { kms_key_id, .. } | Self::AwsSecretsManager { kms_key_id, .. } => {
                kms_key_id.as_deref()
            }
            _ => None,
        }
    }
}

impl ManagerType {
    /// `extra` keys this type reads: (key, required).
    pub fn extra_keys(self) -> &'static [(&'static str, bool)] {
        use keys::*;
        match self {
            Self::Local => &[(PATH, true)],
            Self::AwsSsm => &[
                (REGION, true),
                (SSM_PARAMETER_PATH, true),
                (KMS_KEY_ID, false),
            ],
            Self::AwsSecretsManager => &[
                (REGION, true),
                (SECRETS_MANAGER_PATH, true),
                (KMS_KEY_ID, false),
            ],
            Self::HashicorpVault => &[],
            Self::GcpSsm => &[(PROJECT_ID, true), (GCP_SSM_CRED, true)],
        }
    }
}

impl SecretsManagerConfig {
    /// Checks every field the type needs, naming the first field that is wrong, and returns
    /// the type's settings.
    pub fn validate(&self) -> Result<Settings, Error> {
        if self.name.is_empty() {
            return Err(Error::invalid_config("name", "is required"));
        }
        if self.name.contains('/') || SecretName::new(self.name.as_str()).is_err() {
            return Err(Error::invalid_config(
                "name",
                format!(
                    "{:?} must be one path segment of A-Z a-z 0-9 _ . - + = @",
                    self.name
                ),
            ));
        }
        if let Some(url) = &self.server_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Error::invalid_config(
                "server_url",
                format!("{url:?} must start with http:// or https://"),
            ));
        }
        let settings = self.settings()?;
        let keys = self.manager_type.extra_keys();
        if let Some(unknown) = self
            .extra
            .keys()
            .find(|k| !keys.iter().any(|(known, _)| known == k))
        {
            let known: Vec<_> = keys.iter().map(|(k, _)| *k).collect();
            return Err(Error::invalid_config(
                extra_field(unknown),
                format!(
                    "is not a setting of type {} (it reads: {})",
                    self.manager_type,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        if let Some(region) = settings.region()
            && !is_region_name(region)
        {
            return Err(Error::invalid_config(
                extra_field(keys::REGION),
                format!("{region:?} is not an AWS region name (like us-east-1)"),
            ));
        }
        Ok(settings)
    }

    /// The type's settings; a missing required one is an error naming it, in the order of
    /// [`ManagerType::extra_keys`].
    fn settings(&self) -> Result<Settings, Error> {
        let missing = |field: &str| {
            Error::invalid_config(field, format!("is required for type {}", self.manager_type))
        };
        let optional = |key: &str| self.extra.get(key).filter(|v| !v.is_empty()).cloned();
        let required = |key: &str| optional(key).ok_or_else(|| missing(&extra_field(key)));
        Ok(match self.manager_type {
            ManagerType::Local => Settings::Local {
                path: required(keys::PATH)?.into(),
            },
            ManagerType::AwsSsm => Settings::AwsSsm {
                region: required(keys::REGION)?,
                parameter_path: required(keys::SSM_PARAMETER_PATH)?,
                kms_key_id: optional(keys::KMS_KEY_ID),
            },
            ManagerType::AwsSecretsManager => Settings::AwsSecretsManager {
                region: required(keys::REGION)?,
                secrets_manager_path: required(keys::SECRETS_MANAGER_PATH)?,
                kms_key_id: optional(keys::KMS_KEY_ID),
            },
            ManagerType::HashicorpVault => Settings::HashicorpVault {
                token: match &self.token {
                    Some(token) => Some(token.clone()),
                    None if keys::VAULT_TOKEN_ENV
                        .iter()
                        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty())) =>
                    {
                        None
                    }
                    None => {
                        return Err(Error::invalid_config(
                            "token",
                            format!(
                                "is required for type {} (in the config, or in the environment \
                                 variable {} or {})",
                                self.manager_type,
                                keys::VAULT_TOKEN_ENV[0],
                                keys::VAULT_TOKEN_ENV[1]
                            ),
                        ));
                    }
                },
                server_url: self
                    .server_url
                    .clone()
                    .ok_or_else(|| missing("server_url"))?,
                namespace: self.namespace.clone(),
            },
            ManagerType::GcpSsm => Settings::GcpSsm {
                project_id: required(keys::PROJECT_ID)?,
                credentials_file: required(keys::GCP_SSM_CRED)?.into(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Settings {
        SecretsManagerConfig::from_json(json)
            .unwrap()
            .validate()
            .unwrap()
    }

    #[test]
    fn validate_returns_typed_settings() {
        let s = settings(
            r#"{"type": "aws-ssm", "name": "n", "extra": {"region": "us-east-1", "ssm-parameter-path": "/p", "kms-key-id": ""}}"#,
        );
        assert!(matches!(
            &s,
            Settings::AwsSsm { region, parameter_path, kms_key_id: None }
                if region == "us-east-1" && parameter_path == "/p"
        ));
        assert_eq!(s.region(), Some("us-east-1"));
        assert_eq!(s.manager_type(), ManagerType::AwsSsm);
        let s = settings(
            r#"{"type": "aws-secretsmanager", "name": "n", "extra": {"region": "eu-west-1", "secrets-manager-path": "p", "kms-key-id": "alias/k"}}"#,
        );
        assert_eq!(s.kms_key_id(), Some("alias/k"));
        assert!(matches!(
            &s,
            Settings::AwsSecretsManager { secrets_manager_path, .. } if secrets_manager_path == "p"
        ));
        let s = settings(r#"{"type": "local", "name": "n", "extra": {"path": "d"}}"#);
        assert!(matches!(&s, Settings::Local { path } if path.as_os_str() == "d"));
        assert_eq!(s.region(), None);
        let s = settings(
            r#"{"type": "hashicorp-vault", "name": "n", "server_url": "http://v", "token": "s.SECRET"}"#,
        );
        assert!(!format!("{s:?}").contains("SECRET"));
        assert!(
            matches!(&s, Settings::HashicorpVault { token: Some(token), .. } if token.expose() == "s.SECRET")
        );
        let s = settings(
            r#"{"type": "gcp-ssm", "name": "n", "extra": {"project-id": "p", "gcp-ssm-cred": "/c.json"}}"#,
        );
        assert!(matches!(&s, Settings::GcpSsm { project_id, .. } if project_id == "p"));
    }

    #[test]
    fn validate_refuses_an_edited_config() {
        let mut c = SecretsManagerConfig::from_json(
            r#"{"type": "aws-ssm", "name": "n", "extra": {"region": "us-east-1", "ssm-parameter-path": "/p"}}"#,
        )
        .unwrap();
        c.extra.remove(keys::REGION);
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("extra.region: is required for type aws-ssm"),
            "{e}"
        );
    }
}
