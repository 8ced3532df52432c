//! `lockbox`: keep and fetch secrets without caring where they live.
//!
//! Exit codes: 0 success, 1 any error (one line on stderr, or `{"error": ...}` with `--json`),
//! 2 usage error, 3 a lookup found nothing; `exec` exits with its program's code, or 126 / 127
//! when the program cannot be run / found; `exec --watch` exits with its child's code (128+N
//! for signal N), 75 after `--on-change exit`, 69 after `--fail-after`.
//!
//! `main` only parses and dispatches: each command lives in its own file under `commands/`,
//! returns a [`report::Report`], and [`report::emit`] prints it.

use std::io::IsTerminal;
use std::process::ExitCode;

/// Every heap block is zeroed when freed (realloc moves blocks, so the old one is zeroed
/// too): the buffers a secret passes through on its way in and out (HTTP bodies, SDK output,
/// JSON rendering, stdin reads) leave no plaintext behind once dropped. Measured by
/// tests/it_memory_scan.rs.
#[global_allocator]
static ALLOCATOR: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

mod arg_error;
mod backend;
mod chamber;
mod chamber_sm;
mod commands;
mod deferred;
mod man_pages;
mod progress;
mod report;
mod sensitive;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use commands::{
    completions, delete, env, exec, export, generate, get, history, import, init, list, lookup,
    man, output, policy, put, read, render, serve, serve_token, sync,
};
use deferred::Deferred;

/// Keep and fetch secrets on local disk, AWS SSM Parameter Store, AWS Secrets Manager or Vault.
#[derive(Parser, Debug)]
#[command(
    name = "lockbox",
    version,
    about = "Keep and fetch secrets on local disk, AWS SSM Parameter Store, AWS Secrets Manager or \
             Vault: node keys (generate, init, output), one secret (get, put, delete, list, \
             history), secrets into programs as chamber does (exec, env, export, import), \
             secrets that rotate (exec --watch, render), a sealed offline store (sync, read), \
             Airflow lookups (lookup), IAM policies (policy) and a loopback Secrets Manager \
             Agent endpoint (serve)"
)]
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
    Generate(Deferred<generate::GenerateArgs>),
    /// Create the node's validator, BLS and network keys (as chosen); refuses if any exists.
    Init(Deferred<init::InitArgs>),
    /// Print the node's address, BLS public key and node ID.
    Output(Deferred<output::OutputArgs>),
    /// Print a secret's value (raw bytes when piped; a newline added on a terminal). NAME:3 reads SSM version
    /// 3 and NAME:label the version with that label.
    Get(Deferred<get::NameArgs>),
    /// Store a secret read from stdin or --from-file (never from the command line).
    Put(Deferred<put::PutArgs>),
    /// Delete a secret.
    Delete(Deferred<get::NameArgs>),
    /// List secret names, optionally only those starting with PREFIX.
    List(Deferred<list::ListArgs>),
    /// Print the least-privilege IAM policy a node needs, derived from its config.
    Policy(Deferred<policy::PolicyArgs>),
    /// Fetch the cloud secrets a manifest names into the sealed local store.
    Sync(Deferred<sync::SyncArgs>),
    /// Read a secret from the sealed local store, offline.
    Read(Deferred<read::ReadArgs>),
    /// Look up an Airflow connection, variable or config value (exit 3 when absent).
    Lookup(Deferred<lookup::LookupArgs>),
    /// Run COMMAND with the secrets of the sources in its environment (chamber exec); lockbox
    /// becomes COMMAND, so its signals and exit code are COMMAND's own; with --watch it stays
    /// and acts on COMMAND when a secret changes.
    Exec(Deferred<exec::ExecArgs>),
    /// Fill templates with the secrets and write them atomically, only when they change;
    /// with --watch keep them current (Vault Agent templates, consul-template).
    Render(Deferred<render::RenderArgs>),
    /// Print the secrets as `export NAME='value'` lines for a POSIX shell (chamber env).
    Env(Deferred<env::EnvArgs>),
    /// Print (or write with -o) the secrets as json, yaml, dotenv, tfvars, java-properties, csv
    /// or tsv (chamber export).
    Export(Deferred<export::ExportArgs>),
    /// Store every entry of a json, yaml or dotenv file; a file with a bad entry writes nothing
    /// (chamber import).
    Import(Deferred<import::ImportArgs>),
    /// List the versions of a secret with labels, dates and who changed it, never values
    /// (chamber history).
    History(Deferred<history::HistoryArgs>),
    /// Serve secrets and SSM parameters on a loopback HTTP endpoint, as the AWS Secrets Manager
    /// Agent and the Parameters and Secrets Lambda extension do (takes the agent's --config).
    Serve(Deferred<serve::ServeArgs>),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    Completions(Deferred<completions::CompletionsArgs>),
    /// Print the lockbox(1) man page, or a command's, as roff on stdout.
    Man(Deferred<man::ManArgs>),
}

