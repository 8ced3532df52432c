//! `cargo xtask`: the project's automation, in Rust so that it needs nothing but cargo.
//!
//! - `cargo xtask ci [--no-emulator]`: format check, clippy, doc tests, then all tests against a
//!   fresh moto emulator and a fresh OpenBao dev server (Vault API), then `airflow-diff` on that
//!   emulator; closes with `ci: N passed, N failed, N skipped` (counted
//!   from nextest's `Summary` line; `N passed (N flaky)` and a `ci: flaky: NAME` line per test
//!   that passed only on a retry). What `.ci/run` calls.
//!   Between clippy and the doc tests, `cargo package` of every publishable crate, then
//!   `dotenv-readers` (skipped, saying so, without node and npm). Generated
//!   files (the example policies) are checked by a test, so `cargo test` checks them.
//! - `cargo xtask deb [--profile P]`: the Debian package (cargo-deb), checked with `dpkg-deb
//!   --contents` and lintian; also a step of `ci` (after `systemd verify`).
//! - `cargo xtask it [--emulator moto|localstack] [--docker] [-- ARGS]`: only the integration
//!   test binaries (`tests/it_*.rs` in any crate) against an emulator and an OpenBao server.
//! - `cargo xtask emulator start --vault`: a long-lived OpenBao dev server (Vault API).
//! - `cargo xtask emulator start|stop|status [--emulator moto|localstack]`: a long-lived emulator
//!   for running tests by hand; `start` prints the endpoint on stdout.
//! - `cargo xtask gen-policy [lockbox policy args] [--check|--update]`: IAM policies; `--check`
//!   fails when an example under `fixtures/policies/` is stale (as the test
//!   `policy_examples_are_up_to_date` does), `--update` rewrites it.
//! - `cargo xtask bench [--quick] [--summary FILE]`: criterion throughput benchmarks, then the
//!   HTTP load run (`lockbox serve` vs the AWS agent); `cargo xtask bench-load` runs that alone.
//! - `cargo xtask agent-it [-- ARGS]`: the AWS agent's own integration tests against
//!   `lockbox serve` on a private moto (agent checkout in `LOCKBOX_AGENT_SRC`).
//! - `cargo xtask airflow-diff [--only TEXT] [--verbose]`: `lockbox lookup` against Apache
//!   Airflow's own secrets backends (pinned, in a cached virtualenv) on the same emulator data;
//!   prints `N/M cases match`. Also a step of `cargo xtask ci`, after the tests.
//! - `cargo xtask dotenv-readers`: installs the pinned python-dotenv and npm `dotenv` that the
//!   dotenv round-trip test reads `lockbox export -f dotenv` output with.
//! - `cargo xtask emulator exec [--emulator moto|localstack] -- COMMAND...`: COMMAND against a
//!   fresh emulator that stops afterwards.
//!
//! Integration tests read the endpoint from [`ENV_ENDPOINT`] and the region from [`ENV_REGION`];
//! without the endpoint they skip themselves.

mod agent_it;
mod airflow_diff;
mod bench;
mod deb;
mod deploy;
mod dotenv_readers;
mod emulator;
mod gen_policy;
mod lambda_layer;
mod load;
mod package;
mod paths;
mod probe;
mod proc;
mod steps;
mod vault;

#[cfg(feature = "docker")]
mod docker;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use crate::emulator::Kind;
use crate::steps::{Runner, Steps};

/// Environment variable that carries the emulator's endpoint URL to integration tests.
pub const ENV_ENDPOINT: &str = "LOCKBOX_IT_ENDPOINT";
/// Environment variable that carries the AWS region integration tests should use.
pub const ENV_REGION: &str = "LOCKBOX_IT_REGION";
/// Environment variable with the path of the cached `moto_server`, for tests that need a
/// private emulator (IAM enforcement is global to a server, so they cannot share one).
pub const ENV_MOTO_SERVER: &str = "LOCKBOX_IT_MOTO_SERVER";
/// Environment variable that names the emulator (`moto` or `localstack`) behind the endpoint.
pub const ENV_EMULATOR: &str = "LOCKBOX_IT_EMULATOR";
/// The region every emulator run uses.
pub const REGION: &str = "us-east-1";
/// How many lines of the emulator's log to print when something fails.
const LOG_TAIL_LINES: usize = 40;

