//! `cargo xtask soak [--minutes N] [--summary FILE]`: `lockbox serve` under a long mixed load
//! while its cloud goes away and comes back, with the hostile neighbours of issue 23 beside it.
//! Not part of CI (10 minutes by default).
//!
//! 1. Builds the release `lockbox` (or takes `--lockbox PATH`), starts a private moto on a fixed port and puts 9 secrets on
//!    it (AWSPREVIOUS and AWSCURRENT each), and starts `lockbox serve` with the offline store
//!    (`manifest`, `store`; the key next to it), `consumers` (`soak`: this user's uid, the 8
//!    load secrets; `cycler`: its own token, its own secret), `ttl_seconds = 5`,
//!    `cache_size = 16` (fewer than the keys read, so misses go on) and `max_conn = 128`.
//! 2. For `--minutes`, all at once:
//!    - wrk at 64 connections (2 threads), 98% of requests on 4 hot paths, 2% on 32 cold ones;
//!      its Lua script adds the SSRF token and counts the answers by status;
//!    - the emulator stopped every 30 s and started again 2 s later on the same port, the
//!      secrets put back one epoch on (a new AWSCURRENT; the same ARNs and version ids, so
//!      serve's store still names them);
//!    - the token-less flood of issue 23 item 1 (`--flood-sockets`, default 160; as user
//!      `nobody` when run as root): sockets that hold connections idle, send a head a byte a
//!      second, pipeline requests they never read, or read a byte a second, reopening each
//!      connection serve closes;
//!    - the consumer `cycler` reading its own secret with random `versionStage` values;
//!    - the checker reading every path in turn and verifying each 200 body: the secret asked,
//!      and its current or a previous value (anything else is a wrong answer);
//!    - `/ping` on a fresh connection every 200 ms, timed;
//!    - serve's RSS sampled every second.
//! 3. Prints the table (requests served, wrong answers, 5xx by status and kind, RSS at the
//!    start (30 s into the load) and end, `/ping` misses and worst latency) and with `--summary`
//!    writes it as JSON. Exits 1 when a target is missed: a wrong answer, RSS growth of 10 MiB
//!    or more, or a `/ping` slower than 100 ms (or failed).

mod clients;
mod fixture;
mod flood;
mod report;

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::emulator::{Kind, Session};
use crate::load::{generators, servers as load};
use crate::{paths, steps, util};
use clients::{Shared, spawn};
use fixture::Fixture;
use report::{Report, Rss, WrkRun};

/// The share of wrk's requests that read a cold path.
const MISS: f64 = 0.02;
/// wrk's connections.
const CONNECTIONS: usize = 64;
/// RSS "start" is taken this far into the load.
const RSS_START_AFTER_S: f64 = 30.0;

/// `cargo xtask soak`'s options.
#[derive(clap::Args)]
pub struct Options {
    /// Minutes of load.
    #[arg(long, default_value_t = 10)]
    pub minutes: u64,
    /// Also write the figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Soak this `lockbox` binary instead of building the release one.
    #[arg(long, value_name = "PATH")]
    pub lockbox: Option<PathBuf>,
    /// Sockets in the token-less flood.
    #[arg(long, default_value_t = 160)]
    pub flood_sockets: usize,
    /// Internal: be the flood process against 127.0.0.1:PORT.
    #[arg(long, hide = true, value_name = "PORT")]
    pub flood_worker: Option<u16>,
}

