//! `lockbox serve [--config FILE]`: the local secrets endpoint of lockbox-serve, a drop-in for
//! the AWS Secrets Manager Agent (same `--config` file) and the Parameters and Secrets Lambda
//! extension. This file only starts the library; it serves until SIGTERM or SIGINT.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;

use crate::report::{Note, Report};

/// Arguments of `lockbox serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The config file: the AWS agent's TOML keys, and lockbox's own under `[lockbox]`.
    /// Without it, the agent's defaults (127.0.0.1:2773).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// What is left when the server stopped: nothing on stdout, one note on stderr.
pub struct Stopped;

impl Report for Stopped {
    fn write_text(&self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
    fn json(&self) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    fn notes(&self) -> Vec<Note> {
        vec![Note::Info("lockbox serve stopped".into())]
    }
}

/// lockbox's own tracing targets: the agent's `log_level` sets the level of its own messages,
/// not of the SDK's and HTTP stack's.
const OWN_TARGETS: [&str; 8] = [
    "lockbox",
    "lockbox_serve",
    "lockbox_cache",
    "lockbox_aws",
    "lockbox_core",
    "lockbox_resources",
    "lockbox_secretsmanager",
    "lockbox_ssm",
];

/// The tracing filter the config's `log_level` means (the agent's levels; `NONE` is `off`),
/// used when RUST_LOG is not set: that level for lockbox's own messages, warnings from other
/// crates (aws-config's credential-probe warnings only as errors, as for every command).
/// `None` when the config cannot be read (`run` reports why).
pub fn log_filter(args: &ServeArgs) -> Option<String> {
    use lockbox_serve::LogLevel;
    let config = lockbox_serve::ServeConfig::load(args.config.as_deref()).ok()?;
    let level = match config.log_level {
        LogLevel::None => return Some("off".to_owned()),
        level => level.filter(),
    };
    let own: Vec<String> = OWN_TARGETS.iter().map(|t| format!("{t}={level}")).collect();
    Some(format!("warn,aws_config=error,{}", own.join(",")))
}

/// Loads the config and serves (on a runtime of its own, off the CLI's) until a signal.
/// Prints `lockbox serve: listening on ADDR` on stderr once it accepts connections.
pub async fn run(args: ServeArgs) -> anyhow::Result<Stopped> {
    let config = lockbox_serve::ServeConfig::load(args.config.as_deref())?;
    tokio::task::spawn_blocking(move || {
        lockbox_serve::run_blocking(config, |addr| {
            eprintln!("lockbox serve: listening on {addr}");
        })
    })
    .await??;
    Ok(Stopped)
}
