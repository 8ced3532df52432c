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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::emulator::{Kind, Session};
use crate::util::http::Client;
use crate::util::{port_of, write_private};
use crate::{REGION, paths, proc, steps, util};

/// Environment variable naming a checkout of the AWS Secrets Manager Agent's source.
pub const ENV_AGENT_SRC: &str = "LOCKBOX_AGENT_SRC";
/// Environment variable overriding the seconds each load point runs.
const ENV_SECONDS: &str = "LOCKBOX_LOAD_SECONDS";
/// The connection counts measured.
pub const CONNECTIONS: [usize; 3] = [1, 16, 64];
/// The token header both servers accept.
/// The servers' names in the run's output.
const AGENT: &str = "AWS agent";
const FLOOR: &str = "floor (bare hyper)";

const TOKEN_HEADER: &str = "X-Aws-Parameters-Secrets-Token";

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
    let cache_get_ns = match cache_get_ns {
        Some(ns) => ns,
        None => in_process_hit(&target).unwrap_or_else(|e| {
            eprintln!("load: no in-process Cache::get figure: {e:#}");
            f64::NAN
        }),
    };
    Ok(LoadResults {
        generator,
        seconds,
        serve,
        agent,
        agent_skipped,
        floor,
        cache_get_ns,
    })
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
    ["slope", "mean"]
        .iter()
        .find_map(|k| json.get(k)?.get("point_estimate")?.as_f64())
        .with_context(|| format!("{} has no slope or mean", path.display()))
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

fn start_floor(
    bin: &Path,
    work: &Path,
    endpoint: &str,
    token: &str,
    body: usize,
) -> Result<Server> {
    let port = util::free_port()?;
    let config = work.join("floor.toml");
    fs::write(&config, agent_keys(port))?;
    let mut command = Command::new(bin);
    command
        .arg("--config")
        .arg(&config)
        .current_dir(work)
        .env("FLOOR_BODY_BYTES", body.to_string());
    server_env(&mut command, endpoint, token);
    start(FLOOR, command, port)
}

