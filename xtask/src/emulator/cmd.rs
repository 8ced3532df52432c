//! `cargo xtask emulator start|stop|status|exec`: a long-lived emulator (or OpenBao server)
//! for running tests by hand, or a fresh one around one command.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::{Kind, Session};
use crate::{LOG_TAIL_LINES, steps, vault};

/// `cargo xtask emulator`'s action.
#[derive(clap::Args)]
pub struct Emulator {
    /// start, stop or status.
    #[command(subcommand)]
    action: EmulatorAction,
}

/// What `cargo xtask emulator` does.
#[derive(Subcommand)]
enum EmulatorAction {
    /// Install (once, cached) and start an emulator; print its endpoint on stdout.
    Start {
        /// Which emulator to start.
        #[arg(long, value_enum, default_value_t = Kind::Moto)]
        emulator: Kind,
        /// Start the Vault-compatible server (OpenBao, dev mode) instead, and print its address
        /// (its root token is in `<target>/xtask/vault.token`).
        #[arg(long)]
        vault: bool,
    },
    /// Stop the emulator and the OpenBao server started by `start` (SIGTERM, then SIGKILL
    /// after 5 s). Idempotent.
    Stop,
    /// Say whether the emulator runs and answers; exit 0 if it does, 1 if not.
    Status,
    /// Start a fresh emulator, run COMMAND with LOCKBOX_IT_ENDPOINT etc. set, stop it.
    ///
    /// E.g. `cargo xtask emulator exec -- cargo test -p lockbox-ssm --test it_ssm`.
    Exec {
        /// Which emulator to start.
        #[arg(long, value_enum, default_value_t = Kind::Moto)]
        emulator: Kind,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

impl Emulator {
    /// Runs `cargo xtask emulator ACTION`.
    pub fn run(self) -> Result<ExitCode> {
        match self.action {
            EmulatorAction::Start {
                vault: true,
                emulator: _,
            } => vault::start_detached().map(|()| ExitCode::SUCCESS),
            EmulatorAction::Start { emulator, .. } => {
                super::start_detached(emulator).map(|()| ExitCode::SUCCESS)
            }
            EmulatorAction::Stop => super::stop_detached()
                .and_then(|()| vault::stop_detached())
                .map(|()| ExitCode::SUCCESS),
            EmulatorAction::Status => super::status(),
            EmulatorAction::Exec { emulator, command } => exec(emulator, &command),
        }
    }
}

/// `cargo xtask emulator exec`: runs `command` against a scoped emulator; exits with its code.
fn exec(kind: Kind, command: &[String]) -> Result<ExitCode> {
    let Some((program, args)) = command.split_first() else {
        anyhow::bail!("emulator exec: no command given");
    };
    let session = Session::start_scoped(kind)?;
    let mut child = std::process::Command::new(program);
    child.args(args);
    steps::set_emulator_env(&mut child, Some(&session));
    let status = child.status();
    let code = match &status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            session.print_log_tail(LOG_TAIL_LINES);
            eprintln!("xtask: `{}` failed: {status}", steps::show(&child));
            ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1).max(1))
        }
        Err(_) => ExitCode::FAILURE,
    };
    session.stop();
    status.map_err(|err| anyhow::anyhow!("could not run `{program}`: {err}"))?;
    Ok(code)
}
