//! A private moto server for the tests that cannot share the emulator `cargo xtask` starts:
//! those that change server-wide state (IAM enforcement) or serve it another way (TLS).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable naming a `moto_server` executable (`cargo xtask` sets it).
pub const ENV_MOTO_SERVER: &str = "LOCKBOX_IT_MOTO_SERVER";

/// How long a starting server has to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `moto_server` executable [`ENV_MOTO_SERVER`] names, or `None` after a `SKIPPED` note
/// naming `test` and `why` it needs a server of its own.
pub fn executable(test: &str, why: &str) -> Option<PathBuf> {
    match std::env::var(ENV_MOTO_SERVER) {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!(
                "SKIPPED {test}: {ENV_MOTO_SERVER} is not set (the path of a moto_server \
                 executable; `cargo xtask` sets it). {why}"
            );
            None
        }
    }
}

/// A moto server on 127.0.0.1 that this test started; killed when dropped, also when the
/// test panics.
pub struct PrivateMoto {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateMoto {
    /// Starts `exe -H 127.0.0.1 -p PORT` with `extra` arguments and waits until `ready` holds
    /// for it; a server that exits first (its port was taken meanwhile) is retried on another
    /// port, up to three times. Panics with the server's log when it never gets ready.
    pub fn start(exe: &Path, extra: &[&str], ready: impl Fn(&PrivateMoto) -> bool) -> Self {
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let log = dir.path().join("moto.log");
            let port = free_port();
            let child = Command::new(exe)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).expect("moto's log file"))
                .stderr(std::fs::File::create(dir.path().join("moto.err")).expect("moto's log"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
            let mut server = PrivateMoto {
                child,
                port,
                log,
                _dir: dir,
            };
            let deadline = Instant::now() + START_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                if ready(&server) {
                    return server;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            last_log = server.log_tail();
        }
        panic!("moto server did not get ready; its log:\n{last_log}");
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The last 40 lines of its output, for a failure message.
    pub fn log_tail(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.push_str(
            &std::fs::read_to_string(self.log.with_file_name("moto.err")).unwrap_or_default(),
        );
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}
