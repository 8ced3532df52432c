//! Faults and exact AWS answers an emulator cannot produce, served by wiremock: throttling,
//! 5xx, resets, slow and malformed answers, denied access, KMS failures, AWS's own
//! scheduled-for-deletion errors and per-secret batch errors. Each asserts the outcome and the
//! error kind.

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use lockbox_core::{
    ErrorKind, PutMode, Retry, RetryPolicy, SecretName, SecretValue, SecretsManager,
};
use serde_json::json;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const JSON: &str = "application/x-amz-json-1.1";
const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:";

fn n(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn target(op: &str) -> wiremock::matchers::HeaderExactMatcher {
    header("x-amz-target", format!("secretsmanager.{op}").as_str())
}

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", JSON)
        .set_body_string(body.to_string())
}

fn aws_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", JSON)
        .set_body_string(json!({"__type": code, "message": message}).to_string())
}

fn secret(name: &str, value: &str) -> ResponseTemplate {
    ok(json!({
        "ARN": format!("{ARN}{name}-AbCdEf"),
        "Name": name,
        "VersionId": "11111111-2222-3333-4444-555555555555",
        "SecretString": value,
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1_700_000_000.5,
    }))
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(5),
    }
}

fn is_op(r: &Request, op: &str) -> bool {
    let want = format!("secretsmanager.{op}");
    r.headers
        .get("x-amz-target")
        .is_some_and(|v| v.to_str().unwrap() == want)
}

/// Bodies of the requests for `op`, parsed.
async fn bodies(server: &MockServer, op: &str) -> Vec<serde_json::Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| is_op(r, op))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn requests(server: &MockServer, op: &str) -> usize {
    bodies(server, op).await.len()
}

#[tokio::test]
async fn throttled_twice_then_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(target("GetSecretValue"))
        .respond_with(aws_error(400, "ThrottlingException", "Rate exceeded"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("GetSecretValue"))
        .respond_with(secret("p/node/validator-key", "ok-value"))
        .with_priority(2)
        .mount(&server)
        .await;
    let backend = Retry::new(common::backend(&server.uri(), "/p", "node"), fast_retries());
    let v = backend.get(&n("validator-key")).await.unwrap();
    assert_eq!(v.expose_str(), Some("ok-value"));
    assert_eq!(requests(&server, "GetSecretValue").await, 3);
    assert_eq!(
        bodies(&server, "GetSecretValue").await[0]["SecretId"],
        "p/node/validator-key"
    );
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
        requests(&server, "GetSecretValue").await,
        4,
        "our retries only; the SDK's are off"
    );
}

#[tokio::test]
async fn persistent_500_is_unavailable_after_the_retry_budget() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(500, "InternalServiceError", "boom"))
        .mount(&server)
        .await;
    let backend = Retry::new(common::backend(&server.uri(), "/p", "node"), fast_retries());
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("secretsmanager:GetSecretValue") && msg.contains("p/node/k"),
        "{msg}"
    );
    assert_eq!(e.secret(), Some("k"));
    assert_eq!(requests(&server, "GetSecretValue").await, 4);
    // has() cannot tell, so it is an error, never false.
    let e = backend.has(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(
        e.to_string().contains("secretsmanager:DescribeSecret"),
        "{e}"
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
        .respond_with(secret("p/node/k", "late").set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let client = common::client(&server.uri(), Duration::from_millis(300));
    let backend =
        lockbox_secretsmanager::SmBackend::with_client(client, common::settings("/p", "node"))
            .unwrap();
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
                    r#"{"Name": "p/node/k", "SecretString": "LEAKED-SECRET-VALUE", "SecretValues": [{"SecretString": "LEAKED-SECRET-VALUE""#,
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
        requests(&server, "GetSecretValue").await,
        1,
        "malformed answers are not retried"
    );
    // The batch read fails every slot the same way, and never with the body either.
    let got = backend.get_many(&[n("k"), n("j")]).await;
    for r in &got {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
        assert!(
            !format!("{e} {e:?}").contains("LEAKED-SECRET-VALUE"),
            "{e:?}"
        );
    }
    assert_eq!(got[1].as_ref().unwrap_err().secret(), Some("j"));
}

#[tokio::test]
async fn access_denied_is_permission_denied_naming_action_and_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(
            400,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/x is not authorized to perform: \
             secretsmanager:DescribeSecret",
        ))
        .mount(&server)
        .await;
    let backend = Retry::new(common::backend(&server.uri(), "/p", "node"), fast_retries());
    let e = backend.has(&n("validator-key")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("secretsmanager:DescribeSecret") && msg.contains("p/node/validator-key"),
        "{msg}"
    );
    assert_eq!(
        requests(&server, "DescribeSecret").await,
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
    for e in [
        backend.get(&n("k")).await.unwrap_err(),
        backend
            .put(&n("k"), &SecretValue::from("v"), PutMode::Create)
            .await
            .unwrap_err(),
        backend.list("").await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert!(e.to_string().contains("HTTP 403 access denied"), "{e}");
    }
}

