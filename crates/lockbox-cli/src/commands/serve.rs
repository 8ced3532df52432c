//! `lockbox serve [--config FILE]`: the local secrets endpoint of lockbox-serve, a drop-in for
//! the AWS Secrets Manager Agent (same `--config` file) and the Parameters and Secrets Lambda
//! extension. This file only starts the library; it serves until SIGTERM or SIGINT.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;

use crate::report::{Note, Report};

/// Arguments of `lockbox serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The config file: the AWS agent's TOML keys, and lockbox's own under `[lockbox]`.
    /// Without it, the agent's defaults (127.0.0.1:2773).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Lambda extension mode (issue 25).
    #[command(flatten)]
    lambda: LambdaArgs,
    /// The token file for a systemd service (issue 25).
    #[command(flatten)]
    pub token: super::serve_token::TokenArgs,
}

impl ServeArgs {
    /// `--write-token FILE`: create the token file and exit instead of serving.
    pub fn writes_token(&self) -> bool {
        self.token.write_token.is_some()
    }
}

/// `lockbox serve` as a Lambda extension.
#[derive(Args, Debug)]
pub struct LambdaArgs {
    /// Run as a Lambda extension: register with the Lambda Extensions API at
    /// $AWS_LAMBDA_RUNTIME_API and serve until its SHUTDOWN event. The default when
    /// AWS_LAMBDA_RUNTIME_API is set. Without --config, configured by the AWS Parameters and
    /// Secrets Lambda Extension's variables (PARAMETERS_SECRETS_EXTENSION_*, SECRETS_MANAGER_*,
    /// SSM_PARAMETER_STORE_*), token AWS_SESSION_TOKEN.
    #[arg(long)]
    lambda_extension: bool,
    /// The extension's name as Lambda knows it: its file name under /opt/extensions.
    #[arg(long, value_name = "NAME", default_value = lockbox_serve::DEFAULT_EXTENSION_NAME)]
    lambda_extension_name: String,
    /// Lambda extension mode: start serving on the first INVOKE instead of before the function
    /// starts (SnapStart: no secret is read before the snapshot).
    #[arg(long, env = "LOCKBOX_LAMBDA_START_ON_INVOKE")]
    start_on_invoke: bool,
}

/// What is left when the server stopped: nothing on stdout, one note on stderr.
pub struct Stopped;

impl Report for Stopped {
    fn write_text(&self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
    fn json(&self) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    fn notes(&self) -> Vec<Note> {
        vec![Note::Info("lockbox serve stopped".into())]
    }
}

/// lockbox's own tracing targets: the agent's `log_level` sets the level of its own messages,
/// not of the SDK's and HTTP stack's.
const OWN_TARGETS: [&str; 8] = [
    "lockbox",
    "lockbox_serve",
    "lockbox_cache",
    "lockbox_aws",
    "lockbox_core",
    "lockbox_resources",
    "lockbox_secretsmanager",
    "lockbox_ssm",
];

/// The tracing filter ([`log_filter`]) and where records go, from one read of the config
/// (`(None, None)` when it cannot be read: `run` reports why): with `log_to_file` (the agent's
/// default) the agent's rolled `./logs/secrets_manager_agent.log`, else stderr through a
/// bounded queue that drops records rather than block serve on an unread stderr.
pub fn log_setup(
    args: &ServeArgs,
) -> (
    Option<String>,
    Option<tracing_subscriber::fmt::writer::BoxMakeWriter>,
) {
    use std::sync::Arc;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let Ok((config, _)) = serve_config(args) else {
        return (None, None);
    };
    let lossy = || {
        let stderr = Arc::new(lockbox_serve::LossyStderr::start());
        BoxMakeWriter::new(move || LossyHandle(stderr.clone()))
    };
    let writer = if config.log_to_file {
        match lockbox_serve::RollingLog::open(std::path::Path::new(".")) {
            Ok(log) => {
                let log = Arc::new(log);
                BoxMakeWriter::new(move || FileHandle(log.clone()))
            }
            Err(e) => {
                let _ = writeln!(
                    io::stderr(),
                    "warning: cannot open {} ({e}); logging to stderr",
                    lockbox_serve::LOG_FILE
                );
                lossy()
            }
        }
    } else {
        lossy()
    };
    (Some(log_filter(&config)), Some(writer))
}

/// A handle on the rolled log file, as tracing's writer.
struct FileHandle(std::sync::Arc<lockbox_serve::RollingLog>);

impl Write for FileHandle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A handle on the lossy stderr queue, as tracing's writer.
struct LossyHandle(std::sync::Arc<lockbox_serve::LossyStderr>);

impl Write for LossyHandle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The tracing filter the config's `log_level` means (the agent's levels; `NONE` is `off`),
/// used when RUST_LOG is not set: that level for lockbox's own messages, warnings from other
/// crates (aws-config's credential-probe warnings only as errors, as for every command).
fn log_filter(config: &lockbox_serve::ServeConfig) -> String {
    use lockbox_serve::LogLevel;
    let level = match config.log_level {
        LogLevel::None => return "off".to_owned(),
        level => level.filter(),
    };
    let own: Vec<String> = OWN_TARGETS.iter().map(|t| format!("{t}={level}")).collect();
    format!("warn,aws_config=error,{}", own.join(","))
}

