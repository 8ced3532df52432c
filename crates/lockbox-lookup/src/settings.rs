//! Lookup settings, parsed from the JSON Airflow takes as its secrets backend kwargs, and the
//! name each lookup reads.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lockbox_core::{Error, ErrorKind, Result};
use serde_json::{Map, Value};

use crate::connection::ExtraConnWords;

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

/// A lookup pattern: Python's `re.match(pattern, id, re.IGNORECASE)`, i.e. a case-insensitive
/// match anchored at the start of the id (not at its end), with Python's `re` syntax and
/// meaning (look-around, backreferences, `\Z`, `(?P<name>...)`, a `{` that starts no repeat
/// is a literal, global inline flags only at the start, Python's `\s`, `\w`, `\b`, `$`).
///
/// Like Airflow, a pattern from the kwargs is compiled only when a lookup of its kind needs it
/// ([`LookupPattern::deferred`]): a pattern Python would refuse makes lookups of that kind
/// fail, and leaves the other kinds alone.
#[derive(Clone)]
pub struct LookupPattern {
    source: String,
    field: String,
    compiled: Arc<OnceLock<Result<fancy_regex::Regex>>>,
}

impl LookupPattern {
    /// Compiles `pattern` now.
    pub fn new(pattern: &str) -> Result<Self> {
        let p = Self::deferred("lookup pattern", pattern);
        p.regex()?;
        Ok(p)
    }

    /// `pattern`, compiled on first use; `field` names it in errors.
    pub fn deferred(field: &str, pattern: &str) -> Self {
        Self {
            source: pattern.to_string(),
            field: field.to_string(),
            compiled: Arc::new(OnceLock::new()),
        }
    }

    /// A kwargs value that cannot be a pattern (not a string): every use fails with `message`.
    fn unusable(field: &str, source: String, message: &str) -> Self {
        let p = Self::deferred(field, &source);
        let _ = p.compiled.set(Err(Error::invalid_config(field, message)));
        p
    }

    fn regex(&self) -> Result<&fancy_regex::Regex> {
        let compiled = self.compiled.get_or_init(|| {
            let translated = crate::pyre::translate(&self.source).map_err(|e| {
                Error::invalid_config(
                    &self.field,
                    format!(
                        "{:?} is not a valid Python regular expression: {e}",
                        self.source
                    ),
                )
            })?;
            fancy_regex::RegexBuilder::new(&translated)
                .build()
                .map_err(|e| {
                    Error::invalid_config(
                        &self.field,
                        format!("{:?} cannot be used as a lookup pattern: {e}", self.source),
                    )
                })
        });
        compiled.as_ref().map_err(Error::clone)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern matches at the start of `id`, ignoring case. Errors when the
    /// pattern is not a valid Python regular expression (or matching exceeds the backtracking
    /// limit).
    pub fn is_match(&self, id: &str) -> Result<bool> {
        self.regex()?.is_match(id).map_err(|e| {
            Error::invalid_config(
                &self.field,
                format!("{:?} could not be matched against the id: {e}", self.source),
            )
        })
    }
}

impl fmt::Debug for LookupPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LookupPattern({:?})", self.source)
    }
}

/// Static AWS keys given in the kwargs (`aws_access_key_id`, `aws_secret_access_key`,
/// `aws_session_token`). Debug redacts the secret key and the token.
#[derive(Clone)]
pub struct StaticCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token, for temporary keys.
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[REDACTED]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// How `role_arn` is assumed (Airflow's `assume_role_kwargs`, the part aws-config supports).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssumeRoleOptions {
    /// `RoleSessionName`; by default [`BackendKind::role_session_name`].
    pub session_name: Option<String>,
    /// `ExternalId`.
    pub external_id: Option<String>,
    /// `DurationSeconds`.
    pub duration: Option<Duration>,
    /// `Policy` (an inline session policy, JSON).
    pub policy: Option<String>,
    /// `PolicyArns` (managed session policies).
    pub policy_arns: Vec<String>,
    /// `Tags` (session tags).
    pub tags: Vec<(String, String)>,
}

