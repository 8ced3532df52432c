//! `cargo xtask it`: only the integration test binaries, against an emulator and OpenBao.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use crate::ci::RunnerChoice;
use crate::emulator::{self, Kind};
use crate::steps::{self, Runner, Steps};
use crate::{LOG_TAIL_LINES, paths, vault};

/// `cargo xtask it`'s options.
#[derive(clap::Args)]
pub struct It {
    /// Which emulator to run the tests against.
    #[arg(long, value_enum)]
    emulator: Option<Kind>,
    /// Run the emulator as a container (pinned image) through a Docker engine. Needs xtask
    /// built with `--features docker`. Without --emulator it uses LocalStack.
    #[arg(long)]
    docker: bool,
    /// Test runner: nextest when installed (auto), or plain `cargo test`.
    #[arg(long, value_enum, default_value_t = RunnerChoice::Auto)]
    runner: RunnerChoice,
    /// Extra arguments for the test runner (after `--`), e.g. a test name filter.
    #[arg(last = true)]
    args: Vec<String>,
}

impl It {
    /// Runs `cargo xtask it`.
    pub fn run(self) -> Result<ExitCode> {
        it(
            self.emulator,
            self.docker,
            self.runner.resolve(),
            &self.args,
        )
        .map(|()| ExitCode::SUCCESS)
    }
}

/// `cargo xtask it`.
fn it(kind: Option<Kind>, docker: bool, runner: Runner, args: &[String]) -> Result<()> {
    let started = Instant::now();
    let binaries = paths::integration_test_binaries()?;
    if binaries.is_empty() {
        eprintln!(
            "xtask: no integration tests yet (no `tests/it_*.rs` in any crate); nothing to run"
        );
        return Ok(());
    }
    eprintln!("xtask: integration test binaries: {}", binaries.join(", "));
    let session = if docker {
        docker_session(kind.unwrap_or(Kind::Localstack))?
    } else {
        emulator::Session::start_or_reuse(kind.unwrap_or(Kind::Moto))?
    };
    let vault = vault::start_or_reuse()?;
    let mut steps = Steps::default();
    let result = steps.tests(
        runner,
        Some(&session),
        Some(&vault),
        steps::TestSet::Integration,
        args,
    );
    if result.is_err() {
        session.print_log_tail(LOG_TAIL_LINES);
        vault.print_log_tail(LOG_TAIL_LINES);
    }
    session.stop();
    vault.stop();
    if result.is_ok() {
        steps.summary("it", started.elapsed());
    }
    steps.print_counts("it");
    result
}

/// Starts an emulator container through testcontainers.
#[cfg(feature = "docker")]
fn docker_session(kind: Kind) -> Result<emulator::Session> {
    crate::docker::start(kind)
}

/// Without the `docker` feature there is no container support: say how to get it.
#[cfg(not(feature = "docker"))]
fn docker_session(_kind: Kind) -> Result<emulator::Session> {
    anyhow::bail!(
        "--docker needs xtask built with the `docker` feature, on a machine with a Docker engine: \
         cargo run --package xtask --features docker -- it --docker"
    )
}
