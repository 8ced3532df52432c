//! Faults a real server will not produce on demand (sealed, throttled, failing, unreachable),
//! on wiremock. Needs no server.

use std::time::Duration;

use lockbox_core::{Error, ErrorKind, PutMode, SecretName, SecretValue, SecretsManager};
use lockbox_vault::{VaultBackend, VaultSettings};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "s.FAULT-TEST-TOKEN";

fn n(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn backend(addr: &str) -> VaultBackend {
    VaultBackend::connect(
        VaultSettings::new(addr, "node1")
            .token(TOKEN)
            .namespace(Some("team-a".into())),
    )
    .unwrap()
}

fn assert_clean(e: &Error) {
    assert!(!e.to_string().contains(TOKEN), "{e}");
    assert!(!format!("{e:?}").contains(TOKEN), "{e:?}");
}

async fn answering(status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/node1/validator-key"))
        .and(header("X-Vault-Token", TOKEN))
        .and(header("X-Vault-Namespace", "team-a"))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn sealed_server_is_unavailable_and_retryable() {
    let server = answering(503, r#"{"errors":["Vault is sealed"]}"#).await;
    let e = backend(&server.uri())
        .get(&n("validator-key"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains("sealed"), "{e}");
    assert!(
        e.to_string().contains("secret/data/node1/validator-key"),
        "{e}"
    );
    assert_clean(&e);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retryable() {
    for (status, kind) in [
        (429, ErrorKind::Throttled),
        (500, ErrorKind::Unavailable),
        (502, ErrorKind::Unavailable),
    ] {
        let server = answering(status, r#"{"errors":["busy"]}"#).await;
        let e = backend(&server.uri())
            .get(&n("validator-key"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{status}: {e}");
        assert!(e.is_retryable(), "{status}");
        assert_clean(&e);
    }
}

#[tokio::test]
async fn a_non_json_body_is_corrupt_without_showing_it() {
    let server = answering(200, "<html>the-body</html>").await;
    let e = backend(&server.uri())
        .get(&n("validator-key"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(!e.to_string().contains("the-body"), "{e}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let elsewhere = MockServer::start().await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(307).insert_header(
            "Location",
            format!("{}/v1/secret/data/node1/validator-key", elsewhere.uri()),
        ))
        .mount(&server)
        .await;
    let e = backend(&server.uri())
        .get(&n("validator-key"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("redirect"), "{e}");
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "the token went to the redirect target"
    );
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b = backend(&format!("http://127.0.0.1:{port}"));
    let started = std::time::Instant::now();
    for e in [
        b.get(&n("validator-key")).await.unwrap_err(),
        b.put(&n("k"), &SecretValue::from("v"), PutMode::Create)
            .await
            .unwrap_err(),
        b.list("").await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.to_string().contains("could not connect"), "{e}");
        assert_clean(&e);
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn list_treats_404_as_empty() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/metadata/node1/"))
        .respond_with(ResponseTemplate::new(404).set_body_string(r#"{"errors":[]}"#))
        .mount(&server)
        .await;
    assert!(backend(&server.uri()).list("").await.unwrap().is_empty());
}
