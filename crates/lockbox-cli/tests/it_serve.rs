//! `lockbox serve` end to end: the built binary on a free port with the agent's config keys,
//! read through with a plain HTTP client, stopped with SIGTERM, exits cleanly.

use lockbox_testkit::aws::{aws_sdk_secretsmanager, aws_sdk_ssm};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use lockbox_testkit::cli::{aws_command, stop_with_sigterm};
use lockbox_testkit::{emulator, prefix};

const EXE: &str = env!("CARGO_BIN_EXE_lockbox");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_through_and_stops_on_sigterm() {
    let Some(ep) = emulator("cli serve") else {
        return;
    };
    let name = prefix("cli-serve");
    let sm = aws_sdk_secretsmanager::Client::new(&lockbox_testkit::aws::setup_config(&ep));
    sm.create_secret()
        .name(&name)
        .secret_string("served-value")
        .send()
        .await
        .unwrap();
    let param = format!("/{name}/p");
    let ssm = aws_sdk_ssm::Client::new(&lockbox_testkit::aws::setup_config(&ep));
    ssm.put_parameter()
        .name(&param)
        .value("param-value")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let token = "cli-serve-token-0123456789";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    // A token file must be owner-only, as a key file.
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let config = dir.path().join("serve.toml");
    // The agent's keys as the agent writes them, lockbox's under [lockbox].
    std::fs::write(
        &config,
        format!(
            "log_level = \"INFO\"\nlog_to_file = false\nttl_seconds = \"60\"\nmax_conn = \"50\"\nregion = \"us-east-1\"\n\
             [lockbox]\nlisten = \"127.0.0.1:0\"\nendpoint_url = \"{ep}\"\nprefetch_secrets = [\"{name}\"]\n"
        ),
    )
    .unwrap();
    let mut child = aws_command(EXE, &["serve", "--config", config.to_str().unwrap()])
        .env("AWS_TOKEN", format!("file://{}", token_file.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let addr = first_stdout_addr(&mut child);
    let http = reqwest::Client::new();
    let get = |path: String, with_token: bool| {
        let mut rb = http.get(format!("http://{addr}{path}"));
        if with_token {
            rb = rb.header("X-Aws-Parameters-Secrets-Token", token);
        }
        async move {
            let r = rb.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/ping".into(), false).await, (200, "healthy".into()));
    let (status, body) = get(format!("/secretsmanager/get?secretId={name}"), true).await;
    assert_eq!(status, 200, "{body}");
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["SecretString"], "served-value");
    let (status, body) = get(format!("/v1/{name}"), false).await;
    assert_eq!((status, body.as_str()), (403, "Bad Token"));
    let (status, body) = get(format!("/systemsmanager/parameters/get?name={param}"), true).await;
    assert_eq!(status, 200, "{body}");
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["Parameter"]["Value"], "param-value");

    let status = stop_with_sigterm(&mut child, Duration::from_secs(10));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(status.success(), "exit {status:?}; stderr: {rest}");
    assert!(rest.contains("lockbox serve stopped"), "{rest}");
    assert!(
        !rest.contains("served-value") && !rest.contains(token),
        "{rest}"
    );
}

#[test]
fn serve_refuses_without_a_token_and_names_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        "validate_credentials = false\n[lockbox]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let out = aws_command(EXE, &["serve", "--config", config.to_str().unwrap()])
        .env_remove("AWS_TOKEN")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no SSRF token") && err.contains("AWS_TOKEN"),
        "{err}"
    );

    std::fs::write(&config, "http_prot = 2773\n").unwrap();
    let out = aws_command(EXE, &["serve", "--config", config.to_str().unwrap()])
        .env("AWS_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http_prot"), "{err}");
}

/// Starts `serve` with `log_level`, waits until it listens, stops it with SIGTERM and returns
/// everything it wrote on stderr.
fn serve_stderr(log_level: &str, rust_log: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let token = "log-level-token-0123456789";
    let (mut child, mut stderr, _) = serve_in(dir.path(), log_level, false, token, rust_log);
    let mut all = String::new();
    // Records reach stderr through a queue: give the start's a moment to land.
    std::thread::sleep(std::time::Duration::from_millis(300));
    sigterm(&child);
    std::io::Read::read_to_string(&mut stderr, &mut all).unwrap();
    assert!(child.wait().unwrap().success(), "{all}");
    all
}