/// Command line of `cargo xtask`.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "lockbox project automation",
    version
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
enum Command {
    /// Everything CI checks: fmt, clippy, cargo package, doc tests, all tests against a fresh
    /// moto emulator, then the Airflow differential suite (airflow-diff) on it.
    Ci {
        /// Do not start an emulator: integration tests then skip themselves.
        #[arg(long)]
        no_emulator: bool,
        /// Test runner: nextest when installed (auto), or plain `cargo test`.
        #[arg(long, value_enum, default_value_t = RunnerChoice::Auto)]
        runner: RunnerChoice,
    },
    /// Run only the integration test binaries (`tests/it_*.rs`) against an emulator.
    ///
    /// Reuses an emulator of the same kind started by `cargo xtask emulator start` (and leaves it
    /// running); otherwise starts its own and stops it afterwards.
    It {
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
    },
    /// Print the IAM policy `lockbox policy` prints for the same arguments; with `--check`,
    /// regenerate the examples under fixtures/policies/ and fail if any is stale.
    #[command(name = "gen-policy")]
    GenPolicy(gen_policy::Args),
    /// Run the criterion benchmarks and print the table (`--quick`, `--summary FILE`).
    ///
    /// Runs the lockbox-benches criterion benchmarks (cache hits vs aws_secretsmanager_caching,
    /// cold fetch of 100 SSM parameters vs an SDK loop, a 1,000-reader stampede, a 500-node fleet
    /// start against a 40 req/s SSM limit), prints a table, and with --summary writes the
    /// headline numbers as JSON.
    Bench(bench::Options),
    /// Only the HTTP load run of `bench`: `lockbox serve` vs the AWS Secrets Manager Agent
    /// (built from `$LOCKBOX_AGENT_SRC`) on a private moto, hits at 1, 16 and 64 connections.
    #[command(name = "bench-load")]
    BenchLoad(bench::Options),
    /// The Debian package: builds `lockbox` (dist profile), its man pages and completions,
    /// runs cargo-deb and checks the package with dpkg-deb and lintian (when installed).
    Deb(deb::Args),
    #[command(name = "lambda-layer")]
    /// A Lambda layer zip: `extensions/lockbox` starting `lockbox serve` as an extension and
    /// the binary under `bin/` (dist profile, host architecture); prints its size.
    LambdaLayer(lambda_layer::Args),
    /// The AWS Secrets Manager Agent's own integration tests (checkout in `$LOCKBOX_AGENT_SRC`)
    /// against `lockbox serve` on a private moto; prints `agent-it: N passed, N failed`.
    #[command(name = "agent-it")]
    AgentIt {
        /// Extra arguments for every test binary (after `--`), e.g. a test name filter.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Install the pinned python-dotenv and npm `dotenv` (fixtures/dotenv/) that the dotenv
    /// round-trip test of `lockbox export -f dotenv` reads with.
    #[command(name = "dotenv-readers")]
    DotenvReaders,
    /// Compare `lockbox lookup` with Apache Airflow's own SSM and Secrets Manager backends.
    ///
    /// Installs the pinned apache-airflow and apache-airflow-providers-amazon
    /// (fixtures/airflow/requirements.txt) into a cached virtualenv, seeds the emulator
    /// ($LOCKBOX_IT_ENDPOINT, else the one `emulator start` left running, else a fresh moto),
    /// asks both the same questions and prints `N/M cases match`; fails on any mismatch that
    /// is not a documented divergence (README).
    #[command(name = "airflow-diff")]
    AirflowDiff(airflow_diff::Options),
    /// Manage a long-lived emulator on 127.0.0.1 (state under `<target>/xtask/`).
    Emulator {
        /// start, stop or status.
        #[command(subcommand)]
        action: EmulatorAction,
    },
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

/// Which test runner to use.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RunnerChoice {
    /// cargo-nextest if `cargo nextest --version` works, else cargo test.
    Auto,
    /// cargo-nextest (fails if it is not installed).
    Nextest,
    /// Plain `cargo test`.
    Cargo,
}

impl RunnerChoice {
    /// Resolves `auto` by looking for cargo-nextest.
    fn resolve(self) -> Runner {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Dispatches one subcommand.
fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Ci {
            no_emulator,
            runner,
        } => ci(no_emulator, runner.resolve()).map(|()| ExitCode::SUCCESS),
        Command::It {
            emulator,
            docker,
            runner,
            args,
        } => it(emulator, docker, runner.resolve(), &args).map(|()| ExitCode::SUCCESS),
        Command::GenPolicy(args) => gen_policy::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench(options) => bench::run(&options).map(|()| ExitCode::SUCCESS),
        Command::BenchLoad(options) => load::run_alone(&options).map(|()| ExitCode::SUCCESS),
        Command::Deb(args) => deb::run(&args).map(|()| ExitCode::SUCCESS),
        Command::LambdaLayer(args) => lambda_layer::run(&args).map(|()| ExitCode::SUCCESS),
        Command::AgentIt { args } => agent_it::run(&args),
        Command::DotenvReaders => dotenv_readers::run().map(|()| ExitCode::SUCCESS),
        Command::AirflowDiff(options) => airflow_diff::run(&options).map(|()| ExitCode::SUCCESS),
        Command::Emulator { action } => match action {
            EmulatorAction::Start {
                vault: true,
                emulator: _,
            } => vault::start_detached().map(|()| ExitCode::SUCCESS),
            EmulatorAction::Start { emulator, .. } => {
                emulator::start_detached(emulator).map(|()| ExitCode::SUCCESS)
            }
            EmulatorAction::Stop => emulator::stop_detached()
                .and_then(|()| vault::stop_detached())
                .map(|()| ExitCode::SUCCESS),
            EmulatorAction::Status => emulator::status(),
            EmulatorAction::Exec { emulator, command } => exec(emulator, &command),
        },
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
            .and_then(|()| airflow_diff::ci_step(&mut steps, &session));
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

/// `cargo xtask emulator exec`: runs `command` against a scoped emulator; exits with its code.
fn exec(kind: Kind, command: &[String]) -> Result<ExitCode> {
    let Some((program, args)) = command.split_first() else {
        anyhow::bail!("emulator exec: no command given");
    };
    let session = emulator::Session::start_scoped(kind)?;
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

/// Starts an emulator container through testcontainers.
#[cfg(feature = "docker")]
fn docker_session(kind: Kind) -> Result<emulator::Session> {
    docker::start(kind)
}

/// Without the `docker` feature there is no container support: say how to get it.
#[cfg(not(feature = "docker"))]
fn docker_session(_kind: Kind) -> Result<emulator::Session> {
    anyhow::bail!(
        "--docker needs xtask built with the `docker` feature, on a machine with a Docker engine: \
         cargo run --package xtask --features docker -- it --docker"
    )
}