/// A server under test; killed on drop.
struct Server {
    name: &'static str,
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id();
        proc::kill_pid(pid, "TERM");
        if !proc::wait_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Starts both servers, warms them, measures them.
fn measure(
    endpoint: &str,
    work: &Path,
    lockbox: &Path,
    agent: Option<&Path>,
    floor: Option<&Path>,
    agent_skipped: &mut Option<String>,
    seconds: u64,
) -> Result<(
    String,
    ServerResult,
    Option<ServerResult>,
    Option<ServerResult>,
)> {
    let moto = port_of(endpoint).context("the emulator endpoint has no port")?;
    let name = format!("lockbox-load-{}", std::process::id());
    let secret = format!("{{\"user\":\"load\",\"password\":\"{}\"}}", "x".repeat(35));
    create_secret(moto, &name, &secret)?;
    // A throwaway token for two loopback servers of this run.
    let token = format!("load-{:x}-{}", std::process::id(), nanos());

    let mut servers = vec![start_lockbox(lockbox, work, endpoint, &token)?];
    if let Some(agent) = agent {
        match start_agent(agent, work, endpoint, &token) {
            Ok(server) => servers.push(server),
            Err(why) => {
                eprintln!("load: the AWS agent column is skipped: {why:#}");
                *agent_skipped = Some(format!("{why:#}"));
            }
        }
    }
    let path = format!("/secretsmanager/get?secretId={name}");
    if let Some(floor) = floor {
        let (_, body) = get(servers[0].port, &path, &token)?;
        match start_floor(floor, work, endpoint, &token, body.len()) {
            Ok(server) => servers.push(server),
            Err(why) => eprintln!("load: the floor column is skipped: {why:#}"),
        }
    }
    for server in servers.iter().filter(|s| s.name != FLOOR) {
        let (status, body) = get(server.port, &path, &token)?;
        if status != 200 || !body.contains("\"SecretString\"") {
            bail!(
                "{} answered the warm-up read with {status}: {}",
                server.name,
                body.chars().take(200).collect::<String>()
            );
        }
    }

    let wrk = wrk_available();
    let generator = if wrk {
        "wrk (keep-alive; threads 1/2/2)".to_owned()
    } else {
        eprintln!(
            "load: wrk is not installed (Debian: apt-get install wrk); using xtask's own \
             blocking keep-alive load generator, slower than wrk"
        );
        "xtask's blocking load generator (wrk missing)".to_owned()
    };
    let script = work.join("token.lua");
    write_private(&script, &lua_script(&token))?;

    let mut results: Vec<ServerResult> = servers.iter().map(|_| ServerResult::default()).collect();
    for (round, connections) in CONNECTIONS.into_iter().enumerate() {
        // Alternate who goes first, so neither always runs on a warmer machine.
        let mut order: Vec<usize> = (0..servers.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let server = &servers[i];
            eprintln!(
                "load: {} at {connections} connection(s) for {seconds} s",
                server.name
            );
            let point = if wrk {
                run_wrk(server.port, &path, &script, connections, seconds)?
            } else {
                run_builtin(server.port, &path, &token, connections, seconds)?
            };
            if point.errors > 0 {
                eprintln!(
                    "load: {} had {} error(s) at {connections} connection(s)",
                    server.name, point.errors
                );
            }
            results[i].points.insert(connections, point);
        }
    }
    for (server, result) in servers.iter().zip(results.iter_mut()) {
        let (hwm, rss) = memory(server.child.id())?;
        result.hwm_mb = hwm;
        result.rss_mb = rss;
    }
    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    drop(servers);
    let mut serve = None;
    let (mut agent, mut floor) = (None, None);
    for (name, result) in names.into_iter().zip(results) {
        match name {
            FLOOR => floor = Some(result),
            AGENT => agent = Some(result),
            _ => serve = Some(result),
        }
    }
    Ok((generator, serve.context("no lockbox result")?, agent, floor))
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// The environment both servers get: the emulator, test credentials, the token.
fn server_env(command: &mut Command, endpoint: &str, token: &str) {
    command
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .env("AWS_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
}

/// The agent's keys both configs share.
fn agent_keys(port: u16) -> String {
    format!(
        "http_port = {port}\nlog_level = \"none\"\nttl_seconds = 3600\ncache_size = 1000\n\
         max_conn = 1000\nvalidate_credentials = false\n"
    )
}

fn start_lockbox(bin: &Path, work: &Path, endpoint: &str, token: &str) -> Result<Server> {
    let port = util::free_port()?;
    let config = work.join("lockbox.toml");
    fs::write(
        &config,
        format!(
            "{}\n[lockbox]\nendpoint_url = \"{endpoint}\"\n",
            agent_keys(port)
        ),
    )?;
    let mut command = Command::new(bin);
    // The agent's default log_to_file writes ./logs/: keep it in the run's directory.
    command
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(work);
    server_env(&mut command, endpoint, token);
    start("lockbox serve", command, port)
}

fn start_agent(bin: &Path, work: &Path, endpoint: &str, token: &str) -> Result<Server> {
    let port = util::free_port()?;
    let config = work.join("agent.toml");
    fs::write(&config, agent_keys(port))?;
    let mut command = Command::new(bin);
    command.arg("--config").arg(&config).current_dir(work);
    server_env(&mut command, endpoint, token);
    start(AGENT, command, port)
}

/// Spawns `command` and waits until `GET /ping` answers 200.
fn start(name: &'static str, mut command: Command, port: u16) -> Result<Server> {
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    // Drain stderr so the server never blocks on a full pipe; keep the tail for errors.
    let stderr = child.stderr.take().context("stderr")?;
    let tail = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&tail);
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut lines = sink.lock().unwrap_or_else(|e| e.into_inner());
            lines.push(line);
            if lines.len() > 20 {
                lines.remove(0);
            }
        }
    });
    let mut server = Server { name, child, port };
    let ready = proc::wait_until(Duration::from_secs(30), || {
        matches!(server.child.try_wait(), Ok(Some(_)))
            || matches!(get(port, "/ping", ""), Ok((200, _)))
    });
    if !ready || matches!(server.child.try_wait(), Ok(Some(_))) {
        let lines = tail.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
        bail!("{name} did not answer /ping on 127.0.0.1:{port}; its stderr:\n{lines}");
    }
    eprintln!(
        "load: {name} ready on 127.0.0.1:{port} (pid {})",
        server.child.id()
    );
    Ok(server)
}

