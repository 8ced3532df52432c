//! The load run of `cargo xtask bench` (and `cargo xtask bench-load` alone): `lockbox serve`
//! against the AWS Secrets Manager Agent built from its source, both on loopback, both reading
//! one secret from a private moto, measured the same way in one run.
//!
//! 1. Builds the release `lockbox` binary, and the agent from the checkout named by
//!    `LOCKBOX_AGENT_SRC` (github.com/aws/aws-secretsmanager-agent) into `<target>/aws-agent`
//!    (cargo's own caching makes later runs a no-op). Without a checkout, or when it does not
//!    build, the agent column is skipped with a message saying why.
//! 2. Starts a private moto, puts one secret, starts both servers with the same SSRF token
//!    (`AWS_TOKEN`), `ttl_seconds = 3600`, `log_level = "none"`, the emulator as endpoint
//!    (agent: `AWS_ENDPOINT_URL`; lockbox: `[lockbox] endpoint_url`), and reads the secret
//!    once through each (a miss that fills the cache).
//! 3. Measures cache hits on `/secretsmanager/get?secretId=NAME` with `wrk --latency` at 1, 16
//!    and 64 keep-alive connections (threads: 1, 2, 2), a Lua script adding the token header and
//!    printing requests, duration, errors and the p50/p99 latency. The two servers alternate per
//!    connection count. Without wrk (Debian package `wrk`), a small load generator in this
//!    module does the same with one blocking keep-alive connection per thread (it is slower
//!    than wrk: its numbers are comparable with each other, not with wrk's).
//! 4. Reads each server's peak and current resident memory (`VmHWM`, `VmRSS`) from
//!    `/proc/<pid>/status` after the runs.
//!
//! `--quick` measures each point for 5 s, else 15 s; `LOCKBOX_LOAD_SECONDS` overrides both.
//!
//! The servers under test in `servers.rs`, the load generators in `generators.rs`, the summary
//! keys and the table in `table.rs`.

pub(crate) mod generators;
pub(crate) mod servers;
mod table;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use self::servers::measure;
use crate::emulator::{Kind, Session};
use crate::{paths, steps};

/// Environment variable naming a checkout of the AWS Secrets Manager Agent's source.
pub const ENV_AGENT_SRC: &str = "LOCKBOX_AGENT_SRC";
/// Environment variable overriding the seconds each load point runs.
const ENV_SECONDS: &str = "LOCKBOX_LOAD_SECONDS";
/// The connection counts measured.
pub const CONNECTIONS: [usize; 3] = [1, 16, 64];
/// The servers' names in the run's output.
const AGENT: &str = "AWS agent";
const FLOOR: &str = "floor (bare hyper)";
/// The token header both servers accept.
pub(crate) const TOKEN_HEADER: &str = "X-Aws-Parameters-Secrets-Token";

/// One measured point.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    /// Requests per second.
    pub rps: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Non-2xx answers, socket errors and timeouts.
    pub errors: u64,
}

/// One server's results.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerResult {
    /// By connection count.
    pub points: BTreeMap<usize, Point>,
    /// Peak resident memory (`VmHWM`), MiB.
    pub hwm_mb: f64,
    /// Resident memory after the runs (`VmRSS`), MiB.
    pub rss_mb: f64,
}

/// Everything the load run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadResults {
    /// Which load generator ran.
    pub generator: String,
    /// Seconds per point.
    pub seconds: u64,
    /// `lockbox serve`.
    pub serve: ServerResult,
    /// The AWS agent, when it could be built and started.
    pub agent: Option<ServerResult>,
    /// Why the agent column is missing.
    pub agent_skipped: Option<String>,
    /// The floor: a bare hyper 1 + Tokio server answering fixed bytes of the same size after
    /// a token check (`benches/src/bin/floor-server.rs`), when it could be built.
    pub floor: Option<ServerResult>,
    /// In-process `Cache::get` on one thread, ns (criterion's `cache_hit/lockbox_one_thread`).
    pub cache_get_ns: f64,
}

/// Runs the load benchmark. `cache_get_ns` is the in-process hit measured in the same run;
/// `None` runs the `hits` bench's `cache_hit/lockbox_one_thread` alone (quick mode) to get it.
pub fn run(quick: bool, cache_get_ns: Option<f64>) -> Result<LoadResults> {
    let seconds = std::env::var(ENV_SECONDS)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(if quick { 5 } else { 15 });
    let target = paths::target_dir();

    eprintln!("load: building the release lockbox binary (cargo build --release -p lockbox-cli)");
    steps::build_release_lockbox()?;
    let lockbox = target.join("release/lockbox");
    let floor_bin = build_floor(&target).inspect_err(|why| {
        eprintln!("load: the floor column is skipped: {why:#}");
    });
    let (agent_bin, mut agent_skipped) = match build_agent(&target) {
        Ok(path) => (Some(path), None),
        Err(why) => {
            eprintln!("load: the AWS agent column is skipped: {why:#}");
            (None, Some(format!("{why:#}")))
        }
    };

    let emulator = Session::start_scoped(Kind::Moto)?;
    let work = paths::state_dir()?.join(format!("load-{}", std::process::id()));
    fs::create_dir_all(&work)?;
    let result = measure(
        &emulator.endpoint,
        &work,
        &lockbox,
        agent_bin.as_deref(),
        floor_bin.as_deref().ok(),
        &mut agent_skipped,
        seconds,
    );
    let _ = fs::remove_dir_all(&work);
    emulator.stop();
    let (generator, serve, agent, floor) = result?;
    let mut results = LoadResults {
        generator,
        seconds,
        serve,
        agent,
        agent_skipped,
        floor,
        cache_get_ns: cache_get_ns.unwrap_or(f64::NAN),
    };
    if cache_get_ns.is_none() {
        // The HTTP figures first, on stderr: the in-process bench builds criterion in
        // release, which takes minutes on a small machine.
        eprint!("{}", results.table());
        results.cache_get_ns = in_process_hit(&target).unwrap_or_else(|e| {
            eprintln!("load: no in-process Cache::get figure: {e:#}");
            f64::NAN
        });
    }
    Ok(results)
}

