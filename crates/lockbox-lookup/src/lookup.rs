//! The lookup itself: name, read, and Airflow's idea of "absent".

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use lockbox_aws::{Credentials, SdkOptions, SharedCredentialsProvider};
use lockbox_cache::{Cache, CacheConfig};
use lockbox_core::{
    Error, ErrorKind, PutMode, Result, SecretName, SecretValue, SecretsManager, Version,
};
use lockbox_secretsmanager::SecretsManagerClient;
use std::fmt;
use std::sync::Arc;
use tokio::sync::OnceCell;

use crate::connection::Connection;
use crate::settings::{AwsSettings, BackendKind, LookupKind, LookupSettings, Resolution};

/// Why a lookup found nothing. None of these is an error: Airflow returns `None` for each.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Absence {
    /// The kind's prefix is null, so nothing was asked of AWS.
    Disabled,
    /// The id does not match the kind's lookup pattern (given here); nothing was asked of AWS.
    Filtered(String),
    /// AWS answered with an error code Airflow treats as "not there" (`ParameterNotFound`;
    /// for Secrets Manager `ResourceNotFoundException`, `InvalidParameterException`,
    /// `InvalidRequestException`, `DecryptionFailure` or `InternalServiceError`).
    NotFound {
        /// The parameter or secret name that was read.
        name: String,
        /// The AWS error code.
        code: &'static str,
    },
    /// The Secrets Manager secret holds a binary value; only string values count.
    Binary {
        /// The secret name that was read.
        name: String,
    },
}

/// The answer to [`Lookup::lookup`].
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The value as stored, and the parameter or secret name it was read from.
    Found {
        /// The parameter or secret name.
        name: String,
        /// The stored value.
        value: SecretValue,
    },
    /// Nothing there, and why.
    Absent(Absence),
}

/// The Secrets Manager error codes Airflow's `SecretsManagerBackend._get_secret` catches and
/// answers with `None`.
pub const SECRETS_MANAGER_ABSENT_CODES: [&str; 5] = [
    "ResourceNotFoundException",
    "InvalidParameterException",
    "InvalidRequestException",
    "DecryptionFailure",
    "InternalServiceError",
];

/// The Secrets Manager "absent" codes that say nothing about the secret itself (a failure to
/// decrypt it, a server error): absent, as in Airflow, but never cached as absent.
pub const TRANSIENT_ABSENT_CODES: [&str; 2] = ["DecryptionFailure", "InternalServiceError"];

/// The transient absent code ([`TRANSIENT_ABSENT_CODES`]) a Secrets Manager error carries.
fn transient_absent_code(err: &Error) -> Option<&'static str> {
    secrets_manager_absent_code(err).filter(|c| TRANSIENT_ABSENT_CODES.contains(c))
}

enum Reader {
    Ssm(lockbox_ssm::SsmClient),
    SecretsManager(SecretsManagerClient),
}

/// What one read found.
enum Read {
    Found(SecretValue),
    Absent(Absence),
}

/// Settings and the lazily built client, shared with the cache's backend adapter.
struct Inner {
    settings: LookupSettings,
    reader: OnceCell<Reader>,
}

impl Inner {
    async fn reader(&self) -> Result<&Reader> {
        self.reader
            .get_or_try_init(|| async {
                let sdk = sdk_config(&self.settings.aws, self.settings.backend).await;
                // The endpoint is set on the service client only: STS has its own.
                let sdk = match &self.settings.aws.endpoint_url {
                    Some(url) => sdk.into_builder().endpoint_url(url).build(),
                    None => sdk,
                };
                Ok(match self.settings.backend {
                    BackendKind::Ssm => Reader::Ssm(lockbox_ssm::SsmClient::new(&sdk)),
                    BackendKind::SecretsManager => {
                        Reader::SecretsManager(SecretsManagerClient::new(&sdk))
                    }
                })
            })
            .await
    }