/// Where and as whom AWS is called.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// `region_name`; without it aws-config's chain (`AWS_REGION`, profile, IMDS) decides.
    pub region_name: Option<String>,
    /// `profile_name`: the shared-config profile for the base credentials.
    pub profile_name: Option<String>,
    /// `endpoint_url`: custom endpoint of the SSM or Secrets Manager client (not of STS, as in
    /// Airflow). Without it aws-config also honours `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// `service_config.sts.endpoint_url`: the STS endpoint used to assume `role_arn`.
    pub sts_endpoint_url: Option<String>,
    /// `role_arn`: a role assumed through STS before every call (credentials refreshed before
    /// they expire).
    pub role_arn: Option<String>,
    /// `assume_role_kwargs`.
    pub assume_role: AssumeRoleOptions,
    /// Static base credentials from the kwargs, when both key parts are given.
    pub static_credentials: Option<StaticCredentials>,
}

/// Settings of one Airflow-style lookup backend. Start from [`LookupSettings::defaults`] or
/// parse Airflow's kwargs with [`LookupSettings::from_backend_kwargs`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LookupSettings {
    /// Which backend's rules apply.
    pub backend: BackendKind,
    /// `connections_prefix`; `None` (JSON null) disables connection lookups.
    pub connections_prefix: Option<String>,
    /// `variables_prefix`; `None` disables variable lookups.
    pub variables_prefix: Option<String>,
    /// `config_prefix`; `None` disables config lookups.
    pub config_prefix: Option<String>,
    /// `connections_lookup_pattern`: only matching ids are looked up.
    pub connections_lookup_pattern: Option<LookupPattern>,
    /// `variables_lookup_pattern`.
    pub variables_lookup_pattern: Option<LookupPattern>,
    /// `config_lookup_pattern`.
    pub config_lookup_pattern: Option<LookupPattern>,
    /// `sep`: joins prefix and id for Secrets Manager (default `/`; SSM always uses `/`).
    pub sep: String,
    /// `extra_conn_words` (Secrets Manager JSON connections).
    pub extra_conn_words: ExtraConnWords,
    /// AWS client settings.
    pub aws: AwsSettings,
}

/// What [`LookupSettings::resolve`] decided for one id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The kind's prefix is null: nothing is looked up.
    Disabled,
    /// The id does not match the kind's lookup pattern (given here): nothing is looked up.
    Filtered(String),
    /// The full parameter or secret name to read.
    Name(String),
}

impl LookupSettings {
    /// Airflow's defaults for `backend`: prefixes `/airflow/connections`, `/airflow/variables`,
    /// `/airflow/config` (SSM) or the same without the leading `/` (Secrets Manager), no
    /// patterns, `sep` `/`, default AWS settings.
    pub fn defaults(backend: BackendKind) -> Self {
        Self {
            backend,
            connections_prefix: Some(backend.default_prefix(LookupKind::Connection).into()),
            variables_prefix: Some(backend.default_prefix(LookupKind::Variable).into()),
            config_prefix: Some(backend.default_prefix(LookupKind::Config).into()),
            connections_lookup_pattern: None,
            variables_lookup_pattern: None,
            config_lookup_pattern: None,
            sep: "/".into(),
            extra_conn_words: ExtraConnWords::new(),
            aws: AwsSettings::default(),
        }
    }

    /// Parses Airflow's backend kwargs (a JSON object; an empty or blank text means `{}`) over
    /// the defaults of `backend`. Unknown keys are ignored with a debug log, as Airflow passes
    /// them on to its AWS connection.
    pub fn from_backend_kwargs(backend: BackendKind, kwargs: &str) -> Result<Self> {
        if kwargs.trim().is_empty() {
            return Ok(Self::defaults(backend));
        }
        let value: Value = serde_json::from_str(kwargs).map_err(|e| {
            Error::invalid_config(
                "backend_kwargs",
                format!("not valid JSON (line {} column {})", e.line(), e.column()),
            )
        })?;
        match value {
            Value::Object(map) => Self::from_kwargs_map(backend, &map),
            _ => Err(Error::invalid_config(
                "backend_kwargs",
                "must be a JSON object",
            )),
        }
    }

    /// Settings from Airflow's own environment: [`ENV_BACKEND`] (one of the two class paths, or
    /// lockbox's backend names) and [`ENV_BACKEND_KWARGS`].
    pub fn from_airflow_env() -> Result<Self> {
        let backend = std::env::var(ENV_BACKEND).map_err(|_| {
            Error::invalid_config(
                ENV_BACKEND,
                format!(
                    "is not set (set it to {SSM_BACKEND_CLASS} or {SECRETS_MANAGER_BACKEND_CLASS})"
                ),
            )
        })?;
        let backend = BackendKind::parse(&backend)?;
        let kwargs = std::env::var(ENV_BACKEND_KWARGS).unwrap_or_default();
        Self::from_backend_kwargs(backend, &kwargs)
    }

