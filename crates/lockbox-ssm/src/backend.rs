//! The SSM backend.

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::ParameterType;
use lockbox_core::{
    Error, ErrorKind, PutMode, Result, SecretName, SecretValue, SecretsManager, Version,
    VersionInfo,
};

use crate::actions::{DELETE, GET, GET_MANY, HISTORY, LIST, PUT};
use crate::errors::map_sdk_error;
use crate::names::{STANDARD_TIER_MAX_BYTES, check_name, parameter_prefix};

pub(crate) const BACKEND: &str = "aws-ssm";

/// GetParameters takes at most this many names a call, and GetParametersByPath answers at
/// most this many parameters a page.
const BATCH: usize = 10;

/// How many GetParameters calls one `get_many` keeps in flight: 100 names in one round trip.
/// After a throttled call the rest go one at a time.
const MAX_IN_FLIGHT: usize = 10;

/// What an `aws-ssm` config says.
#[derive(Clone, Debug)]
pub struct SsmSettings {
    /// AWS region, such as `us-east-1`.
    pub region: String,
    /// `extra.ssm-parameter-path`, normalised before use.
    pub parameter_path: String,
    /// The node's name (config `name`).
    pub node_name: String,
    /// Customer-managed KMS key for SecureString values; AWS's default key when `None`.
    pub kms_key_id: Option<String>,
    /// Custom endpoint (an emulator). Without it, aws-config also honours `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
}

/// Node secrets as SecureString parameters under `<path>/<node name>/`.
#[derive(Clone, Debug)]
pub struct SsmBackend {
    client: Client,
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
        let prefix = parameter_prefix(&settings.parameter_path, &settings.node_name)?;
        let sdk = lockbox_aws::SdkOptions::new(&settings.region, settings.endpoint_url.as_deref())
            .load()
            .await;
        Ok(Self::from_parts(Client::new(&sdk), prefix, settings))
    }

    /// Builds the backend on a client the caller configured (tests, custom credentials).
    pub fn with_client(client: Client, settings: SsmSettings) -> Result<Self> {
        let prefix = parameter_prefix(&settings.parameter_path, &settings.node_name)?;
        Ok(Self::from_parts(client, prefix, settings))
    }

    fn from_parts(client: Client, prefix: String, settings: SsmSettings) -> Self {
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

    async fn read(&self, name: &SecretName, parameter: String) -> Result<SecretValue> {
        get_parameter(&self.client, &parameter, name.as_str()).await
    }
}

/// Reads one parameter by its full name (optionally `name:version` or `name:label`) with
/// decryption. Only ParameterNotFound is `NotFound`: a version or label the parameter does not
/// have (ParameterVersionNotFound) is an error, as in Airflow's SSM backend, which treats only
/// ParameterNotFound as absent. `secret` is what errors call it. For callers that address
/// parameters outside a node prefix (Airflow-style lookups).
pub async fn read_parameter(client: &Client, parameter: &str, secret: &str) -> Result<SecretValue> {
    get_parameter(client, parameter, secret)
        .await
        .map_err(crate::errors::selector_not_found_is_an_error)
}