/// Reads serve's first stdout line, which must be the agent-style start line, and returns
/// the address in it; the stdout reader is then dropped (closed), as the agent's tests do.
fn first_stdout_addr(child: &mut std::process::Child) -> String {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    assert!(
        stdout.read_line(&mut line).unwrap() > 0,
        "serve exited early"
    );
    let (before, addr) = line
        .trim()
        .split_once(" listening on http://")
        .unwrap_or_else(|| panic!("not a start line: {line:?}"));
    assert!(before.starts_with("lockbox/"), "{line:?}");
    addr.to_owned()
}

/// Starts serve in `dir` (its working directory and where its config goes) with the agent's
/// `log_level` and `log_to_file`, `token` in AWS_TOKEN and `rust_log` in RUST_LOG when given;
/// stdout is closed after the start line, stderr is handed back unread with the address.
fn serve_in(
    dir: &std::path::Path,
    log_level: &str,
    log_to_file: bool,
    token: &str,
    rust_log: Option<&str>,
) -> (std::process::Child, std::process::ChildStderr, String) {
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "log_level = \"{log_level}\"\nlog_to_file = {log_to_file}\nvalidate_credentials = false\n\
             region = \"us-east-1\"\n[lockbox]\nlisten = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    let mut cmd = aws_command(EXE, &["serve", "--config", config.to_str().unwrap()]);
    cmd.current_dir(dir)
        .env("AWS_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(filter) = rust_log {
        cmd.env("RUST_LOG", filter);
    }
    let mut child = cmd.spawn().unwrap();
    let addr = first_stdout_addr(&mut child);
    let stderr = child.stderr.take().unwrap();
    (child, stderr, addr)
}

/// Sends SIGTERM to serve.
fn sigterm(child: &std::process::Child) {
    rustix::process::kill_process(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
}

/// Sends `n` requests with a wrong token (each one logs a warning), then checks /ping.
fn hammer_with_bad_tokens(addr: &str, n: usize) {
    use std::io::{Read, Write};
    for _ in 0..n {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /secretsmanager/get?secretId=x HTTP/1.1\r\nHost: a\r\n\
             X-Aws-Parameters-Secrets-Token: wrong\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    }
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.ends_with("healthy"), "{answer}");
}

fn stop(mut child: std::process::Child) {
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve is still running"
    );
    sigterm(&child);
    child.wait().unwrap();
}

#[test]
fn logs_go_to_the_agents_file_and_closed_or_unread_pipes_do_not_stop_serve() {
    // log_to_file (the agent's default): ./logs/secrets_manager_agent.log in the working dir.
    let dir = tempfile::tempdir().unwrap();
    let token = "closed-pipes-token-0123456789";
    let (child, stderr, addr) = serve_in(dir.path(), "DEBUG", true, token, None);
    hammer_with_bad_tokens(&addr, 50);
    let log = std::fs::read_to_string(dir.path().join("logs/secrets_manager_agent.log")).unwrap();
    assert!(log.contains("lockbox serve listening on"), "{log}");
    assert!(log.contains("incorrect SSRF token"), "{log}");
    stop(child);
    drop(stderr);
    // log_to_file = false: records go to stderr, which nobody reads here; 2,000 warnings are
    // far more than a pipe holds, and serve must keep answering.
    let dir = tempfile::tempdir().unwrap();
    let (child, stderr, addr) = serve_in(dir.path(), "DEBUG", false, token, None);
    hammer_with_bad_tokens(&addr, 2000);
    assert!(!dir.path().join("logs").exists());
    stop(child);
    drop(stderr);
}

#[test]
fn log_level_is_the_agents_and_rust_log_overrides_it() {
    // tracing's own line at start is "lockbox serve listening on" (no colon).
    let info = "lockbox serve listening on";
    let err = serve_stderr("INFO", None);
    assert!(err.contains(info) && err.contains("INFO"), "{err}");
    let err = serve_stderr("WARN", None);
    assert!(!err.contains(info), "{err}");
    let err = serve_stderr("NONE", None);
    assert!(!err.contains(info) && !err.contains("INFO"), "{err}");
    assert!(err.contains("lockbox serve stopped"), "{err}");
    let err = serve_stderr("DEBUG", None);
    assert!(err.contains(info), "{err}");
    let err = serve_stderr("NONE", Some("info"));
    assert!(err.contains(info), "RUST_LOG overrides log_level: {err}");
}
