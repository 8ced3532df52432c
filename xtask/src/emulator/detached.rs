//! The detached emulator of `emulator start|stop|status`: its own process group, with its PID,
//! endpoint and kind in `<target>/xtask/emulator.{pid,endpoint,kind}` until `emulator stop`.

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::session::wait_ready;
use super::{Kind, STOP_GRACE, ensure_venv};
use crate::util::port_of;
use crate::{ENV_ENDPOINT, ENV_REGION, REGION, paths, probe, proc, util};

/// The state files of a detached emulator.
pub(super) struct Detached {
    /// Its PID (also its process group).
    pub(super) pid: u32,
    /// Its endpoint, once it answered.
    pub(super) endpoint: Option<String>,
    /// Which emulator it is.
    pub(super) kind: Option<Kind>,
    /// The state dir holding the files.
    state: PathBuf,
}

impl Detached {
    /// Reads the state files; None if there is no PID file.
    pub(super) fn read(state: &Path) -> Option<Detached> {
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
    pub(super) fn alive_and_ours(&self) -> bool {
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
    pub(super) fn answers(&self) -> bool {
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
