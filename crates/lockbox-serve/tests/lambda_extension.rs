//! `lockbox serve` as a Lambda extension, against a local server that implements the Lambda
//! Extensions API contract as AWS documents it (no Lambda emulator is reachable here):
//!
//! - <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html> ("Using the
//!   Lambda Extensions API to create extensions": Register, Next event, Init error, Exit error;
//!   the `Lambda-Extension-Name`, `Lambda-Extension-Identifier`,
//!   `Lambda-Extension-Event-Identifier` and `Lambda-Extension-Function-Error-Type` headers; the
//!   INVOKE and SHUTDOWN event bodies with `deadlineMs` in milliseconds since the epoch;
//!   "Lambda starts the runtime init after all extensions have registered").
//! - <https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html> (the
//!   Shutdown phase: extensions get a SHUTDOWN event and must finish before its deadline).
//! - <https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks.html> and the AWS
//!   agent's Lambda example (start serving on the first INVOKE, so no secret is in a snapshot).
//!
//! The server (lockbox_testkit::lambda_api) checks what the documentation requires of an
//! extension and records it:
//! register's name header and events body, that the extension is already listening when it
//! registers, the identifier on every later call, the error endpoints' headers and body.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lockbox_serve::{LambdaOptions, ServeConfig};
use lockbox_testkit::lambda_api::{self, ExtensionsApi, invoke, now_ms, shutdown_in};
use serde_json::json;

const TOKEN_VAR: &str = "CARGO_MANIFEST_DIR";

fn config(extra: &str) -> ServeConfig {
    ServeConfig::from_toml(&format!(
        "validate_credentials = false\nssrf_env_variables = [\"{TOKEN_VAR}\"]\n{extra}"
    ))
    .unwrap()
}

fn listen_on(addr: &str) -> String {
    format!("[lockbox]\nlisten = \"{addr}\"")
}

fn options(api: &str, start_on_invoke: bool) -> LambdaOptions {
    LambdaOptions {
        runtime_api: api.to_owned(),
        extension_name: "lockbox".to_owned(),
        start_on_invoke,
    }
}

/// Runs the extension on a task; `on_listening` tells the API the endpoint's address.
fn spawn_extension(
    api: &Arc<ExtensionsApi>,
    config: ServeConfig,
    options: LambdaOptions,
) -> tokio::task::JoinHandle<lockbox_core::Result<()>> {
    let api = api.clone();
    tokio::spawn(lockbox_serve::run_extension(config, options, move |addr| {
        api.set_serve_addr(addr);
    }))
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gave up waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_once_listening_and_stops_on_shutdown() {
    let (api, api_addr) = lambda_api::start().await;
    let ext = spawn_extension(
        &api,
        config(&listen_on("127.0.0.1:0")),
        options(&api_addr, false),
    );
    until("register", || api.seen().register_name.is_some()).await;
    {
        let seen = api.seen();
        assert_eq!(seen.register_name.as_deref(), Some("lockbox"));
        assert_eq!(
            seen.register_body,
            Some(json!({"events": ["INVOKE", "SHUTDOWN"]}))
        );
        assert_eq!(
            seen.listening_at_register,
            Some(true),
            "register before listening"
        );
    }
    api.push(invoke());
    until("the next event/next", || api.seen().next_calls == 2).await;
    let addr = api.serve_addr().unwrap();
    let ping = reqwest::get(format!("http://{addr}/ping")).await.unwrap();
    assert_eq!(ping.text().await.unwrap(), "healthy");

    api.push(shutdown_in(2000));
    tokio::time::timeout(Duration::from_secs(10), ext)
        .await
        .expect("stopped after SHUTDOWN")
        .unwrap()
        .expect("a clean stop");
    let seen = api.seen();
    assert!(seen.refused.is_empty(), "{:?}", seen.refused);
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening after SHUTDOWN"
    );
}