/// Runs the soak (or, with `--flood-worker`, the flood process).
pub fn run(options: &Options) -> Result<ExitCode> {
    if let Some(port) = options.flood_worker {
        flood::worker(port, options.flood_sockets)?;
        return Ok(ExitCode::SUCCESS);
    }
    if options.minutes == 0 {
        bail!("--minutes must be at least 1");
    }
    if !generators::wrk_available() {
        bail!("the soak needs wrk (Debian: apt-get install wrk)");
    }
    let lockbox = match &options.lockbox {
        Some(path) => path.clone(),
        None => {
            eprintln!(
                "soak: building the release lockbox binary (cargo build --release -p lockbox-cli)"
            );
            steps::build_release_lockbox()?;
            paths::target_dir().join("release/lockbox")
        }
    };
    let moto_port = stable_port()?;
    let session = Session::start_scoped_on(Kind::Moto, moto_port)?;
    let work = paths::state_dir()?.join(format!("soak-{}", std::process::id()));
    fs::create_dir_all(&work)?;
    fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let result = soak(options, &lockbox, session, moto_port, &work);
    let _ = fs::remove_dir_all(&work);
    let report = result?;
    print!("{}", report.table());
    if let Some(path) = &options.summary {
        let path = std::env::current_dir()?.join(path);
        let text = serde_json::to_string_pretty(&report.summary())? + "\n";
        fs::write(&path, text).with_context(|| format!("could not write {}", path.display()))?;
        eprintln!("soak: summary written to {}", path.display());
    }
    Ok(if report.missed().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A free port below the ephemeral range, so that no outgoing connection (the flood makes
/// many) takes it while the emulator is down.
fn stable_port() -> Result<u16> {
    let start = 20_000 + (std::process::id() % 10_000) as u16;
    (0..2_000u16)
        .map(|i| 20_000 + (start - 20_000 + i * 7) % 12_000)
        .find(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, *p)).is_ok())
        .context("no free port between 20000 and 32000 for the emulator")
}

fn soak(
    options: &Options,
    lockbox: &Path,
    session: Session,
    moto_port: u16,
    work: &Path,
) -> Result<Report> {
    let nanos = load::nanos();
    let mut fixture = Fixture::new(&format!(
        "soak-{:x}-{:x}",
        std::process::id(),
        nanos & 0xff_ffff
    ));
    fixture.arns = fixture.put_epoch(moto_port, 1)?;
    let token = format!("soak-ssrf-{:x}-{nanos:x}", std::process::id());
    let cycler_token = format!("soak-cycler-{:x}", nanos.rotate_left(17));
    fs::write(work.join("manifest.json"), fixture.manifest())?;
    util::write_private(
        &work.join("consumers.json"),
        &fixture.consumers(flood::own_uid(), &cycler_token),
    )?;
    let port = util::free_port()?;
    let config = work.join("serve.toml");
    fs::write(
        &config,
        fixture::serve_config(port, &session.endpoint, work),
    )?;
    let mut command = Command::new(lockbox);
    command
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(work);
    load::server_env(&mut command, &session.endpoint, &token);
    let server = load::start("lockbox serve", command, port)?;
    let pid = server.child.id();

    // Warm-up: every path answers right once before the load.
    for read in fixture.hot().iter().chain(&fixture.cold()) {
        let (status, body) = load::get(port, &read.path, &token)?;
        if status != 200 {
            bail!(
                "serve answered the warm-up read of {} with {status}: {}",
                read.path,
                body.chars().take(300).collect::<String>()
            );
        }
        if let Some(why) = fixture.verdict(read.secret, status, &body, 1) {
            bail!("serve's warm-up answer was wrong: {} -> {why}", read.path);
        }
    }
    let idle_mb = load::memory(pid)?.1;
    let script = work.join("soak.lua");
    util::write_private(
        &script,
        &fixture::lua(&token, &fixture.hot(), &fixture.cold(), MISS),
    )?;

    let seconds = options.minutes * 60;
    eprintln!(
        "soak: {seconds} s: wrk at {CONNECTIONS} connections, the emulator restarted every \
         {} s, {} flood sockets, a consumer cycling stages, /ping every 200 ms",
        clients::RESTART_EVERY.as_secs(),
        options.flood_sockets
    );
    let shared = Arc::new(Shared {
        port,
        token,
        fixture,
        epoch: AtomicU64::new(1),
        stop: AtomicBool::new(false),
        started: Instant::now(),
    });
    let wrk = {
        let script = script.clone();
        spawn("wrk", move || run_wrk(port, &script, seconds))?
    };
    std::thread::sleep(Duration::from_secs(2));
    let flood = flood::Flood::start(port, options.flood_sockets)?;
    let samples = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&shared);
    let checker = spawn("checker", move || clients::checker(&s))?;
    let s = Arc::clone(&shared);
    let cycler = spawn("cycler", move || clients::cycler(&s, &cycler_token))?;
    let s = Arc::clone(&shared);
    let pinger = spawn("ping", move || clients::pinger(&s))?;
    let (s, sm) = (Arc::clone(&shared), Arc::clone(&samples));
    let sampler = spawn("rss", move || clients::rss_sampler(&s, pid, &sm))?;
    let s = Arc::clone(&shared);
    let emulator = spawn("emulator", move || {
        clients::emulator_cycle(&s, session, moto_port)
    })?;

    let joined = |what: &str| anyhow::anyhow!("the {what} thread panicked");
    let wrk = wrk.join().map_err(|_| joined("wrk"));
    let end_mb = load::memory(pid).map(|m| m.1);
    shared.stop.store(true, Ordering::SeqCst);
    let elapsed = shared.started.elapsed().as_secs_f64();
    let checker = checker.join().map_err(|_| joined("checker"))?;
    let cycler = cycler.join().map_err(|_| joined("cycler"))?;
    let ping = pinger.join().map_err(|_| joined("ping"))?;
    sampler.join().map_err(|_| joined("rss"))?;
    let (session, cycles) = emulator.join().map_err(|_| joined("emulator"))?;
    let flood = flood
        .stop()
        .inspect_err(|e| eprintln!("soak: the flood's tally is missing: {e:#}"))
        .ok();
    drop(server);
    if let Some(session) = session {
        session.stop();
    }
    let wrk = wrk??;
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Report {
        seconds: elapsed,
        wrk,
        checker,
        cycler,
        ping,
        flood,
        restarts: cycles.restarts,
        restart_failures: cycles.failures,
        downtime_s: cycles.downtime_s,
        rss: rss(idle_mb, &samples, end_mb?),
    })
}