fn main() -> ExitCode {
    let wants_json = json_requested(std::env::args_os());
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (m, cli)));
    let (matches, cli) = match parsed {
        Ok(both) => both,
        Err(e) => return usage_error(&e, wants_json),
    };
    let json = cli.json;
    if let Err(message) = sensitive::refuse_credentials_on_argv(&matches) {
        report::print_error(&message.to_string(), json);
        return ExitCode::from(2);
    }
    let subcommand = matches.subcommand_name().unwrap_or_default().to_owned();
    drop(matches);
    // `serve` applies its config's log_level (the agent's) unless RUST_LOG is set.
    let (log_filter, log_writer) = match &cli.command {
        Command::Serve(Deferred(args)) => serve::log_setup(args),
        _ => (None, None),
    };
    init_tracing(log_filter.as_deref(), log_writer);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(json, &format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli.command, json)) {
        Ok(code) => code,
        Err(e) => {
            if let Some(cannot) = e.downcast_ref::<exec::CannotRun>() {
                report::print_error(&cannot.message, json);
                ExitCode::from(cannot.code)
            } else if let Some(usage) = e.downcast_ref::<commands::sources::UsageError>() {
                // As clap's own usage errors: the message, then the command's usage line.
                let mut cmd = Cli::command();
                cmd.build();
                let line = cmd
                    .find_subcommand_mut(&subcommand)
                    .map(|c| c.render_usage().to_string())
                    .unwrap_or_default();
                report::print_usage_error(&format!("error: {}\n\n{line}\n", usage.0), json);
                ExitCode::from(2)
            } else {
                fail(json, &format!("{e:#}"))
            }
        }
    }
}

