//! The token-less connection flood of issue 23 item 1: sockets that open and hold connections,
//! send a request head a byte a second, pipeline requests they never read, or read answers a
//! byte a second; each reopens as soon as serve closes it.
//!
//! It runs as its own process (`cargo xtask soak --flood-worker PORT`), as user `nobody` when
//! the soak runs as root (through `setpriv`), so that serve sees another local user; it stops
//! when its stdin closes and prints one `LOCKBOX_FLOOD ...` line.

use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::report::FloodTally;

/// The uid the flood runs as when the soak runs as root.
const NOBODY: u32 = 65534;

/// What one flood socket does with its connection.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Behaviour {
    /// Opens and sends nothing.
    Idle,
    /// Sends a request head that never ends, a byte a second.
    SlowHead,
    /// Pipelines token-less requests and never reads the answers.
    Pipeliner,
    /// Pipelines `/ping`s and reads the answers a byte a second.
    SlowReader,
}

const BEHAVIOURS: [Behaviour; 4] = [
    Behaviour::Idle,
    Behaviour::SlowHead,
    Behaviour::Pipeliner,
    Behaviour::SlowReader,
];

/// Counters the flood threads share.
#[derive(Default)]
struct Counters {
    connects: AtomicU64,
    closed: AtomicU64,
    failures: AtomicU64,
}

/// The flood process's body: `sockets` sockets against `127.0.0.1:port` until stdin closes.
pub fn worker(port: u16, sockets: usize) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let threads: Vec<_> = (0..sockets)
        .map(|i| {
            let (stop, counters) = (Arc::clone(&stop), Arc::clone(&counters));
            let behaviour = BEHAVIOURS[i % BEHAVIOURS.len()];
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || socket_loop(port, behaviour, &stop, &counters))
        })
        .collect::<std::io::Result<_>>()
        .context("starting the flood threads")?;
    // Until the soak closes our stdin.
    let mut line = String::new();
    while std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {
        line.clear();
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let tally = FloodTally {
        uid: own_uid(),
        sockets: sockets as u64,
        connects: counters.connects.load(Ordering::Relaxed),
        closed_by_server: counters.closed.load(Ordering::Relaxed),
        connect_failures: counters.failures.load(Ordering::Relaxed),
    };
    println!("{}", tally.line());
    Ok(())
}

/// One socket: connect, misbehave until serve closes the connection, reconnect.
fn socket_loop(port: u16, behaviour: Behaviour, stop: &AtomicBool, counters: &Counters) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            counters.failures.fetch_add(1, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        counters.connects.fetch_add(1, Ordering::Relaxed);
        if misbehave(stream, behaviour, stop) {
            counters.closed.fetch_add(1, Ordering::Relaxed);
            // Reconnect at once, as an attacker would; a short pause keeps a refused
            // connection from spinning a core.
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Holds `stream` the `behaviour` way; true when serve closed it, false when told to stop.
fn misbehave(mut stream: TcpStream, behaviour: Behaviour, stop: &AtomicBool) -> bool {
    let tick = Duration::from_secs(1);
    let _ = stream.set_read_timeout(Some(tick));
    let _ = stream.set_write_timeout(Some(tick));
    let pipelined =
        |path: &str| format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").repeat(200);
    let opening = match behaviour {
        Behaviour::Idle => String::new(),
        Behaviour::SlowHead => "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".to_owned(),
        Behaviour::Pipeliner => pipelined("/secretsmanager/get?secretId=flood"),
        Behaviour::SlowReader => pipelined("/ping"),
    };
    if write(&mut stream, opening.as_bytes()).is_err() {
        return true;
    }
    let mut last = Instant::now();
    let mut byte = [0u8; 1];
    while !stop.load(Ordering::Relaxed) {
        let closed = match behaviour {
            Behaviour::Idle | Behaviour::Pipeliner => match stream.peek(&mut byte) {
                Ok(0) => true,
                // Answers arrived (a 429 or 408 ahead of the close): never read them.
                Ok(_) => {
                    thread::sleep(tick);
                    false
                }
                Err(e) => !timed_out(&e),
            },
            Behaviour::SlowHead => {
                thread::sleep(tick.saturating_sub(last.elapsed()));
                last = Instant::now();
                write(&mut stream, b"a").is_err() || peer_closed(&stream)
            }
            Behaviour::SlowReader => {
                thread::sleep(tick.saturating_sub(last.elapsed()));
                last = Instant::now();
                match stream.read(&mut byte) {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(e) => !timed_out(&e),
                }
            }
        };
        if closed {
            return true;
        }
    }
    false
}

/// Writes what the socket takes; a full send buffer (timeout) is not a close.
fn write(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    match stream.write_all(bytes) {
        Err(e) if timed_out(&e) => Ok(()),
        other => other,
    }
}

/// A non-blocking look for the end of the stream.
fn peer_closed(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !timed_out(&e),
    };
    let _ = stream.set_nonblocking(false);
    closed
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// The real uid of this process (from `/proc/self/status`).
pub fn own_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

/// The running flood process.
pub struct Flood {
    child: Child,
}

impl Flood {
    /// Starts the flood process against `127.0.0.1:port`: as `nobody` through `setpriv` when
    /// this process is root, else as this user (then serve cannot tell it from the clients).
    pub fn start(port: u16, sockets: usize) -> Result<Flood> {
        let exe = std::env::current_exe().context("finding the xtask binary")?;
        let mut command = if own_uid() == 0 {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={NOBODY}"),
                format!("--regid={NOBODY}"),
                "--clear-groups".to_owned(),
                "--".to_owned(),
            ])
            .arg(&exe);
            c
        } else {
            eprintln!(
                "soak: not root, so the token-less flood runs as this user: serve sees it as the \
                 same peer as the legitimate clients"
            );
            Command::new(&exe)
        };
        command
            .args(["soak", "--flood-worker", &port.to_string()])
            .args(["--flood-sockets", &sockets.to_string()])
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let child = command
            .spawn()
            .with_context(|| format!("starting the flood process ({})", exe.display()))?;
        Ok(Flood { child })
    }

    /// Stops the flood (closes its stdin) and reads its tally.
    pub fn stop(mut self) -> Result<FloodTally> {
        drop(self.child.stdin.take());
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout.read_to_string(&mut out)?;
        }
        let status = self.child.wait()?;
        FloodTally::parse(&out)
            .with_context(|| format!("the flood process ({status}) printed no LOCKBOX_FLOOD line"))
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