    /// Parses an already-decoded kwargs object.
    pub fn from_kwargs_map(backend: BackendKind, map: &Map<String, Value>) -> Result<Self> {
        let mut s = Self::defaults(backend);
        let mut access_key: Option<String> = None;
        let mut secret_key: Option<String> = None;
        let mut token: Option<String> = None;
        let mut assume_method: Option<String> = None;
        let mut assume_kwargs: Option<&Map<String, Value>> = None;
        for (key, value) in map {
            match key.as_str() {
                "connections_prefix" => s.connections_prefix = opt_string(key, value)?,
                "variables_prefix" => s.variables_prefix = opt_string(key, value)?,
                "config_prefix" => s.config_prefix = opt_string(key, value)?,
                "connections_lookup_pattern" => s.connections_lookup_pattern = pattern(key, value),
                "variables_lookup_pattern" => s.variables_lookup_pattern = pattern(key, value),
                "config_lookup_pattern" => s.config_lookup_pattern = pattern(key, value),
                "sep" if backend == BackendKind::SecretsManager => {
                    s.sep = opt_string(key, value)?.ok_or_else(|| {
                        Error::invalid_config("backend_kwargs.sep", "must be a string")
                    })?;
                }
                "extra_conn_words" if backend == BackendKind::SecretsManager => {
                    s.extra_conn_words = extra_words(value)?;
                }
                "role_arn" => s.aws.role_arn = opt_string(key, value)?.filter(|r| !r.is_empty()),
                "region_name" => {
                    s.aws.region_name = opt_string(key, value)?.filter(|r| !r.is_empty())
                }
                "profile_name" => {
                    s.aws.profile_name = opt_string(key, value)?.filter(|r| !r.is_empty())
                }
                "endpoint_url" => {
                    s.aws.endpoint_url = opt_string(key, value)?.filter(|r| !r.is_empty())
                }
                "service_config" => s.aws.sts_endpoint_url = sts_endpoint(value)?,
                "aws_access_key_id" => access_key = opt_string(key, value)?,
                "aws_secret_access_key" => secret_key = opt_string(key, value)?,
                "aws_session_token" => token = opt_string(key, value)?,
                "assume_role_method" => assume_method = opt_string(key, value)?,
                "assume_role_kwargs" => match value {
                    Value::Object(m) => assume_kwargs = Some(m),
                    Value::Null => {}
                    _ => {
                        return Err(Error::invalid_config(
                            "backend_kwargs.assume_role_kwargs",
                            "must be a JSON object",
                        ));
                    }
                },
                other => {
                    tracing::debug!(
                        key = other,
                        "backend_kwargs: key not used by lockbox lookups; ignored"
                    );
                }
            }
        }
        match (access_key, secret_key) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                s.aws.static_credentials = Some(StaticCredentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: token.filter(|t| !t.is_empty()),
                });
            }
            (None, None) => {}
            _ => tracing::warn!(
                "backend_kwargs: aws_access_key_id and aws_secret_access_key must both be set \
                 to be used (as in Airflow); using the default credential chain"
            ),
        }
        if s.aws.role_arn.is_some() {
            match assume_method.as_deref() {
                None | Some("assume_role") => {}
                Some(m @ ("assume_role_with_saml" | "assume_role_with_web_identity")) => {
                    return Err(Error::input(
                        ErrorKind::Unsupported,
                        format!(
                            "backend_kwargs.assume_role_method {m:?}: only \"assume_role\" is \
                             supported"
                        ),
                    ));
                }
                Some(m) => {
                    return Err(Error::invalid_config(
                        "backend_kwargs.assume_role_method",
                        format!(
                            "{m:?} is not one of assume_role, assume_role_with_saml, \
                             assume_role_with_web_identity"
                        ),
                    ));
                }
            }
            if let Some(kw) = assume_kwargs {
                s.aws.assume_role = assume_role_options(kw)?;
            }
        }
        Ok(s)
    }

    /// The prefix of `kind`, or `None` when that kind is disabled.
    pub fn prefix(&self, kind: LookupKind) -> Option<&str> {
        match kind {
            LookupKind::Connection => self.connections_prefix.as_deref(),
            LookupKind::Variable => self.variables_prefix.as_deref(),
            LookupKind::Config => self.config_prefix.as_deref(),
        }
    }

    /// The lookup pattern of `kind`, if any.
    pub fn pattern(&self, kind: LookupKind) -> Option<&LookupPattern> {
        match kind {
            LookupKind::Connection => self.connections_lookup_pattern.as_ref(),
            LookupKind::Variable => self.variables_lookup_pattern.as_ref(),
            LookupKind::Config => self.config_lookup_pattern.as_ref(),
        }
    }

    /// Decides what a lookup of `id` reads, exactly as Airflow does:
    ///
    /// - a null prefix disables the kind; a pattern the id does not match skips it;
    /// - SSM: prefix without trailing `/`s, then `/<id>`, with a leading `/` ensured;
    /// - Secrets Manager: a non-empty prefix loses trailing characters found in `sep` (Python's
    ///   `rstrip(sep)`), then `<prefix><sep><id>`; an empty prefix gives the id alone.
    ///
    /// Errors when the kind's pattern is needed and is not a usable Python regular expression.
    pub fn resolve(&self, kind: LookupKind, id: &str) -> Result<Resolution> {
        let Some(prefix) = self.prefix(kind) else {
            return Ok(Resolution::Disabled);
        };
        if let Some(p) = self.pattern(kind)
            && !p.is_match(id)?
        {
            return Ok(Resolution::Filtered(p.as_str().to_string()));
        }
        Ok(Resolution::Name(match self.backend {
            BackendKind::Ssm => {
                let path = format!("{}/{id}", prefix.trim_end_matches('/'));
                if path.starts_with('/') {
                    path
                } else {
                    format!("/{path}")
                }
            }
            BackendKind::SecretsManager => {
                let prefix = prefix.trim_end_matches(|c| self.sep.contains(c));
                if prefix.is_empty() {
                    id.to_string()
                } else {
                    format!("{prefix}{}{id}", self.sep)
                }
            }
        }))
    }
}

