//! `lockbox exec --watch` on a local data dir (no emulator needed): a test child (a POSIX `sh`
//! script) records the signals it gets and the environment it started with; lockbox's own
//! `poll N` debug lines say when a poll happened. Deadlines are generous; nothing is timed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lockbox_testkit::cli::{code, stderr};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const DEADLINE: Duration = Duration::from_secs(60);

/// The child: writes `start PID PASSWORD=...` to the log, then `sig NAME` for each signal it
/// gets; with `$2 = plain` it leaves SIGTERM to its default action.
const CHILD: &str = r#"log="$1"
echo "start $$ PASSWORD=$PASSWORD" >> "$log"
for s in HUP INT QUIT USR1 USR2; do trap "echo sig $s >> '$log'" $s; done
if [ "$2" != plain ]; then trap "echo sig TERM >> '$log'; exit 0" TERM; fi
while :; do sleep 0.05; done
"#;

fn lockbox() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lockbox"))
}

fn put(node: &Path, name: &str, value: &str) {
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
struct Supervisor {
    child: Option<Child>,
    log: PathBuf,
    err: PathBuf,
    _dir: tempfile::TempDir,
    node: PathBuf,
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
    fn start(extra: &[&str], mode: &str) -> Supervisor {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node");
        put(&node, "db/password", "one");
        let log = dir.path().join("child.log");
        let err = dir.path().join("lockbox.err");
        let mut args = vec!["exec", "--data-dir", node.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", CHILD, "sh", log.to_str().unwrap(), mode]);
        let child = lockbox()
            .args(&args)
            .env("RUST_LOG", "lockbox_env=debug,lockbox=debug")
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

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn err(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits (up to the deadline) until `ok(child log, lockbox stderr)`.
    fn wait_for(&self, what: &str, ok: impl Fn(&str, &str) -> bool) {
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
    fn polls(&self) -> usize {
        self.err().matches(": no change").count()
            + self.err().matches(": the secrets changed").count()
    }

    /// Waits until `n` more polls have happened.
    fn wait_polls(&self, n: usize) {
        let seen = self.polls();
        self.wait_for(&format!("{n} more polls"), |_, _| self.polls() >= seen + n);
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// [`Supervisor::finish`] and the child's log.
    fn finish_and_log(self) -> (Output, String) {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let path = self.log.clone();
        let o = self.finish_keeping_files();
        let later = fs::read_to_string(path).unwrap_or(log);
        (o.0, later)
    }

    /// Waits for lockbox to exit; its output.
    fn finish(self) -> Output {
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

#[test]
fn one_sighup_per_change_and_none_without() {
    let s = Supervisor::start(&["--watch=300ms"], "trap");
    assert!(s.log().contains("PASSWORD=one"), "{}", s.log());
    s.wait_polls(3);
    assert_eq!(s.log().matches("sig HUP").count(), 0, "{}", s.log());
    put(&s.node, "db/password", "two");
    s.wait_for("one SIGHUP", |log, _| log.contains("sig HUP"));
    s.wait_polls(3);
    assert_eq!(s.log().matches("sig HUP").count(), 1, "{}", s.log());
    put(&s.node, "db/password", "three");
    s.wait_for("a second SIGHUP", |log, _| {
        log.matches("sig HUP").count() == 2
    });
    s.wait_polls(3);
    assert_eq!(s.log().matches("sig HUP").count(), 2, "{}", s.log());
    // The child was never restarted, and no value reached lockbox's log.
    assert_eq!(s.log().matches("start ").count(), 1);
    for v in ["one", "two", "three"] {
        assert!(!s.err().contains(&format!("={v}")), "{}", s.err());
    }
}

#[test]
fn a_named_signal_is_sent() {
    let s = Supervisor::start(&["--watch=300ms", "--on-change=signal:USR1"], "trap");
    put(&s.node, "db/password", "two");
    s.wait_for("SIGUSR1", |log, _| log.contains("sig USR1"));
    assert!(!s.log().contains("sig HUP"));
}

#[test]
fn restart_terms_the_old_child_and_starts_one_with_the_new_value() {
    let s = Supervisor::start(
        &["--watch=300ms", "--on-change=restart", "--grace=20s"],
        "trap",
    );
    put(&s.node, "db/password", "two");
    s.wait_for("a second start", |log, _| {
        log.matches("start ").count() == 2
    });
    let log = s.log();
    let term = log.find("sig TERM").expect("old child got SIGTERM");
    let second = log.match_indices("start ").nth(1).unwrap().0;
    assert!(term < second, "{log}");
    assert!(log[second..].contains("PASSWORD=two"), "{log}");
    s.wait_polls(2);
    assert_eq!(s.log().matches("start ").count(), 2);
}

#[test]
fn restart_kills_a_child_that_ignores_sigterm_after_grace() {
    // The child ignores SIGTERM: only SIGKILL, after --grace, ends it.
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    put(&node, "db/password", "one");
    let log = dir.path().join("child.log");
    let script = format!(
        "echo start $$ $PASSWORD >> '{}'; trap '' TERM; while :; do sleep 0.05; done",
        log.display()
    );
    let c = lockbox()
        .args([
            "exec",
            "--data-dir",
            node.to_str().unwrap(),
            "--watch=300ms",
        ])
        .args([
            "--on-change=restart",
            "--grace=300ms",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + DEADLINE;
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains(" one")
    {
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(50));
    }
    put(&node, "db/password", "two");
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains(" two")
    {
        assert!(
            Instant::now() < end,
            "{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The new child ignores SIGTERM too: end it by its pid; lockbox reports 137.
    let text = fs::read_to_string(&log).unwrap();
    let pid: i32 = text
        .lines()
        .last()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(code(&o), 137, "{}", stderr(&o));
    assert!(stderr(&o).contains("SIGKILL"), "{}", stderr(&o));
}

#[test]
fn exit_stops_the_child_and_exits_75() {
    let s = Supervisor::start(&["--watch=300ms", "--on-change=exit"], "trap");
    put(&s.node, "db/password", "two");
    let o = s.finish_and_log();
    assert_eq!(code(&o.0), 75);
    assert!(o.1.contains("sig TERM"), "{}", o.1);
}

#[test]
fn signals_are_forwarded_and_the_childs_code_is_lockboxs() {
    let s = Supervisor::start(&["--watch=1m"], "trap");
    for (sig, name) in [
        (Signal::SIGHUP, "HUP"),
        (Signal::SIGUSR1, "USR1"),
        (Signal::SIGUSR2, "USR2"),
        (Signal::SIGINT, "INT"),
        (Signal::SIGQUIT, "QUIT"),
    ] {
        kill(s.pid(), sig).unwrap();
        s.wait_for(name, |log, _| log.contains(&format!("sig {name}")));
    }
    // The child's TERM trap exits 0: so does lockbox.
    kill(s.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(code(&s.finish()), 0);

    // A child that SIGTERM ends: 143, as shells report it.
    let s = Supervisor::start(&["--watch=1m"], "plain");
    kill(s.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(code(&s.finish()), 143);
}

#[test]
fn exit_codes_are_the_childs() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    put(&node, "a", "1");
    for (script, want) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("kill -KILL $$", 137),
        ("kill -TERM $$", 143),
    ] {
        let o = lockbox()
            .args([
                "exec",
                "--data-dir",
                node.to_str().unwrap(),
                "--watch=1m",
                "--",
            ])
            .args(["sh", "-c", script])
            .output()
            .unwrap();
        assert_eq!(code(&o), want, "{script}: {}", stderr(&o));
    }
    // A program that cannot start: 127, as without --watch.
    let o = lockbox()
        .args([
            "exec",
            "--data-dir",
            node.to_str().unwrap(),
            "--watch",
            "--",
        ])
        .arg("/nonexistent/program")
        .output()
        .unwrap();
    assert_eq!(code(&o), 127, "{}", stderr(&o));
}

#[test]
fn watch_options_need_watch_and_parse_strictly() {
    for args in [
        &["--on-change=restart"][..],
        &["--grace=1s"],
        &["--max-stale=1m"],
        &["--watch=1s", "--fail-after"],
        &["--watch=soon"],
        &["--watch=1s", "--on-change=signal:NOPE"],
    ] {
        let o = lockbox()
            .args(["exec", "--data-dir", "d"])
            .args(args)
            .args(["--", "true"])
            .output()
            .unwrap();
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
}
