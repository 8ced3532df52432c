//! `lockbox`: keep and fetch secrets without caring where they live.
//!
//! Exit codes: 0 success, 1 any error (one line on stderr, or `{"error": ...}` with `--json`),
//! 2 usage error.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

mod lookup;
mod policy;
mod resources;

use clap::{Args, Parser, Subcommand};
use lockbox_config::{DEFAULT_CONFIG_FILE, ManagerType, SecretsManagerConfig, Token, parse_extra};
use lockbox_core::{Error, ErrorKind, PutMode, SecretName, SecretValue, SecretsManager, Version};
use serde_json::json;

/// Keep and fetch secrets on local disk, AWS SSM Parameter Store or AWS Secrets Manager.
#[derive(Parser, Debug)]
#[command(name = "lockbox", version, about)]
struct Cli {
    /// Print results, and errors (on stderr), as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a secretsManagerConfig.json describing where a node's secrets live.
    Generate(GenerateArgs),
    /// Create the node's validator key and network key; refuses if either exists.
    Init(BackendArgs),
    /// Print the node's address and node ID.
    Output(OutputArgs),
    /// Print a secret's value (raw bytes on stdout, no newline added). NAME:3 reads SSM version
    /// 3 and NAME:label the version with that label.
    Get(NameArgs),
    /// Store a secret read from stdin or --from-file (never from the command line).
    Put(PutArgs),
    /// Delete a secret.
    Delete(NameArgs),
    /// List secret names, optionally only those starting with PREFIX.
    List(ListArgs),
    /// Print the least-privilege IAM policy a node needs, derived from its config.
    Policy(policy::PolicyArgs),
    /// Fetch the cloud secrets a manifest names into the sealed local store.
    Sync(resources::SyncArgs),
    /// Read a secret from the sealed local store, offline.
    Read(resources::ReadArgs),
    /// Look up an Airflow connection, variable or config value (exit 3 when absent).
    Lookup(lookup::LookupArgs),
}

/// Where the secrets live: a local data directory or a config file.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct BackendArgs {
    /// Local data directory (Polygon Edge layout).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A secretsManagerConfig.json naming the backend.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// Backend type.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    manager_type: ManagerType,
    /// The node's name (the path segment its secrets live under).
    #[arg(long)]
    name: String,
    /// Where to write the config file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_FILE)]
    dir: PathBuf,
    /// Type-specific settings, as key=value,key2=value2.
    #[arg(long, value_name = "k=v,...", default_value = "")]
    extra: String,
    /// Custom endpoint URL (an emulator, a Vault server).
    #[arg(long, value_name = "URL")]
    server_url: Option<String>,
    /// Access token (prefer the LOCKBOX_TOKEN environment variable: argv is visible to others).
    #[arg(long, env = "LOCKBOX_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Namespace (Vault).
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
    /// Replace an existing config file.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct OutputArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Print only the validator address (reads only the validator key).
    #[arg(long, conflicts_with = "node_id")]
    validator: bool,
    /// Print only the node ID (reads only the network key).
    #[arg(long)]
    node_id: bool,
}

#[derive(Args, Debug)]
struct NameArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Secret name, such as validator-key or app/db-password.
    name: String,
}

#[derive(Args, Debug)]
struct PutArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Secret name.
    name: String,
    /// Read the value from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    from_file: Option<PathBuf>,
    /// Replace an existing secret (by default put refuses to).
    #[arg(long)]
    overwrite: bool,
}

#[derive(Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Only names starting with this.
    #[arg(default_value = "")]
    prefix: String,
}

fn parse_type(s: &str) -> Result<ManagerType, String> {
    ManagerType::parse(s).map_err(|e| e.message().to_string())
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
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => fail(json, &e.to_string()),
    }
}

/// Reports an error as one line on stderr (or `{"error": ...}`) and exits 1.
fn fail(json: bool, message: &str) -> ExitCode {
    let line = if json {
        json!({ "error": message }).to_string()
    } else {
        format!("error: {message}")
    };
    eprintln!("{line}");
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

async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let json = cli.json;
    match cli.command {
        Command::Lookup(args) => lookup::run(args, json).await,
        command => run_command(command, json).await.map(|()| ExitCode::SUCCESS),
    }
}

