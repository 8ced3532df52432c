//! The SSM backend.

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::ParameterType;

use crate::client::SsmClient;
use lockbox_core::{
    Error, ErrorKind, PutMode, Result, SecretName, SecretValue, SecretsManager, Version,
    VersionInfo,
};

use crate::actions::{DELETE, HISTORY, PUT};
use crate::errors::map_sdk_error;
use crate::names::{STANDARD_TIER_MAX_BYTES, check_name, parameter_prefix};

pub(crate) const BACKEND: &str = "aws-ssm";

/// What versions a parameter keeps, for the error of a version it cannot have.
const VERSIONS: &str = "SSM parameters have version numbers and labels";

/// What an `aws-ssm` config says: [`lockbox_aws::NodeSettings`], whose `path` is
/// `extra.ssm-parameter-path` (normalised with a leading `/`, see [`crate::normalize_path`])
/// and whose KMS key encrypts the SecureString values.
pub type SsmSettings = lockbox_aws::NodeSettings;

/// Node secrets as SecureString parameters under `<path>/<node name>/`.
#[derive(Clone, Debug)]
pub struct SsmBackend {
    client: SsmClient,
    prefix: String,
    region: String,
    kms_key_id: Option<String>,
    /// Whether listings and prefix reads descend into sub-paths (the default).
    recursive: bool,
}

impl SsmBackend {
    /// Loads credentials with aws-config's default chain (environment, profile, SSO, web
    /// identity, IMDS) and builds the backend, with [`lockbox_aws::SdkOptions`]: the SDK's own
    /// retries off (wrap the backend in [`lockbox_core::Retry`]) and bounded timeouts.
    pub async fn connect(settings: SsmSettings) -> Result<Self> {
        let prefix = parameter_prefix(&settings.path, &settings.node_name)?;
        let sdk = settings.load_sdk().await?;
        Ok(Self::from_parts(SsmClient::new(&sdk), prefix, settings))
    }

    /// Builds the backend on a client the caller configured (tests, custom credentials).
    pub fn with_client(client: Client, settings: SsmSettings) -> Result<Self> {
        Self::with_ssm_client(SsmClient::from_client(client), settings)
    }

    /// Builds the backend on a raw [`SsmClient`].
    pub fn with_ssm_client(client: SsmClient, settings: SsmSettings) -> Result<Self> {
        let prefix = parameter_prefix(&settings.path, &settings.node_name)?;
        Ok(Self::from_parts(client, prefix, settings))
    }

    fn from_parts(client: SsmClient, prefix: String, settings: SsmSettings) -> Self {
        Self {
            client,
            prefix,
            region: settings.region,
            kms_key_id: settings.kms_key_id,
            recursive: true,
        }
    }

    /// Listings and prefix reads see only the parameters directly under the path they ask
    /// for, not those of sub-paths (GetParametersByPath without `Recursive`), as chamber
    /// reads a service: `/app/token` but not `/app/prod/token`.
    #[must_use]
    pub fn one_level(mut self) -> Self {
        self.recursive = false;
        self
    }

    /// `<path>/<node name>`, the prefix of every parameter this backend touches.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full parameter name of `name`, checked against AWS's rules.
    pub fn parameter_name(&self, name: &SecretName) -> Result<String> {
        let full = format!("{}/{}", self.prefix, name);
        check_name(&full, &self.region, "secret name").map_err(|e| {
            Error::new(ErrorKind::InvalidName, BACKEND, e.message().to_string()).with_secret(name)
        })?;
        Ok(full)
    }

    /// The raw client the backend reads and writes with.
    pub fn client(&self) -> &SsmClient {
        &self.client
    }

    async fn read(&self, name: &SecretName, parameter: String) -> Result<SecretValue> {
        get_parameter(&self.client, &parameter, name.as_str()).await
    }
}

