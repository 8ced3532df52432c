//! Plaintext in memory (issue 13, item 6), measured the way it was found: a canary secret
//! value is fetched from the emulator by a `lockbox sync --interval` daemon and by `lockbox get
//! --json`, and the test (their parent, so ptrace access is allowed; as root it always is)
//! reads the process's memory through /proc/PID/maps and /proc/PID/mem and counts the canary.
//!
//! - The daemon is scanned after its first round has sealed the store and it is asleep until
//!   the next: nothing it holds then needs the plaintext, so the goal is zero copies.
//! - `get --json` is stopped at its exit (ptrace, PTRACE_O_TRACEEXIT) after it printed the
//!   value, with all of its memory still mapped: the goal is zero copies there too.
//!
//! Each scan prints a `MEASURED:` line. `LOCKBOX_MEMSCAN_EXE` runs the scans against another
//! build (how the counts before the fix were taken); the assertions apply only to this build.

use lockbox_testkit::aws::{aws_sdk_secretsmanager, aws_sdk_ssm};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lockbox_testkit::aws::setup_config;
use lockbox_testkit::cli::aws_command;
use lockbox_testkit::{emulator, tag};
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// The binary scanned: this build's `lockbox`, or `LOCKBOX_MEMSCAN_EXE`.
fn exe() -> (String, bool) {
    match std::env::var("LOCKBOX_MEMSCAN_EXE") {
        Ok(other) if !other.is_empty() => (other, false),
        _ => (env!("CARGO_BIN_EXE_lockbox").to_owned(), true),
    }
}

fn command(args: &[&str]) -> Command {
    let mut cmd = aws_command(&exe().0, args);
    cmd.env_remove("AWS_DEFAULT_REGION")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null());
    cmd
}

/// A value no other process holds: 64 random characters.
fn canary() -> String {
    let mut s = String::from("CANARY");
    while s.len() < 64 {
        s.push_str(&tag());
    }
    s.truncate(64);
    s
}

/// Counts `needle` in every readable mapping of process `pid`.
fn count_in_memory(pid: u32, needle: &[u8]) -> usize {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut total = 0;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        if end - start > 1 << 30 {
            continue;
        }
        let mut buf = vec![0u8; usize::try_from(end - start).unwrap()];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        total += buf.windows(needle.len()).filter(|w| *w == needle).count();
    }
    total
}

fn kill(child: &mut Child) {
    let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let _ = child.wait();
}

/// The sync daemon, asleep after sealing its first round: no plaintext copy left.
#[tokio::test]
async fn sync_daemon_keeps_no_plaintext_after_sealing() {
    let Some(endpoint) = emulator("sync_daemon_keeps_no_plaintext_after_sealing") else {
        return;
    };
    let value = canary();
    let name = format!("it-memscan/{}", tag());
    aws_sdk_secretsmanager::Client::new(&setup_config(&endpoint))
        .create_secret()
        .name(&name)
        .secret_string(&value)
        .send()
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("m.json");
    std::fs::write(
        &manifest,
        serde_json::json!({"cloudSecrets": [{"arn": name, "labels": []}]}).to_string(),
    )
    .unwrap();
    let store = tmp.path().join("store");
    let mut child = command(&[
        "sync",
        "--json",
        "--manifest",
        manifest.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--endpoint-url",
        &endpoint,
        "--interval",
        "3600",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.contains("\"generation\"") || first.contains("\"store\""),
        "{first}"
    );
    // The round's report is printed after the store is written; let it go back to sleep.
    std::thread::sleep(Duration::from_millis(300));
    let copies = count_in_memory(child.id(), value.as_bytes());
    kill(&mut child);
    let (exe, this_build) = exe();
    eprintln!(
        "MEASURED: memory scan: sync --interval daemon after sealing: {copies} plaintext copies ({exe})"
    );
    if this_build {
        assert_eq!(copies, 0, "plaintext left in the sync daemon's memory");
    }
}

/// `get --json`, stopped at exit after printing the value: no plaintext copy left.
#[tokio::test]
async fn get_json_keeps_no_plaintext_after_printing() {
    let Some(endpoint) = emulator("get_json_keeps_no_plaintext_after_printing") else {
        return;
    };
    let value = canary();
    let t = tag();
    let path = format!("/it-memscan-{t}");
    aws_sdk_ssm::Client::new(&setup_config(&endpoint))
        .put_parameter()
        .name(format!("{path}/node/secret"))
        .value(&value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("c.json");
    std::fs::write(
        &config,
        serde_json::json!({"type": "aws-ssm", "name": "node", "server_url": endpoint,
            "extra": {"region": "us-east-1", "ssm-parameter-path": path}})
        .to_string(),
    )
    .unwrap();
    let out = tmp.path().join("out.json");
    let mut child = command(&[
        "get",
        "--json",
        "--config",
        config.to_str().unwrap(),
        "secret",
    ])
    .stdout(std::fs::File::create(&out).unwrap())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let pid = Pid::from_raw(child.id() as i32);
    ptrace::seize(pid, ptrace::Options::PTRACE_O_TRACEEXIT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut copies = None;
    loop {
        assert!(Instant::now() < deadline, "get did not exit");
        match waitpid(pid, None).unwrap() {
            WaitStatus::PtraceEvent(_, _, event)
                if event == ptrace::Event::PTRACE_EVENT_EXIT as i32 =>
            {
                copies = Some(count_in_memory(child.id(), value.as_bytes()));
                ptrace::cont(pid, None).unwrap();
            }
            WaitStatus::Stopped(_, sig) => ptrace::cont(pid, Some(sig)).unwrap(),
            WaitStatus::PtraceEvent(..)
            | WaitStatus::PtraceSyscall(_)
            | WaitStatus::Continued(_) => {
                ptrace::cont(pid, None).unwrap();
            }
            WaitStatus::Exited(_, code) => {
                assert_eq!(code, 0, "get failed");
                break;
            }
            WaitStatus::Signaled(_, sig, _) => panic!("get killed by {sig}"),
            WaitStatus::StillAlive => {}
        }
    }
    // waitpid above reaped it; this only tells std the child is gone.
    let _ = child.wait();
    let printed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(printed["value"], value.as_str(), "get printed the value");
    let copies = copies.expect("stopped at exit");
    let (exe, this_build) = exe();
    eprintln!(
        "MEASURED: memory scan: get --json at exit, after printing: {copies} plaintext copies ({exe})"
    );
    if this_build {
        assert_eq!(copies, 0, "plaintext left in get's memory");
    }
}
