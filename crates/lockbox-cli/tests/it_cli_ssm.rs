//! `lockbox` on AWS SSM Parameter Store, against the emulator `cargo xtask` starts.

use lockbox_testkit::aws::aws_sdk_ssm;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lockbox_testkit::aws::setup_config;
use lockbox_testkit::cli::{aws_command, ok_json as ok, output_of_init};
use lockbox_testkit::{emulator, tag};

fn lockbox(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = aws_command(env!("CARGO_BIN_EXE_lockbox"), args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn generate(dir: &Path, path: &str, server_url: Option<&str>) -> String {
    let cfg = dir.join("secretsManagerConfig.json");
    let c = cfg.to_str().unwrap();
    let extra = format!("region=us-east-1,ssm-parameter-path={path}");
    let mut args = vec![
        "generate", "--type", "aws-ssm", "--name", "node1", "--dir", c, "--extra", &extra,
    ];
    if let Some(url) = server_url {
        args.extend(["--server-url", url]);
    }
    let o = lockbox(&args, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    c.to_owned()
}

async fn raw_parameter(endpoint: &str, name: &str) -> Option<String> {
    let client = aws_sdk_ssm::Client::new(&setup_config(endpoint));
    match client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
    {
        Ok(out) => out.parameter.and_then(|p| p.value),
        Err(e) => {
            use aws_sdk_ssm::error::ProvideErrorMetadata;
            assert_eq!(
                e.code(),
                Some("ParameterNotFound"),
                "unexpected error reading {name}"
            );
            None
        }
    }
}

#[tokio::test]
async fn it_init_then_output_on_ssm_and_parameters_are_where_documented() {
    let Some(endpoint) = emulator("it_init_then_output_on_ssm") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = format!("/lockbox-it/cli-{}/", tag());
    let c = generate(tmp.path(), &path, Some(&endpoint));

    let init = ok(&lockbox(&["init", "--config", &c, "--json"], &[]));
    let output = ok(&lockbox(&["output", "--config", &c, "--json"], &[]));
    assert_eq!(output_of_init(&init), output);

    // Any other AWS client finds the keys at <path>/<name>/<secret>, normalised.
    let base = format!("{}/node1", path.trim_end_matches('/'));
    let validator = raw_parameter(&endpoint, &format!("{base}/validator-key"))
        .await
        .expect("validator-key parameter");
    let key = lockbox_keys::ValidatorKey::decode(&validator.into()).unwrap();
    assert_eq!(key.address().to_string(), init["address"].as_str().unwrap());
    let network = raw_parameter(&endpoint, &format!("{base}/network-key"))
        .await
        .expect("network-key parameter");
    assert!(network.starts_with("08021220"));

    // A second init refuses, names the secret, and changes nothing.
    let o = lockbox(&["init", "--config", &c], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already exists") && err.contains("validator-key"),
        "{err}"
    );
    assert_eq!(
        ok(&lockbox(&["output", "--config", &c, "--json"], &[])),
        output_of_init(&init)
    );
}

#[tokio::test]
async fn it_init_refuses_when_one_key_exists_on_ssm() {
    let Some(endpoint) = emulator("it_init_refuses_when_one_key_exists_on_ssm") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = format!("/lockbox-it/partial-{}", tag());
    // No server_url in the file: the endpoint comes from AWS_ENDPOINT_URL, as aws-config reads it.
    let c = generate(tmp.path(), &path, None);
    let env = [("AWS_ENDPOINT_URL", endpoint.as_str())];
    let put = Command::new(env!("CARGO_BIN_EXE_lockbox"))
        .args(["put", "--config", &c, "network-key", "--json"])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"0802122000")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        put.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );

    let o = lockbox(&["init", "--config", &c, "--json"], &env);
    assert_eq!(o.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("network-key already exists"),
        "{err}"
    );
    assert_eq!(
        raw_parameter(&endpoint, &format!("{path}/node1/validator-key")).await,
        None,
        "nothing written"
    );

    let listed = lockbox(&["list", "--config", &c, "--json"], &env);
    assert_eq!(ok(&listed), serde_json::json!(["network-key"]));

    // Versions: NAME:N reads SSM version N.
    let overwrite = Command::new(env!("CARGO_BIN_EXE_lockbox"))
        .args([
            "put",
            "--config",
            &c,
            "network-key",
            "--overwrite",
            "--from-file",
            c.as_str(),
        ])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    assert_eq!(
        overwrite.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&overwrite.stderr)
    );
    let v1 = lockbox(&["get", "--config", &c, "network-key:1"], &env);
    assert_eq!(v1.stdout, b"0802122000");
    let v2 = lockbox(&["get", "--config", &c, "network-key:2"], &env);
    assert_eq!(v2.stdout, std::fs::read(&c).unwrap());
    let missing = lockbox(&["get", "--config", &c, "network-key:7"], &env);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn unreachable_endpoint_fails_within_bounded_time() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let c = generate(
        tmp.path(),
        "/lockbox-it/unreachable",
        Some(&format!("http://127.0.0.1:{port}")),
    );
    let start = Instant::now();
    let o = lockbox(&["output", "--config", &c, "--validator"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unavailable") && err.contains("validator-key"),
        "{err}"
    );
    assert!(
        !err.contains("not found"),
        "an unreachable endpoint is never 'not found': {err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}