    /// Reads the full name `name`; `label` is what errors call the secret.
    async fn read(&self, name: &str, label: &str) -> Result<Read> {
        match self.reader().await? {
            Reader::Ssm(client) => match lockbox_ssm::read_parameter(client, name, label).await {
                Ok(value) => Ok(Read::Found(value)),
                Err(e) if e.is_not_found() => {
                    tracing::debug!(parameter = name, "parameter not found");
                    Ok(Read::Absent(Absence::NotFound {
                        name: name.to_string(),
                        code: "ParameterNotFound",
                    }))
                }
                Err(e) => Err(e),
            },
            Reader::SecretsManager(client) => {
                match client.fetch_version(name, &Version::Current).await {
                    Ok(v) if v.binary => {
                        tracing::debug!(secret = name, "binary secret: only string values count");
                        Ok(Read::Absent(Absence::Binary {
                            name: name.to_string(),
                        }))
                    }
                    Ok(v) => Ok(Read::Found(v.value)),
                    Err(e) => match secrets_manager_absent_code(&e) {
                        Some(code) => {
                            tracing::debug!(
                                secret = name,
                                code,
                                "treated as absent, as Airflow does"
                            );
                            Ok(Read::Absent(Absence::NotFound {
                                name: name.to_string(),
                                code,
                            }))
                        }
                        None => Err(e),
                    },
                }
            }
        }
    }
}

/// Airflow-compatible lookups of connections, variables and config values in SSM Parameter
/// Store or Secrets Manager.
///
/// The AWS client is built on the first lookup that needs one, so a lookup a null prefix or a
/// pattern rules out makes no AWS call (and no credential or region lookup) at all. Like
/// Airflow, it caches nothing unless asked to ([`Lookup::with_cache`]).
pub struct Lookup {
    inner: Arc<Inner>,
    cache: Option<Cache<Store>>,
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookup")
            .field("settings", &self.inner.settings)
            .field("connected", &self.inner.reader.initialized())
            .field("cached", &self.cache.is_some())
            .finish()
    }
}

impl Lookup {
    /// A lookup with `settings`; its AWS client is built from `settings.aws` when first needed.
    pub fn new(settings: LookupSettings) -> Self {
        Self::from_inner(settings, OnceCell::new())
    }

    fn from_inner(settings: LookupSettings, reader: OnceCell<Reader>) -> Self {
        Self {
            inner: Arc::new(Inner { settings, reader }),
            cache: None,
        }
    }

    /// A lookup configured by Airflow's own environment variables `AIRFLOW__SECRETS__BACKEND`
    /// and `AIRFLOW__SECRETS__BACKEND_KWARGS`.
    pub fn from_airflow_env() -> Result<Self> {
        Ok(Self::new(LookupSettings::from_airflow_env()?))
    }

    /// A lookup on an SSM client the caller configured (`settings.aws` is then not used).
    pub fn with_ssm_client(
        settings: LookupSettings,
        client: lockbox_ssm::SsmClient,
    ) -> Result<Self> {
        Self::with_reader(settings, BackendKind::Ssm, Reader::Ssm(client))
    }

    /// A lookup on a Secrets Manager client the caller configured (`settings.aws` is then not
    /// used).
    pub fn with_secrets_manager_client(
        settings: LookupSettings,
        client: SecretsManagerClient,
    ) -> Result<Self> {
        Self::with_reader(
            settings,
            BackendKind::SecretsManager,
            Reader::SecretsManager(client),
        )
    }

    fn with_reader(settings: LookupSettings, backend: BackendKind, reader: Reader) -> Result<Self> {
        if settings.backend != backend {
            return Err(Error::invalid_config(
                "backend",
                format!(
                    "the settings are for {} but the client is for {backend}",
                    settings.backend
                ),
            ));
        }
        Ok(Self::from_inner(settings, OnceCell::new_with(Some(reader))))
    }