/// Runs every command whose success is exit code 0.
async fn run_command(command: Command, json: bool) -> Result<(), Error> {
    match command {
        Command::Generate(args) => generate(args, json),
        Command::Init(args) => {
            let backend = open(&args).await?;
            let id = lockbox_keys::init_node(backend.as_ref()).await?;
            warn_if_unencrypted(backend.as_ref(), &args);
            let (address, node_id) = (id.address.to_string(), id.node_id);
            if json {
                print_line(&json!({ "address": address, "node_id": node_id }).to_string())
            } else {
                print_line(&format!(
                    "\n[SECRETS INIT]\nPublic key (address) = {address}\nNode ID              = {node_id}\n"
                ))
            }
        }
        Command::Output(args) => output(args, json).await,
        Command::Get(args) => {
            let backend = open(&args.backend).await?;
            let (name, version) = match args.name.split_once(':') {
                Some((name, selector)) if !selector.is_empty() => {
                    (name, Version::from_selector(selector))
                }
                _ => (args.name.as_str(), Version::Current),
            };
            let name = SecretName::new(name)?;
            let value = backend.get_version(&name, &version).await?;
            if json {
                let body = match value.expose_str() {
                    Some(text) => json!({ "name": name.as_str(), "value": text }),
                    None => {
                        json!({ "name": name.as_str(), "value_base64": base64_encode(value.expose_bytes()) })
                    }
                };
                print_line(&body.to_string())
            } else {
                write_stdout(value.expose_bytes())
            }
        }
        Command::Put(args) => {
            let backend = open(&args.backend).await?;
            let name = SecretName::new(args.name)?;
            let value = read_value(args.from_file.as_deref())?;
            let mode = if args.overwrite {
                PutMode::Overwrite
            } else {
                PutMode::Create
            };
            backend.put(&name, &value, mode).await?;
            if json {
                print_line(&json!({ "name": name.as_str(), "stored": true }).to_string())?;
            }
            Ok(())
        }
        Command::Delete(args) => {
            let backend = open(&args.backend).await?;
            let name = SecretName::new(args.name)?;
            backend.delete(&name).await?;
            if json {
                print_line(&json!({ "name": name.as_str(), "deleted": true }).to_string())?;
            }
            Ok(())
        }
        Command::Policy(args) => policy::run(args, json).await,
        Command::Sync(args) => resources::sync(args, json).await,
        Command::Read(args) => resources::read(args, json).await,
        Command::Lookup(_) => unreachable!("handled in run()"),
        Command::List(args) => {
            let backend = open(&args.backend).await?;
            let names = backend.list(&args.prefix).await?;
            if json {
                let names: Vec<&str> = names.iter().map(SecretName::as_str).collect();
                print_line(&json!(names).to_string())
            } else {
                names.iter().try_for_each(|n| print_line(n.as_str()))
            }
        }
    }
}

fn generate(args: GenerateArgs, json: bool) -> Result<(), Error> {
    let config = SecretsManagerConfig {
        token: args.token.filter(|t| !t.is_empty()).map(Token::new),
        server_url: args.server_url.filter(|s| !s.is_empty()),
        manager_type: args.manager_type,
        name: args.name,
        namespace: args.namespace.filter(|s| !s.is_empty()),
        extra: parse_extra(&args.extra)?,
    };
    config.write(&args.dir, args.force)?;
    if json {
        print_line(&json!({ "config": args.dir.display().to_string() }).to_string())
    } else {
        print_line(&format!(
            "Configuration file written to {}",
            args.dir.display()
        ))
    }
}

async fn output(args: OutputArgs, json: bool) -> Result<(), Error> {
    let backend = open(&args.backend).await?;
    let backend = backend.as_ref();
    if args.validator {
        let address = lockbox_keys::read_address(backend).await?.to_string();
        return print_line(&if json {
            json!({ "address": address }).to_string()
        } else {
            address
        });
    }
    if args.node_id {
        let node_id = lockbox_keys::read_node_id(backend).await?;
        return print_line(&if json {
            json!({ "node_id": node_id }).to_string()
        } else {
            node_id
        });
    }
    let address = lockbox_keys::read_address(backend).await?.to_string();
    let node_id = lockbox_keys::read_node_id(backend).await?;
    if json {
        print_line(&json!({ "address": address, "node_id": node_id }).to_string())
    } else {
        print_line(&format!(
            "\n[SECRETS OUTPUT]\nPublic key (address) = {address}\nNode ID              = {node_id}\n"
        ))
    }
}

/// Opens the backend chosen by `--data-dir` or `--config`.
async fn open(args: &BackendArgs) -> Result<Arc<dyn SecretsManager>, Error> {
    match (&args.data_dir, &args.config) {
        (Some(dir), _) => Ok(lockbox_config::open_data_dir(dir)),
        (None, Some(path)) => {
            let config = SecretsManagerConfig::read(path)?;
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            lockbox_config::open(&config, dir).await
        }
        (None, None) => unreachable!("clap requires --data-dir or --config"),
    }
}

fn warn_if_unencrypted(backend: &dyn SecretsManager, args: &BackendArgs) {
    if backend.backend() == "local" {
        let where_ = args
            .data_dir
            .as_deref()
            .map(|d| format!(" under {}", d.display()))
            .unwrap_or_default();
        eprintln!(
            "warning: local keys are stored unencrypted{where_}; anyone with this user's rights can read them"
        );
    }
}

/// The value for `put`: a file, or all of stdin (refused when stdin is a terminal, so a
/// forgotten pipe does not hang or store what was typed by accident).
fn read_value(from_file: Option<&Path>) -> Result<SecretValue, Error> {
    let mut bytes = Vec::new();
    match from_file {
        Some(path) => {
            bytes = std::fs::read(path).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    "lockbox",
                    format!("--from-file {}: {e}", path.display()),
                )
            })?;
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "lockbox",
                    "put reads the value from stdin or --from-file, and stdin is a terminal",
                ));
            }
            stdin.lock().read_to_end(&mut bytes).map_err(|e| {
                Error::new(ErrorKind::Backend, "lockbox", format!("reading stdin: {e}"))
            })?;
        }
    }
    Ok(SecretValue::new(bytes))
}

pub(crate) fn print_line(line: &str) -> Result<(), Error> {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    write_stdout(text.as_bytes())
}

pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| {
            Error::new(
                ErrorKind::Backend,
                "lockbox",
                format!("writing to stdout: {e}"),
            )
        })
}

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