/// Reads one parameter by its full name (optionally `name:version` or `name:label`) with
/// decryption. Only ParameterNotFound is `NotFound`: a version or label the parameter does not
/// have (ParameterVersionNotFound) is an error, as in Airflow's SSM backend, which treats only
/// ParameterNotFound as absent. `secret` is what errors call it. For callers that address
/// parameters outside a node prefix (Airflow-style lookups).
pub async fn read_parameter(
    client: &SsmClient,
    parameter: &str,
    secret: &str,
) -> Result<SecretValue> {
    get_parameter(client, parameter, secret)
        .await
        .map_err(crate::errors::selector_not_found_is_an_error)
}

/// GetParameter with decryption; a missing version or label is `NotFound` (the backend's own
/// reads of a version selector).
async fn get_parameter(client: &SsmClient, parameter: &str, secret: &str) -> Result<SecretValue> {
    client
        .get_parameter(parameter, true)
        .await
        .map(|p| p.value)
        .map_err(|e| e.with_secret(secret))
}

/// The value as text, if SSM can hold it: UTF-8, 1 to 4096 bytes (standard tier).
fn check_value<'a>(name: &SecretName, value: &'a SecretValue) -> Result<&'a str> {
    let Some(text) = value.expose_str() else {
        return Err(Error::new(
            ErrorKind::Unsupported,
            BACKEND,
            "SSM parameters hold text, and this value is not UTF-8",
        )
        .with_secret(name));
    };
    if text.is_empty() || value.len() > STANDARD_TIER_MAX_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            BACKEND,
            format!(
                "value is {} bytes; a standard-tier parameter holds 1 to {STANDARD_TIER_MAX_BYTES} bytes",
                value.len()
            ),
        )
        .with_secret(name));
    }
    Ok(text)
}

