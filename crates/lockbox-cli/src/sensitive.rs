//! Flag values that may carry credentials (`--token`, `--backend-kwargs`): their Debug never
//! shows them, so printing the parsed arguments (a `{:?}` in a log line or a panic) leaks
//! nothing; and credentials are refused on the command line, where every user of the machine
//! can read them (`ps`, `/proc/PID/cmdline`): [`refuse_credentials_on_argv`] names the
//! environment variable or file to use instead.

use std::convert::Infallible;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use clap::ArgMatches;
use clap::parser::ValueSource;
use lockbox_core::{Error, ErrorKind};
use zeroize::Zeroizing;

use crate::arg_error::ArgError;

/// Keys of Airflow's backend kwargs that hold AWS credentials.
pub const CREDENTIAL_KWARGS: [&str; 2] = ["aws_secret_access_key", "aws_session_token"];

/// Longest `--backend-kwargs @FILE` read.
const MAX_KWARGS_FILE: u64 = 1 << 20;

/// A flag's text, redacted in Debug.
#[derive(Clone)]
pub struct Sensitive(String);

impl Sensitive {
    /// The text itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The text, moved out.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl Sensitive {
    /// `@FILE` reads the value from FILE (a file that holds credentials must be owner-only);
    /// anything else is the value itself.
    pub fn resolve_file(self) -> Result<Self, Error> {
        let Some(path) = self.0.strip_prefix('@') else {
            return Ok(self);
        };
        let path = Path::new(path);
        let text = read_small(path)?;
        if holds_credential_kwargs(&text) {
            let meta = std::fs::metadata(path).map_err(|e| {
                Error::input(
                    ErrorKind::Backend,
                    format!("cannot stat {}: {e}", path.display()),
                )
            })?;
            if let Err(open) = lockbox_fs::check_owner_only(path, &meta) {
                return Err(Error::input(
                    ErrorKind::PermissionDenied,
                    format!(
                        "{} holds AWS credentials and has mode {:04o}, so group or others can \
                         read it (fix: {})",
                        path.display(),
                        open.mode,
                        open.fix()
                    ),
                ));
            }
        }
        Ok(Self(text.to_string()))
    }
}

fn read_small(path: &Path) -> Result<Zeroizing<String>, Error> {
    use std::io::Read;
    let fail = |e: std::io::Error| {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::InvalidConfig,
        };
        Error::input(kind, format!("--backend-kwargs @{}: {e}", path.display()))
    };
    let file = std::fs::File::open(path).map_err(fail)?;
    if !file.metadata().map_err(fail)?.is_file() {
        return Err(fail(std::io::Error::other("not a regular file")));
    }
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_KWARGS_FILE + 1)
        .read_to_string(&mut text)
        .map_err(fail)?;
    if text.len() as u64 > MAX_KWARGS_FILE {
        return Err(fail(std::io::Error::other(format!(
            "larger than {MAX_KWARGS_FILE} bytes"
        ))));
    }
    Ok(text)
}

/// True when backend kwargs text holds AWS credentials: a JSON object with a non-empty
/// [`CREDENTIAL_KWARGS`] key (compared ignoring case), or, for text that is not JSON, one of
/// those names anywhere in it.
pub fn holds_credential_kwargs(text: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => map.iter().any(|(k, v)| {
            CREDENTIAL_KWARGS.iter().any(|c| k.eq_ignore_ascii_case(c))
                && !(v.is_null() || v.as_str() == Some(""))
        }),
        Ok(_) => false,
        Err(_) => {
            let lower = text.to_ascii_lowercase();
            CREDENTIAL_KWARGS.iter().any(|c| lower.contains(c))
        }
    }
}

/// Refuses credentials given on the command line: a non-empty `generate --token`, and
/// `lookup --backend-kwargs` JSON with AWS secret keys or session tokens. The same values from
/// the environment (`LOCKBOX_TOKEN`, `AIRFLOW__SECRETS__BACKEND_KWARGS`) or from a file
/// (`--backend-kwargs @FILE`) are fine. The message names where to put them instead.
pub fn refuse_credentials_on_argv(matches: &ArgMatches) -> Result<(), ArgError> {
    fn from_argv<'m>(m: &'m ArgMatches, id: &str) -> Option<&'m str> {
        if m.value_source(id) != Some(ValueSource::CommandLine) {
            return None;
        }
        m.get_one::<Sensitive>(id).map(Sensitive::expose)
    }
    match matches.subcommand() {
        Some(("generate", m)) if from_argv(m, "token").is_some_and(|t| !t.is_empty()) => {
            Err(ArgError::TokenOnArgv)
        }
        Some(("lookup", m))
            if from_argv(m, "backend_kwargs")
                .is_some_and(|k| !k.starts_with('@') && holds_credential_kwargs(k)) =>
        {
            Err(ArgError::CredentialsInKwargs {
                keys: &CREDENTIAL_KWARGS,
            })
        }
        _ => Ok(()),
    }
}

impl FromStr for Sensitive {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s: Sensitive = "s.SUPERSECRET".parse().unwrap();
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some([REDACTED])");
        assert_eq!(s.expose(), "s.SUPERSECRET");
    }

    #[test]
    fn credential_kwargs_are_recognised() {
        for yes in [
            r#"{"aws_access_key_id": "AKID", "aws_secret_access_key": "S"}"#,
            r#"{"region_name": "us-east-1", "AWS_SESSION_TOKEN": "T"}"#,
            r#"{"aws_secret_access_key": "S""#,
        ] {
            assert!(holds_credential_kwargs(yes), "{yes}");
        }
        for no in [
            "",
            r#"{"region_name": "us-east-1", "endpoint_url": "http://x"}"#,
            r#"{"aws_secret_access_key": null, "aws_session_token": ""}"#,
            "[1]",
        ] {
            assert!(!holds_credential_kwargs(no), "{no}");
        }
    }

    #[test]
    fn kwargs_files_are_read_and_must_be_owner_only_with_credentials() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kw.json");
        let at = format!("@{}", path.display());
        std::fs::write(&path, r#"{"region_name": "eu-west-1"}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let s: Sensitive = at.parse().unwrap();
        assert_eq!(
            s.resolve_file().unwrap().expose(),
            r#"{"region_name": "eu-west-1"}"#
        );
        std::fs::write(&path, r#"{"aws_secret_access_key": "S3CR3T"}"#).unwrap();
        let e = at.parse::<Sensitive>().unwrap().resolve_file().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert!(!e.to_string().contains("S3CR3T"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        at.parse::<Sensitive>().unwrap().resolve_file().unwrap();
        let plain: Sensitive = "{}".parse().unwrap();
        assert_eq!(plain.resolve_file().unwrap().expose(), "{}");
    }
}
