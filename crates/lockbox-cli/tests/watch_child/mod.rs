//! Shared by the `exec --watch` tests: a test child (a POSIX `sh` script) that records the
//! signals it gets and the environment it started with, and a running supervisor whose
//! `poll N` debug lines say when a poll happened. Deadlines are generous; nothing is timed.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lockbox_testkit::cli::{aws_command, code, stderr};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long any wait may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The child: writes `start PID PASSWORD=...` to the log, then `sig NAME` for each signal it
/// gets; with `$2 = plain` it leaves SIGTERM to its default action.
const CHILD: &str = r#"log="$1"
echo "start $$ PASSWORD=$PASSWORD" >> "$log"
for s in HUP INT QUIT USR1 USR2; do trap "echo sig $s >> '$log'" $s; done
if [ "$2" != plain ]; then trap "echo sig TERM >> '$log'; exit 0" TERM; fi
while :; do sleep 0.05; done
"#;

/// The lockbox binary, with test AWS credentials and no inherited RUST_LOG or endpoint.
pub fn lockbox() -> Command {
    aws_command(env!("CARGO_BIN_EXE_lockbox"), &[])
}

/// `lockbox put --overwrite` into a local data dir.
pub fn put(node: &Path, name: &str, value: &str) {
    let mut c = lockbox()
        .args([
            "put",
            "--overwrite",
            "--data-dir",
            node.to_str().unwrap(),
            name,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// A running `lockbox exec --watch=...`; killed when dropped.
pub struct Supervisor {
    child: Option<Child>,
    /// The child's log.
    pub log: PathBuf,
    err: PathBuf,
    _dir: tempfile::TempDir,
    /// The local data dir of [`Supervisor::start`].
    pub node: PathBuf,
}

impl Drop for Supervisor {
    /// SIGTERM to lockbox (forwarded: the child's trap exits), SIGKILL if that is not enough
    /// (a SIGKILLed lockbox would leave its child behind).
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Supervisor {
    /// `lockbox exec --data-dir DIR EXTRA -- CHILD` with `db/password` = `one` in DIR.
    pub fn start(extra: &[&str], mode: &str) -> Supervisor {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node");
        put(&node, "db/password", "one");
        let sources = vec!["--data-dir".to_owned(), node.to_str().unwrap().to_owned()];
        Supervisor::start_on(dir, node, &sources, extra, mode)
    }

    /// `lockbox exec SOURCES EXTRA -- CHILD`, files in `dir`.
    pub fn start_on(
        dir: tempfile::TempDir,
        node: PathBuf,
        sources: &[String],
        extra: &[&str],
        mode: &str,
    ) -> Supervisor {
        Supervisor::start_with_env(dir, node, sources, extra, mode, &[])
    }

    /// [`Supervisor::start_on`] with `env` added to lockbox's environment.
    pub fn start_with_env(
        dir: tempfile::TempDir,
        node: PathBuf,
        sources: &[String],
        extra: &[&str],
        mode: &str,
        env: &[(&str, &str)],
    ) -> Supervisor {
        let log = dir.path().join("child.log");
        let err = dir.path().join("lockbox.err");
        let mut args: Vec<&str> = vec!["exec"];
        args.extend(sources.iter().map(String::as_str));
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", CHILD, "sh", log.to_str().unwrap(), mode]);
        let child = lockbox()
            .args(&args)
            .env("RUST_LOG", "lockbox_env=debug,lockbox=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let s = Supervisor {
            child: Some(child),
            log,
            err,
            _dir: dir,
            node,
        };
        s.wait_for("the child to start", |log, _| log.contains("start "));
        s
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn err(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits (up to the deadline) until `ok(child log, lockbox stderr)`.
    pub fn wait_for(&self, what: &str, ok: impl Fn(&str, &str) -> bool) {
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if ok(&self.log(), &self.err()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out waiting for {what}\nchild log:\n{}\nlockbox stderr:\n{}",
            self.log(),
            self.err()
        );
    }

    /// The number of polls lockbox logged so far.
    pub fn polls(&self) -> usize {
        self.err().matches(": no change").count()
            + self.err().matches(": the secrets changed").count()
    }

    /// Waits until `n` more polls have happened.
    pub fn wait_polls(&self, n: usize) {
        let seen = self.polls();
        self.wait_for(&format!("{n} more polls"), |_, _| self.polls() >= seen + n);
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// [`Supervisor::finish`] and the child's log.
    pub fn finish_and_log(self) -> (Output, String) {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let path = self.log.clone();
        let o = self.finish_keeping_files();
        let later = fs::read_to_string(path).unwrap_or(log);
        (o.0, later)
    }

    /// Waits for lockbox to exit; its output.
    pub fn finish(self) -> Output {
        self.finish_keeping_files().0
    }

    fn finish_keeping_files(mut self) -> (Output, tempfile::TempDir) {
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        let c = self.child.take().unwrap();
        let end = Instant::now() + DEADLINE;
        let mut c = c;
        loop {
            if c.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                Instant::now() < end,
                "lockbox did not exit:\n{}",
                self.err()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        (c.wait_with_output().unwrap(), dir)
    }
}