/// One request on a fresh connection: (status, body).
fn get(port: u16, path: &str, token: &str) -> Result<(u16, String)> {
    let headers: &[(&str, &str)] = if token.is_empty() {
        &[]
    } else {
        &[(TOKEN_HEADER, token)]
    };
    let response = Client::loopback(port)
        .timeout(Duration::from_secs(10))
        .get(path, headers)?;
    let status = response.status().context("no status line")?;
    Ok((status, response.body))
}

/// Creates secret `name` on the emulator with a raw Secrets Manager call (no SDK in xtask).
fn create_secret(port: u16, name: &str, value: &str) -> Result<()> {
    let body = serde_json::json!({ "Name": name, "SecretString": value }).to_string();
    let response = Client::loopback(port)
        .timeout(Duration::from_secs(10))
        .aws_json(
            "testing",
            REGION,
            "secretsmanager",
            "secretsmanager.CreateSecret",
            &body,
        )?;
    if !response.is_ok() {
        bail!(
            "CreateSecret on the emulator failed: {}",
            response.status_line
        );
    }
    Ok(())
}

/// VmHWM and VmRSS of `pid`, MiB.
fn memory(pid: u32) -> Result<(f64, f64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |key: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Ok((
        field("VmHWM:").context("no VmHWM")?,
        field("VmRSS:").context("no VmRSS")?,
    ))
}

fn wrk_available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The Lua script: the token header, and one machine-readable line at the end.
fn lua_script(token: &str) -> String {
    format!(
        r#"wrk.headers["{TOKEN_HEADER}"] = "{token}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("LOCKBOX_LOAD requests=%d duration_us=%d p50_us=%f p99_us=%f errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"#
    )
}

fn run_wrk(
    port: u16,
    path: &str,
    script: &Path,
    connections: usize,
    seconds: u64,
) -> Result<Point> {
    let threads = connections.min(2);
    let output = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .stdin(Stdio::null())
        .output()
        .context("running wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_wrk(&stdout).with_context(|| format!("no LOCKBOX_LOAD line in wrk's output:\n{stdout}"))
}

/// Reads the script's `LOCKBOX_LOAD ...` line.
fn parse_wrk(stdout: &str) -> Option<Point> {
    let line = stdout.lines().find(|l| l.starts_with("LOCKBOX_LOAD "))?;
    let fields: BTreeMap<&str, f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k, v.parse().ok()?))
        })
        .collect();
    let duration_s = fields.get("duration_us")? / 1e6;
    Some(Point {
        rps: fields.get("requests")? / duration_s,
        p50_ms: fields.get("p50_us")? / 1e3,
        p99_ms: fields.get("p99_us")? / 1e3,
        errors: *fields.get("errors")? as u64,
    })
}