/// A read that never finishes (an AWS endpoint that accepts and never answers) does not hold
/// the extension past the SHUTDOWN deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_before_the_deadline_with_a_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::write(
        &credentials,
        "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = wJalrXUtnFEMI\n",
    )
    .unwrap();
    // Accepts connections (the backlog) and never answers.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let extra = format!(
        "region = \"us-east-1\"\ncredentials_file_path = \"{}\"\n[lockbox]\nlisten = \"127.0.0.1:0\"\n\
         endpoint_url = \"http://{}\"\nrequest_timeout_seconds = 60",
        credentials.display(),
        black_hole.local_addr().unwrap()
    );
    let (api, api_addr) = lambda_api::start().await;
    let ext = spawn_extension(&api, config(&extra), options(&api_addr, false));
    until("register", || api.seen().next_calls == 1).await;
    let addr = api.serve_addr().unwrap();
    let token = std::env::var(TOKEN_VAR).unwrap();
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!("http://{addr}/secretsmanager/get?secretId=hangs"))
            .header("X-Aws-Parameters-Secrets-Token", token)
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!in_flight.is_finished(), "the read should hang upstream");

    let deadline_ms = now_ms() + 1500;
    api.push(
        json!({"eventType": "SHUTDOWN", "shutdownReason": "timeout", "deadlineMs": deadline_ms}),
    );
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), ext)
        .await
        .expect("stopped after SHUTDOWN")
        .unwrap()
        .expect("a clean stop");
    assert!(
        now_ms() <= deadline_ms,
        "returned {} ms after the deadline (waited {:?})",
        now_ms() - deadline_ms,
        started.elapsed()
    );
    drop(black_hole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_on_invoke_serves_only_from_the_first_invoke() {
    let (api, api_addr) = lambda_api::start().await;
    let ext = spawn_extension(
        &api,
        config(&listen_on("127.0.0.1:0")),
        options(&api_addr, true),
    );
    until("register", || api.seen().next_calls == 1).await;
    assert_eq!(api.seen().listening_at_register, None);
    assert!(api.serve_addr().is_none());

    api.push(invoke());
    until("listening", || api.serve_addr().is_some()).await;
    let addr = api.serve_addr().unwrap();
    let ping = reqwest::get(format!("http://{addr}/ping")).await.unwrap();
    assert_eq!(ping.text().await.unwrap(), "healthy");

    api.push(shutdown_in(2000));
    ext.await.unwrap().expect("a clean stop");
    assert!(api.seen().errors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_goes_to_init_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (api, api_addr) = lambda_api::start().await;
    let ext = spawn_extension(
        &api,
        config(&listen_on(&taken.local_addr().unwrap().to_string())),
        options(&api_addr, false),
    );
    let error = ext.await.unwrap().expect_err("the port is taken");
    assert!(error.to_string().contains("cannot listen"), "{error}");
    let seen = api.seen();
    assert!(seen.refused.is_empty(), "{:?}", seen.refused);
    assert_eq!(seen.next_calls, 0, "no event/next after an init error");
    let [(path, error_type, body)] = &seen.errors[..] else {
        panic!("one error report expected: {:?}", seen.errors);
    };
    assert_eq!(path, "/2020-01-01/extension/init/error");
    assert!(error_type.starts_with("Extension."), "{error_type}");
    assert_eq!(body["errorType"], error_type.as_str());
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("cannot listen")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_on_invoke_goes_to_exit_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (api, api_addr) = lambda_api::start().await;
    let ext = spawn_extension(
        &api,
        config(&listen_on(&taken.local_addr().unwrap().to_string())),
        options(&api_addr, true),
    );
    until("register", || api.seen().next_calls == 1).await;
    api.push(invoke());
    ext.await.unwrap().expect_err("the port is taken");
    let seen = api.seen();
    assert_eq!(seen.errors.len(), 1, "{:?}", seen.errors);
    assert_eq!(seen.errors[0].0, "/2020-01-01/extension/exit/error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_extensions_api_is_an_error_naming_it() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let error = lockbox_serve::run_extension(
        config(&listen_on("127.0.0.1:0")),
        options(&addr, false),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains(&addr), "{error}");
}
