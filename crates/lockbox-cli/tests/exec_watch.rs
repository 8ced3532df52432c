//! `lockbox exec --watch` on a local data dir (no emulator needed), with the test child of
//! `watch_child`.

mod watch_child;

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lockbox_testkit::cli::{code, stderr};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use watch_child::{DEADLINE, Supervisor, lockbox, put};

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
