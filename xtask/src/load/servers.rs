//! The servers under test (`lockbox serve`, the AWS agent, the floor): started on loopback
//! against the run's emulator, warmed with one read, measured, their memory read, stopped.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::generators::{lua_script, run_builtin, run_wrk, wrk_available};
use super::{AGENT, CONNECTIONS, FLOOR, ServerResult, TOKEN_HEADER};
use crate::util::http::Client;
use crate::util::{port_of, write_private};
use crate::{REGION, proc, util};

/// Starts the floor server with a body of `body` bytes.
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
pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
    pub(crate) port: u16,
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
pub(super) fn measure(
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
                run_wrk(server.port, &path, &script, connections, seconds, &[])?.0
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

/// Nanoseconds since the epoch, for a run-unique token.
pub(crate) fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// The environment both servers get: the emulator, test credentials, the token.
pub(crate) fn server_env(command: &mut Command, endpoint: &str, token: &str) {
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

/// Starts `lockbox serve` with the agent's keys and the emulator as endpoint.
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

/// Starts the AWS agent with the shared keys.
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
pub(crate) fn start(name: &'static str, mut command: Command, port: u16) -> Result<Server> {
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
pub(crate) fn get(port: u16, path: &str, token: &str) -> Result<(u16, String)> {
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
    let body = serde_json::json!({ "Name": name, "SecretString": value });
    crate::util::http::secrets_manager_call(port, "CreateSecret", &body).map(drop)
}

/// VmHWM and VmRSS of `pid`, MiB.
pub(crate) fn memory(pid: u32) -> Result<(f64, f64)> {
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// `create_secret` and the client's AWS JSON calls against the shared emulator (skipped
    /// without `LOCKBOX_IT_ENDPOINT`); the secret is deleted again.
    #[test]
    fn create_secret_on_the_shared_emulator() {
        let Some(port) = crate::util::port_or_skip(crate::ENV_ENDPOINT) else {
            return;
        };
        let name = format!("xtask-load-test-{}-{}", std::process::id(), nanos());
        create_secret(port, &name, r#"{"k":"v"}"#).unwrap();
        let client = Client::loopback(port);
        let call = |target: &str, body: Value| {
            client
                .aws_json(
                    "testing",
                    REGION,
                    "secretsmanager",
                    target,
                    &body.to_string(),
                )
                .unwrap()
        };
        let got = call("secretsmanager.GetSecretValue", json!({ "SecretId": name }));
        assert!(got.is_ok(), "{}: {}", got.status_line, got.body);
        let got: Value = serde_json::from_str(&got.body).unwrap();
        assert_eq!(got["SecretString"], r#"{"k":"v"}"#);
        let again = create_secret(port, &name, "x").unwrap_err();
        assert!(
            again
                .to_string()
                .starts_with("CreateSecret on the emulator failed: HTTP/1.1 400"),
            "{again:#}"
        );
        let deleted = call(
            "secretsmanager.DeleteSecret",
            json!({ "SecretId": name, "ForceDeleteWithoutRecovery": true }),
        );
        assert!(deleted.is_ok(), "{}", deleted.status_line);
    }
}
