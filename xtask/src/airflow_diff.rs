//! `cargo xtask airflow-diff`: Apache Airflow's own AWS secrets backends as the oracle of
//! `lockbox lookup`.
//!
//! Installs the pinned `apache-airflow` and `apache-airflow-providers-amazon`
//! (`fixtures/airflow/requirements.txt`) into a cached virtualenv `<target>/xtask/venv-airflow`
//! (as moto is installed), builds the `lockbox` binary, and runs the driver
//! `fixtures/airflow/oracle.py` once: it seeds the emulator, asks Airflow's
//! `SystemsManagerParameterStoreBackend` and `SecretsManagerBackend` and `lockbox lookup` the
//! same questions, compares the answers (absent / found / error, values, connection fields as
//! both of Airflow 3's Connection classes parse them), prints `N/M cases match` and the
//! documented divergences, and fails on any unexplained mismatch.
//!
//! The emulator: `$LOCKBOX_IT_ENDPOINT` when set, else the one `cargo xtask emulator start`
//! left running, else a fresh moto that stops afterwards. Under `cargo xtask ci` it runs
//! against CI's own emulator.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::emulator::{self, Kind, PyTool, Session};
use crate::steps::Steps;
use crate::{ENV_ENDPOINT, paths};

/// Airflow and its Amazon provider, pinned in `fixtures/airflow/requirements.txt`.
const AIRFLOW: PyTool = PyTool {
    name: "airflow",
    // Airflow 3 supports Python 3.10 and newer.
    min_python: (3, 10),
    entry_point: "bin/airflow",
};

/// Options of `cargo xtask airflow-diff`.
#[derive(clap::Args, Debug, Default)]
pub struct Options {
    /// Only the cases whose name contains this text.
    #[arg(long)]
    pub only: Option<String>,
    /// Also list every case that matches.
    #[arg(long)]
    pub verbose: bool,
}

/// How long the parts took, for the summary.
struct Timings {
    install: Duration,
    build: Duration,
    suite: Duration,
}

impl Options {
    /// Runs `cargo xtask airflow-diff`.
    pub fn run(self) -> Result<ExitCode> {
        run(&self).map(|()| ExitCode::SUCCESS)
    }
}

/// `cargo xtask airflow-diff` on its own.
pub fn run(options: &Options) -> Result<()> {
    let started = Instant::now();
    let mut steps = Steps::default();
    let result = match std::env::var(ENV_ENDPOINT).ok().filter(|e| !e.is_empty()) {
        Some(endpoint) => {
            eprintln!("xtask: airflow-diff against {ENV_ENDPOINT}={endpoint}");
            suite(&mut steps, &endpoint, options)
        }
        None => {
            let session = Session::start_or_reuse(Kind::Moto)?;
            let result = suite(&mut steps, &session.endpoint, options);
            if result.is_err() {
                session.print_log_tail(40);
            }
            session.stop();
            result
        }
    };
    let timings = result?;
    eprintln!(
        "xtask: airflow-diff passed in {:.1?} (virtualenv {:.1?}, lockbox build {:.1?}, \
         suite {:.1?})",
        started.elapsed(),
        timings.install,
        timings.build,
        timings.suite
    );
    Ok(())
}

/// The step of `cargo xtask ci`: the suite against CI's emulator `session`.
pub fn ci_step(steps: &mut Steps, session: &Session) -> Result<()> {
    let timings = suite(steps, &session.endpoint, &Options::default())?;
    eprintln!(
        "xtask: airflow-diff: virtualenv {:.1?}, lockbox build {:.1?}, suite {:.1?}",
        timings.install, timings.build, timings.suite
    );
    Ok(())
}

/// Installs (once) Airflow, builds lockbox, and runs the driver against `endpoint`.
fn suite(steps: &mut Steps, endpoint: &str, options: &Options) -> Result<Timings> {
    let t = Instant::now();
    let venv = emulator::ensure_venv(AIRFLOW)?;
    let install = t.elapsed();
    steps.record("airflow venv", install);

    let t = Instant::now();
    steps.cargo("airflow-diff build", &["build", "-p", "lockbox-cli"])?;
    let build = t.elapsed();
    let lockbox = paths::target_dir().join("debug").join("lockbox");
    if !lockbox.is_file() {
        bail!(
            "cargo build -p lockbox-cli did not produce {}",
            lockbox.display()
        );
    }

    let driver = paths::workspace_root()
        .join("fixtures")
        .join("airflow")
        .join("oracle.py");
    let mut command = Command::new(venv.join("bin/python"));
    command
        .arg(&driver)
        .arg("--lockbox")
        .arg(&lockbox)
        .args(["--endpoint", endpoint])
        .current_dir(paths::workspace_root())
        // Airflow and boto3 must not pick up the caller's AWS or Airflow settings.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AIRFLOW_HOME")
        .env_remove("AIRFLOW__SECRETS__BACKEND")
        .env_remove("AIRFLOW__SECRETS__BACKEND_KWARGS");
    if let Some(only) = &options.only {
        command.args(["--only", only]);
    }
    if options.verbose {
        command.arg("--verbose");
    }
    let t = Instant::now();
    steps.run("airflow-diff", &mut command)?;
    Ok(Timings {
        install,
        build,
        suite: t.elapsed(),
    })
}
