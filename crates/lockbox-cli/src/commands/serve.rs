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

/// The tracing filter ([`log_filter`]) and where records go: with `log_to_file` (the agent's
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
    let Ok(config) = lockbox_serve::ServeConfig::load(args.config.as_deref()) else {
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
    (log_filter(args), Some(writer))
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
/// `None` when the config cannot be read (`run` reports why).
pub fn log_filter(args: &ServeArgs) -> Option<String> {
    use lockbox_serve::LogLevel;
    let config = lockbox_serve::ServeConfig::load(args.config.as_deref()).ok()?;
    let level = match config.log_level {
        LogLevel::None => return Some("off".to_owned()),
        level => level.filter(),
    };
    let own: Vec<String> = OWN_TARGETS.iter().map(|t| format!("{t}={level}")).collect();
    Some(format!("warn,aws_config=error,{}", own.join(",")))
}

/// Loads the config and serves (on a runtime of its own, off the CLI's) until a signal.
/// Prints the start line on stdout once it accepts connections (see [`start_line`]).
pub async fn run(args: ServeArgs) -> anyhow::Result<Stopped> {
    let config = lockbox_serve::ServeConfig::load(args.config.as_deref())?;
    tokio::task::spawn_blocking(move || {
        lockbox_serve::run_blocking(config, |addr| {
            // The one thing serve writes to stdout. A closed or unread stdout must not stop
            // it: the write's error is ignored (SIGPIPE is ignored by Rust programs, so a gone
            // reader is an EPIPE here, never a signal).
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{}", start_line(addr));
            let _ = out.flush();
        })
    })
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
