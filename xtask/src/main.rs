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
//! - `cargo xtask soak [--minutes N] [--summary FILE] [--lockbox PATH]`: `lockbox serve` under
//!   wrk with the emulator restarted every 30 s, a token-less flood and a consumer cycling
//!   stages (not in CI).
//! - `cargo xtask emulator exec [--emulator moto|localstack] -- COMMAND...`: COMMAND against a
//!   fresh emulator that stops afterwards.
//!
//! Integration tests read the endpoint from [`ENV_ENDPOINT`] and the region from [`ENV_REGION`];
//! without the endpoint they skip themselves.

mod agent_it;
mod airflow_diff;
mod bench;
mod ci;
mod deb;
mod deploy;
mod dotenv_readers;
mod emulator;
mod gen_policy;
mod it;
mod lambda_layer;
mod load;
mod package;
mod paths;
mod probe;
mod proc;
mod soak;
mod steps;
mod util;
mod vault;

#[cfg(feature = "docker")]
mod docker;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

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
/// How many lines of an emulator's or OpenBao's log to print when something fails.
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

/// The subcommands: each is its module's type, whose `run` does the work.
#[derive(Subcommand)]
enum Command {
    /// Everything CI checks: fmt, clippy, cargo package, doc tests, all tests against a fresh
    /// moto emulator, then the Airflow differential suite (airflow-diff) on it.
    Ci(ci::Ci),
    /// Run only the integration test binaries (`tests/it_*.rs`) against an emulator.
    ///
    /// Reuses an emulator of the same kind started by `cargo xtask emulator start` (and leaves it
    /// running); otherwise starts its own and stops it afterwards.
    It(it::It),
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
    BenchLoad(load::BenchLoad),
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
    AgentIt(agent_it::AgentIt),
    /// Install the pinned python-dotenv and npm `dotenv` (fixtures/dotenv/) that the dotenv
    /// round-trip test of `lockbox export -f dotenv` reads with.
    #[command(name = "dotenv-readers")]
    DotenvReaders(dotenv_readers::DotenvReaders),
    /// Compare `lockbox lookup` with Apache Airflow's own SSM and Secrets Manager backends.
    ///
    /// Installs the pinned apache-airflow and apache-airflow-providers-amazon
    /// (fixtures/airflow/requirements.txt) into a cached virtualenv, seeds the emulator
    /// ($LOCKBOX_IT_ENDPOINT, else the one `emulator start` left running, else a fresh moto),
    /// asks both the same questions and prints `N/M cases match`; fails on any mismatch that
    /// is not a documented divergence (README).
    #[command(name = "airflow-diff")]
    AirflowDiff(airflow_diff::Options),
    /// `lockbox serve` under wrk for `--minutes` (default 10) with the emulator restarted every
    /// 30 s, a token-less connection flood and a consumer cycling stages; not part of CI.
    Soak(soak::Options),
    /// Manage a long-lived emulator on 127.0.0.1 (state under `<target>/xtask/`).
    Emulator(emulator::Emulator),
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

/// Dispatches one subcommand to its module.
fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Ci(cmd) => cmd.run(),
        Command::It(cmd) => cmd.run(),
        Command::GenPolicy(cmd) => cmd.run(),
        Command::Bench(cmd) => cmd.run(),
        Command::BenchLoad(cmd) => cmd.run(),
        Command::Deb(args) => args.run(),
        Command::LambdaLayer(cmd) => cmd.run(),
        Command::AgentIt(cmd) => cmd.run(),
        Command::DotenvReaders(cmd) => cmd.run(),
        Command::AirflowDiff(cmd) => cmd.run(),
        Command::Soak(options) => soak::run(&options),
        Command::Emulator(cmd) => cmd.run(),
    }
}
