//! `lockbox exec`: run a program with the secrets in its environment (chamber's `exec`).
//!
//! On Unix lockbox replaces itself with the program (`execvp`), so the program keeps lockbox's
//! process id: signals sent to it and its exit code are its own. Values go only into the
//! environment, never onto a command line.
//!
//! With `--watch`, lockbox stays as a small supervisor instead (see
//! [`supervise`](crate::commands::supervise)).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Args;
use lockbox_env::{ChildOptions, DEFAULT_SENTINEL, child_environment};

use crate::commands::sources::{SourceArgs, ValueArgs};
use crate::commands::supervise::{self, WatchArgs};

/// Arguments of `lockbox exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    sources: SourceArgs,
    #[command(flatten)]
    values: ValueArgs,
    /// Start the program with only the secrets (and --keep-env variables) in its environment.
    #[arg(long)]
    pristine: bool,
    /// With --pristine, keep this variable of lockbox's environment (repeatable).
    #[arg(long = "keep-env", value_name = "NAME")]
    keep_env: Vec<String>,
    /// Only replace variables already set to VALUE [default: lockbox]; one with no secret is
    /// an error.
    #[arg(
        long,
        value_name = "VALUE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = DEFAULT_SENTINEL
    )]
    strict: Option<String>,
    #[command(flatten)]
    watch: WatchArgs,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// The program could not be started: exit 127 (not found) or 126 (not executable), as
/// shells do.
#[derive(Debug)]
pub struct CannotRun {
    /// The exit code.
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for CannotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CannotRun {}

/// Reads the secrets and becomes the program (returns only on failure), or with `--watch`
/// supervises it and returns its exit code.
pub async fn run(args: ExecArgs) -> anyhow::Result<ExitCode> {
    let sources = args.sources.open().await?;
    let options = ChildOptions {
        pristine: args.pristine,
        keep_env: args.keep_env,
        strict: args.strict,
    };
    if let Some(interval) = args.watch.interval {
        return supervise::run(
            sources,
            interval,
            &args.watch,
            &args.values,
            &options,
            &args.command,
        )
        .await;
    }
    let loaded = lockbox_env::load(&sources).await?;
    let secrets: BTreeMap<String, String> = args.values.variables(&loaded)?;
    let env = child_environment(std::env::vars_os(), &secrets, &options)?;
    drop(secrets);
    drop(loaded);
    let (program, rest) = args.command.split_first().expect("clap requires COMMAND");
    let mut command = std::process::Command::new(program);
    command.args(rest).env_clear().envs(env);
    Err(become_program(command, program).into())
}

/// Replaces this process with `command` (Unix); the error when that fails.
#[cfg(unix)]
fn become_program(mut command: std::process::Command, program: &OsString) -> CannotRun {
    use std::os::unix::process::CommandExt;
    let e = command.exec();
    cannot_run(program, &e)
}

/// Elsewhere: runs `command`, waits, and exits with its code.
#[cfg(not(unix))]
fn become_program(mut command: std::process::Command, program: &OsString) -> CannotRun {
    match command.status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(e) => cannot_run(program, &e),
    }
}

/// Why `program` could not be started, with the exit code shells use.
pub fn cannot_run(program: &OsString, e: &std::io::Error) -> CannotRun {
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    };
    CannotRun {
        code,
        message: format!("cannot run {}: {e}", program.to_string_lossy()),
    }
}