/// RSS figures from the samples `(seconds into the load, MiB)`: start is the first sample
/// 30 s in (the last one in a shorter run).
fn rss(idle_mb: f64, samples: &[(f64, f64)], end_mb: f64) -> Rss {
    let start_mb = samples
        .iter()
        .find(|(at, _)| *at >= RSS_START_AFTER_S)
        .or(samples.last())
        .map_or(end_mb, |s| s.1);
    let peak_mb = samples.iter().map(|s| s.1).fold(end_mb, f64::max);
    Rss {
        idle_mb,
        start_mb,
        end_mb,
        peak_mb,
    }
}

/// wrk for `seconds` at 64 connections, the script choosing each path.
fn run_wrk(port: u16, script: &Path, seconds: u64) -> Result<WrkRun> {
    let extra = ["--timeout", "10s"];
    let (point, stdout) = generators::run_wrk(port, "/", script, CONNECTIONS, seconds, &extra)?;
    let (statuses, socket_errors) = report::parse_wrk_extra(&stdout);
    Ok(WrkRun {
        point,
        requests: statuses.values().sum(),
        statuses,
        socket_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_start_is_thirty_seconds_in() {
        let samples = [(1.0, 40.0), (29.0, 50.0), (30.5, 52.0), (60.0, 70.0)];
        let r = rss(20.0, &samples, 55.0);
        assert_eq!(
            (r.idle_mb, r.start_mb, r.end_mb, r.peak_mb),
            (20.0, 52.0, 55.0, 70.0)
        );
        let short = rss(20.0, &[(1.0, 40.0), (2.0, 41.0)], 42.0);
        assert_eq!(short.start_mb, 41.0);
        assert_eq!(rss(20.0, &[], 42.0).start_mb, 42.0);
    }

    #[test]
    fn the_emulator_port_is_below_the_ephemeral_range() {
        let p = stable_port().unwrap();
        assert!((20_000..32_000).contains(&p), "{p}");
    }
}