/// `cargo xtask bench-load`'s options: `bench`'s.
#[derive(clap::Args)]
pub struct BenchLoad {
    #[command(flatten)]
    options: crate::bench::Options,
}

impl BenchLoad {
    /// Runs `cargo xtask bench-load`.
    pub fn run(self) -> Result<ExitCode> {
        run_alone(&self.options).map(|()| ExitCode::SUCCESS)
    }
}

/// `cargo xtask bench-load`: the load run alone, next to a quick in-process `Cache::get`.
pub fn run_alone(options: &crate::bench::Options) -> Result<()> {
    let load = run(options.quick, None)?;
    print!("{}", load.table());
    if let Some(path) = &options.summary {
        let path = std::env::current_dir()?.join(path);
        fs::write(&path, merge_summary("{\n}\n", &load))
            .with_context(|| format!("could not write {}", path.display()))?;
        eprintln!("summary written to {}", path.display());
    }
    Ok(())
}

/// Appends the load run's keys to a summary written by `bench` (`{\n  "k": v,\n ...\n}\n`).
pub fn merge_summary(summary: &str, load: &LoadResults) -> String {
    let body = summary.trim_end().trim_end_matches('}').trim_end();
    let body = body.trim_start_matches('{').trim_matches('\n');
    let mut lines: Vec<String> = body
        .lines()
        .map(|l| l.trim_end_matches(',').to_owned())
        .filter(|l| !l.trim().is_empty())
        .collect();
    for (key, value) in load.summary() {
        let value = if value.is_finite() {
            Value::from((value * 1000.0).round() / 1000.0)
        } else {
            Value::Null
        };
        lines.push(format!("  {}: {value}", Value::from(key)));
    }
    format!("{{\n{}\n}}\n", lines.join(",\n"))
}

/// Runs criterion's `cache_hit/lockbox_one_thread` alone (quick) and reads its estimate.
fn in_process_hit(target: &Path) -> Result<f64> {
    eprintln!("load: measuring the in-process Cache::get (hits bench, lockbox_one_thread, quick)");
    let status = steps::cargo()
        .current_dir(paths::workspace_root())
        .args(["bench", "-p", "lockbox-benches", "--bench", "hits", "--"])
        .arg("^cache_hit/lockbox_one_thread$")
        .env("LOCKBOX_BENCH_QUICK", "1")
        .status()
        .context("could not run cargo bench")?;
    if !status.success() {
        bail!("cargo bench -p lockbox-benches --bench hits failed ({status})");
    }
    let path = target.join("criterion/cache_hit/lockbox_one_thread/new/estimates.json");
    let json: Value = serde_json::from_str(
        &fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    crate::bench::estimate(&json, &path)
}

/// Builds the agent from `$LOCKBOX_AGENT_SRC` into `<target>/aws-agent`; returns the binary.
fn build_agent(target: &Path) -> Result<PathBuf> {
    let Some(src) = std::env::var_os(ENV_AGENT_SRC).filter(|s| !s.is_empty()) else {
        bail!(
            "{ENV_AGENT_SRC} is not set (point it at a checkout of \
             https://github.com/aws/aws-secretsmanager-agent)"
        );
    };
    let src = PathBuf::from(src);
    if !src.join("aws_secretsmanager_agent/Cargo.toml").is_file() {
        bail!(
            "{} is not a checkout of aws-secretsmanager-agent (no aws_secretsmanager_agent/Cargo.toml)",
            src.display()
        );
    }
    let agent_target = target.join("aws-agent");
    eprintln!(
        "load: building the AWS agent from {} into {} (cached after the first build)",
        src.display(),
        paths::show(&agent_target)
    );
    let status = steps::cargo()
        .current_dir(&src)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "aws_secretsmanager_agent",
        ])
        .env("CARGO_TARGET_DIR", &agent_target)
        // The agent is its own workspace: none of ours applies.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .status()
        .context("could not run cargo build for the agent")?;
    if !status.success() {
        bail!("cargo build of the agent failed ({status})");
    }
    let bin = agent_target.join("release/aws_secretsmanager_agent");
    if !bin.is_file() {
        bail!("the agent built but {} is missing", bin.display());
    }
    Ok(bin)
}

/// Builds the floor server (release, like the others).
fn build_floor(target: &Path) -> Result<PathBuf> {
    let status = steps::cargo()
        .current_dir(paths::workspace_root())
        .args([
            "build",
            "--release",
            "-p",
            "lockbox-benches",
            "--bin",
            "floor-server",
        ])
        .status()
        .context("could not run cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p lockbox-benches --bin floor-server failed ({status})");
    }
    Ok(target.join("release/floor-server"))
}