/// True when `--json` comes before any `--` (clap could not parse the line, so it cannot
/// tell; a usage error is then reported as JSON too).
fn json_requested(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    args.skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// A command line clap refused: `--help` and `--version` print as usual (exit 0); a usage
/// error prints clap's text, or `{"error", "usage"}` with `--json`, and exits 2.
fn usage_error(e: &clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    if !json
        || matches!(
            e.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        )
    {
        e.exit()
    }
    report::print_usage_error(&e.render().to_string(), json);
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// Runs one command and prints its report.
async fn run(command: Command, json: bool) -> anyhow::Result<ExitCode> {
    use report::emit;
    match command {
        Command::Generate(Deferred(args)) => emit(&generate::run(args).await?, json),
        Command::Init(Deferred(args)) => emit(&init::run(args).await?, json),
        Command::Output(Deferred(args)) => emit(&output::run(args).await?, json),
        Command::Get(Deferred(args)) => emit(&get::run(args).await?, json),
        Command::Put(Deferred(args)) => emit(&put::run(args).await?, json),
        Command::Delete(Deferred(args)) => emit(&delete::run(args).await?, json),
        Command::List(Deferred(args)) => emit(&list::run(args).await?, json),
        Command::Policy(Deferred(args)) => emit(&policy::run(args)?, json),
        Command::Sync(Deferred(args)) => emit(&sync::run(args, json).await?, json),
        Command::Read(Deferred(args)) => emit(&read::run(args)?, json),
        Command::Lookup(Deferred(args)) => emit(&lookup::run(args).await?, json),
        Command::Exec(Deferred(args)) => exec::run(args).await,
        Command::Render(Deferred(args)) => emit(&render::run(args).await?, json),
        Command::Env(Deferred(args)) => emit(&env::run(args).await?, json),
        Command::Export(Deferred(args)) => emit(&export::run(args).await?, json),
        Command::Import(Deferred(args)) => emit(&import::run(args).await?, json),
        Command::History(Deferred(args)) => emit(&history::run(args).await?, json),
        Command::Serve(Deferred(args)) if args.writes_token() => {
            emit(&serve_token::write_token(&args.token)?, json)
        }
        Command::Serve(Deferred(args)) => emit(&serve::run(args).await?, json),
        Command::Completions(Deferred(args)) => emit(&completions::run(args)?, json),
        Command::Man(Deferred(args)) => emit(&man::run(args)?, json),
    }
}

/// Reports an error as one line on stderr (or `{"error": ...}`) and exits 1.
fn fail(json: bool, message: &str) -> ExitCode {
    report::print_error(message, json);
    ExitCode::from(1)
}

/// Setting this environment variable to `1` lifts the [`CREDENTIAL_LOGGING_TARGETS`] caps, for
/// a deliberate debugging session: RUST_LOG=trace then shows signed requests, session token
/// included. lockbox says so on stderr when it is set.
const ENV_LOG_CREDENTIALS: &str = "LOCKBOX_LOG_CREDENTIALS";

/// Third-party tracing targets that log credentials, and the most they may log unless
/// [`ENV_LOG_CREDENTIALS`] is `1`, whatever RUST_LOG says: at trace, aws-sigv4 logs the
/// canonical request (with the `x-amz-security-token` header, the session token) and
/// aws-smithy-runtime's orchestrator logs each request as sent (all headers, the session token
/// and the signature included); the interceptor context is capped too, as it can print a
/// request. hyper, hyper-util, h2 and reqwest (the Vault client) do not log header values.
pub const CREDENTIAL_LOGGING_TARGETS: [&str; 3] = [
    "aws_sigv4",
    "aws_smithy_runtime::client::orchestrator",
    "aws_smithy_runtime_api::client::interceptors::context",
];

/// Tracing on stderr, filtered by RUST_LOG (default: `default_filter`, else warnings, but
/// aws-config's credential-probe warnings only as errors), with [`CREDENTIAL_LOGGING_TARGETS`]
/// capped at debug. No secret value or credential is ever logged.
fn init_tracing(
    default_filter: Option<&str>,
    writer: Option<tracing_subscriber::fmt::writer::BoxMakeWriter>,
) {
    use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, fmt};
    let lifted = std::env::var(ENV_LOG_CREDENTIALS).is_ok_and(|v| v == "1");
    let ansi = writer.is_none() && std::io::stderr().is_terminal();
    let writer = writer
        .unwrap_or_else(|| tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr));
    if std::env::var_os(EnvFilter::DEFAULT_ENV).is_none() && !lifted && default_filter.is_none() {
        // The default (warnings; aws-config's credential-probe warnings only as errors) as a
        // plain target filter: no directive parsing, and the credential caps (at debug) are
        // below it anyway.
        let filter = Targets::new()
            .with_default(LevelFilter::WARN)
            .with_target("aws_config", LevelFilter::ERROR);
        let layer = fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .with_filter(filter);
        tracing_subscriber::registry().with(layer).init();
        return;
    }
    let env = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter.unwrap_or("warn,aws_config=error")));
    let cap = if lifted {
        Targets::new().with_default(LevelFilter::TRACE)
    } else {
        Targets::new()
            .with_default(LevelFilter::TRACE)
            .with_targets(
                CREDENTIAL_LOGGING_TARGETS
                    .iter()
                    .map(|t| (*t, LevelFilter::DEBUG)),
            )
    };
    let layer = fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_filter(env.and(cap));
    tracing_subscriber::registry().with(layer).init();
    if lifted {
        tracing::warn!(
            "{ENV_LOG_CREDENTIALS}=1: tracing may log credentials (session tokens, signatures)"
        );
    }
}