fn opt_string(key: &str, value: &Value) -> Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(Error::invalid_config(
            format!("backend_kwargs.{key}"),
            "must be a string or null",
        )),
    }
}

/// A kind's lookup pattern, compiled only when a lookup of that kind needs it (as Airflow
/// calls `re.match` only then); a value that is not a string fails those lookups only.
fn pattern(key: &str, value: &Value) -> Option<LookupPattern> {
    let field = format!("backend_kwargs.{key}");
    match value {
        // An empty (or false, zero, ...) pattern filters nothing (Airflow tests
        // `if lookup_pattern`).
        Value::Null | Value::Bool(false) => None,
        Value::String(p) if p.is_empty() => None,
        Value::Array(a) if a.is_empty() => None,
        Value::Object(o) if o.is_empty() => None,
        Value::Number(n) if n.as_f64() == Some(0.0) => None,
        Value::String(p) => Some(LookupPattern::deferred(&field, p)),
        other => Some(LookupPattern::unusable(
            &field,
            other.to_string(),
            "must be a string (a Python regular expression)",
        )),
    }
}

fn extra_words(value: &Value) -> Result<ExtraConnWords> {
    let bad = || {
        Error::invalid_config(
            "backend_kwargs.extra_conn_words",
            "must be an object of lists of strings",
        )
    };
    let mut out = ExtraConnWords::new();
    match value {
        // Airflow takes `extra_conn_words or {}`: any falsy value is no extra words.
        Value::Null | Value::Bool(false) => {}
        Value::String(s) if s.is_empty() => {}
        Value::Array(a) if a.is_empty() => {}
        Value::Number(n) if n.as_f64() == Some(0.0) => {}
        Value::Object(m) => {
            for (field, words) in m {
                let Value::Array(words) = words else {
                    return Err(bad());
                };
                let words = words
                    .iter()
                    .map(|w| w.as_str().map(str::to_string).ok_or_else(bad))
                    .collect::<Result<Vec<_>>>()?;
                out.insert(field.clone(), words);
            }
        }
        _ => return Err(bad()),
    }
    // Field names are checked here too, so a typo fails at start-up, not at the first lookup.
    for field in out.keys() {
        let f = if field == "user" {
            "login"
        } else {
            field.as_str()
        };
        if !crate::connection::SM_FIELDS.contains(&f) {
            return Err(Error::invalid_config(
                "backend_kwargs.extra_conn_words",
                format!(
                    "unknown connection field {field:?} (use login, user, password, host, port, \
                     schema, conn_type or extra)"
                ),
            ));
        }
    }
    Ok(out)
}