/// GetParameter with decryption; a missing version or label is `NotFound` (the backend's own
/// reads of a version selector).
async fn get_parameter(client: &Client, parameter: &str, secret: &str) -> Result<SecretValue> {
    let out = client
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| map_sdk_error(&e, GET.name, secret, parameter))?;
    let value = out.parameter.and_then(|p| p.value).ok_or_else(|| {
        Error::new(
            ErrorKind::Corrupt,
            BACKEND,
            format!("{} on {parameter} returned no value", GET.name),
        )
        .with_secret(secret)
    })?;
    Ok(SecretValue::from_string(value))
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
            Version::Id(id) => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    BACKEND,
                    format!(
                        "SSM parameters have version numbers and labels, not version ids ({id:?})"
                    ),
                )
                .with_secret(name));
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
            .delete_parameter()
            .name(&parameter)
            .send()
            .await
            .map_err(|e| map_sdk_error(&e, DELETE.name, name.as_str(), &parameter))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        let dir = self.path_dir(prefix);
        let mut pages = self
            .client
            .get_parameters_by_path()
            .path(&dir)
            .recursive(self.recursive)
            .with_decryption(false)
            .into_paginator()
            .send();
        let mut names = Vec::new();
        let strip = format!("{}/", self.prefix);
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_error(&e, LIST.name, prefix, &dir))?;
            for p in page.parameters() {
                let Some(rel) = p.name().and_then(|n| n.strip_prefix(&strip)) else {
                    continue;
                };
                if rel.starts_with(prefix)
                    && let Ok(n) = SecretName::new(rel)
                {
                    names.push(n);
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// GetParametersByPath, recursive (unless [`SsmBackend::one_level`]) and with decryption:
    /// ten parameters a call, names and values together, so a prefix of 100 secrets takes 10
    /// calls.
    async fn read_prefix(&self, prefix: &str) -> Result<Vec<(SecretName, SecretValue)>> {
        let dir = self.path_dir(prefix);
        let mut pages = self
            .client
            .get_parameters_by_path()
            .path(&dir)
            .recursive(self.recursive)
            .with_decryption(true)
            .max_results(BATCH as i32)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        let strip = format!("{}/", self.prefix);
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_error(&e, LIST.name, prefix, &dir))?;
            for p in page.parameters() {
                let Some(rel) = p.name().and_then(|n| n.strip_prefix(&strip)) else {
                    continue;
                };
                if !rel.starts_with(prefix) {
                    continue;
                }
                let (Ok(name), Some(value)) = (SecretName::new(rel), p.value()) else {
                    continue;
                };
                out.push((name, SecretValue::from(value)));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    /// GetParameterHistory without decryption: version numbers, labels, dates and
    /// `LastModifiedUser`, never values.
    async fn history(&self, name: &SecretName) -> Result<Vec<VersionInfo>> {
        let parameter = self.parameter_name(name)?;
        let mut pages = self
            .client
            .get_parameter_history()
            .name(&parameter)
            .with_decryption(false)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| map_sdk_error(&e, HISTORY.name, name.as_str(), &parameter))?;
            for h in page.parameters() {
                let mut v = VersionInfo::new(h.version().to_string());
                v.labels = h.labels().to_vec();
                v.created = h.last_modified_date().map(|d| d.secs());
                v.changed_by = h.last_modified_user().map(str::to_owned);
                out.push(v);
            }
        }
        out.sort_by_key(|v| v.version.parse::<u64>().unwrap_or(u64::MAX));
        Ok(out)
    }

    async fn has(&self, name: &SecretName) -> Result<bool> {
        let parameter = self.parameter_name(name)?;
        // Without decryption: existence needs no KMS permission.
        match self
            .client
            .get_parameter()
            .name(&parameter)
            .with_decryption(false)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = map_sdk_error(&e, GET.name, name.as_str(), &parameter);
                if e.is_not_found() { Ok(false) } else { Err(e) }
            }
        }
    }

    /// GetParameters, ten names a call, up to [`MAX_IN_FLIGHT`] calls at once: 100 names
    /// take about one round trip instead of ten. Once a call is throttled, the calls not yet
    /// sent go one at a time (the names of a throttled call fail with `Throttled`, for a
    /// retry wrapper to send again later). One result per name, in order.
    async fn get_many(&self, names: &[SecretName]) -> Vec<Result<SecretValue>> {
        use futures_util::StreamExt;
        use futures_util::stream::FuturesUnordered;

        let mut results: Vec<Option<Result<SecretValue>>> = vec![None; names.len()];
        let mut valid = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match self.parameter_name(name) {
                Ok(p) => valid.push((i, p)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let mut pending = valid.chunks(BATCH);
        let mut in_flight = FuturesUnordered::new();
        let mut limit = MAX_IN_FLIGHT;
        loop {
            while in_flight.len() < limit {
                let Some(chunk) = pending.next() else { break };
                in_flight.push(self.get_chunk(names, chunk));
            }
            let Some(answers) = in_flight.next().await else {
                break;
            };
            for (i, answer) in answers {
                if answer
                    .as_ref()
                    .is_err_and(|e| e.kind() == ErrorKind::Throttled)
                {
                    limit = 1;
                }
                results[i] = Some(answer);
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every slot is filled"))
            .collect()
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

    /// One GetParameters call for `chunk` (slot in `names`, parameter name): a result per slot.
    async fn get_chunk(
        &self,
        names: &[SecretName],
        chunk: &[(usize, String)],
    ) -> Vec<(usize, Result<SecretValue>)> {
        let parameters: Vec<String> = chunk.iter().map(|(_, p)| p.clone()).collect();
        match self
            .client
            .get_parameters()
            .set_names(Some(parameters))
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => chunk
                .iter()
                .map(|(i, parameter)| {
                    let found = out
                        .parameters()
                        .iter()
                        .find(|p| p.name() == Some(parameter.as_str()));
                    let result = match found.and_then(|p| p.value()) {
                        Some(v) => Ok(SecretValue::from(v)),
                        None => Err(Error::not_found(BACKEND, &names[*i])
                            .with_message(format!("parameter {parameter}"))),
                    };
                    (*i, result)
                })
                .collect(),
            Err(e) => {
                let list = chunk
                    .iter()
                    .map(|(_, p)| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                chunk
                    .iter()
                    .map(|(i, _)| {
                        let err = map_sdk_error(&e, GET_MANY.name, names[*i].as_str(), &list);
                        (*i, Err(err))
                    })
                    .collect()
            }
        }
    }
}