#[tokio::test]
async fn expired_credentials_are_unauthenticated() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(
            400,
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ))
        .mount(&server)
        .await;
    let backend = common::backend(&server.uri(), "/p", "node");
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn kms_decryption_failure_is_permission_denied_naming_kms_decrypt() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(
            400,
            "DecryptionFailure",
            "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
        ))
        .mount(&server)
        .await;
    let backend = Retry::new(common::backend(&server.uri(), "/p", "node"), fast_retries());
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(
        e.to_string().contains("kms:Decrypt") && e.to_string().contains("p/node/k"),
        "{e}"
    );
    assert_eq!(requests(&server, "GetSecretValue").await, 1);
}

#[tokio::test]
async fn aws_scheduled_for_deletion_answers_are_named() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(target("CreateSecret"))
        .respond_with(aws_error(
            400,
            "InvalidRequestException",
            "You can't create this secret because a secret with this name is already scheduled \
             for deletion.",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("GetSecretValue"))
        .respond_with(aws_error(
            400,
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was marked for deletion.",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("DescribeSecret"))
        .respond_with(ok(json!({
            "ARN": format!("{ARN}p/node/k-AbCdEf"),
            "Name": "p/node/k",
            "DeletedDate": 1_800_000_000.0,
        })))
        .mount(&server)
        .await;
    let backend = common::backend(&server.uri(), "/p", "node");
    let e = backend
        .put(&n("k"), &SecretValue::from("v"), PutMode::Create)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("scheduled for deletion")
            && msg.contains("RestoreSecret")
            && msg.contains("p/node/k"),
        "{msg}"
    );
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(!e.is_not_found());
    assert!(e.to_string().contains("scheduled for deletion"), "{e}");
    assert!(
        backend.has(&n("k")).await.unwrap(),
        "a scheduled secret still holds its name"
    );
}

#[tokio::test]
async fn create_sends_the_kms_key_and_a_binary_value() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(target("CreateSecret"))
        .respond_with(ok(
            json!({"ARN": format!("{ARN}p/node/k-AbCdEf"), "Name": "p/node/k"}),
        ))
        .mount(&server)
        .await;
    let mut settings = common::settings("/p", "node");
    settings.kms_key_id = Some("alias/lockbox".into());
    let backend = lockbox_secretsmanager::SmBackend::with_client(
        common::client(&server.uri(), Duration::from_secs(5)),
        settings,
    )
    .unwrap();
    backend
        .put(&n("k"), &SecretValue::from("text"), PutMode::Create)
        .await
        .unwrap();
    backend
        .put(
            &n("b"),
            &SecretValue::new(vec![0xff, 0, 1]),
            PutMode::Create,
        )
        .await
        .unwrap();
    let sent = bodies(&server, "CreateSecret").await;
    assert_eq!(sent[0]["Name"], "p/node/k");
    assert_eq!(sent[0]["KmsKeyId"], "alias/lockbox");
    assert_eq!(sent[0]["SecretString"], "text");
    assert!(sent[0].get("SecretBinary").is_none());
    assert_eq!(
        sent[1]["SecretBinary"],
        base64::engine::general_purpose::STANDARD.encode([0xff, 0, 1])
    );
    assert!(sent[1].get("SecretString").is_none());

    // Without a key, none is sent and AWS uses aws/secretsmanager.
    let plain = common::backend(&server.uri(), "/p", "node");
    plain
        .put(&n("c"), &SecretValue::from("x"), PutMode::Create)
        .await
        .unwrap();
    assert!(
        bodies(&server, "CreateSecret").await[2]
            .get("KmsKeyId")
            .is_none()
    );
}

#[tokio::test]
async fn delete_is_forced_and_missing_secrets_are_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(target("DescribeSecret"))
        .respond_with(aws_error(
            400,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("DescribeSecret"))
        .respond_with(ok(
            json!({"ARN": format!("{ARN}p/node/k-AbCdEf"), "Name": "p/node/k"}),
        ))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("DeleteSecret"))
        .respond_with(ok(
            json!({"ARN": format!("{ARN}p/node/k-AbCdEf"), "Name": "p/node/k"}),
        ))
        .mount(&server)
        .await;
    let backend = common::backend(&server.uri(), "/p", "node");
    let e = backend.delete(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(
        requests(&server, "DeleteSecret").await,
        0,
        "AWS answers a forced delete of a missing secret with success, so we ask first"
    );
    backend.delete(&n("k")).await.unwrap();
    let sent = bodies(&server, "DeleteSecret").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["SecretId"], "p/node/k");
    assert_eq!(sent[0]["ForceDeleteWithoutRecovery"], true);
    assert!(sent[0].get("RecoveryWindowInDays").is_none());
}

