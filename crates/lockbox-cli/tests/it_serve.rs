//! `lockbox serve` end to end: the built binary on a free port with the agent's config keys,
//! read through with a plain HTTP client, stopped with SIGTERM, exits cleanly.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use lockbox_testkit::cli::aws_command;
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
            "log_level = \"INFO\"\nttl_seconds = \"60\"\nmax_conn = \"50\"\nregion = \"us-east-1\"\n\
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
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve exited early"
        );
        if let Some(a) = line.trim().strip_prefix("lockbox serve: listening on ") {
            break a.to_owned();
        }
    };
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

    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.expect("serve stops within 10 s of SIGTERM");
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
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "log_level = \"{log_level}\"\nvalidate_credentials = false\nregion = \"us-east-1\"\n\
             [lockbox]\nlisten = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    let mut cmd = aws_command(EXE, &["serve", "--config", config.to_str().unwrap()]);
    cmd.env("AWS_TOKEN", "log-level-token-0123456789")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(filter) = rust_log {
        cmd.env("RUST_LOG", filter);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut all = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve exited early: {all}"
        );
        all.push_str(&line);
        if line.starts_with("lockbox serve: listening on ") {
            break;
        }
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut all).unwrap();
    assert!(child.wait().unwrap().success(), "{all}");
    all
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
