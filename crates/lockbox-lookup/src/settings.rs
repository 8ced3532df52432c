//! Lookup settings, parsed from the JSON Airflow takes as its secrets backend kwargs, and the
//! name each lookup reads.
//!
//! Files: this one holds [`LookupSettings`] (the kwargs object, the prefixes and what a lookup
//! reads); `backend.rs` which backend and what kind of lookup; `pattern.rs` the lookup
//! patterns; `aws.rs` the AWS connection settings.

mod aws;
mod backend;
mod pattern;

use lockbox_core::{Error, Result};
use serde_json::{Map, Value};

use crate::connection::ExtraConnWords;

pub use aws::{AssumeRoleOptions, AwsSettings, StaticCredentials};
pub use backend::{
    BackendKind, ENV_BACKEND, ENV_BACKEND_KWARGS, LookupKind, SECRETS_MANAGER_BACKEND_CLASS,
    SSM_BACKEND_CLASS,
};
pub use pattern::LookupPattern;

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
        let mut aws = aws::AwsKwargs::default();
        for (key, value) in map {
            match key.as_str() {
                "connections_prefix" => s.connections_prefix = opt_string(key, value)?,
                "variables_prefix" => s.variables_prefix = opt_string(key, value)?,
                "config_prefix" => s.config_prefix = opt_string(key, value)?,
                "connections_lookup_pattern" => {
                    s.connections_lookup_pattern = pattern::from_kwargs(key, value)
                }
                "variables_lookup_pattern" => {
                    s.variables_lookup_pattern = pattern::from_kwargs(key, value)
                }
                "config_lookup_pattern" => {
                    s.config_lookup_pattern = pattern::from_kwargs(key, value)
                }
                "sep" if backend == BackendKind::SecretsManager => {
                    s.sep = opt_string(key, value)?.ok_or_else(|| {
                        Error::invalid_config("backend_kwargs.sep", "must be a string")
                    })?;
                }
                "extra_conn_words" if backend == BackendKind::SecretsManager => {
                    s.extra_conn_words = extra_words(value)?;
                }
                other => {
                    if !aws.take(&mut s.aws, other, value)? {
                        tracing::debug!(
                            key = other,
                            "backend_kwargs: key not used by lockbox lookups; ignored"
                        );
                    }
                }
            }
        }
        aws.finish(&mut s.aws)?;
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

pub(super) fn opt_string(key: &str, value: &Value) -> Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(Error::invalid_config(
            format!("backend_kwargs.{key}"),
            "must be a string or null",
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

#[cfg(test)]
mod tests {
    use lockbox_core::ErrorKind;

    use super::*;

    pub(super) fn ssm(kwargs: &str) -> LookupSettings {
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
}
