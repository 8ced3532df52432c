//! Helpers shared by this crate's integration tests.
#![allow(dead_code)]

use lockbox_testkit::aws::{aws_sdk_secretsmanager, aws_sdk_ssm};
use std::io::{Read, Write};
use std::time::Duration;

use lockbox_lookup::{BackendKind, Lookup, LookupSettings};
use lockbox_testkit::aws;
use serde_json::{Value, json};

#[allow(unused_imports)]
pub use lockbox_testkit::{emulator, tag};

/// An SSM client for `endpoint` with static test credentials and no SDK retries.
pub fn ssm_client(endpoint: &str) -> aws_sdk_ssm::Client {
    aws::ssm_client(endpoint, aws::ATTEMPT_TIMEOUT)
}

/// A Secrets Manager client for `endpoint` with static test credentials and no SDK retries.
pub fn sm_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    aws::secretsmanager_client(endpoint, aws::ATTEMPT_TIMEOUT)
}

/// Settings from `kwargs` (a JSON object) plus region, endpoint and static test keys, so the
/// lookup builds its own client the way production does, aimed at `endpoint`.
pub fn settings(backend: BackendKind, endpoint: &str, mut kwargs: Value) -> LookupSettings {
    let obj = kwargs.as_object_mut().expect("kwargs object");
    obj.entry("region_name").or_insert(json!("us-east-1"));
    obj.entry("endpoint_url").or_insert(json!(endpoint));
    obj.entry("aws_access_key_id").or_insert(json!("test"));
    obj.entry("aws_secret_access_key").or_insert(json!("test"));
    LookupSettings::from_backend_kwargs(backend, &kwargs.to_string()).unwrap()
}

/// A lookup that builds its own client from `kwargs` (see [`settings`]).
pub fn lookup(backend: BackendKind, endpoint: &str, kwargs: Value) -> Lookup {
    Lookup::new(settings(backend, endpoint, kwargs))
}

/// Stores a parameter (`SecureString` or `String`).
pub async fn put_parameter(endpoint: &str, name: &str, value: &str, secure: bool) {
    use aws_sdk_ssm::types::ParameterType;
    ssm_client(endpoint)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(if secure {
            ParameterType::SecureString
        } else {
            ParameterType::String
        })
        .send()
        .await
        .unwrap_or_else(|e| panic!("put_parameter {name}: {e:?}"));
}

/// Creates a string secret.
pub async fn create_secret(endpoint: &str, name: &str, value: &str) {
    sm_client(endpoint)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create_secret {name}: {e:?}"));
}

/// Creates a binary secret.
pub async fn create_binary_secret(endpoint: &str, name: &str, value: &[u8]) {
    sm_client(endpoint)
        .create_secret()
        .name(name)
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(
            value.to_vec(),
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create_secret {name}: {e:?}"));
}

/// One plain HTTP/1.1 POST (form or JSON body) to `endpoint` with the given headers; returns
/// (status, body). Enough to talk to the emulator's query APIs without an SDK.
pub fn http_post(endpoint: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let hostport = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut stream = std::net::TcpStream::connect(&hostport).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The emulator's answer to STS GetCallerIdentity for access key `access_key_id` (the
/// emulator checks no signature, only which key signed).
pub fn caller_identity_arn(endpoint: &str, access_key_id: &str) -> String {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/20240101/us-east-1/sts/aws4_request, \
         SignedHeaders=host, Signature=00"
    );
    let (status, body) = http_post(
        endpoint,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &auth),
        ],
        "Action=GetCallerIdentity&Version=2011-06-15",
    );
    assert_eq!(status, 200, "GetCallerIdentity: {body}");
    let start = body.find("<Arn>").expect("Arn in GetCallerIdentity") + 5;
    let end = body[start..].find("</Arn>").unwrap() + start;
    body[start..end].to_string()
}
