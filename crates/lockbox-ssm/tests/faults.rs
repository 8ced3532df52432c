//! Faults an emulator cannot produce, served by wiremock: throttling, 5xx, resets, slow and
//! malformed answers, denied access. Each asserts the outcome and the error kind.

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockbox_core::{ErrorKind, Retry, RetryPolicy, SecretName, SecretsManager};
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const JSON: &str = "application/x-amz-json-1.1";

fn n(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn target(op: &str) -> wiremock::matchers::HeaderExactMatcher {
    header("x-amz-target", format!("AmazonSSM.{op}").as_str())
}

fn aws_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", JSON)
        .set_body_string(serde_json::json!({"__type": code, "message": message}).to_string())
}

fn parameter(name: &str, value: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).insert_header("content-type", JSON).set_body_string(
        serde_json::json!({"Parameter": {"Name": name, "Value": value, "Type": "SecureString", "Version": 1}})
            .to_string(),
    )
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(5),
    }
}

async fn requests(server: &MockServer, op: &str) -> usize {
    let want = format!("AmazonSSM.{op}");
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.headers
                .get("x-amz-target")
                .is_some_and(|v| v.to_str().unwrap() == want)
        })
        .count()
}

#[tokio::test]
async fn throttled_twice_then_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(target("GetParameter"))
        .respond_with(aws_error(400, "ThrottlingException", "Rate exceeded"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("GetParameter"))
        .respond_with(parameter("/p/node/validator-key", "ok-value"))
        .with_priority(2)
        .mount(&server)
        .await;
    let backend = Retry::new(common::backend(&server.uri(), "/p", "node"), fast_retries());
    let v = backend.get(&n("validator-key")).await.unwrap();
    assert_eq!(v.expose_str(), Some("ok-value"));
    assert_eq!(requests(&server, "GetParameter").await, 3);
}

#[tokio::test]
async fn throttling_is_retryable_and_attempts_are_capped() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(400, "ThrottlingException", "Rate exceeded"))
        .mount(&server)
        .await;
    let backend = Retry::new(common::backend(&server.uri(), "/p", "node"), fast_retries());
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
    assert_eq!(
        requests(&server, "GetParameter").await,
        4,
        "our retries only; the SDK's are off"
    );
}

#[tokio::test]
async fn persistent_500_is_unavailable_after_the_retry_budget() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(500, "InternalServerError", "boom"))
        .mount(&server)
        .await;
    let backend = Retry::new(common::backend(&server.uri(), "/p", "node"), fast_retries());
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        e.to_string().contains("ssm:GetParameter") && e.to_string().contains("/p/node/k"),
        "{e}"
    );
    assert_eq!(requests(&server, "GetParameter").await, 4);
    // has() cannot tell, so it is an error, never false.
    assert_eq!(
        backend.has(&n("k")).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
}

#[tokio::test]
async fn connection_reset_is_unavailable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            drop(stream); // accept and close at once: the client sees a reset / EOF
        }
    });
    let backend = common::backend(&format!("http://{addr}"), "/p", "node");
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn unreachable_endpoint_fails_fast_and_clearly() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backend = Retry::new(
        common::backend(&format!("http://127.0.0.1:{port}"), "/p", "node"),
        fast_retries(),
    );
    let start = Instant::now();
    let e = backend.has(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn slow_answer_past_the_timeout_is_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(parameter("/p/node/k", "late").set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let client = common::client(&server.uri(), Duration::from_millis(300));
    let backend =
        lockbox_ssm::SsmBackend::with_client(client, common::settings("/p", "node")).unwrap();
    let start = Instant::now();
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn malformed_json_is_an_error_that_never_echoes_the_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", JSON)
                .set_body_string(
                    r#"{"Parameter": {"Name": "/p/node/k", "Value": "LEAKED-SECRET-VALUE", "#,
                ),
        )
        .mount(&server)
        .await;
    let backend = Retry::new(common::backend(&server.uri(), "/p", "node"), fast_retries());
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(!e.is_retryable());
    assert!(
        !format!("{e} {e:?}").contains("LEAKED-SECRET-VALUE"),
        "{e:?}"
    );
    assert_eq!(
        requests(&server, "GetParameter").await,
        1,
        "malformed answers are not retried"
    );
}

#[tokio::test]
async fn access_denied_is_permission_denied_naming_action_and_parameter() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(
            400,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/x is not authorized to perform: ssm:GetParameter",
        ))
        .mount(&server)
        .await;
    let backend = Retry::new(common::backend(&server.uri(), "/p", "node"), fast_retries());
    let e = backend.has(&n("validator-key")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("ssm:GetParameter") && msg.contains("/p/node/validator-key"),
        "{msg}"
    );
    assert_eq!(
        requests(&server, "GetParameter").await,
        1,
        "denials are not retried"
    );

    // moto answers a denied JSON call with HTTP 403 and an XML body.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_string(
            "<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>",
        ))
        .mount(&server)
        .await;
    let backend = common::backend(&server.uri(), "/p", "node");
    assert_eq!(
        backend.get(&n("k")).await.unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
}

#[tokio::test]
async fn init_failing_on_the_second_write_removes_the_first() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(target("GetParameter"))
        .respond_with(aws_error(400, "ParameterNotFound", ""))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("PutParameter"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", JSON)
                .set_body_string(r#"{"Version": 1, "Tier": "Standard"}"#),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("PutParameter"))
        .respond_with(aws_error(500, "InternalServerError", "boom"))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("DeleteParameter"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", JSON)
                .set_body_string("{}"),
        )
        .mount(&server)
        .await;
    let backend: Arc<dyn SecretsManager> = Arc::new(Retry::new(
        common::backend(&server.uri(), "/p", "node"),
        fast_retries(),
    ));
    let e = lockbox_keys::init_node(backend.as_ref()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("network-key") && msg.contains("left as it was"),
        "{msg}"
    );
    let deletes: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.headers
                .get("x-amz-target")
                .is_some_and(|v| v == "AmazonSSM.DeleteParameter")
        })
        .map(|r| String::from_utf8(r.body.clone()).unwrap())
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(deletes[0].contains("/p/node/validator-key"), "{deletes:?}");
}