/// Loads the config and serves (on a runtime of its own, off the CLI's) until a signal.
/// Prints the start line on stdout once it accepts connections (see [`start_line`]).
pub async fn run(args: ServeArgs) -> anyhow::Result<Stopped> {
    let (config, notes) = serve_config(&args)?;
    if let Some(options) = lambda_options(&args)? {
        return run_lambda(config, options, notes).await;
    }
    tokio::task::spawn_blocking(move || lockbox_serve::run_blocking(config, print_start_line))
        .await??;
    // The stop note goes to stderr like every command's; an stderr that is full and unread
    // (log_to_file = false, nobody reading) would block that write forever, so a stopped
    // serve exits on its own a moment later whatever stderr does.
    std::thread::spawn(|| {
        std::thread::sleep(STOP_NOTE_GRACE);
        std::process::exit(0);
    });
    Ok(Stopped)
}

/// Prints [`start_line`]: the one thing serve writes to stdout. A closed or unread stdout
/// must not stop it: the write's error is ignored (SIGPIPE is ignored by Rust programs, so a
/// gone reader is an EPIPE here, never a signal).
fn print_start_line(addr: std::net::SocketAddr) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{}", start_line(addr));
    let _ = out.flush();
}

/// How long a stopped serve waits for its stop note to be written.
const STOP_NOTE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The first line on stdout, as the AWS agent prints it (`Agent/2.0.0 listening on
/// http://127.0.0.1:2773`) with lockbox's name and version: scripts and the agent's own
/// tests wait for a first line containing `listening on`.
pub fn start_line(addr: std::net::SocketAddr) -> String {
    format!(
        "lockbox/{} listening on http://{addr}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The Lambda extension options, when in Lambda extension mode (`--lambda-extension` or
/// AWS_LAMBDA_RUNTIME_API set); `--lambda-extension` without the variable is an error.
fn lambda_options(args: &ServeArgs) -> anyhow::Result<Option<lockbox_serve::LambdaOptions>> {
    use lockbox_serve::{LambdaOptions, RUNTIME_API_VAR};
    match LambdaOptions::from_env() {
        Some(mut options) => {
            options.extension_name = args.lambda.lambda_extension_name.clone();
            options.start_on_invoke = args.lambda.start_on_invoke;
            Ok(Some(options))
        }
        None if args.lambda.lambda_extension => anyhow::bail!(
            "--lambda-extension: {RUNTIME_API_VAR} is not set (Lambda sets it to the Extensions API's host:port)"
        ),
        None => Ok(None),
    }
}

/// The config `serve` runs with, and warnings to log once logging runs: the `--config` file
/// (or the agent's defaults) outside Lambda; in Lambda extension mode without `--config`,
/// the extension's environment variables. With `--config` the file wins, and says so when
/// extension variables are set too.
fn serve_config(args: &ServeArgs) -> anyhow::Result<(lockbox_serve::ServeConfig, Vec<String>)> {
    use lockbox_serve::extension_env;
    let env = |name: &str| std::env::var(name).ok();
    if lambda_options(args)?.is_none() {
        return Ok((
            lockbox_serve::ServeConfig::load(args.config.as_deref())?,
            Vec::new(),
        ));
    }
    match &args.config {
        Some(path) => {
            let config = lockbox_serve::ServeConfig::load(Some(path))?;
            let set = extension_env::variables_set(env);
            let notes = if set.is_empty() {
                Vec::new()
            } else {
                vec![format!(
                    "{} ignored: the config file {} wins",
                    set.join(", "),
                    path.display()
                )]
            };
            Ok((config, notes))
        }
        None => {
            let read = extension_env::from_env(env);
            Ok((read.config, read.warnings))
        }
    }
}

/// Serves as a Lambda extension until SHUTDOWN (on a runtime of its own, off the CLI's).
async fn run_lambda(
    config: lockbox_serve::ServeConfig,
    options: lockbox_serve::LambdaOptions,
    notes: Vec<String>,
) -> anyhow::Result<Stopped> {
    for note in notes {
        tracing::warn!("{note}");
    }
    tokio::task::spawn_blocking(move || {
        lockbox_serve::run_extension_blocking(config, options, print_start_line)
    })
    .await??;
    Ok(Stopped)
}
