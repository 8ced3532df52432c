//! The built `lockbox serve` as a Lambda extension, end to end: started as Lambda starts an
//! extension (AWS_LAMBDA_RUNTIME_API set, configured only by the AWS Parameters and Secrets
//! Lambda Extension's variables), it registers with a local Extensions API
//! (lockbox_testkit::lambda_api, which follows
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html>) once it
//! answers on PARAMETERS_SECRETS_EXTENSION_HTTP_PORT, serves
//! `/secretsmanager/get?secretId=` with `X-Aws-Parameters-Secrets-Token: $AWS_SESSION_TOKEN`
//! as AWS's extension does
//! (<https://docs.aws.amazon.com/lambda/latest/dg/with-secrets-manager.html>), and exits 0
//! before the SHUTDOWN event's deadline.

use lockbox_testkit::aws::aws_sdk_secretsmanager;
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use lockbox_testkit::cli::aws_command;
use lockbox_testkit::lambda_api::{self, invoke, now_ms};
use lockbox_testkit::{emulator, prefix};

const EXE: &str = env!("CARGO_BIN_EXE_lockbox");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_reads_a_secret_through_the_extension() {
    let Some(ep) = emulator("cli lambda extension") else {
        return;
    };
    let name = prefix("cli-lambda");
    let sm = aws_sdk_secretsmanager::Client::new(&lockbox_testkit::aws::setup_config(&ep));
    sm.create_secret()
        .name(&name)
        .secret_string("lambda-value")
        .send()
        .await
        .unwrap();

    let (api, api_addr) = lambda_api::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    api.set_serve_addr(addr);
    let token = "lambda-session-token-0123456789";
    let mut child = aws_command(EXE, &["serve"])
        .env("AWS_LAMBDA_RUNTIME_API", &api_addr)
        .env("AWS_SESSION_TOKEN", token)
        .env("AWS_ENDPOINT_URL", &ep)
        .env("AWS_REGION", "us-east-1")
        .env("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.to_string())
        .env("SECRETS_MANAGER_TTL", "900")
        .env_remove("AWS_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    for _ in 0..300 {
        if api.seen().next_calls > 0 || child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let seen = api.seen();
        assert_eq!(seen.register_name.as_deref(), Some("lockbox"));
        assert_eq!(
            seen.listening_at_register,
            Some(true),
            "registered before answering on {addr}"
        );
    }
    api.push(invoke());
    let http = reqwest::Client::new();
    let r = http
        .get(format!("http://{addr}/secretsmanager/get?secretId={name}"))
        .header("X-Aws-Parameters-Secrets-Token", token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["SecretString"], "lambda-value");
    let r = http
        .get(format!("http://{addr}/secretsmanager/get?secretId={name}"))
        .header("X-Aws-Parameters-Secrets-Token", "not-the-session-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let deadline_ms = now_ms() + 2000;
    api.push(serde_json::json!({
        "eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": deadline_ms
    }));
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = status.unwrap_or_else(|| {
        child.kill().ok();
        panic!("still running 2 s after SHUTDOWN; stderr: {stderr}")
    });
    assert!(now_ms() <= deadline_ms + 100, "exited after the deadline");
    assert!(status.success(), "exit {status:?}; stderr: {stderr}");
    assert_eq!(
        stderr
            .matches("SECRETS_MANAGER_TTL=900 exceeds the maximum")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        !stderr.contains("lambda-value") && !stderr.contains(token),
        "{stderr}"
    );
    let seen = api.seen();
    assert!(
        seen.errors.is_empty() && seen.refused.is_empty(),
        "{seen:?}"
    );
}
