//! `lockbox lookup`: Airflow-compatible lookups of connections, variables and config values in
//! SSM Parameter Store or Secrets Manager, configured like Airflow (the same two environment
//! variables, or the same values as flags).
//!
//! Exit codes: 0 found (the value on stdout), 3 absent (nothing on stdout, a note on stderr),
//! 1 error, 2 usage error.

use std::io::{self, Write};

use clap::{Args, ValueEnum};
use lockbox_core::{Error, ErrorKind, SecretValue};
use lockbox_lookup::{Absence, BackendKind, Lookup, LookupKind, LookupSettings, Outcome};
use serde_json::json;

use crate::arg_error::ArgError;
use crate::commands::sources::UsageError;
use crate::report::{Note, Report, to_json};

use crate::sensitive::Sensitive;

/// The exit code for "looked up, not there".
pub const EXIT_ABSENT: u8 = 3;

/// What `lockbox lookup` looks up.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum KindArg {
    // Described in LookupArgs::kind's help (doc comments here would switch clap to the long
    // help layout).
    Connection,
    Variable,
    Config,
}

impl From<KindArg> for LookupKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Connection => LookupKind::Connection,
            KindArg::Variable => LookupKind::Variable,
            KindArg::Config => LookupKind::Config,
        }
    }
}

/// Arguments of `lockbox lookup`.
#[derive(Args, Debug)]
pub struct LookupArgs {
    /// What to look up: an Airflow connection (by connection id), variable (by key) or
    /// config option (by key).
    #[arg(value_enum)]
    kind: KindArg,
    /// The connection id, variable key or config key.
    id: String,
    /// aws-ssm or aws-secretsmanager, or Airflow's class path of its SSM or Secrets Manager
    /// secrets backend (required, here or in AIRFLOW__SECRETS__BACKEND).
    #[arg(
        long,
        env = "AIRFLOW__SECRETS__BACKEND",
        value_name = "BACKEND",
        value_parser = parse_backend
    )]
    backend: Option<BackendKind>,
    /// Airflow's backend kwargs: a JSON object with connections_prefix, variables_prefix,
    /// config_prefix (null disables), *_lookup_pattern, sep, role_arn, region_name,
    /// profile_name, endpoint_url; or @FILE to read it from FILE. AWS keys
    /// (aws_secret_access_key, aws_session_token) are refused on the command line: use the
    /// environment variable or @FILE.
    #[arg(
        long,
        env = "AIRFLOW__SECRETS__BACKEND_KWARGS",
        hide_env_values = true,
        value_name = "JSON"
    )]
    backend_kwargs: Option<Sensitive>,
}

fn parse_backend(s: &str) -> Result<BackendKind, ArgError> {
    BackendKind::parse(s).map_err(ArgError::UnknownBackend)
}

/// What a lookup found: the value as stored (raw) as text, or with `--json` a connection's
/// normalised JSON or `{"kind", "id", "value"}`; when absent, nothing on stdout, a note on
/// stderr (`{"absent": ...}` with `--json`) and exit code [`EXIT_ABSENT`].
pub enum Looked {
    /// A connection, parsed.
    Connection {
        /// The value as stored.
        value: SecretValue,
        /// Its normalised JSON form.
        json: serde_json::Value,
    },
    /// A variable or config value.
    Value {
        /// Variable or config.
        kind: LookupKind,
        /// The key looked up.
        id: String,
        /// The value.
        value: SecretValue,
        /// The backend's name and the secret's, for the error when the value is not text.
        source: (&'static str, String),
    },
    /// Nothing there, and why.
    Absent(String),
}

/// Runs `lockbox lookup`.
pub async fn run(args: LookupArgs) -> anyhow::Result<Looked> {
    let Some(backend) = args.backend else {
        return Err(UsageError(
            "no secrets backend: pass --backend aws-ssm or --backend aws-secretsmanager, or set \
             AIRFLOW__SECRETS__BACKEND as Airflow does"
                .into(),
        )
        .into());
    };
    let kwargs = args
        .backend_kwargs
        .map(Sensitive::resolve_file)
        .transpose()?;
    let settings = LookupSettings::from_backend_kwargs(
        backend,
        kwargs.as_ref().map_or("", Sensitive::expose),
    )?;
    let lookup = Lookup::new(settings);
    let kind = LookupKind::from(args.kind);
    let id = args.id;
    let (name, value) = match lookup.lookup(kind, &id).await? {
        Outcome::Found { name, value } => (name, value),
        Outcome::Absent(why) => return Ok(Looked::Absent(note(&lookup, kind, &id, &why))),
    };
    Ok(match kind {
        LookupKind::Connection => match lookup.parse_connection(&name, &value)? {
            Some(conn) => Looked::Connection {
                value,
                json: conn.to_json(),
            },
            None => Looked::Absent(format!(
                "connection {id:?} not found: {name} holds an empty value"
            )),
        },
        LookupKind::Variable | LookupKind::Config => Looked::Value {
            kind,
            id,
            value,
            source: (lookup.settings().backend.name(), name),
        },
    })
}

impl Report for Looked {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Looked::Connection { value, .. } | Looked::Value { value, .. } => {
                out.write_all(value.expose_bytes())
            }
            Looked::Absent(_) => Ok(()),
        }
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        match self {
            Looked::Connection { json, .. } => to_json(json),
            Looked::Value {
                kind,
                id,
                value,
                source: (backend, name),
            } => {
                let text = value.expose_str().ok_or_else(|| {
                    Error::new(
                        ErrorKind::Corrupt,
                        backend,
                        format!("{name} does not hold UTF-8 text"),
                    )
                })?;
                to_json(&json!({ "kind": kind.name(), "id": id, "value": text }))
            }
            Looked::Absent(_) => Ok(None),
        }
    }

    fn notes(&self) -> Vec<Note> {
        match self {
            Looked::Absent(why) => vec![Note::Absent(why.clone())],
            _ => Vec::new(),
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Looked::Absent(_) => EXIT_ABSENT,
            _ => 0,
        }
    }
}

/// Why nothing was found, for stderr.
fn note(lookup: &Lookup, kind: LookupKind, id: &str, why: &Absence) -> String {
    let backend = lookup.settings().backend;
    match why {
        Absence::Disabled => format!("{kind} {id:?} not looked up: {} is null", kind.prefix_key()),
        Absence::Filtered(pattern) => format!(
            "{kind} {id:?} not looked up: it does not match {} {pattern:?}",
            kind.pattern_key()
        ),
        Absence::NotFound { name, code } => {
            let what = match backend {
                BackendKind::Ssm => "SSM parameter",
                BackendKind::SecretsManager => "Secrets Manager secret",
            };
            format!("{kind} {id:?} not found ({what} {name}: {code})")
        }
        Absence::Binary { name } => format!(
            "{kind} {id:?} not found: Secrets Manager secret {name} holds a binary value, and \
             only string values count"
        ),
        other => format!("{kind} {id:?} not found ({other:?})"),
    }
}
