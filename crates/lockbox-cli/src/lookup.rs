//! `lockbox lookup`: Airflow-compatible lookups of connections, variables and config values in
//! SSM Parameter Store or Secrets Manager, configured like Airflow (the same two environment
//! variables, or the same values as flags).
//!
//! Exit codes: 0 found (the value on stdout), 3 absent (nothing on stdout, a note on stderr),
//! 1 error, 2 usage error.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use lockbox_core::Error;
use lockbox_lookup::{Absence, BackendKind, Lookup, LookupKind, LookupSettings, Outcome};
use serde_json::json;

/// The exit code for "looked up, not there".
pub const EXIT_ABSENT: u8 = 3;

/// What `lockbox lookup` looks up.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum KindArg {
    /// An Airflow connection (by connection id).
    Connection,
    /// An Airflow variable (by key).
    Variable,
    /// An Airflow configuration option (by key).
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
    /// What to look up.
    #[arg(value_enum)]
    kind: KindArg,
    /// The connection id, variable key or config key.
    id: String,
    /// aws-ssm or aws-secretsmanager, or Airflow's class path of its SSM or Secrets Manager
    /// secrets backend.
    #[arg(
        long,
        env = "AIRFLOW__SECRETS__BACKEND",
        value_name = "BACKEND",
        value_parser = parse_backend
    )]
    backend: BackendKind,
    /// Airflow's backend kwargs: a JSON object with connections_prefix, variables_prefix,
    /// config_prefix (null disables), *_lookup_pattern, sep, role_arn, region_name,
    /// profile_name, endpoint_url.
    #[arg(
        long,
        env = "AIRFLOW__SECRETS__BACKEND_KWARGS",
        hide_env_values = true,
        value_name = "JSON"
    )]
    backend_kwargs: Option<String>,
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    BackendKind::parse(s).map_err(|e| e.message().to_string())
}

/// Runs `lockbox lookup`. A found value goes to stdout (a connection as stored, or with
/// `--json` as its normalised JSON); an absent one gives exit code 3 with nothing on stdout.
pub async fn run(args: LookupArgs, json: bool) -> Result<ExitCode, Error> {
    let settings = LookupSettings::from_backend_kwargs(
        args.backend,
        args.backend_kwargs.as_deref().unwrap_or(""),
    )?;
    let lookup = Lookup::new(settings);
    let kind = LookupKind::from(args.kind);
    let id = args.id.as_str();
    let (name, value) = match lookup.lookup(kind, id).await? {
        Outcome::Found { name, value } => (name, value),
        Outcome::Absent(why) => return Ok(absent(json, &note(&lookup, kind, id, &why))),
    };
    match kind {
        LookupKind::Connection => {
            let Some(conn) = lookup.parse_connection(&name, &value)? else {
                return Ok(absent(
                    json,
                    &format!("connection {id:?} not found: {name} holds an empty value"),
                ));
            };
            if json {
                crate::print_line(&conn.to_json().to_string())?;
            } else {
                crate::write_stdout(value.expose_bytes())?;
            }
        }
        LookupKind::Variable | LookupKind::Config => {
            if json {
                let text = value.expose_str().ok_or_else(|| {
                    Error::new(
                        lockbox_core::ErrorKind::Corrupt,
                        lookup.settings().backend.name(),
                        format!("{name} does not hold UTF-8 text"),
                    )
                })?;
                crate::print_line(
                    &json!({ "kind": kind.name(), "id": id, "value": text }).to_string(),
                )?;
            } else {
                crate::write_stdout(value.expose_bytes())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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

/// Reports an absent value on stderr (one line, or `{"absent": ...}` with `--json`) and returns
/// [`EXIT_ABSENT`], nothing having been written to stdout.
fn absent(json: bool, note: &str) -> ExitCode {
    let line = if json {
        json!({ "absent": note }).to_string()
    } else {
        format!("note: {note}")
    };
    eprintln!("{line}");
    ExitCode::from(EXIT_ABSENT)
}
