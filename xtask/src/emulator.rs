//! The AWS emulators as host processes on 127.0.0.1: moto's standalone server (the default) and
//! LocalStack's own runtime, each installed from PyPI at pinned versions into a cached
//! virtualenv under `<target>/xtask/`.
//!
//! Two ways to run one:
//! - scoped ([`Session::start_scoped`]), for `ci` and `it`: it lives no longer than xtask. A tiny
//!   `sh` wrapper holds the read end of a pipe from xtask; when xtask closes it (or dies, even by
//!   SIGKILL or Ctrl-C) the wrapper sends SIGTERM, waits up to 5 s, then SIGKILLs the whole group.
//! - detached ([`start_detached`]), for `emulator start`: its own process group, with its PID,
//!   endpoint and kind in `<target>/xtask/emulator.{pid,endpoint,kind}` until `emulator stop`.

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

mod cmd;

pub use cmd::Emulator;

use crate::util::{last_lines, port_of, tail_section};
use crate::{ENV_ENDPOINT, ENV_REGION, REGION, paths, probe, proc, util};

/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often readiness is probed.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// Environment variable that overrides the readiness deadline, in seconds.
const ENV_DEADLINE: &str = "XTASK_EMULATOR_DEADLINE_SECS";
/// Environment variable naming the Python interpreter for moto's virtualenv.
const ENV_PYTHON: &str = "XTASK_PYTHON";
/// Environment variable naming the Python (3.13 or newer) for LocalStack's virtualenv.
const ENV_LOCALSTACK_PYTHON: &str = "XTASK_LOCALSTACK_PYTHON";

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

/// Which emulator.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Kind {
    /// moto's standalone server (`moto[server]`), Python 3.9 or newer.
    Moto,
    /// LocalStack's runtime (`localstack-core[runtime]`), Python 3.13 or newer.
    Localstack,
}

/// A pinned Python tool xtask installs into a cached virtualenv `<target>/xtask/venv-NAME` from
/// `fixtures/emulator/NAME-requirements.txt`: moto, LocalStack, OpenBao's `bao`.
#[derive(Clone, Copy, Debug)]
pub struct PyTool {
    /// The name in file names and messages.
    pub name: &'static str,
    /// The lowest Python it runs on.
    pub min_python: (u32, u32),
    /// The file whose presence shows the virtualenv holds it, relative to the virtualenv.
    pub entry_point: &'static str,
}

impl PyTool {
    /// The pinned requirements file: `fixtures/NAME/requirements.txt` for a tool with its own
    /// fixtures directory (Airflow), else `fixtures/emulator/NAME-requirements.txt`.
    fn requirements(self) -> PathBuf {
        let own = paths::workspace_root()
            .join("fixtures")
            .join(self.name)
            .join("requirements.txt");
        if own.is_file() {
            return own;
        }
        paths::emulator_fixtures().join(format!("{}-requirements.txt", self.name))
    }
}

/// The cached virtualenv's `moto_server`, when moto is installed (tests that need a private
/// server, such as IAM enforcement, start their own from it).
pub fn installed_moto_server() -> Option<PathBuf> {
    let state = paths::state_dir().ok()?;
    let moto = Kind::Moto.tool();
    let server = state
        .join(format!("venv-{}", moto.name))
        .join(moto.entry_point);
    server.is_file().then_some(server)
}