    /// Caches answers with lockbox-cache (`config` sets TTLs and bounds): values for
    /// `config.ttl`, absent answers for `config.negative_ttl`; concurrent lookups of one name
    /// share one call. Names the cache cannot key (Secrets Manager names starting with `/`, ids
    /// with characters outside `A-Za-z0-9_.-+=@/`) are read uncached.
    pub fn with_cache(mut self, config: CacheConfig) -> Self {
        self.cache = Some(Cache::new(Store(self.inner.clone()), config));
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &LookupSettings {
        &self.inner.settings
    }

    /// Looks up `id` of `kind` and says what was found, or why nothing was.
    ///
    /// Only Airflow's "not found" answers are [`Outcome::Absent`]; anything else AWS answers
    /// (denied, throttled, unreachable, invalid name) is an error.
    pub async fn lookup(&self, kind: LookupKind, id: &str) -> Result<Outcome> {
        if id.is_empty() {
            return Err(Error::invalid_config(
                kind.name(),
                "the id to look up must not be empty",
            ));
        }
        let name = match self.inner.settings.resolve(kind, id)? {
            Resolution::Disabled => {
                tracing::debug!(kind = kind.name(), id, "prefix is null: not looked up");
                return Ok(Outcome::Absent(Absence::Disabled));
            }
            Resolution::Filtered(pattern) => {
                tracing::debug!(
                    kind = kind.name(),
                    id,
                    pattern,
                    "id does not match the lookup pattern: not looked up"
                );
                return Ok(Outcome::Absent(Absence::Filtered(pattern)));
            }
            Resolution::Name(name) => name,
        };
        let backend = self.inner.settings.backend;
        let read = match (&self.cache, cache_key(backend, &name)) {
            (Some(cache), Some(key)) => match cache.get(&key).await {
                Ok(value) => Read::Found(value),
                Err(e) if e.is_not_found() => Read::Absent(decode_absence(&name, &e)),
                // A transient "absent" answer reaches the cache as the error it is (so it is
                // never cached as absent); the answer is still Airflow's: absent.
                Err(e) => match transient_absent_code(&e) {
                    Some(code) => Read::Absent(Absence::NotFound {
                        name: name.clone(),
                        code,
                    }),
                    None => return Err(e),
                },
            },
            _ => self.inner.read(&name, &format!("{kind} {id}")).await?,
        };
        Ok(match read {
            Read::Found(value) => Outcome::Found { name, value },
            Read::Absent(why) => Outcome::Absent(why),
        })
    }

    /// The stored value of connection `id` as it is stored (URI or JSON), or `None`.
    pub async fn connection_value(&self, id: &str) -> Result<Option<SecretValue>> {
        Ok(match self.lookup(LookupKind::Connection, id).await? {
            Outcome::Found { value, .. } => Some(value),
            Outcome::Absent(_) => None,
        })
    }

    /// Connection `id`, deserialised as Airflow does, or `None` when absent (or stored empty).
    pub async fn connection(&self, id: &str) -> Result<Option<Connection>> {
        match self.lookup(LookupKind::Connection, id).await? {
            Outcome::Found { name, value } => self.parse_connection(&name, &value),
            Outcome::Absent(_) => Ok(None),
        }
    }

    /// Deserialises a stored connection value read from `name` (`None` when it is empty, as
    /// Airflow's `get_connection` treats it).
    pub fn parse_connection(&self, name: &str, value: &SecretValue) -> Result<Option<Connection>> {
        let text = text_of(self.inner.settings.backend, name, value)?;
        if text.is_empty() {
            return Ok(None);
        }
        Connection::deserialize(
            text,
            self.inner.settings.backend,
            &self.inner.settings.extra_conn_words,
        )
        .map(Some)
        .map_err(|e| {
            Error::new(
                e.kind(),
                self.inner.settings.backend.name(),
                e.message().to_string(),
            )
            .with_secret(name)
        })
    }

    /// Variable `key`, or `None`.
    pub async fn variable(&self, key: &str) -> Result<Option<String>> {
        self.text(LookupKind::Variable, key).await
    }

    /// Config option `key`, or `None`.
    pub async fn config(&self, key: &str) -> Result<Option<String>> {
        self.text(LookupKind::Config, key).await
    }

    async fn text(&self, kind: LookupKind, id: &str) -> Result<Option<String>> {
        match self.lookup(kind, id).await? {
            Outcome::Found { name, value } => Ok(Some(
                text_of(self.inner.settings.backend, &name, &value)?.to_string(),
            )),
            Outcome::Absent(_) => Ok(None),
        }
    }
}

/// The cache key of a full name: SSM names without their leading `/`, Secrets Manager names
/// as they are; `None` when that is not a valid [`SecretName`].
fn cache_key(backend: BackendKind, name: &str) -> Option<SecretName> {
    let key = match backend {
        BackendKind::Ssm => name.strip_prefix('/')?,
        BackendKind::SecretsManager => name,
    };
    SecretName::new(key).ok()
}

/// The full name behind a cache key.
fn full_name(backend: BackendKind, key: &SecretName) -> String {
    match backend {
        BackendKind::Ssm => format!("/{key}"),
        BackendKind::SecretsManager => key.to_string(),
    }
}

const ABSENT_MARK: &str = "absent: ";

/// The `NotFound` error the cache keeps for an absent answer; [`decode_absence`] reads it back.
fn encode_absence(backend: BackendKind, key: &SecretName, why: &Absence) -> Error {
    let code = match why {
        Absence::Binary { .. } => "binary",
        Absence::NotFound { code, .. } => code,
        _ => "NotFound",
    };
    Error::not_found(backend.name(), key).with_message(format!("{ABSENT_MARK}{code}"))
}

fn decode_absence(name: &str, err: &Error) -> Absence {
    let code = err
        .message()
        .strip_prefix(ABSENT_MARK)
        .unwrap_or("NotFound");
    if code == "binary" {
        return Absence::Binary {
            name: name.to_string(),
        };
    }
    let code = ["ParameterNotFound"]
        .iter()
        .chain(SECRETS_MANAGER_ABSENT_CODES.iter())
        .find(|c| **c == code)
        .copied()
        .unwrap_or("NotFound");
    Absence::NotFound {
        name: name.to_string(),
        code,
    }
}

/// The lookup's reads as a [`SecretsManager`], so lockbox-cache can wrap them. Read-only.
struct Store(Arc<Inner>);

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LookupStore({})", self.0.settings.backend)
    }
}

