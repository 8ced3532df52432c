//! Faults an emulator cannot produce, served by wiremock: the shared transport-fault suite
//! (throttling, 5xx, resets, slow and malformed answers, denied access) and init's rollback.
//! Each asserts the outcome and the error kind.

use std::sync::Arc;
use std::time::Duration;

use lockbox_core::SecretsManager;
use lockbox_ssm::SsmBackend;
use lockbox_testkit::aws::{ssm_client, ssm_settings};
use lockbox_testkit::faults::AwsService;
use lockbox_testkit::wire::{self, aws_error, ok, target};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

fn backend(endpoint: &str, attempt_timeout: Duration) -> Arc<dyn SecretsManager> {
    Arc::new(
        SsmBackend::with_client(
            ssm_client(endpoint, attempt_timeout),
            ssm_settings("/p", "node"),
        )
        .unwrap(),
    )
}

const SSM: AwsService = AwsService {
    target: wire::SSM,
    action: "ssm",
    get_op: "GetParameter",
    has_op: "GetParameter",
    id_field: "Name",
    internal_error: "InternalServerError",
    remote: |name| format!("/p/node/{name}"),
    value: wire::ssm_parameter,
    truncated_value: r#"{"Parameter": {"Name": "/p/node/k", "Value": "LEAKED-SECRET-VALUE", "#,
    backend,
};

lockbox_testkit::transport_fault_tests!(SSM);

#[tokio::test]
async fn init_failing_on_the_second_write_removes_the_first() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(target(wire::SSM, "GetParameter"))
        .respond_with(aws_error(400, "ParameterNotFound", ""))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target(wire::SSM, "PutParameter"))
        .respond_with(ok(json!({"Version": 1, "Tier": "Standard"})))
        // The init intent record, then the first key.
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target(wire::SSM, "PutParameter"))
        .respond_with(aws_error(500, "InternalServerError", "boom"))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target(wire::SSM, "DeleteParameter"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    lockbox_testkit::faults::init_failing_on_the_second_write(&SSM, &server).await;
    let deletes: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| wire::is_op(r, wire::SSM, "DeleteParameter"))
        .map(|r| String::from_utf8(r.body.clone()).unwrap())
        .collect();
    // The first key, then (the node being as it was) the intent record.
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    assert!(deletes[0].contains("/p/node/validator-key"), "{deletes:?}");
    assert!(
        deletes[1].contains("/p/node/lockbox-init-intent"),
        "{deletes:?}"
    );
}