impl Kind {
    /// The name used in file names, messages and `LOCKBOX_IT_EMULATOR`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Moto => "moto",
            Kind::Localstack => "localstack",
        }
    }

    /// Parses a name written by [`Kind::name`].
    fn from_name(name: &str) -> Option<Kind> {
        match name.trim() {
            "moto" => Some(Kind::Moto),
            "localstack" => Some(Kind::Localstack),
            _ => None,
        }
    }

    /// What to install for the emulator.
    fn tool(self) -> PyTool {
        match self {
            Kind::Moto => PyTool {
                name: "moto",
                min_python: (3, 9),
                entry_point: "bin/moto_server",
            },
            Kind::Localstack => PyTool {
                name: "localstack",
                // 3.12 starts, but localstack-core 4.14's tagging imports `warnings.deprecated`
                // (new in 3.13), so every call that tags or emits an event fails with
                // InternalError.
                min_python: (3, 13),
                entry_point: "bin/localstack-supervisor",
            },
        }
    }

    /// The command that serves on 127.0.0.1:`port` (and only there).
    fn command(self, venv: &Path, port: u16, state: &Path) -> Command {
        let mut command;
        match self {
            Kind::Moto => {
                command = Command::new(venv.join("bin/moto_server"));
                command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            }
            Kind::Localstack => {
                command = Command::new(venv.join("bin/python"));
                command.args(["-m", "localstack.runtime.main"]);
                command
                    .env("OVERRIDE_IN_DOCKER", "0")
                    .env("GATEWAY_SERVER", "hypercorn")
                    .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
                    .env("LOCALSTACK_HOST", format!("127.0.0.1:{port}"))
                    .env("DNS_ADDRESS", "0")
                    .env("FILESYSTEM_ROOT", state.join("localstack-fs"))
                    // No network here: do not try to download its TLS test certificate.
                    .env("SKIP_SSL_CERT_DOWNLOAD", "1")
                    // No analytics events.
                    .env("DISABLE_EVENTS", "1");
            }
        }
        command
            .env("PYTHONUNBUFFERED", "1")
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .env_remove(ENV_ENDPOINT);
        command
    }

    /// How long to wait for the first SSM answer.
    fn deadline(self) -> Duration {
        let secs = std::env::var(ENV_DEADLINE)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(60);
        Duration::from_secs(secs)
    }
}

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
        let state = paths::state_dir()?;
        let venv = ensure_venv(kind.tool())?;
        let port = util::free_port()?;
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
fn wait_ready(kind: Kind, pid: u32, port: u16, log: &Path) -> Result<()> {
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

/// The state files of a detached emulator.
struct Detached {
    /// Its PID (also its process group).
    pid: u32,
    /// Its endpoint, once it answered.
    endpoint: Option<String>,
    /// Which emulator it is.
    kind: Option<Kind>,
    /// The state dir holding the files.
    state: PathBuf,
}

impl Detached {
    /// Reads the state files; None if there is no PID file.
    fn read(state: &Path) -> Option<Detached> {
        let pid = fs::read_to_string(state.join("emulator.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let endpoint = fs::read_to_string(state.join("emulator.endpoint"))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        let kind = fs::read_to_string(state.join("emulator.kind"))
            .ok()
            .and_then(|s| Kind::from_name(&s));
        Some(Detached {
            pid,
            endpoint,
            kind,
            state: state.to_path_buf(),
        })
    }

    /// True if the PID is alive and its command line runs from one of xtask's virtualenvs
    /// (so a recycled PID is never signalled).
    fn alive_and_ours(&self) -> bool {
        if !proc::alive(self.pid) {
            return false;
        }
        match proc::cmdline(self.pid) {
            Some(cmdline) => {
                let venvs = self.state.join("venv-");
                cmdline.contains(&*venvs.to_string_lossy())
            }
            None => true,
        }
    }

    /// True if the endpoint answers an SSM call.
    fn answers(&self) -> bool {
        self.endpoint
            .as_deref()
            .and_then(port_of)
            .is_some_and(|port| probe::ssm_answers(port).is_ok())
    }

    /// Removes the state files (the log stays).
    fn remove_files(state: &Path) {
        for name in ["emulator.pid", "emulator.endpoint", "emulator.kind"] {
            let _ = fs::remove_file(state.join(name));
        }
    }
}

/// `cargo xtask emulator start`.
pub fn start_detached(kind: Kind) -> Result<()> {
    let state = paths::state_dir()?;
    let started = Instant::now();
    if let Some(running) = Detached::read(&state) {
        if running.alive_and_ours() {
            if running.answers() && running.kind == Some(kind) {
                let endpoint = running.endpoint.unwrap_or_default();
                eprintln!(
                    "xtask: {} is already running at {endpoint} (pid {}); reusing it",
                    kind.name(),
                    running.pid
                );
                print_endpoint_hint(&endpoint);
                println!("{endpoint}");
                return Ok(());
            }
            if let Some(other) = running.kind.filter(|k| *k != kind) {
                bail!(
                    "a {} emulator is already running (pid {}): `cargo xtask emulator stop` first",
                    other.name(),
                    running.pid
                );
            }
            eprintln!(
                "xtask: pid {} is alive but does not answer; stopping it and starting anew",
                running.pid
            );
            proc::terminate_group(running.pid, STOP_GRACE);
        }
        Detached::remove_files(&state);
    }

    let venv = ensure_venv(kind.tool())?;
    let port = util::free_port()?;
    let log = state.join("emulator.log");
    let log_file = File::create(&log).with_context(|| format!("creating {}", paths::show(&log)))?;
    let mut command = kind.command(&venv, port, &state);
    command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .process_group(0);
    let ready_started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", command.get_program().to_string_lossy()))?;
    let pid = child.id();
    fs::write(state.join("emulator.pid"), format!("{pid}\n"))?;
    fs::write(state.join("emulator.kind"), format!("{}\n", kind.name()))?;

    if let Err(err) = wait_ready(kind, pid, port, &log) {
        proc::terminate_group(pid, STOP_GRACE);
        let _ = child.wait();
        Detached::remove_files(&state);
        return Err(err);
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    fs::write(state.join("emulator.endpoint"), format!("{endpoint}\n"))?;
    eprintln!(
        "xtask: {} ready at {endpoint} (pid {pid}): {:.1?} from launch to first SSM answer, \
         {:.1?} in all; log {}",
        kind.name(),
        ready_started.elapsed(),
        started.elapsed(),
        paths::show(&log)
    );
    print_endpoint_hint(&endpoint);
    println!("{endpoint}");
    Ok(())
}

/// Tells the user how to point tests at `endpoint`.
fn print_endpoint_hint(endpoint: &str) {
    eprintln!(
        "xtask: for tests run by hand: export {ENV_ENDPOINT}={endpoint} {ENV_REGION}={REGION}"
    );
}

/// `cargo xtask emulator stop`.
pub fn stop_detached() -> Result<()> {
    let state = paths::state_dir()?;
    let Some(running) = Detached::read(&state) else {
        eprintln!(
            "xtask: no emulator is running (no {})",
            paths::show(&state.join("emulator.pid"))
        );
        Detached::remove_files(&state);
        return Ok(());
    };
    if !running.alive_and_ours() {
        eprintln!(
            "xtask: pid {} from the pid file no longer runs an emulator; cleaned up",
            running.pid
        );
        Detached::remove_files(&state);
        return Ok(());
    }
    let started = Instant::now();
    let killed = proc::terminate_group(running.pid, STOP_GRACE);
    Detached::remove_files(&state);
    eprintln!(
        "xtask: stopped {} (pid {}) in {:.1?}{}",
        running.kind.map_or("the emulator", Kind::name),
        running.pid,
        started.elapsed(),
        if killed {
            " (needed SIGKILL after SIGTERM)"
        } else {
            ""
        }
    );
    Ok(())
}

/// `cargo xtask emulator status`: exit 0 if it runs and answers, 1 if not.
pub fn status() -> Result<ExitCode> {
    let state = paths::state_dir()?;
    let Some(running) = Detached::read(&state) else {
        println!("not running");
        return Ok(ExitCode::FAILURE);
    };
    let kind = running.kind.map_or("emulator", Kind::name);
    if !running.alive_and_ours() {
        println!(
            "not running (stale pid file for pid {}; removed)",
            running.pid
        );
        Detached::remove_files(&state);
        return Ok(ExitCode::FAILURE);
    }
    match &running.endpoint {
        Some(endpoint) if running.answers() => {
            println!("running: {kind} at {endpoint} (pid {})", running.pid);
            Ok(ExitCode::SUCCESS)
        }
        Some(endpoint) => {
            println!(
                "not answering: {kind} pid {} is alive but {endpoint} does not answer SSM",
                running.pid
            );
            Ok(ExitCode::FAILURE)
        }
        None => {
            println!("starting: {kind} pid {} has not answered yet", running.pid);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A Python interpreter found on this machine.
struct Python {
    /// Its real executable (not a pyenv shim).
    exe: PathBuf,
    /// Major and minor version.
    version: (u32, u32),
    /// The full version, e.g. 3.11.7.
    full: String,
}

/// Asks `program` for its executable and version, and checks it can make virtualenvs.
fn interrogate(program: &OsStr) -> std::result::Result<Python, String> {
    let output = Command::new(program)
        .args([
            "-c",
            "import sys, venv, ensurepip; print(sys.executable); \
             print('%d.%d.%d' % sys.version_info[:3])",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("{}: {err}", program.to_string_lossy()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or_default().to_owned();
        return Err(format!("{}: {last}", program.to_string_lossy()));
    }
    let mut lines = stdout.lines();
    let exe = PathBuf::from(lines.next().unwrap_or_default().trim());
    let full = lines.next().unwrap_or_default().trim().to_owned();
    let mut parts = full.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    Ok(Python { exe, version, full })
}

/// Finds an interpreter for `tool`'s virtualenv: `python3` (or `$XTASK_PYTHON`), or for a tool
/// that needs Python 3.13 (LocalStack) pyenv's and versioned ones (or
/// `$XTASK_LOCALSTACK_PYTHON`).
fn find_python(tool: PyTool) -> Result<Python> {
    let needs_new = tool.min_python >= (3, 13);
    let (env_var, mut candidates): (&str, Vec<OsString>) = match needs_new {
        false => (ENV_PYTHON, vec!["python3".into(), "python".into()]),
        true => {
            let mut candidates: Vec<OsString> = pyenv_pythons(tool.min_python)
                .into_iter()
                .map(PathBuf::into_os_string)
                .collect();
            for name in ["python3.13", "python3.14", "python3.15", "python3"] {
                candidates.push(name.into());
            }
            (ENV_LOCALSTACK_PYTHON, candidates)
        }
    };
    if let Some(chosen) = std::env::var_os(env_var).filter(|s| !s.is_empty()) {
        candidates = vec![chosen];
    }
    let min = tool.min_python;
    let mut rejected = Vec::new();
    for candidate in &candidates {
        match interrogate(candidate) {
            Ok(python) if python.version >= min => return Ok(python),
            Ok(python) => rejected.push(format!(
                "{} is Python {}",
                candidate.to_string_lossy(),
                python.full
            )),
            Err(err) => rejected.push(err),
        }
    }
    let hint = match needs_new {
        false => {
            "install python3 with its venv module (Debian: apt-get install python3-venv)".to_owned()
        }
        true => format!(
            "install Python 3.13 or newer with its venv module (e.g. `pyenv install 3.13`, or \
             Debian 13: apt-get install python3-venv), or point {ENV_LOCALSTACK_PYTHON} at one"
        ),
    };
    bail!(
        "{} needs Python {}.{} or newer with the venv and ensurepip modules; none found ({}). \
         To fix: {hint}",
        tool.name,
        min.0,
        min.1,
        rejected.join("; ")
    )
}

/// pyenv's installed CPythons of at least `min`, lowest version first.
fn pyenv_pythons(min: (u32, u32)) -> Vec<PathBuf> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pyenv")));
    let Some(Ok(entries)) = root.map(|root| fs::read_dir(root.join("versions"))) else {
        return Vec::new();
    };
    let mut found: Vec<((u32, u32, u32), PathBuf)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let mut parts = name.split('.');
            let version = (
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
            );
            if parts.next().is_some() || (version.0, version.1) < min {
                return None;
            }
            let exe = entry.path().join("bin/python3");
            exe.is_file().then_some((version, exe))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, exe)| exe).collect()
}

/// FNV-1a, 64 bit: a stable hash for the install marker (std's hasher is not stable).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Makes sure `<target>/xtask/venv-NAME` holds `tool`'s pinned requirements; returns its path.
pub fn ensure_venv(tool: PyTool) -> Result<PathBuf> {
    let state = paths::state_dir()?;
    let venv = state.join(format!("venv-{}", tool.name));
    let requirements = tool.requirements();
    let pins =
        fs::read(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let marker = venv.join(".xtask-installed");
    // Hash only what pip reads, so editing a comment does not reinstall.
    let pins: Vec<&str> = std::str::from_utf8(&pins)
        .with_context(|| format!("{} is not UTF-8", requirements.display()))?
        .lines()
        .map(|line| line.split(" #").next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let pins_line = format!(
        "requirements-fnv1a64={:016x}",
        fnv1a64(pins.join("\n").as_bytes())
    );
    let ready = || {
        let installed = fs::read_to_string(&marker).unwrap_or_default();
        venv_matches(tool, &venv, &installed, &pins_line)
    };
    if ready() {
        return Ok(venv);
    }
    // Another xtask (another terminal, another agent) may be installing the same venv.
    let _lock = InstallLock::acquire(&state.join(format!("venv-{}.lock", tool.name)))?;
    if ready() {
        return Ok(venv);
    }

    let python = find_python(tool)?;
    eprintln!(
        "xtask: installing {} ({}) into {} with Python {} (once; cached until the pins change)",
        tool.name,
        paths::show(&requirements),
        paths::show(&venv),
        python.full
    );
    let started = Instant::now();
    if venv.exists() {
        fs::remove_dir_all(&venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    run_quiet(
        Command::new(&python.exe)
            .args([OsStr::new("-m"), OsStr::new("venv")])
            .arg(&venv),
        "creating the virtualenv",
    )?;
    run_quiet(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
            ])
            .arg(&requirements)
            .env("PIP_NO_INPUT", "1"),
        "pip install",
    )?;
    if !venv.join(tool.entry_point).is_file() {
        bail!(
            "pip installed {} but {} is missing",
            paths::show(&requirements),
            venv.join(tool.entry_point).display()
        );
    }
    fs::write(
        &marker,
        format!(
            "{pins_line}\npython={} {}\n",
            python.full,
            python.exe.display()
        ),
    )?;
    eprintln!(
        "xtask: installed {} in {:.1?}",
        tool.name,
        started.elapsed()
    );
    Ok(venv)
}

/// True if the install `marker` of `venv` records `pins_line` and a Python new enough for
/// `tool`, and its entry point is there.
fn venv_matches(tool: PyTool, venv: &Path, marker: &str, pins_line: &str) -> bool {
    let mut lines = marker.lines();
    let pins_match = lines.next() == Some(pins_line);
    let python_fits = lines
        .next()
        .and_then(|line| line.strip_prefix("python="))
        .and_then(|rest| {
            let mut parts = rest.split(['.', ' ']).map(str::parse::<u32>);
            Some((parts.next()?.ok()?, parts.next()?.ok()?))
        })
        .is_some_and(|version| version >= tool.min_python);
    pins_match
        && python_fits
        && venv.join(tool.entry_point).is_file()
        && venv.join("bin/python").exists()
}

/// A lock directory held while a virtualenv is (re)installed; removed on drop.
struct InstallLock {
    /// The lock directory.
    dir: PathBuf,
}

impl InstallLock {
    /// Creates the lock directory, waiting (up to 15 min) while a live process holds it.
    fn acquire(dir: &Path) -> Result<InstallLock> {
        let deadline = Instant::now() + Duration::from_secs(15 * 60);
        let mut told = false;
        loop {
            match fs::create_dir(dir) {
                Ok(()) => {
                    fs::write(dir.join("pid"), std::process::id().to_string())?;
                    return Ok(InstallLock {
                        dir: dir.to_path_buf(),
                    });
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("creating {}", dir.display()));
                }
            }
            let holder = fs::read_to_string(dir.join("pid"))
                .ok()
                .and_then(|pid| pid.trim().parse::<u32>().ok());
            let age = fs::metadata(dir)
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .unwrap_or_default();
            let stale = match holder {
                Some(pid) => !proc::alive(pid),
                None => age > Duration::from_secs(30),
            };
            if stale {
                let _ = fs::remove_dir_all(dir);
                continue;
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} is still held by pid {holder:?}; remove it if no install runs",
                    dir.display()
                );
            }
            if !told {
                eprintln!(
                    "xtask: waiting for another xtask (pid {}) to finish installing",
                    holder.map_or_else(|| "?".to_owned(), |pid| pid.to_string())
                );
                told = true;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Runs an install command, showing its output only if it fails.
pub(crate) fn run_quiet(command: &mut Command, what: &str) -> Result<()> {
    let output = command.stdin(Stdio::null()).output().with_context(|| {
        format!(
            "{what}: could not run {}",
            command.get_program().to_string_lossy()
        )
    })?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        let tail = last_lines(&text, 40);
        bail!("{what} failed ({}):\n{tail}", output.status);
    }
    Ok(())
}