#[tokio::test]
async fn get_many_batches_by_20_and_reports_errors_per_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(target("BatchGetSecretValue"))
        .respond_with(|req: &Request| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let mut values = Vec::new();
            let mut errors = Vec::new();
            for id in body["SecretIdList"].as_array().unwrap() {
                let id = id.as_str().unwrap();
                match id {
                    "p/node/k03" => errors.push(json!({
                        "SecretId": id,
                        "ErrorCode": "ResourceNotFoundException",
                        "Message": "Secrets Manager can't find the specified secret.",
                    })),
                    "p/node/k07" => errors.push(json!({
                        "SecretId": id,
                        "ErrorCode": "DecryptionFailure",
                        "Message": "Secrets Manager can't decrypt the protected secret text.",
                    })),
                    "p/node/k11" => errors.push(json!({
                        "SecretId": id,
                        "ErrorCode": "InvalidRequestException",
                        "Message": "You can't perform this operation on the secret because it \
                                    was marked for deletion.",
                    })),
                    "p/node/bin" => values.push(json!({
                        "ARN": format!("{ARN}{id}-AbCdEf"),
                        "Name": id,
                        "VersionId": "v",
                        "SecretBinary": base64::engine::general_purpose::STANDARD.encode([0xfe, 0xff]),
                        "VersionStages": ["AWSCURRENT"],
                    })),
                    _ => values.push(json!({
                        "ARN": format!("{ARN}{id}-AbCdEf"),
                        "Name": id,
                        "VersionId": "v",
                        "SecretString": format!("value of {id}"),
                        "VersionStages": ["AWSCURRENT"],
                    })),
                }
            }
            // AWS does not promise the request's order: answer in reverse.
            values.reverse();
            ok(json!({"SecretValues": values, "Errors": errors}))
        })
        .mount(&server)
        .await;
    let backend = common::backend(&server.uri(), "/p", "node");
    let mut names: Vec<SecretName> = (0..24).map(|i| n(&format!("k{i:02}"))).collect();
    names.push(n("bin"));
    names.push(n("k00")); // asked twice, fetched once
    let got = backend.get_many(&names).await;
    assert_eq!(got.len(), 26);
    for (name, r) in names.iter().zip(&got) {
        match name.as_str() {
            "k03" => {
                let e = r.as_ref().unwrap_err();
                assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
                assert_eq!(e.secret(), Some("k03"));
            }
            "k07" => {
                let e = r.as_ref().unwrap_err();
                assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
                assert!(e.to_string().contains("kms:Decrypt"), "{e}");
            }
            "k11" => {
                let e = r.as_ref().unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
                assert!(e.to_string().contains("scheduled for deletion"), "{e}");
            }
            "bin" => assert_eq!(r.as_ref().unwrap().expose_bytes(), [0xfe, 0xff]),
            other => assert_eq!(
                r.as_ref().unwrap().expose_str(),
                Some(format!("value of p/node/{other}").as_str())
            ),
        }
    }
    let calls = bodies(&server, "BatchGetSecretValue").await;
    let sizes: Vec<usize> = calls
        .iter()
        .map(|b| b["SecretIdList"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [20, 5], "20 ids a call, duplicates fetched once");
}

#[tokio::test]
async fn init_failing_on_the_second_write_removes_the_first() {
    let server = MockServer::start().await;
    // has() of both keys: absent. Then, for the rollback's delete, the first one exists.
    Mock::given(method("POST"))
        .and(target("DescribeSecret"))
        .respond_with(aws_error(400, "ResourceNotFoundException", ""))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("DescribeSecret"))
        .respond_with(ok(json!({
            "ARN": format!("{ARN}p/node/validator-key-AbCdEf"),
            "Name": "p/node/validator-key",
        })))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("GetSecretValue"))
        .respond_with(aws_error(400, "ResourceNotFoundException", ""))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("CreateSecret"))
        .respond_with(ok(json!({
            "ARN": format!("{ARN}p/node/validator-key-AbCdEf"),
            "Name": "p/node/validator-key",
            "VersionId": "v1",
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("CreateSecret"))
        .respond_with(aws_error(500, "InternalServiceError", "boom"))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("DeleteSecret"))
        .respond_with(ok(json!({"Name": "p/node/validator-key"})))
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
    let deletes = bodies(&server, "DeleteSecret").await;
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0]["SecretId"], "p/node/validator-key");
    assert_eq!(deletes[0]["ForceDeleteWithoutRecovery"], true);
}