#[async_trait]
impl SecretsManager for Store {
    fn backend(&self) -> &'static str {
        self.0.settings.backend.name()
    }

    async fn get_uncached(&self, key: &SecretName) -> Result<SecretValue> {
        let backend = self.0.settings.backend;
        let name = full_name(backend, key);
        match self.0.read(&name, &name).await? {
            Read::Found(value) => Ok(value),
            // Not a fact about the secret: passed on as an error the cache does not keep as
            // "absent" (InternalServiceError may be served stale-if-error, DecryptionFailure
            // drops any cached value).
            Read::Absent(Absence::NotFound { code, .. })
                if TRANSIENT_ABSENT_CODES.contains(&code) =>
            {
                let kind = if code == "DecryptionFailure" {
                    ErrorKind::PermissionDenied
                } else {
                    ErrorKind::Unavailable
                };
                Err(Error::new(
                    kind,
                    backend.name(),
                    format!("{name}: {code} (Airflow treats it as absent)"),
                )
                .with_secret(key)
                .with_code(code))
            }
            Read::Absent(why) => Err(encode_absence(backend, key, &why)),
        }
    }

    async fn put(&self, key: &SecretName, _: &SecretValue, _: PutMode) -> Result<()> {
        Err(read_only(self.backend(), key))
    }

    async fn delete(&self, key: &SecretName) -> Result<()> {
        Err(read_only(self.backend(), key))
    }

    async fn list(&self, _prefix: &str) -> Result<Vec<SecretName>> {
        Err(Error::new(
            ErrorKind::Unsupported,
            self.backend(),
            "Airflow-style lookups cannot list",
        ))
    }
}

fn read_only(backend: &'static str, key: &SecretName) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        backend,
        "Airflow-style lookups only read",
    )
    .with_secret(key)
}

fn text_of<'a>(backend: BackendKind, name: &str, value: &'a SecretValue) -> Result<&'a str> {
    value.expose_str().ok_or_else(|| {
        Error::new(
            ErrorKind::Corrupt,
            backend.name(),
            format!("{name} does not hold UTF-8 text"),
        )
        .with_secret(name)
    })
}

