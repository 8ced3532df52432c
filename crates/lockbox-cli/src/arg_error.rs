//! Command-line values lockbox refuses before any command runs: each variant names the rule
//! broken, and its Display is the text shown after clap's `invalid value` preamble (or, for
//! credentials on the command line, the whole error line).

use thiserror::Error;

/// A command-line value refused by lockbox's own checks (clap reports the value and flag).
#[derive(Debug, Error)]
pub enum ArgError {
    /// A flag that takes a Go-style boolean got something else.
    #[error("{0:?} is not a boolean (true or false)")]
    NotABool(String),
    /// `lockbox man NAME` named no lockbox command.
    #[error("lockbox has no such command; it has {}", known.join(", "))]
    UnknownCommand {
        /// The commands lockbox has.
        known: Vec<String>,
    },
    /// `lookup --backend` named no backend lookup knows.
    #[error("{}", .0.message())]
    UnknownBackend(lockbox_core::Error),
    /// `generate --token` was given on the command line, where every user of the machine sees it.
    #[error(
        "--token on the command line is visible to every user of this machine (ps, /proc); set \
         the LOCKBOX_TOKEN environment variable instead"
    )]
    TokenOnArgv,
    /// `lookup --backend-kwargs` JSON on the command line holds AWS credentials.
    #[error(
        "--backend-kwargs holds AWS credentials ({}), and the command line is visible to every \
         user of this machine (ps, /proc); put the kwargs in the \
         AIRFLOW__SECRETS__BACKEND_KWARGS environment variable or in an owner-only file passed \
         as --backend-kwargs @FILE, or leave the keys out and use the AWS credential chain \
         (AWS_PROFILE, instance roles)",
        keys.join(", ")
    )]
    CredentialsInKwargs {
        /// The credential keys lockbox looks for.
        keys: &'static [&'static str],
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_rules_users_saw_before() {
        assert_eq!(
            ArgError::NotABool("yes".into()).to_string(),
            "\"yes\" is not a boolean (true or false)"
        );
        let known = vec!["sync".to_owned(), "man".to_owned()];
        assert_eq!(
            ArgError::UnknownCommand { known }.to_string(),
            "lockbox has no such command; it has sync, man"
        );
        let e = ArgError::CredentialsInKwargs {
            keys: &crate::sensitive::CREDENTIAL_KWARGS,
        }
        .to_string();
        assert!(
            e.starts_with("--backend-kwargs holds AWS credentials (aws_secret_access_key, "),
            "{e}"
        );
    }
}
