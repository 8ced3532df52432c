//! The transport-fault suite every AWS backend runs, against wiremock: throttling, 5xx,
//! resets, unreachable endpoints, slow and malformed answers, denied access. One function per
//! fault takes the service's [`AwsService`] data; [`transport_fault_tests!`](crate::transport_fault_tests)
//! runs each as its own test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lockbox_core::{ErrorKind, PutMode, Retry, SecretName, SecretValue, SecretsManager};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::wire::{
    aws_error, fast_retries, moto_access_denied, requests, resetting_endpoint, serve, target,
    throttled, truncated, unreachable_endpoint,
};

/// What the suite needs to know of one AWS service. Its backends are node `node` under path
/// `/p`.
pub struct AwsService {
    /// The `x-amz-target` prefix ([`wire::SSM`](crate::wire::SSM) or
    /// [`wire::SECRETS_MANAGER`](crate::wire::SECRETS_MANAGER)).
    pub target: &'static str,
    /// The IAM action prefix, such as `ssm`.
    pub action: &'static str,
    /// The operation `get` calls.
    pub get_op: &'static str,
    /// The operation `has` calls.
    pub has_op: &'static str,
    /// The request field that names the secret in `get_op` and `has_op`.
    pub id_field: &'static str,
    /// The service's own 500 error code.
    pub internal_error: &'static str,
    /// The service's name for the backend's secret `name`.
    pub remote: fn(&str) -> String,
    /// A successful `get_op` answer for the service's name `remote` holding `value`.
    pub value: fn(&str, &str) -> ResponseTemplate,
    /// A `get_op` answer cut off in the middle, holding `LEAKED-SECRET-VALUE`.
    pub truncated_value: &'static str,
    /// A backend on `endpoint` whose calls time out after `attempt_timeout`.
    pub backend: fn(&str, Duration) -> Arc<dyn SecretsManager>,
}

impl AwsService {
    fn backend(&self, endpoint: &str) -> Arc<dyn SecretsManager> {
        (self.backend)(endpoint, Duration::from_secs(10))
    }

    fn retrying(&self, endpoint: &str) -> Retry<Arc<dyn SecretsManager>> {
        Retry::new(self.backend(endpoint), fast_retries())
    }

    fn action(&self, op: &str) -> String {
        format!("{}:{op}", self.action)
    }
}

/// Expands to one `#[tokio::test]` per transport fault in a module `transport`, for the
/// [`AwsService`] `service` (a constant or a path to one).
#[macro_export]
macro_rules! transport_fault_tests {
    ($service:expr $(,)?) => {
        $crate::transport_fault_tests!(@each $service;
            throttled_twice_then_success,
            throttling_is_retryable_and_attempts_are_capped,
            persistent_500_is_unavailable_after_the_retry_budget,
            connection_reset_is_unavailable,
            unreachable_endpoint_fails_fast_and_clearly,
            slow_answer_past_the_timeout_is_unavailable,
            malformed_json_is_an_error_that_never_echoes_the_body,
            access_denied_is_permission_denied_naming_action_and_secret,
        );
    };
    (@each $service:expr; $($fault:ident),* $(,)?) => {
        mod transport {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $fault() {
                    $crate::faults::$fault(&$service).await;
                }
            )*
        }
    };
}

fn n(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

/// Two throttled answers, then the value: our retries get it, in three requests.
pub async fn throttled_twice_then_success(svc: &AwsService) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(target(svc.target, svc.get_op))
        .respond_with(throttled())
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(target(svc.target, svc.get_op))
        .respond_with((svc.value)(&(svc.remote)("validator-key"), "ok-value"))
        .with_priority(2)
        .mount(&server)
        .await;
    let backend = svc.retrying(&server.uri());
    let v = backend.get(&n("validator-key")).await.unwrap();
    assert_eq!(v.expose_str(), Some("ok-value"));
    assert_eq!(requests(&server, svc.target, svc.get_op).await, 3);
    assert_eq!(
        crate::wire::bodies(&server, svc.target, svc.get_op).await[0][svc.id_field],
        (svc.remote)("validator-key").as_str()
    );
}

