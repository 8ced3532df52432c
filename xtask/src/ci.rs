//! `cargo xtask ci`: what CI runs (`.ci/run`).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::ValueEnum;

use crate::emulator::{self, Kind};
use crate::steps::{self, Runner, Steps};
use crate::{LOG_TAIL_LINES, agent_it, airflow_diff, deb, deploy, dotenv_readers, package, vault};

/// `cargo xtask ci`'s options.
#[derive(clap::Args)]
pub struct Ci {
    /// Do not start an emulator: integration tests then skip themselves.
    #[arg(long)]
    no_emulator: bool,
    /// Test runner: nextest when installed (auto), or plain `cargo test`.
    #[arg(long, value_enum, default_value_t = RunnerChoice::Auto)]
    runner: RunnerChoice,
}

impl Ci {
    /// Runs `cargo xtask ci`.
    pub fn run(self) -> Result<ExitCode> {
        ci(self.no_emulator, self.runner.resolve()).map(|()| ExitCode::SUCCESS)
    }
}

/// Which test runner to use.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunnerChoice {
    /// cargo-nextest if `cargo nextest --version` works, else cargo test.
    Auto,
    /// cargo-nextest (fails if it is not installed).
    Nextest,
    /// Plain `cargo test`.
    Cargo,
}

impl RunnerChoice {
    /// Resolves `auto` by looking for cargo-nextest.
    pub fn resolve(self) -> Runner {
        match self {
            RunnerChoice::Nextest => Runner::Nextest,
            RunnerChoice::Cargo => Runner::Cargo,
            RunnerChoice::Auto if steps::nextest_available() => Runner::Nextest,
            RunnerChoice::Auto => {
                eprintln!("xtask: cargo-nextest not found; using cargo test");
                Runner::Cargo
            }
        }
    }
}

/// `cargo xtask ci`.
fn ci(no_emulator: bool, runner: Runner) -> Result<()> {
    let started = Instant::now();
    let mut steps = Steps::default();
    steps.cargo("fmt", &["fmt", "--all", "--", "--check"])?;
    steps.cargo(
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;

    let crates = package::publishable_crates()?;
    let args = package::package_args(&crates);
    steps.cargo(
        "package",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;

    // The dotenv round-trip test reads `export -f dotenv` with python-dotenv and npm dotenv.
    let t = Instant::now();
    dotenv_readers::ci_step()?;
    steps.record("dotenv readers", t.elapsed());
    deploy::systemd_verify(&mut steps)?;
    deb::ci_step(&mut steps, deb::CI_PROFILE)?;

    // Doc tests first: they need no emulator, and so the test runner's summary closes the run.
    let result = steps.doc_tests(None).and_then(|()| {
        if no_emulator {
            eprintln!("xtask: --no-emulator: integration tests will skip themselves");
            return steps.tests(runner, None, None, steps::TestSet::All, &[]);
        }
        let t = Instant::now();
        let session = emulator::Session::start_scoped(Kind::Moto)?;
        steps.record("emulator start", t.elapsed());
        let t = Instant::now();
        let vault = vault::VaultServer::start()?;
        steps.record("openbao start", t.elapsed());
        let result = steps
            .tests(
                runner,
                Some(&session),
                Some(&vault),
                steps::TestSet::All,
                &[],
            )
            // Airflow as the oracle of `lockbox lookup`, on the same emulator.
            .and_then(|()| airflow_diff::ci_step(&mut steps, &session))
            // The AWS agent's own integration tests, wherever its source is at hand.
            .and_then(|()| agent_it::ci_step(&mut steps));
        if result.is_err() {
            session.print_log_tail(LOG_TAIL_LINES);
            vault.print_log_tail(LOG_TAIL_LINES);
        }
        session.stop();
        vault.stop();
        result
    });
    if result.is_ok() {
        steps.summary("ci", started.elapsed());
    }
    steps.print_counts("ci");
    result
}