/// The fallback generator: one thread per connection, one blocking keep-alive request at a time.
fn run_builtin(
    port: u16,
    path: &str,
    token: &str,
    connections: usize,
    seconds: u64,
) -> Result<Point> {
    let request = Arc::new(format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{TOKEN_HEADER}: {token}\r\n\r\n"
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let request = Arc::clone(&request);
            let stop = Arc::clone(&stop);
            thread::spawn(move || -> Result<(Vec<u32>, u64)> {
                let mut stream = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut latencies = Vec::new();
                let mut errors = 0;
                let mut line = String::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    stream.write_all(request.as_bytes())?;
                    let mut length = 0usize;
                    let mut status_ok = false;
                    let mut first = true;
                    loop {
                        line.clear();
                        if reader.read_line(&mut line)? == 0 {
                            bail!("the server closed the connection");
                        }
                        if first {
                            status_ok = line.split_whitespace().nth(1) == Some("200");
                            first = false;
                        } else if line == "\r\n" {
                            break;
                        } else if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; length];
                    reader.read_exact(&mut body)?;
                    latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                    if !status_ok {
                        errors += 1;
                    }
                }
                Ok((latencies, errors))
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (latencies, e) = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        all.extend(latencies);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return f64::NAN;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        f64::from(all[i]) / 1e3
    };
    Ok(Point {
        rps: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    })
}

impl LoadResults {
    fn serve_point(&self, c: usize) -> Point {
        self.serve.points.get(&c).copied().unwrap_or(nan_point())
    }

    fn floor_point(&self, c: usize) -> Point {
        self.floor
            .as_ref()
            .and_then(|a| a.points.get(&c).copied())
            .unwrap_or(nan_point())
    }

    fn agent_point(&self, c: usize) -> Point {
        self.agent
            .as_ref()
            .and_then(|a| a.points.get(&c).copied())
            .unwrap_or(nan_point())
    }

    /// The summary keys, in order.
    pub fn summary(&self) -> Vec<(&'static str, f64)> {
        let agent_hwm = self.agent.as_ref().map_or(f64::NAN, |a| a.hwm_mb);
        vec![
            ("serve_rps_1", self.serve_point(1).rps),
            ("serve_rps_16", self.serve_point(16).rps),
            ("serve_rps_64", self.serve_point(64).rps),
            ("agent_rps_1", self.agent_point(1).rps),
            ("agent_rps_16", self.agent_point(16).rps),
            ("agent_rps_64", self.agent_point(64).rps),
            ("serve_p99_ms_64", self.serve_point(64).p99_ms),
            ("agent_p99_ms_64", self.agent_point(64).p99_ms),
            ("serve_rss_mb", self.serve.hwm_mb),
            ("agent_rss_mb", agent_hwm),
            (
                "serve_rps_ratio_vs_agent_16",
                self.serve_point(16).rps / self.agent_point(16).rps,
            ),
            (
                "serve_rps_ratio_vs_agent_64",
                self.serve_point(64).rps / self.agent_point(64).rps,
            ),
            ("floor_rps_16", self.floor_point(16).rps),
            ("floor_rps_64", self.floor_point(64).rps),
            ("floor_p99_ms_64", self.floor_point(64).p99_ms),
            (
                "floor_rss_mb",
                self.floor.as_ref().map_or(f64::NAN, |f| f.hwm_mb),
            ),
            (
                "serve_vs_agent_rps_c16",
                self.serve_point(16).rps / self.agent_point(16).rps,
            ),
            (
                "serve_vs_agent_rps_c64",
                self.serve_point(64).rps / self.agent_point(64).rps,
            ),
            (
                "serve_vs_agent_p99_c64",
                self.serve_point(64).p99_ms / self.agent_point(64).p99_ms,
            ),
            (
                "serve_vs_floor_rps_c64",
                self.serve_point(64).rps / self.floor_point(64).rps,
            ),
            ("serve_rss_vs_agent", self.serve.hwm_mb / agent_hwm),
        ]
    }

    /// The table: one row per connection count, then memory and the targets.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nload run: cache hits over HTTP, {} s per point, {}",
            self.seconds, self.generator
        );
        if let Some(why) = &self.agent_skipped {
            let _ = writeln!(out, "AWS agent skipped: {why}");
        }
        let _ = writeln!(
            out,
            "in-process Cache::get (cache_hit/lockbox_one_thread): {:.1} ns",
            self.cache_get_ns
        );
        let _ = writeln!(
            out,
            "| connections | lockbox serve req/s | p50 / p99 ms | AWS agent req/s | p50 / p99 ms | floor req/s | p50 / p99 ms | vs agent | vs floor |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
        for c in CONNECTIONS {
            let (s, a, f) = (
                self.serve_point(c),
                self.agent_point(c),
                self.floor_point(c),
            );
            let _ = writeln!(
                out,
                "| {c} | {:.0}{} | {:.3} / {:.3} | {:.0}{} | {:.3} / {:.3} | {:.0} | {:.3} / {:.3} | x{:.2} | x{:.2} |",
                s.rps,
                errors_note(s.errors),
                s.p50_ms,
                s.p99_ms,
                a.rps,
                errors_note(a.errors),
                a.p50_ms,
                a.p99_ms,
                f.rps,
                f.p50_ms,
                f.p99_ms,
                s.rps / a.rps,
                s.rps / f.rps
            );
        }
        let agent = self.agent.clone().unwrap_or(ServerResult {
            hwm_mb: f64::NAN,
            rss_mb: f64::NAN,
            ..ServerResult::default()
        });
        let floor_hwm = self.floor.as_ref().map_or(f64::NAN, |f| f.hwm_mb);
        let _ = writeln!(
            out,
            "| RSS peak (now) | {:.1} MiB ({:.1}) | | {:.1} MiB ({:.1}) | | {floor_hwm:.1} MiB | | | |",
            self.serve.hwm_mb, self.serve.rss_mb, agent.hwm_mb, agent.rss_mb
        );
        let check = |ok: bool| if ok { "met" } else { "MISSED" };
        let r16 = self.serve_point(16).rps / self.agent_point(16).rps;
        let r64 = self.serve_point(64).rps / self.agent_point(64).rps;
        let p99 = self.serve_point(64).p99_ms / self.agent_point(64).p99_ms;
        let _ = writeln!(
            out,
            "targets: req/s >= 1.5x the agent's at 16 ({}) and 64 ({}); p99 at 64 <= 0.5x (x{p99:.2}: {}); \
             RSS <= agent's ({}); req/s >= 0.9x the floor's at 64 (x{:.2}: {})",
            check(r16 >= 1.5),
            check(r64 >= 1.5),
            check(p99 <= 0.5),
            check(self.serve.hwm_mb <= agent.hwm_mb),
            self.serve_point(64).rps / self.floor_point(64).rps,
            check(self.serve_point(64).rps / self.floor_point(64).rps >= 0.9)
        );
        out
    }
}

