//! wiremock answers in the AWS JSON 1.1 protocol, and endpoints that fail at the transport.
//!
//! Services are named by their `x-amz-target` prefix: [`SSM`] or [`SECRETS_MANAGER`].

use std::net::TcpListener;
use std::time::Duration;

use lockbox_core::RetryPolicy;
use serde_json::Value;
use wiremock::matchers::{HeaderExactMatcher, header, method};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The content type of AWS JSON 1.1 requests and answers.
pub const JSON: &str = "application/x-amz-json-1.1";

/// SSM's `x-amz-target` prefix.
pub const SSM: &str = "AmazonSSM";

/// Secrets Manager's `x-amz-target` prefix.
pub const SECRETS_MANAGER: &str = "secretsmanager";

/// Matches requests for `service`'s operation `op`, such as `GetParameter`.
pub fn target(service: &str, op: &str) -> HeaderExactMatcher {
    header("x-amz-target", format!("{service}.{op}").as_str())
}

/// Whether `request` is for `service`'s operation `op`.
pub fn is_op(request: &Request, service: &str, op: &str) -> bool {
    let want = format!("{service}.{op}");
    request
        .headers
        .get("x-amz-target")
        .is_some_and(|v| v.to_str().unwrap() == want)
}

/// The `x-amz-target` of `request` (`service.Operation`), or `""` without one.
pub fn target_of(request: &Request) -> &str {
    request
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The JSON body of `request`, or `Value::Null` when it is not JSON.
pub fn request_json(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap_or(Value::Null)
}

/// The answer of a mock to an operation it does not serve: HTTP 400 `InvalidAction`, naming
/// the request's target.
pub fn not_mocked(request: &Request) -> ResponseTemplate {
    aws_error(
        400,
        "InvalidAction",
        &format!("not mocked: {}", target_of(request)),
    )
}

/// A 200 answer with `body` as JSON.
pub fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", JSON)
        .set_body_string(body.to_string())
}

/// An AWS error answer: HTTP `status` with `{"__type": code, "message": message}`.
pub fn aws_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", JSON)
        .set_body_string(serde_json::json!({"__type": code, "message": message}).to_string())
}

/// The ARN of Secrets Manager secrets in the mocks, up to the name.
pub const SECRET_ARN_PREFIX: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:";

/// An SSM `GetParameter` answer: `SecureString` parameter `name` holding `value`, version 1.
pub fn ssm_parameter(name: &str, value: &str) -> ResponseTemplate {
    ok(serde_json::json!({ "Parameter": parameter_record(name, value) }))
}

/// One parameter as SSM's answers list it (`GetParameter`'s `Parameter`, an item of
/// `GetParameters`' `Parameters`): `SecureString` `name` holding `value`, version 1.
pub fn parameter_record(name: &str, value: &str) -> Value {
    serde_json::json!({"Name": name, "Value": value, "Type": "SecureString", "Version": 1})
}

/// A Secrets Manager `GetSecretValue` answer: secret `name`'s current string `value`.
pub fn secret_string(name: &str, value: &str) -> ResponseTemplate {
    ok(serde_json::json!({
        "ARN": format!("{SECRET_ARN_PREFIX}{name}-AbCdEf"),
        "Name": name,
        "VersionId": "11111111-2222-3333-4444-555555555555",
        "SecretString": value,
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1_700_000_000.5,
    }))
}

/// AWS's throttling answer.
pub fn throttled() -> ResponseTemplate {
    aws_error(400, "ThrottlingException", "Rate exceeded")
}

/// A 200 answer whose body is cut off in the middle of its JSON.
pub fn truncated(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", JSON)
        .set_body_string(body)
}

/// What moto answers a JSON call IAM denies: HTTP 403 with an XML body.
pub fn moto_access_denied() -> ResponseTemplate {
    ResponseTemplate::new(403)
        .set_body_string("<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>")
}

/// The requests `server` received for `service`'s `op`.
pub async fn received(server: &MockServer, service: &str, op: &str) -> Vec<Request> {
    let mut all = server.received_requests().await.unwrap();
    all.retain(|r| is_op(r, service, op));
    all
}

/// Bodies of the requests `server` received for `service`'s `op`, parsed.
pub async fn bodies(server: &MockServer, service: &str, op: &str) -> Vec<Value> {
    let requests = received(server, service, op).await;
    requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// How many requests `server` received for `service`'s `op`.
pub async fn requests(server: &MockServer, service: &str, op: &str) -> usize {
    received(server, service, op).await.len()
}

/// A mock server that answers every POST with `answer`.
pub async fn serve(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

/// An endpoint that accepts connections and closes them at once (the client sees a reset or
/// EOF), for the first eight connections.
pub fn resetting_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            drop(stream);
        }
    });
    format!("http://{addr}")
}

/// An endpoint nothing listens on.
pub fn unreachable_endpoint() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// Our retries, fast: four attempts 5 to 20 ms apart, at most 5 s in all.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(5),
    }
}