/// Throttling is retryable, and our retries (the SDK's are off) are capped.
pub async fn throttling_is_retryable_and_attempts_are_capped(svc: &AwsService) {
    let server = serve(throttled()).await;
    let backend = svc.retrying(&server.uri());
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
    assert_eq!(
        requests(&server, svc.target, svc.get_op).await,
        4,
        "our retries only; the SDK's are off"
    );
}

/// A 500 on every attempt is Unavailable, naming the action and the secret; `has` cannot
/// tell, so it fails too rather than answering false.
pub async fn persistent_500_is_unavailable_after_the_retry_budget(svc: &AwsService) {
    let server = serve(aws_error(500, svc.internal_error, "boom")).await;
    let backend = svc.retrying(&server.uri());
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&svc.action(svc.get_op)) && msg.contains(&(svc.remote)("k")),
        "{msg}"
    );
    assert_eq!(e.secret(), Some("k"));
    assert_eq!(requests(&server, svc.target, svc.get_op).await, 4);
    // has() cannot tell, so it is an error, never false.
    let e = backend.has(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains(&svc.action(svc.has_op)), "{e}");
}

/// A connection closed at once is Unavailable and retryable.
pub async fn connection_reset_is_unavailable(svc: &AwsService) {
    let backend = svc.backend(&resetting_endpoint());
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
}

/// An endpoint nothing listens on fails fast, retries included.
pub async fn unreachable_endpoint_fails_fast_and_clearly(svc: &AwsService) {
    let backend = svc.retrying(&unreachable_endpoint());
    let start = Instant::now();
    let e = backend.has(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// An answer slower than the attempt timeout is Unavailable, saying it timed out.
pub async fn slow_answer_past_the_timeout_is_unavailable(svc: &AwsService) {
    let server =
        serve((svc.value)(&(svc.remote)("k"), "late").set_delay(Duration::from_secs(5))).await;
    let backend = (svc.backend)(&server.uri(), Duration::from_millis(300));
    let start = Instant::now();
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(3));
}

/// A cut-off answer is a Backend error that is not retried and never echoes the body, for
/// `get` and for every slot of `get_many`.
pub async fn malformed_json_is_an_error_that_never_echoes_the_body(svc: &AwsService) {
    let server = serve(truncated(svc.truncated_value)).await;
    let backend = svc.retrying(&server.uri());
    let e = backend.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(!e.is_retryable());
    assert!(
        !format!("{e} {e:?}").contains("LEAKED-SECRET-VALUE"),
        "{e:?}"
    );
    assert_eq!(
        requests(&server, svc.target, svc.get_op).await,
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

/// AccessDenied is PermissionDenied naming the action and the secret, and is not retried;
/// moto's HTTP 403 with an XML body is PermissionDenied for reads, writes and lists.
pub async fn access_denied_is_permission_denied_naming_action_and_secret(svc: &AwsService) {
    let server = serve(aws_error(
        400,
        "AccessDeniedException",
        &format!(
            "User: arn:aws:iam::123456789012:user/x is not authorized to perform: {}",
            svc.action(svc.has_op)
        ),
    ))
    .await;
    let backend = svc.retrying(&server.uri());
    let e = backend.has(&n("validator-key")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&svc.action(svc.has_op)) && msg.contains(&(svc.remote)("validator-key")),
        "{msg}"
    );
    assert_eq!(
        requests(&server, svc.target, svc.has_op).await,
        1,
        "denials are not retried"
    );

    // moto answers a denied JSON call with HTTP 403 and an XML body.
    let server = serve(moto_access_denied()).await;
    let backend = svc.backend(&server.uri());
    for e in [
        backend.get(&n("k")).await.unwrap_err(),
        backend
            .put(&n("k"), &SecretValue::from("v"), PutMode::Create)
            .await
            .unwrap_err(),
        backend.list("").await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        // One shared mapping (lockbox-aws) names a bare 403 the same way for every service.
        assert!(e.to_string().contains("HTTP 403 access denied"), "{e}");
    }
}

/// Runs `init_node` with our retries against `server`, which lets the first key's write
/// through and fails the second's: init fails Unavailable, saying it left the node as it was.
/// The caller checks the clean-up request the server received.
pub async fn init_failing_on_the_second_write(svc: &AwsService, server: &MockServer) {
    let backend = svc.retrying(&server.uri());
    let e = lockbox_keys::init_node(&backend).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("network-key") && msg.contains("left as it was"),
        "{msg}"
    );
}
