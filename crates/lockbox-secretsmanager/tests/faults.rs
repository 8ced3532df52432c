//! Faults and exact AWS answers an emulator cannot produce, served by wiremock: the shared
//! transport-fault suite (throttling, 5xx, resets, slow and malformed answers, denied access),
//! then KMS failures, AWS's own scheduled-for-deletion errors and per-secret batch errors.
//! Each asserts the outcome and the error kind.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use lockbox_core::{ErrorKind, PutMode, Retry, SecretName, SecretValue, SecretsManager};
use lockbox_secretsmanager::SecretsManagerBackend;
use lockbox_testkit::aws::{secretsmanager_client, secretsmanager_settings};
use lockbox_testkit::faults::AwsService;
use lockbox_testkit::wire::{self, aws_error, fast_retries, ok};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request};

const ARN: &str = wire::SECRET_ARN_PREFIX;

fn n(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn target(op: &str) -> wiremock::matchers::HeaderExactMatcher {
    wire::target(wire::SECRETS_MANAGER, op)
}

/// Bodies of the requests for `op`, parsed.
async fn bodies(server: &MockServer, op: &str) -> Vec<serde_json::Value> {
    wire::bodies(server, wire::SECRETS_MANAGER, op).await
}

async fn requests(server: &MockServer, op: &str) -> usize {
    wire::requests(server, wire::SECRETS_MANAGER, op).await
}

/// A backend on `endpoint` for node `node` under `/p`.
fn sm_backend(endpoint: &str, attempt_timeout: Duration) -> SecretsManagerBackend {
    SecretsManagerBackend::with_client(
        secretsmanager_client(endpoint, attempt_timeout),
        secretsmanager_settings("/p", "node"),
    )
    .unwrap()
}

fn backend(endpoint: &str, attempt_timeout: Duration) -> Arc<dyn SecretsManager> {
    Arc::new(sm_backend(endpoint, attempt_timeout))
}

const SECRETS_MANAGER: AwsService = AwsService {
    target: wire::SECRETS_MANAGER,
    action: "secretsmanager",
    get_op: "GetSecretValue",
    has_op: "DescribeSecret",
    id_field: "SecretId",
    internal_error: "InternalServiceError",
    remote: |name| format!("p/node/{name}"),
    value: wire::secret_string,
    truncated_value: r#"{"Name": "p/node/k", "SecretString": "LEAKED-SECRET-VALUE", "SecretValues": [{"SecretString": "LEAKED-SECRET-VALUE""#,
    backend,
};

lockbox_testkit::transport_fault_tests!(SECRETS_MANAGER);

#[tokio::test]
async fn expired_credentials_are_unauthenticated() {
    let server = wire::serve(aws_error(
        400,
        "ExpiredTokenException",
        "The security token included in the request is expired",
    ))
    .await;
    let backend = sm_backend(&server.uri(), Duration::from_secs(10));
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn kms_decryption_failure_is_permission_denied_naming_kms_decrypt() {
    let server = wire::serve(aws_error(
        400,
        "DecryptionFailure",
        "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
    ))
    .await;
    let backend = Retry::new(
        sm_backend(&server.uri(), Duration::from_secs(10)),
        fast_retries(),
    );
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
    let backend = sm_backend(&server.uri(), Duration::from_secs(10));
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
    let mut settings = secretsmanager_settings("/p", "node");
    settings.kms_key_id = Some("alias/lockbox".into());
    let backend = SecretsManagerBackend::with_client(
        secretsmanager_client(&server.uri(), Duration::from_secs(5)),
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
    let plain = sm_backend(&server.uri(), Duration::from_secs(10));
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
    let backend = sm_backend(&server.uri(), Duration::from_secs(10));
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
    let backend = sm_backend(&server.uri(), Duration::from_secs(10));
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
    // has() of the init intent record and both keys: absent. Then, for the rollback's
    // deletes, the first key and the record exist.
    Mock::given(method("POST"))
        .and(target("DescribeSecret"))
        .respond_with(aws_error(400, "ResourceNotFoundException", ""))
        .up_to_n_times(3)
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
        // The init intent record, then the first key.
        .up_to_n_times(2)
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
    lockbox_testkit::faults::init_failing_on_the_second_write(&SECRETS_MANAGER, &server).await;
    let deletes = bodies(&server, "DeleteSecret").await;
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    assert_eq!(deletes[0]["SecretId"], "p/node/validator-key");
    assert_eq!(deletes[0]["ForceDeleteWithoutRecovery"], true);
    assert_eq!(deletes[1]["SecretId"], "p/node/lockbox-init-intent");
}

/// BatchGetSecretValue needs `"Resource": "*"`, which a least-privilege policy does not grant:
/// a denied batch falls back to GetSecretValue per secret, and later batches skip the batch call.
#[tokio::test]
async fn a_denied_batch_falls_back_to_get_secret_value() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(target("BatchGetSecretValue"))
        .respond_with(wire::moto_access_denied())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target("GetSecretValue"))
        .respond_with(|req: &Request| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let id = body["SecretId"].as_str().unwrap();
            wire::secret_string(id, &format!("v-{id}"))
        })
        .mount(&server)
        .await;
    let b = sm_backend(&server.uri(), Duration::from_secs(10));
    let names: Vec<SecretName> = (0..30).map(|i| n(&format!("k{i}"))).collect();
    let got = b.get_many(&names).await;
    for (i, r) in got.iter().enumerate() {
        let v = r.as_ref().unwrap_or_else(|e| panic!("k{i}: {e}"));
        assert_eq!(v.expose_str().unwrap(), format!("v-p/node/k{i}"));
    }
    assert_eq!(requests(&server, "BatchGetSecretValue").await, 1);
    assert_eq!(requests(&server, "GetSecretValue").await, 30);
    let again = b.get_many(&names[..5]).await;
    assert!(again.iter().all(Result::is_ok));
    assert_eq!(requests(&server, "BatchGetSecretValue").await, 1);
    assert_eq!(requests(&server, "GetSecretValue").await, 35);
}