/// The AWS configuration Airflow's `SessionFactory` would build: region, profile and static
/// keys from the settings (else aws-config's default chain), then, with `role_arn`, an
/// assume-role provider on those base credentials, calling STS at `sts_endpoint_url` (never at
/// `endpoint_url`) with the backend's session name. The SDK's identity cache refreshes the
/// assumed credentials before they expire.
pub async fn sdk_config(aws: &AwsSettings, backend: BackendKind) -> SdkConfig {
    let options = SdkOptions {
        region: aws.region_name.clone(),
        endpoint_url: None, // set on the service client only: STS has its own
        profile: aws.profile_name.clone(),
        credentials: aws.static_credentials.as_ref().map(|keys| {
            SharedCredentialsProvider::new(Credentials::new(
                keys.access_key_id.clone(),
                keys.secret_access_key.clone(),
                keys.session_token.clone(),
                None,
                "lockbox-lookup-backend-kwargs",
            ))
        }),
        // Airflow's boto3 clients retry on their own; so do these.
        sdk_retries: true,
    };
    let base = options.load().await;
    let Some(role_arn) = &aws.role_arn else {
        return base;
    };
    let mut sts = base.to_builder();
    sts.set_endpoint_url(aws.sts_endpoint_url.clone());
    let sts = sts.build();
    let options = &aws.assume_role;
    let session_name = options
        .session_name
        .clone()
        .unwrap_or_else(|| backend.role_session_name());
    let mut builder = AssumeRoleProvider::builder(role_arn.clone())
        .session_name(session_name)
        .configure(&sts);
    if let Some(id) = &options.external_id {
        builder = builder.external_id(id.clone());
    }
    if let Some(d) = options.duration {
        builder = builder.session_length(d);
    }
    if let Some(p) = &options.policy {
        builder = builder.policy(p.clone());
    }
    if !options.policy_arns.is_empty() {
        builder = builder.policy_arns(options.policy_arns.clone());
    }
    if !options.tags.is_empty() {
        builder = builder.tags(options.tags.clone());
    }
    let provider = builder.build().await;
    base.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

/// The Airflow "absent" code a Secrets Manager read error carries, if any.
///
/// `NotFound` is ResourceNotFoundException; the other codes are the AWS error code
/// lockbox-secretsmanager's error mapping records on the error ([`Error::code`]).
pub fn secrets_manager_absent_code(err: &Error) -> Option<&'static str> {
    if err.is_not_found() {
        return Some("ResourceNotFoundException");
    }
    if err.backend() != BackendKind::SecretsManager.name()
        || !matches!(
            err.kind(),
            ErrorKind::Backend | ErrorKind::PermissionDenied | ErrorKind::Unavailable
        )
    {
        return None;
    }
    let code = err.code()?;
    SECRETS_MANAGER_ABSENT_CODES[1..]
        .iter()
        .find(|c| **c == code)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm_err(kind: ErrorKind, code: &str) -> Error {
        Error::new(kind, "aws-secretsmanager", "m")
            .with_secret("x")
            .with_code(code)
    }

    #[test]
    fn absent_codes_come_from_the_recorded_aws_code() {
        for (kind, code, absent) in [
            (
                ErrorKind::NotFound,
                "ResourceNotFoundException",
                Some("ResourceNotFoundException"),
            ),
            (
                ErrorKind::Backend,
                "InvalidParameterException",
                Some("InvalidParameterException"),
            ),
            (
                ErrorKind::Backend,
                "InvalidRequestException",
                Some("InvalidRequestException"),
            ),
            (
                ErrorKind::PermissionDenied,
                "DecryptionFailure",
                Some("DecryptionFailure"),
            ),
            (
                ErrorKind::Unavailable,
                "InternalServiceError",
                Some("InternalServiceError"),
            ),
            (ErrorKind::PermissionDenied, "AccessDeniedException", None),
            (ErrorKind::Throttled, "ThrottlingException", None),
            (ErrorKind::Backend, "InvalidRequestExceptionX", None),
            (ErrorKind::Unavailable, "", None),
        ] {
            assert_eq!(
                secrets_manager_absent_code(&sm_err(kind, code)),
                absent,
                "{code}"
            );
        }
        // Another backend's errors never count.
        let e = Error::new(ErrorKind::Backend, "aws-ssm", "m").with_code("InvalidRequestException");
        assert_eq!(secrets_manager_absent_code(&e), None);
    }
}
