//! `lockbox`: keep and fetch secrets without caring where they live.
//!
//! Exit codes: 0 success, 1 any error (one line on stderr, or `{"error": ...}` with `--json`),
//! 2 usage error, 3 a lookup found nothing.
//!
//! `main` only parses and dispatches: each command lives in its own file under `commands/`,
//! returns a [`report::Report`], and [`report::emit`] prints it.

use std::io::IsTerminal;
use std::process::ExitCode;

mod backend;
mod commands;
mod progress;
mod report;
mod sensitive;

use clap::{Parser, Subcommand};
use commands::{
    completions, delete, generate, get, init, list, lookup, man, output, policy, put, read, serve,
    sync,
};

/// Keep and fetch secrets on local disk, AWS SSM Parameter Store or AWS Secrets Manager.
#[derive(Parser, Debug)]
#[command(name = "lockbox", version, about)]
pub struct Cli {
    /// Print results, and errors (on stderr), as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a secretsManagerConfig.json describing where a node's secrets live.
    Generate(generate::GenerateArgs),
    /// Create the node's validator, BLS and network keys (as chosen); refuses if any exists.
    Init(init::InitArgs),
    /// Print the node's address, BLS public key and node ID.
    Output(output::OutputArgs),
    /// Print a secret's value (raw bytes on stdout, no newline added). NAME:3 reads SSM version
    /// 3 and NAME:label the version with that label.
    Get(get::NameArgs),
    /// Store a secret read from stdin or --from-file (never from the command line).
    Put(put::PutArgs),
    /// Delete a secret.
    Delete(get::NameArgs),
    /// List secret names, optionally only those starting with PREFIX.
    List(list::ListArgs),
    /// Print the least-privilege IAM policy a node needs, derived from its config.
    Policy(policy::PolicyArgs),
    /// Fetch the cloud secrets a manifest names into the sealed local store.
    Sync(sync::SyncArgs),
    /// Read a secret from the sealed local store, offline.
    Read(read::ReadArgs),
    /// Look up an Airflow connection, variable or config value (exit 3 when absent).
    Lookup(lookup::LookupArgs),
    /// Serve secrets and SSM parameters on a loopback HTTP endpoint, as the AWS Secrets Manager
    /// Agent and the Parameters and Secrets Lambda extension do (takes the agent's --config).
    Serve(serve::ServeArgs),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    Completions(completions::CompletionsArgs),
    /// Print the lockbox(1) man page, or a command's, as roff on stdout.
    Man(man::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(json, &format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli.command, json)) {
        Ok(code) => code,
        Err(e) => fail(json, &format!("{e:#}")),
    }
}

/// Runs one command and prints its report.
async fn run(command: Command, json: bool) -> anyhow::Result<ExitCode> {
    use report::emit;
    match command {
        Command::Generate(args) => emit(&generate::run(args)?, json),
        Command::Init(args) => emit(&init::run(args).await?, json),
        Command::Output(args) => emit(&output::run(args).await?, json),
        Command::Get(args) => emit(&get::run(args).await?, json),
        Command::Put(args) => emit(&put::run(args).await?, json),
        Command::Delete(args) => emit(&delete::run(args).await?, json),
        Command::List(args) => emit(&list::run(args).await?, json),
        Command::Policy(args) => emit(&policy::run(args)?, json),
        Command::Sync(args) => emit(&sync::run(args, json).await?, json),
        Command::Read(args) => emit(&read::run(args)?, json),
        Command::Lookup(args) => emit(&lookup::run(args).await?, json),
        Command::Serve(args) => emit(&serve::run(args).await?, json),
        Command::Completions(args) => emit(&completions::run(args)?, json),
        Command::Man(args) => emit(&man::run(args)?, json),
    }
}

/// Reports an error as one line on stderr (or `{"error": ...}`) and exits 1.
fn fail(json: bool, message: &str) -> ExitCode {
    report::print_error(message, json);
    ExitCode::from(1)
}

/// Tracing on stderr, filtered by RUST_LOG (default: warnings, but aws-config's credential-probe
/// warnings only as errors). No secret value is ever logged.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,aws_config=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
