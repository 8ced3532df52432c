//! Which Airflow backend's rules apply ([`BackendKind`]), where Airflow names it, and what
//! is looked up ([`LookupKind`]).

use std::fmt;

use lockbox_core::{Error, Result};

/// Airflow's class path of its SSM Parameter Store secrets backend.
pub const SSM_BACKEND_CLASS: &str =
    "airflow.providers.amazon.aws.secrets.systems_manager.SystemsManagerParameterStoreBackend";

/// Airflow's class path of its Secrets Manager secrets backend.
pub const SECRETS_MANAGER_BACKEND_CLASS: &str =
    "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend";

/// The environment variable naming Airflow's secrets backend class (`[secrets] backend`).
pub const ENV_BACKEND: &str = "AIRFLOW__SECRETS__BACKEND";

/// The environment variable holding Airflow's backend kwargs JSON (`[secrets] backend_kwargs`).
pub const ENV_BACKEND_KWARGS: &str = "AIRFLOW__SECRETS__BACKEND_KWARGS";

/// Which Airflow backend's rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// `SystemsManagerParameterStoreBackend`: SSM parameters, read with decryption.
    Ssm,
    /// `SecretsManagerBackend`: Secrets Manager secrets (string values only).
    SecretsManager,
}

impl BackendKind {
    /// lockbox's name for the backend: `aws-ssm` or `aws-secretsmanager`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ssm => "aws-ssm",
            Self::SecretsManager => "aws-secretsmanager",
        }
    }

    /// Airflow's class path of the backend.
    pub fn airflow_class(self) -> &'static str {
        match self {
            Self::Ssm => SSM_BACKEND_CLASS,
            Self::SecretsManager => SECRETS_MANAGER_BACKEND_CLASS,
        }
    }

    /// Accepts lockbox's names (`aws-ssm`, `aws-secretsmanager`) and Airflow's class paths.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "aws-ssm" | SSM_BACKEND_CLASS => Ok(Self::Ssm),
            "aws-secretsmanager" | SECRETS_MANAGER_BACKEND_CLASS => Ok(Self::SecretsManager),
            other => Err(Error::invalid_config(
                "backend",
                format!(
                    "{other:?} is not supported: use aws-ssm, aws-secretsmanager, \
                     {SSM_BACKEND_CLASS} or {SECRETS_MANAGER_BACKEND_CLASS}"
                ),
            )),
        }
    }

    /// The STS role session name Airflow uses when this backend assumes `role_arn`:
    /// `Airflow_<Class>__connection`, slugified as Airflow does (lowercase, characters outside
    /// `[\w+=,.@-]` become `-`).
    pub fn role_session_name(self) -> String {
        let class = self.airflow_class().rsplit('.').next().unwrap_or_default();
        slugify_session_name(&format!("Airflow_{class}__connection"))
    }

    /// Airflow's default prefix of `kind` for this backend.
    pub fn default_prefix(self, kind: LookupKind) -> &'static str {
        match (self, kind) {
            (Self::Ssm, LookupKind::Connection) => "/airflow/connections",
            (Self::Ssm, LookupKind::Variable) => "/airflow/variables",
            (Self::Ssm, LookupKind::Config) => "/airflow/config",
            (Self::SecretsManager, LookupKind::Connection) => "airflow/connections",
            (Self::SecretsManager, LookupKind::Variable) => "airflow/variables",
            (Self::SecretsManager, LookupKind::Config) => "airflow/config",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// python-slugify with Airflow's pattern `[^\w+=,.@-]+`: lowercase, disallowed runs become
/// `-`, repeated `-` collapse, and `-` is trimmed from both ends.
fn slugify_session_name(s: &str) -> String {
    let lower = s.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    for c in lower.chars() {
        let allowed = c.is_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-');
        let c = if allowed { c } else { '-' };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.trim_matches('-').to_string()
}

/// What is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LookupKind {
    /// An Airflow connection, by connection id.
    Connection,
    /// An Airflow variable, by key.
    Variable,
    /// An Airflow configuration option, by key.
    Config,
}

impl LookupKind {
    /// `connection`, `variable` or `config`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Variable => "variable",
            Self::Config => "config",
        }
    }

    /// The kwargs key of this kind's prefix (`connections_prefix`, ...).
    pub fn prefix_key(self) -> &'static str {
        match self {
            Self::Connection => "connections_prefix",
            Self::Variable => "variables_prefix",
            Self::Config => "config_prefix",
        }
    }

    /// The kwargs key of this kind's lookup pattern (`connections_lookup_pattern`, ...).
    pub fn pattern_key(self) -> &'static str {
        match self {
            Self::Connection => "connections_lookup_pattern",
            Self::Variable => "variables_lookup_pattern",
            Self::Config => "config_lookup_pattern",
        }
    }
}

impl fmt::Display for LookupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_and_session_names() {
        assert_eq!(BackendKind::parse("aws-ssm").unwrap(), BackendKind::Ssm);
        assert_eq!(
            BackendKind::parse(SSM_BACKEND_CLASS).unwrap(),
            BackendKind::Ssm
        );
        assert_eq!(
            BackendKind::parse(SECRETS_MANAGER_BACKEND_CLASS).unwrap(),
            BackendKind::SecretsManager
        );
        assert!(
            BackendKind::parse("airflow.secrets.local_filesystem.LocalFilesystemBackend").is_err()
        );
        assert_eq!(
            BackendKind::Ssm.role_session_name(),
            "airflow_systemsmanagerparameterstorebackend__connection"
        );
        assert_eq!(
            BackendKind::SecretsManager.role_session_name(),
            "airflow_secretsmanagerbackend__connection"
        );
        assert_eq!(slugify_session_name("A b!!c--d-"), "a-b-c-d");
    }
}