#[async_trait]
impl SecretsManager for SsmBackend {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self, name: &SecretName) -> String {
        format!("SSM parameter {}/{}", self.prefix, name)
    }

    async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
        let parameter = self.parameter_name(name)?;
        self.read(name, parameter).await
    }

    async fn get_version(&self, name: &SecretName, version: &Version) -> Result<SecretValue> {
        let parameter = self.parameter_name(name)?;
        let selected = match version {
            Version::Current => parameter,
            Version::Number(n) => format!("{parameter}:{n}"),
            Version::Label(label) => format!("{parameter}:{label}"),
            Version::Id(_) => {
                return Err(Error::unsupported_version(BACKEND, name, version, VERSIONS));
            }
        };
        self.read(name, selected).await
    }

    fn check_put(&self, name: &SecretName, value: &SecretValue) -> Result<()> {
        self.parameter_name(name)?;
        check_value(name, value).map(drop)
    }

    async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
        let parameter = self.parameter_name(name)?;
        let text = check_value(name, value)?;
        self.client
            .sdk()
            .put_parameter()
            .name(&parameter)
            .value(text)
            .r#type(ParameterType::SecureString)
            .overwrite(mode == PutMode::Overwrite)
            .set_key_id(self.kms_key_id.clone())
            .send()
            .await
            .map_err(|e| map_sdk_error(&e, PUT.name, name.as_str(), &parameter))?;
        tracing::debug!(secret = %name, parameter, "stored SSM parameter");
        Ok(())
    }

    async fn delete(&self, name: &SecretName) -> Result<()> {
        let parameter = self.parameter_name(name)?;
        self.client
            .sdk()
            .delete_parameter()
            .name(&parameter)
            .send()
            .await
            .map_err(|e| map_sdk_error(&e, DELETE.name, name.as_str(), &parameter))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        let mut names: Vec<SecretName> = self
            .under(prefix, false)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// GetParametersByPath, recursive (unless [`SsmBackend::one_level`]) and with decryption:
    /// ten parameters a call, names and values together, so a prefix of 100 secrets takes 10
    /// calls.
    async fn read_prefix(&self, prefix: &str) -> Result<Vec<(SecretName, SecretValue)>> {
        let mut out = self.under(prefix, true).await?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    /// DescribeParameters under the same path as [`read_prefix`](Self::read_prefix) (and as
    /// recursive): fifty parameters a call, each one's version number and modification date,
    /// no values.
    async fn version_tags(&self, prefix: &str) -> Result<Vec<(SecretName, Option<String>)>> {
        let dir = self.path_dir(prefix);
        let mut tags: Vec<(SecretName, Option<String>)> = self
            .client
            .version_tags(&dir, self.recursive)
            .await
            .map_err(|e| e.with_secret(prefix))?
            .into_iter()
            .filter_map(|(name, tag)| Some((self.relative(&name, prefix)?, Some(tag))))
            .collect();
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        tags.dedup_by(|a, b| a.0 == b.0);
        Ok(tags)
    }

    /// GetParameterHistory without decryption: version numbers, labels, dates and
    /// `LastModifiedUser`, never values.
    async fn history(&self, name: &SecretName) -> Result<Vec<VersionInfo>> {
        let parameter = self.parameter_name(name)?;
        let request = self
            .client
            .sdk()
            .get_parameter_history()
            .name(&parameter)
            .with_decryption(false);
        let pages = lockbox_aws::all_pages(request.into_paginator().send(), |e| {
            map_sdk_error(e, HISTORY.name, name.as_str(), &parameter)
        })
        .await?;
        let mut out: Vec<VersionInfo> = pages
            .iter()
            .flat_map(|page| page.parameters())
            .map(|h| {
                let date = h.last_modified_date();
                let mut v = lockbox_aws::version_info(h.version().to_string(), h.labels(), date);
                v.changed_by = h.last_modified_user().map(str::to_owned);
                v
            })
            .collect();
        out.sort_by_key(|v| v.version.parse::<u64>().unwrap_or(u64::MAX));
        Ok(out)
    }

    async fn has(&self, name: &SecretName) -> Result<bool> {
        let parameter = self.parameter_name(name)?;
        // Without decryption: existence needs no KMS permission.
        match self.client.get_parameter(&parameter, false).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.with_secret(name)),
        }
    }

    /// GetParameters through [`SsmClient::get_parameters`]: ten names a call, up to ten
    /// calls at once, one at a time once throttled. One result per name, in order.
    async fn get_many(&self, names: &[SecretName]) -> Vec<Result<SecretValue>> {
        let fetch = |parameters: Vec<String>| async move {
            let answers = self.client.get_parameters(&parameters, true).await;
            answers.into_iter().map(|p| p.map(|p| p.value)).collect()
        };
        lockbox_core::get_many_by_key(names, |name| self.parameter_name(name), fetch).await
    }
}

impl SsmBackend {
    /// The deepest SSM path `prefix` names, to ask GetParametersByPath for (recursively), so
    /// a listing or prefix read never pages through the node's other directories.
    fn path_dir(&self, prefix: &str) -> String {
        match prefix.rfind('/') {
            Some(i) => format!("{}/{}", self.prefix, &prefix[..i]),
            None => self.prefix.clone(),
        }
    }

    /// The secrets whose names start with `prefix` and their values (ciphertext when not
    /// `decrypt`), from one GetParametersByPath (recursive unless [`SsmBackend::one_level`]) under [`Self::path_dir`].
    async fn under(&self, prefix: &str, decrypt: bool) -> Result<Vec<(SecretName, SecretValue)>> {
        let dir = self.path_dir(prefix);
        let found = self
            .client
            .get_parameters_by_path(&dir, self.recursive, decrypt)
            .await
            .map_err(|e| e.with_secret(prefix))?;
        Ok(found
            .into_iter()
            .filter_map(|p| Some((self.relative(&p.name, prefix)?, p.value)))
            .collect())
    }

    /// The secret name of the full parameter name `parameter`, if it is this node's and
    /// starts with `prefix`.
    fn relative(&self, parameter: &str, prefix: &str) -> Option<SecretName> {
        let rel = parameter.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        if !rel.starts_with(prefix) {
            return None;
        }
        SecretName::new(rel).ok()
    }
}