fn sts_endpoint(value: &Value) -> Result<Option<String>> {
    let bad = |what: &str| Error::invalid_config("backend_kwargs.service_config", what.to_string());
    match value {
        Value::Null => Ok(None),
        Value::Object(services) => {
            for name in services.keys().filter(|k| k.as_str() != "sts") {
                tracing::debug!(
                    service = name.as_str(),
                    "backend_kwargs.service_config: only sts is used (as in Airflow's secrets \
                     backends); ignored"
                );
            }
            match services.get("sts") {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(sts)) => match sts.get("endpoint_url") {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(u)) if !u.is_empty() => Ok(Some(u.clone())),
                    Some(Value::String(_)) => Ok(None),
                    Some(_) => Err(bad("sts.endpoint_url must be a string")),
                },
                Some(_) => Err(bad("sts must be an object")),
            }
        }
        _ => Err(bad("must be an object")),
    }
}

fn assume_role_options(kw: &Map<String, Value>) -> Result<AssumeRoleOptions> {
    let field = |k: &str| format!("backend_kwargs.assume_role_kwargs.{k}");
    let string = |k: &str, v: &Value| -> Result<String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::invalid_config(field(k), "must be a string"))
    };
    let mut o = AssumeRoleOptions::default();
    for (k, v) in kw {
        match k.as_str() {
            // Airflow sets RoleArn from role_arn after these kwargs.
            "RoleArn" => {}
            "RoleSessionName" => o.session_name = Some(string(k, v)?),
            "ExternalId" => o.external_id = Some(string(k, v)?),
            "Policy" => o.policy = Some(string(k, v)?),
            "DurationSeconds" => {
                let secs = v.as_u64().ok_or_else(|| {
                    Error::invalid_config(field(k), "must be a whole number of seconds")
                })?;
                o.duration = Some(Duration::from_secs(secs));
            }
            "PolicyArns" => {
                let bad = || Error::invalid_config(field(k), "must be a list of {\"arn\": ...}");
                let list = v.as_array().ok_or_else(bad)?;
                for item in list {
                    let arn = item.get("arn").and_then(Value::as_str).ok_or_else(bad)?;
                    o.policy_arns.push(arn.to_string());
                }
            }
            "Tags" => {
                let bad = || {
                    Error::invalid_config(
                        field(k),
                        "must be a list of {\"Key\": ..., \"Value\": ...}",
                    )
                };
                let list = v.as_array().ok_or_else(bad)?;
                for item in list {
                    let key = item.get("Key").and_then(Value::as_str).ok_or_else(bad)?;
                    let value = item.get("Value").and_then(Value::as_str).ok_or_else(bad)?;
                    o.tags.push((key.to_string(), value.to_string()));
                }
            }
            other => {
                return Err(Error::input(
                    ErrorKind::Unsupported,
                    format!(
                        "backend_kwargs.assume_role_kwargs.{other}: not supported (use \
                         RoleSessionName, ExternalId, DurationSeconds, Policy, PolicyArns, Tags)"
                    ),
                ));
            }
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssm(kwargs: &str) -> LookupSettings {
        LookupSettings::from_backend_kwargs(BackendKind::Ssm, kwargs).unwrap()
    }

    fn sm(kwargs: &str) -> LookupSettings {
        LookupSettings::from_backend_kwargs(BackendKind::SecretsManager, kwargs).unwrap()
    }

    fn name(s: &LookupSettings, kind: LookupKind, id: &str) -> String {
        match s.resolve(kind, id).unwrap() {
            Resolution::Name(n) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_are_airflows() {
        let s = ssm("");
        assert_eq!(
            name(&s, LookupKind::Connection, "c"),
            "/airflow/connections/c"
        );
        assert_eq!(name(&s, LookupKind::Variable, "v"), "/airflow/variables/v");
        assert_eq!(name(&s, LookupKind::Config, "k"), "/airflow/config/k");
        let s = sm("{}");
        assert_eq!(
            name(&s, LookupKind::Connection, "c"),
            "airflow/connections/c"
        );
        assert_eq!(name(&s, LookupKind::Variable, "v"), "airflow/variables/v");
        assert_eq!(name(&s, LookupKind::Config, "k"), "airflow/config/k");
    }

    #[test]
    fn ssm_prefixes_with_and_without_slashes() {
        for (prefix, expected) in [
            ("airflow/connections", "/airflow/connections/id"),
            ("/airflow/connections", "/airflow/connections/id"),
            ("/airflow/connections/", "/airflow/connections/id"),
            ("airflow/connections//", "/airflow/connections/id"),
            ("", "/id"),
            ("/", "/id"),
        ] {
            let s = ssm(&format!(r#"{{"connections_prefix": {prefix:?}}}"#));
            assert_eq!(
                name(&s, LookupKind::Connection, "id"),
                expected,
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn secrets_manager_prefixes_and_sep() {
        for (kwargs, expected) in [
            (
                r#"{"connections_prefix": "airflow/connections/"}"#,
                "airflow/connections/id",
            ),
            (
                r#"{"connections_prefix": "/airflow/connections"}"#,
                "/airflow/connections/id",
            ),
            (r#"{"connections_prefix": ""}"#, "id"),
            (r#"{"connections_prefix": "/"}"#, "id"),
            (r#"{"connections_prefix": "a", "sep": "_"}"#, "a_id"),
            (r#"{"connections_prefix": "a--", "sep": "--"}"#, "a--id"),
            (r#"{"connections_prefix": "a-b-", "sep": "--"}"#, "a-b--id"),
            (r#"{"connections_prefix": "a/", "sep": ""}"#, "a/id"),
        ] {
            assert_eq!(
                name(&sm(kwargs), LookupKind::Connection, "id"),
                expected,
                "{kwargs}"
            );
        }
        // `sep` means nothing to the SSM backend
        assert_eq!(
            name(
                &ssm(r#"{"connections_prefix": "a", "sep": "_"}"#),
                LookupKind::Connection,
                "id"
            ),
            "/a/id"
        );
    }

    #[test]
    fn null_prefixes_disable() {
        let s =
            ssm(r#"{"connections_prefix": null, "variables_prefix": null, "config_prefix": null}"#);
        for kind in [
            LookupKind::Connection,
            LookupKind::Variable,
            LookupKind::Config,
        ] {
            assert_eq!(s.resolve(kind, "x").unwrap(), Resolution::Disabled);
        }
    }

    // Airflow's test_*_lookup_pattern cases: (id, pattern, looked up).
    #[test]
    fn lookup_patterns() {
        for (id, pat, looked_up) in [
            ("test", Some("test"), true),
            ("test", Some(".*"), true),
            ("test", Some("T.*"), true),
            ("test", Some("dummy-pattern"), false),
            ("test", None, true),
            ("test", Some(""), true),
            ("test_conn", Some("te"), true),
            ("my_test", Some("test"), false),
            ("test", Some("a|t"), true),
            ("xt", Some("a|t"), false),
        ] {
            for kind in [
                LookupKind::Connection,
                LookupKind::Variable,
                LookupKind::Config,
            ] {
                let kwargs = match pat {
                    Some(p) => format!(r#"{{"{}": {p:?}}}"#, kind.pattern_key()),
                    None => "{}".to_string(),
                };
                for s in [ssm(&kwargs), sm(&kwargs)] {
                    let r = s.resolve(kind, id).unwrap();
                    assert_eq!(
                        matches!(r, Resolution::Name(_)),
                        looked_up,
                        "{id} {pat:?} {r:?}"
                    );
                }
            }
        }
        // Breaking out of the anchoring group is refused, at the first lookup of that kind
        // only: other kinds, and a kind whose prefix is null, are not affected.
        let s = ssm(
            r#"{"connections_lookup_pattern": "a)|(b", "variables_lookup_pattern": 5,
                       "config_prefix": null, "config_lookup_pattern": "("}"#,
        );
        let e = s.resolve(LookupKind::Connection, "a").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("connections_lookup_pattern"), "{e}");
        let e = s.resolve(LookupKind::Variable, "a").unwrap_err();
        assert!(e.to_string().contains("variables_lookup_pattern"), "{e}");
        assert_eq!(
            s.resolve(LookupKind::Config, "a").unwrap(),
            Resolution::Disabled
        );
        let s = ssm(r#"{"connections_lookup_pattern": "(", "variables_lookup_pattern": "(?!x)v"}"#);
        assert_eq!(
            name(&s, LookupKind::Variable, "v1"),
            "/airflow/variables/v1"
        );
        assert!(s.resolve(LookupKind::Connection, "c").is_err());
        // Python's syntax: look-around, backreferences, \Z, a lone `{`.
        for (p, id) in [
            ("(?!x)", "y"),
            (r"(a)\1", "aA"),
            (r"ab\Z", "ab"),
            ("a{", "a{"),
        ] {
            assert!(LookupPattern::new(p).unwrap().is_match(id).unwrap(), "{p}");
        }
        assert!(LookupPattern::new("a(?i)").is_err());
    }

    #[test]
    fn aws_settings() {
        let s = ssm(
            r#"{"role_arn": "arn:aws:iam::222222222222:role/awesome-role", "region_name": "eu-central-1",
                "profile_name": null, "endpoint_url": "http://127.0.0.1:1", "use_ssl": false,
                "service_config": {"sts": {"endpoint_url": "http://127.0.0.1:2"}, "s3": {}},
                "assume_role_kwargs": {"ExternalId": "x", "DurationSeconds": 900, "RoleSessionName": "mine",
                                       "Tags": [{"Key": "k", "Value": "v"}], "PolicyArns": [{"arn": "a"}]},
                "aws_access_key_id": "AKID", "aws_secret_access_key": "SECRET", "aws_session_token": "TOKEN"}"#,
        );
        assert_eq!(
            s.aws.role_arn.as_deref(),
            Some("arn:aws:iam::222222222222:role/awesome-role")
        );
        assert_eq!(s.aws.region_name.as_deref(), Some("eu-central-1"));
        assert_eq!(s.aws.profile_name, None);
        assert_eq!(s.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(
            s.aws.sts_endpoint_url.as_deref(),
            Some("http://127.0.0.1:2")
        );
        assert_eq!(s.aws.assume_role.external_id.as_deref(), Some("x"));
        assert_eq!(s.aws.assume_role.duration, Some(Duration::from_secs(900)));
        assert_eq!(s.aws.assume_role.session_name.as_deref(), Some("mine"));
        assert_eq!(
            s.aws.assume_role.tags,
            vec![("k".to_string(), "v".to_string())]
        );
        assert_eq!(s.aws.assume_role.policy_arns, vec!["a".to_string()]);
        let d = format!("{s:?}");
        assert!(!d.contains("SECRET") && !d.contains("TOKEN"), "{d}");
        assert!(d.contains("AKID"));
        // An empty role_arn assumes nothing (Airflow tests `if role_arn`).
        assert_eq!(ssm(r#"{"role_arn": ""}"#).aws.role_arn, None);
    }

    #[test]
    fn bad_kwargs() {
        for (backend, kwargs, kind) in [
            (BackendKind::Ssm, "[]", ErrorKind::InvalidConfig),
            (BackendKind::Ssm, "{", ErrorKind::InvalidConfig),
            (
                BackendKind::Ssm,
                r#"{"connections_prefix": 1}"#,
                ErrorKind::InvalidConfig,
            ),
            (
                BackendKind::SecretsManager,
                r#"{"sep": null}"#,
                ErrorKind::InvalidConfig,
            ),
            (
                BackendKind::SecretsManager,
                r#"{"extra_conn_words": {"nope": ["x"]}}"#,
                ErrorKind::InvalidConfig,
            ),
            (
                BackendKind::SecretsManager,
                r#"{"extra_conn_words": {"login": "x"}}"#,
                ErrorKind::InvalidConfig,
            ),
            (
                BackendKind::Ssm,
                r#"{"role_arn": "r", "assume_role_method": "assume_role_with_saml"}"#,
                ErrorKind::Unsupported,
            ),
            (
                BackendKind::Ssm,
                r#"{"role_arn": "r", "assume_role_method": "nope"}"#,
                ErrorKind::InvalidConfig,
            ),
            (
                BackendKind::Ssm,
                r#"{"role_arn": "r", "assume_role_kwargs": {"SerialNumber": "x"}}"#,
                ErrorKind::Unsupported,
            ),
        ] {
            let e = LookupSettings::from_backend_kwargs(backend, kwargs).unwrap_err();
            assert_eq!(e.kind(), kind, "{kwargs}: {e}");
        }
        // Without role_arn, the assume-role settings are not looked at (as in Airflow).
        ssm(r#"{"assume_role_method": "nope", "assume_role_kwargs": {"SerialNumber": "x"}}"#);
        // Unknown keys are ignored.
        ssm(r#"{"verify": false, "config_kwargs": {"retries": {}}, "full_url_mode": false}"#);
    }

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
