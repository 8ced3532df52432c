//! A [`Session`]: an emulator tests are pointed at, scoped to this xtask (the `sh` wrapper of
//! the module docs), reused from `emulator start`, or a container.

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::detached::Detached;
use super::{ENV_DEADLINE, Kind, STOP_GRACE, ensure_venv};
use crate::util::tail_section;
use crate::{paths, probe, proc, util};

/// How often readiness is probed.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// The wrapper that ties a scoped emulator's life to xtask's (see the module docs).
/// `$@` is the emulator command; it prints the emulator's PID on stdout, then closes stdout.
const WRAPPER: &str = r#"
"$@" </dev/null >&2 &
child=$!
echo "$child"
exec >&2
trap '' HUP INT TERM
read -r _ || :
kill -TERM "$child" 2>/dev/null
(sleep 5; kill -KILL "$child" 2>/dev/null) &
wait "$child"
kill -KILL 0
"#;

/// A running emulator that tests can be pointed at.
pub struct Session {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Which emulator answers there.
    pub kind: Kind,
    /// How it runs, and so how it stops.
    backend: Backend,
}

/// How a [`Session`]'s emulator runs.
enum Backend {
    /// Started by this xtask, stops with it.
    Scoped(Scoped),
    /// Started by `cargo xtask emulator start`; left running.
    Reused {
        /// Its log file.
        log: PathBuf,
    },
    /// A container started through testcontainers.
    #[cfg(feature = "docker")]
    Container(Box<crate::docker::Container>),
    /// Already stopped.
    Stopped,
}

/// A scoped emulator process (behind the wrapper).
struct Scoped {
    /// The wrapper `sh`, leader of the emulator's process group.
    wrapper: Child,
    /// The pipe whose closing tells the wrapper to stop the emulator.
    stdin: Option<ChildStdin>,
    /// Its log file.
    log: PathBuf,
    /// Keep the log after stopping (something failed and the user was pointed at it).
    keep_log: Cell<bool>,
}

impl Session {
    /// Installs (if needed) and starts an emulator that stops when the session is dropped.
    pub fn start_scoped(kind: Kind) -> Result<Session> {
        Session::start_scoped_on(kind, util::free_port()?)
    }

    /// Like [`Session::start_scoped`], on 127.0.0.1:`port` (a restart on the same endpoint).
    pub fn start_scoped_on(kind: Kind, port: u16) -> Result<Session> {
        let state = paths::state_dir()?;
        let venv = ensure_venv(kind.tool())?;
        // One log per run (runs may overlap); removed after a clean stop, kept after a failure.
        let log = state.join(format!("it-{}-{port}.log", kind.name()));
        let log_file =
            File::create(&log).with_context(|| format!("creating {}", paths::show(&log)))?;

        let inner = kind.command(&venv, port, &state);
        let mut command = Command::new("sh");
        command
            .args([
                OsStr::new("-c"),
                OsStr::new(WRAPPER),
                OsStr::new("xtask-emulator"),
            ])
            .arg(inner.get_program())
            .args(inner.get_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .process_group(0);
        for (key, value) in inner.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }

        let started = Instant::now();
        eprintln!(
            "xtask: starting {} on 127.0.0.1:{port} (log {})",
            kind.name(),
            paths::show(&log)
        );
        let mut wrapper = command
            .spawn()
            .context("starting the emulator wrapper (sh)")?;
        let stdin = wrapper.stdin.take();
        let stdout = wrapper.stdout.take().context("wrapper stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the emulator's PID")?;
        let pid = line.trim().parse::<u32>();

        let mut session = Session {
            endpoint: format!("http://127.0.0.1:{port}"),
            kind,
            backend: Backend::Scoped(Scoped {
                wrapper,
                stdin,
                log: log.clone(),
                keep_log: Cell::new(true),
            }),
        };
        let pid = match pid {
            Ok(pid) => pid,
            Err(_) => {
                session.shutdown();
                bail!(
                    "the emulator did not start{}",
                    tail_section(&log, crate::LOG_TAIL_LINES)
                );
            }
        };
        if let Err(err) = wait_ready(kind, pid, port, &log) {
            session.shutdown();
            return Err(err);
        }
        eprintln!(
            "xtask: {} ready at {} after {:.1?} (pid {pid})",
            kind.name(),
            session.endpoint,
            started.elapsed()
        );
        if let Backend::Scoped(scoped) = &session.backend {
            scoped.keep_log.set(false);
        }
        Ok(session)
    }

