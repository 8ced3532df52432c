//! The soak's own clients, each a thread until `stop`: the checker (every path in turn, bodies
//! verified), the consumer cycling random `versionStage` values, the `/ping` probe, the
//! emulator's stop-and-restart cycle, and the RSS sampler.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::fixture::{Fixture, Read};
use super::report::{PingTally, Tally};
use crate::emulator::{Kind, Session};
use crate::load::servers as load;

/// How often the emulator is stopped and started again.
pub const RESTART_EVERY: Duration = Duration::from_secs(30);
/// How long it stays down before the restart begins (the restart itself adds its start time).
const DOWN_FOR: Duration = Duration::from_secs(2);
/// The probe's period.
const PING_EVERY: Duration = Duration::from_millis(200);
/// The checker's pause between reads (it verifies, wrk loads).
const CHECK_EVERY: Duration = Duration::from_millis(10);
/// The consumer's pause between reads.
const CYCLE_EVERY: Duration = Duration::from_millis(5);

/// What every client shares.
pub struct Shared {
    /// serve's port.
    pub port: u16,
    /// The SSRF token.
    pub token: String,
    /// The secrets and which bodies are right.
    pub fixture: Fixture,
    /// The emulator's epoch: values up to it have been written.
    pub epoch: AtomicU64,
    /// Set when the run is over.
    pub stop: AtomicBool,
    /// When the load began.
    pub started: Instant,
}

impl Shared {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps `d` in short steps; false when the run stopped meanwhile.
    fn pause(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while self.running() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            thread::sleep(left.min(Duration::from_millis(100)));
        }
        false
    }

    /// Reads `read` with `token` and counts it into `tally`, the body verified.
    fn check(&self, tally: &mut Tally, read: &Read, token: &str) {
        match load::get(self.port, &read.path, token) {
            Ok((status, body)) => {
                let epoch = self.epoch.load(Ordering::SeqCst);
                let verdict = self
                    .fixture
                    .verdict(read.secret, status, &body, epoch)
                    .map(|why| format!("{} -> {why}", read.path));
                tally.answer(status, &body, verdict);
            }
            Err(_) => tally.transport_errors += 1,
        }
    }
}

/// The checker: every hot and cold path in turn, with the SSRF token (the `soak` consumer by
/// uid), each 200 body verified.
pub fn checker(shared: &Shared) -> Tally {
    let reads: Vec<Read> = shared
        .fixture
        .hot()
        .into_iter()
        .chain(shared.fixture.cold())
        .collect();
    let mut tally = Tally::default();
    for read in reads.iter().cycle() {
        if !shared.pause(CHECK_EVERY) {
            break;
        }
        shared.check(&mut tally, read, &shared.token);
    }
    tally
}

/// The consumer `cycler`: its own token, its own secret, a random `versionStage` each read
/// (mostly stages that do not exist; AWSCURRENT and AWSPREVIOUS now and then).
pub fn cycler(shared: &Shared, token: &str) -> Tally {
    let secret = shared.fixture.consumer_secret();
    let name = &shared.fixture.names[secret];
    let mut rng = Rng::new();
    let mut tally = Tally::default();
    while shared.pause(CYCLE_EVERY) {
        let stage = match rng.next() % 10 {
            0 => "AWSCURRENT".to_owned(),
            1 => "AWSPREVIOUS".to_owned(),
            _ => format!("S{:016x}", rng.next()),
        };
        let read = Read {
            path: format!("/secretsmanager/get?secretId={name}&versionStage={stage}"),
            secret,
        };
        shared.check(&mut tally, &read, token);
    }
    tally
}

/// `/ping` on a fresh connection every 200 ms, timed from connect to the last byte.
pub fn pinger(shared: &Shared) -> PingTally {
    let mut tally = PingTally::default();
    let mut next = Instant::now();
    while shared.running() {
        let sent = Instant::now();
        let status = load::get(shared.port, "/ping", "").ok().map(|(s, _)| s);
        tally.probe(
            status,
            sent.elapsed().as_secs_f64() * 1e3,
            sent.duration_since(shared.started).as_secs_f64(),
        );
        next += PING_EVERY;
        if !shared.pause(next.saturating_duration_since(Instant::now())) {
            break;
        }
    }
    tally
}

/// The emulator's record.
#[derive(Default)]
pub struct Cycles {
    /// Restarts that came up and had the secrets put back.
    pub restarts: u64,
    /// Restarts that failed.
    pub failures: u64,
    /// Seconds down in all.
    pub downtime_s: f64,
}

/// Every 30 s: stops the emulator, waits 2 s, starts it again on the same port and puts the
/// secrets back one epoch later (a new AWSCURRENT, the old one AWSPREVIOUS). Returns the
/// session still running at the end (if any) with the record.
pub fn emulator_cycle(shared: &Shared, session: Session, port: u16) -> (Option<Session>, Cycles) {
    let mut cycles = Cycles::default();
    let mut session = Some(session);
    while shared.pause(RESTART_EVERY) {
        let down = Instant::now();
        if let Some(s) = session.take() {
            s.stop();
        }
        if !shared.pause(DOWN_FOR) {
            break;
        }
        let epoch = shared.epoch.load(Ordering::SeqCst) + 1;
        match restart(shared, port, epoch) {
            Ok(s) => {
                session = Some(s);
                cycles.restarts += 1;
            }
            Err(e) => {
                eprintln!("soak: the emulator restart failed (tried again in 30 s): {e:#}");
                cycles.failures += 1;
            }
        }
        cycles.downtime_s += down.elapsed().as_secs_f64();
    }
    (session, cycles)
}

fn restart(shared: &Shared, port: u16, epoch: u64) -> Result<Session> {
    // The port was ours a moment ago; retry a bind that races a socket in TIME_WAIT.
    let session = (0..3)
        .find_map(|_| {
            Session::start_scoped_on(Kind::Moto, port)
                .inspect_err(|e| eprintln!("soak: moto did not start on {port}: {e:#}"))
                .ok()
        })
        .context("moto did not start again on its port")?;
    // The checker must accept the new value before anyone can be served it.
    shared.epoch.store(epoch, Ordering::SeqCst);
    shared.fixture.put_epoch(port, epoch)?;
    Ok(session)
}

/// serve's resident memory, sampled once a second: the samples in MiB.
pub fn rss_sampler(shared: &Shared, pid: u32, samples: &Mutex<Vec<(f64, f64)>>) {
    while shared.pause(Duration::from_secs(1)) {
        if let Ok((_, rss)) = load::memory(pid) {
            let at = shared.started.elapsed().as_secs_f64();
            samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((at, rss));
        }
    }
}

/// A small xorshift generator (no rand crate in xtask), seeded from the clock.
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock and the process id.
    pub fn new() -> Rng {
        let seed = load::nanos() as u64 ^ (u64::from(std::process::id()) << 32);
        Rng(seed | 1)
    }

    /// The next number.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Spawns `f` on a named thread.
pub fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<thread::JoinHandle<T>> {
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .with_context(|| format!("starting the {name} thread"))
}
