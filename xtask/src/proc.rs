//! Process helpers without libc: signals through the `kill` command, liveness through /proc.

use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Sends `signal` (e.g. "TERM", "KILL", "0") to the process group `pgid`. True if delivered.
pub fn kill_group(pgid: u32, signal: &str) -> bool {
    kill(&format!("-{pgid}"), signal)
}

/// Sends `signal` to one process. True if delivered.
pub fn kill_pid(pid: u32, signal: &str) -> bool {
    kill(&pid.to_string(), signal)
}

/// Runs `kill -s SIGNAL -- TARGET` quietly.
fn kill(target: &str, signal: &str) -> bool {
    Command::new("kill")
        .args(["-s", signal, "--", target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// True if process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => match stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
        {
            Some(state) => state != "Z" && state != "X",
            None => true,
        },
        Err(_) if fs::metadata("/proc/self/stat").is_ok() => false,
        // No procfs (not Linux): ask the kernel through kill -0.
        Err(_) => kill_pid(pid, "0"),
    }
}

/// True if any process of group `pgid` is alive (zombies count as gone).
pub fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return kill_group(pgid, "0");
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some(close) = stat.rfind(')') else {
                return false;
            };
            // After the command name: state, ppid, pgrp, ...
            let mut fields = stat[close + 1..].split_whitespace();
            let state = fields.next().unwrap_or("Z");
            let group = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
            group == Some(pgid) && state != "Z" && state != "X"
        })
}

/// The command line of process `pid`, arguments joined by spaces, if it can be read.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&raw)
            .split('\0')
            .filter(|arg| !arg.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Stops process group `pgid`: SIGTERM, up to `grace` for it to go, then SIGKILL.
/// Returns true if SIGKILL was needed.
pub fn terminate_group(pgid: u32, grace: Duration) -> bool {
    if !group_alive(pgid) {
        return false;
    }
    kill_group(pgid, "TERM");
    if wait_until(grace, || !group_alive(pgid)) {
        return false;
    }
    kill_group(pgid, "KILL");
    wait_until(Duration::from_secs(2), || !group_alive(pgid));
    true
}

/// Polls `done` every 50 ms until it is true (returns true) or `limit` passes (returns false).
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}