    /// Reuses the emulator of this kind started by `emulator start`, if it runs and answers;
    /// otherwise starts a scoped one.
    pub fn start_or_reuse(kind: Kind) -> Result<Session> {
        let state = paths::state_dir()?;
        let running = Detached::read(&state).filter(Detached::alive_and_ours);
        if let Some(running) = running {
            match (running.kind, &running.endpoint) {
                (Some(k), Some(endpoint)) if k == kind && running.answers() => {
                    eprintln!(
                        "xtask: reusing the {} emulator at {endpoint} (pid {}) started by \
                         `cargo xtask emulator start`; it stays running",
                        kind.name(),
                        running.pid
                    );
                    return Ok(Session {
                        endpoint: endpoint.clone(),
                        kind,
                        backend: Backend::Reused {
                            log: state.join("emulator.log"),
                        },
                    });
                }
                _ => eprintln!(
                    "xtask: the emulator from `emulator start` (pid {}) is not a {} that \
                     answers; starting a separate one",
                    running.pid,
                    kind.name()
                ),
            }
        }
        Session::start_scoped(kind)
    }

    /// Wraps a container started elsewhere.
    #[cfg(feature = "docker")]
    pub fn container(endpoint: String, kind: Kind, container: crate::docker::Container) -> Self {
        Session {
            endpoint,
            kind,
            backend: Backend::Container(Box::new(container)),
        }
    }

    /// Prints the last `lines` lines of the emulator's log to stderr.
    pub fn print_log_tail(&self, lines: usize) {
        let tail = match &self.backend {
            Backend::Scoped(Scoped { log, keep_log, .. }) => {
                keep_log.set(true);
                tail_section(log, lines)
            }
            Backend::Reused { log } => tail_section(log, lines),
            #[cfg(feature = "docker")]
            Backend::Container(container) => {
                format!(
                    "\n--- last {lines} lines of the container log ---\n{}",
                    container.log_tail(lines)
                )
            }
            Backend::Stopped => String::new(),
        };
        eprintln!("{tail}");
    }

    /// Stops the emulator (unless reused) and waits for it to go.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Stops the emulator if this session owns it. Idempotent.
    fn shutdown(&mut self) {
        match std::mem::replace(&mut self.backend, Backend::Stopped) {
            Backend::Scoped(mut scoped) => {
                let started = Instant::now();
                // Closing the pipe tells the wrapper to SIGTERM, then SIGKILL after 5 s.
                drop(scoped.stdin.take());
                let pgid = scoped.wrapper.id();
                let exited = proc::wait_until(STOP_GRACE + Duration::from_secs(3), || {
                    matches!(scoped.wrapper.try_wait(), Ok(Some(_)))
                });
                if !exited {
                    proc::kill_group(pgid, "KILL");
                }
                let _ = scoped.wrapper.wait();
                proc::wait_until(Duration::from_secs(2), || !proc::group_alive(pgid));
                if scoped.keep_log.get() {
                    eprintln!(
                        "xtask: {} stopped in {:.1?}; its log: {}",
                        self.kind.name(),
                        started.elapsed(),
                        paths::show(&scoped.log)
                    );
                } else {
                    let _ = fs::remove_file(&scoped.log);
                    eprintln!(
                        "xtask: {} stopped in {:.1?}",
                        self.kind.name(),
                        started.elapsed()
                    );
                }
            }
            Backend::Reused { .. } | Backend::Stopped => {}
            #[cfg(feature = "docker")]
            Backend::Container(container) => drop(container),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Polls until the emulator answers an SSM call, it dies, or the deadline passes.
pub(super) fn wait_ready(kind: Kind, pid: u32, port: u16, log: &Path) -> Result<()> {
    let deadline = kind.deadline();
    let started = Instant::now();
    loop {
        let last_error = match probe::ssm_answers(port) {
            Ok(()) => return Ok(()),
            Err(err) => format!("{err:#}"),
        };
        if !proc::alive(pid) {
            bail!(
                "{} exited before answering SSM on 127.0.0.1:{port}{}",
                kind.name(),
                tail_section(log, crate::LOG_TAIL_LINES)
            );
        }
        if started.elapsed() >= deadline {
            bail!(
                "{} did not answer SSM on 127.0.0.1:{port} within {deadline:?} (last: {last_error}; \
                 {ENV_DEADLINE} raises the limit){}",
                kind.name(),
                tail_section(log, crate::LOG_TAIL_LINES)
            );
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
}