fn errors_note(errors: u64) -> String {
    if errors == 0 {
        String::new()
    } else {
        format!(" ({errors} errors)")
    }
}

fn nan_point() -> Point {
    Point {
        rps: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        errors: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wrk_line() {
        let out = "Running 5s test\nLOCKBOX_LOAD requests=50000 duration_us=5000000 \
                   p50_us=120.5 p99_us=2000 errors=3\n";
        let p = parse_wrk(out).unwrap();
        assert_eq!(p.rps, 10000.0);
        assert_eq!(p.p50_ms, 0.1205);
        assert_eq!(p.p99_ms, 2.0);
        assert_eq!(p.errors, 3);
        assert!(parse_wrk("nothing").is_none());
    }

    #[test]
    fn summary_has_every_key_and_ratio() {
        let mut r = LoadResults::default();
        for c in CONNECTIONS {
            r.serve.points.insert(
                c,
                Point {
                    rps: 300.0,
                    p50_ms: 0.1,
                    p99_ms: 1.0,
                    errors: 0,
                },
            );
        }
        let mut agent = ServerResult::default();
        agent.points.insert(
            16,
            Point {
                rps: 100.0,
                ..Point::default()
            },
        );
        r.agent = Some(agent);
        let s: BTreeMap<_, _> = r.summary().into_iter().collect();
        assert_eq!(s.len(), 21);
        assert_eq!(s["serve_rps_ratio_vs_agent_16"], 3.0);
        assert_eq!(s["serve_vs_agent_rps_c16"], 3.0);
        assert!(s["serve_vs_floor_rps_c64"].is_nan());
        assert!(s["serve_rps_ratio_vs_agent_64"].is_nan());
        assert!(r.table().contains("| 16 | 300 |"));
        let merged = merge_summary("{\n  \"cache_hit_ns\": 29.9,\n  \"x\": 1\n}\n", &r);
        let json: serde_json::Map<String, Value> = serde_json::from_str(&merged).unwrap();
        assert_eq!(json.len(), 23);
        assert_eq!(json["serve_rps_16"], Value::from(300.0));
        assert_eq!(json["agent_rps_64"], Value::Null);
        let alone: serde_json::Map<String, Value> =
            serde_json::from_str(&merge_summary("{\n}\n", &r)).unwrap();
        assert_eq!(alone.len(), 21);
    }
}
