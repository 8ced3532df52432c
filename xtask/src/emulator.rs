//! The AWS emulators as host processes on 127.0.0.1: moto's standalone server (the default) and
//! LocalStack's own runtime, each installed from PyPI at pinned versions into a cached
//! virtualenv under `<target>/xtask/`.
//!
//! Two ways to run one:
//! - scoped ([`Session::start_scoped`]), for `ci` and `it`: it lives no longer than xtask. A tiny
//!   `sh` wrapper holds the read end of a pipe from xtask; when xtask closes it (or dies, even by
//!   SIGKILL or Ctrl-C) the wrapper sends SIGTERM, waits up to 5 s, then SIGKILLs the whole group.
//! - detached ([`start_detached`]), for `emulator start`: its own process group, with its PID,
//!   endpoint and kind in `<target>/xtask/emulator.{pid,endpoint,kind}` until `emulator stop`.
//!
//! Sessions in `session.rs`, the detached emulator in `detached.rs`, finding a Python in
//! `python.rs`, installing the pinned tools into virtualenvs in `venv.rs`, the subcommand in
//! `cmd.rs`.

mod cmd;
mod detached;
mod python;
mod session;
mod venv;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::ValueEnum;

pub use cmd::Emulator;
pub use detached::{start_detached, status, stop_detached};
pub use session::Session;
pub(crate) use venv::{PyTool, ensure_venv, fnv1a64, run_quiet};

use crate::{ENV_ENDPOINT, paths};

/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Environment variable that overrides the readiness deadline, in seconds.
const ENV_DEADLINE: &str = "XTASK_EMULATOR_DEADLINE_SECS";

/// Which emulator.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Kind {
    /// moto's standalone server (`moto[server]`), Python 3.9 or newer.
    Moto,
    /// LocalStack's runtime (`localstack-core[runtime]`), Python 3.13 or newer.
    Localstack,
}

/// The cached virtualenv's `moto_server`, when moto is installed (tests that need a private
/// server, such as IAM enforcement, start their own from it).
pub fn installed_moto_server() -> Option<PathBuf> {
    let state = paths::state_dir().ok()?;
    let moto = Kind::Moto.tool();
    let server = state
        .join(format!("venv-{}", moto.name))
        .join(moto.entry_point);
    server.is_file().then_some(server)
}

impl Kind {
    /// The name used in file names, messages and `LOCKBOX_IT_EMULATOR`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Moto => "moto",
            Kind::Localstack => "localstack",
        }
    }

    /// Parses a name written by [`Kind::name`].
    fn from_name(name: &str) -> Option<Kind> {
        match name.trim() {
            "moto" => Some(Kind::Moto),
            "localstack" => Some(Kind::Localstack),
            _ => None,
        }
    }

    /// What to install for the emulator.
    fn tool(self) -> PyTool {
        match self {
            Kind::Moto => PyTool {
                name: "moto",
                min_python: (3, 9),
                entry_point: "bin/moto_server",
            },
            Kind::Localstack => PyTool {
                name: "localstack",
                // 3.12 starts, but localstack-core 4.14's tagging imports `warnings.deprecated`
                // (new in 3.13), so every call that tags or emits an event fails with
                // InternalError.
                min_python: (3, 13),
                entry_point: "bin/localstack-supervisor",
            },
        }
    }

    /// The command that serves on 127.0.0.1:`port` (and only there).
    fn command(self, venv: &Path, port: u16, state: &Path) -> Command {
        let mut command;
        match self {
            Kind::Moto => {
                command = Command::new(venv.join("bin/moto_server"));
                command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            }
            Kind::Localstack => {
                command = Command::new(venv.join("bin/python"));
                command.args(["-m", "localstack.runtime.main"]);
                command
                    .env("OVERRIDE_IN_DOCKER", "0")
                    .env("GATEWAY_SERVER", "hypercorn")
                    .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
                    .env("LOCALSTACK_HOST", format!("127.0.0.1:{port}"))
                    .env("DNS_ADDRESS", "0")
                    .env("FILESYSTEM_ROOT", state.join("localstack-fs"))
                    // No network here: do not try to download its TLS test certificate.
                    .env("SKIP_SSL_CERT_DOWNLOAD", "1")
                    // No analytics events.
                    .env("DISABLE_EVENTS", "1");
            }
        }
        command
            .env("PYTHONUNBUFFERED", "1")
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .env_remove(ENV_ENDPOINT);
        command
    }

    /// How long to wait for the first SSM answer.
    fn deadline(self) -> Duration {
        let secs = std::env::var(ENV_DEADLINE)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(60);
        Duration::from_secs(secs)
    }
}
