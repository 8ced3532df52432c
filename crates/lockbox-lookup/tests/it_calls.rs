//! Which AWS calls a lookup makes, and which answers mean "absent", on a mock AWS endpoint
//! (wiremock counts every request). No emulator needed.

mod common;

use common::{lookup, settings, sm_client, ssm_client};
use lockbox_core::ErrorKind;
use lockbox_lookup::{
    Absence, BackendKind, Lookup, LookupKind, Outcome, SECRETS_MANAGER_ABSENT_CODES,
};
use lockbox_secretsmanager::SecretsManagerClient;
use lockbox_testkit::wire::{self, secret_string, ssm_parameter as parameter};
use serde_json::json;
use wiremock::matchers::{any, body_partial_json, header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KINDS: [LookupKind; 3] = [
    LookupKind::Connection,
    LookupKind::Variable,
    LookupKind::Config,
];

fn aws_error(status: u16, code: &str) -> ResponseTemplate {
    wire::aws_error(status, code, &format!("mock {code}"))
}

async fn read(l: &Lookup, kind: LookupKind, id: &str) -> Option<String> {
    match kind {
        LookupKind::Connection => l
            .connection_value(id)
            .await
            .unwrap()
            .map(|v| v.expose_str().unwrap().to_string()),
        LookupKind::Variable => l.variable(id).await.unwrap(),
        LookupKind::Config => l.config(id).await.unwrap(),
    }
}

// test_*_prefix_none_value: a null prefix asks AWS nothing.
#[tokio::test]
async fn null_prefixes_make_no_call() {
    for backend in [BackendKind::Ssm, BackendKind::SecretsManager] {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(aws_error(500, "InternalFailure"))
            .expect(0)
            .mount(&server)
            .await;
        let l = lookup(
            backend,
            &server.uri(),
            json!({"connections_prefix": null, "variables_prefix": null, "config_prefix": null,
                   "role_arn": "arn:aws:iam::123456789012:role/never-assumed"}),
        );
        for kind in KINDS {
            assert_eq!(read(&l, kind, "test_mysql").await, None);
            assert!(matches!(
                l.lookup(kind, "x").await.unwrap(),
                Outcome::Absent(Absence::Disabled)
            ));
        }
        assert!(l.connection("test_mysql").await.unwrap().is_none());
        server.verify().await;
    }
}

// The same against a closed port: nothing is even attempted.
#[tokio::test]
async fn null_prefixes_on_a_closed_port() {
    for backend in [BackendKind::Ssm, BackendKind::SecretsManager] {
        let l = lookup(
            backend,
            "http://127.0.0.1:1",
            json!({"connections_prefix": null, "variables_prefix": null, "config_prefix": null}),
        );
        for kind in KINDS {
            assert_eq!(read(&l, kind, "anything").await, None);
        }
        // ...while a kind that is enabled reaches for the port and fails: an error, not None.
        let l = lookup(backend, "http://127.0.0.1:1", json!({}));
        let e = l.variable("anything").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    }
}

// test_*_lookup_pattern: (pattern, calls).
#[tokio::test]
async fn lookup_patterns_count_calls() {
    for backend in [BackendKind::Ssm, BackendKind::SecretsManager] {
        for kind in KINDS {
            for (pattern, calls) in [
                (Some("test"), 1),
                (Some(".*"), 1),
                (Some("T.*"), 1),
                (Some("dummy-pattern"), 0),
                (None, 1),
            ] {
                let server = MockServer::start().await;
                let not_found = match backend {
                    BackendKind::Ssm => "ParameterNotFound",
                    BackendKind::SecretsManager => "ResourceNotFoundException",
                };
                Mock::given(method("POST"))
                    .respond_with(aws_error(400, not_found))
                    .expect(calls)
                    .mount(&server)
                    .await;
                let mut kwargs = json!({});
                if let Some(p) = pattern {
                    kwargs[kind.pattern_key()] = json!(p);
                }
                let l = lookup(backend, &server.uri(), kwargs);
                assert_eq!(read(&l, kind, "test").await, None);
                server.verify().await;
            }
        }
    }
}

// test_*_prefix_with_no_leading_slash: the name sent has a leading '/', with decryption on.
#[tokio::test]
async fn ssm_names_get_a_leading_slash_and_decryption() {
    let server = MockServer::start().await;
    for (name, value) in [
        ("/airflow/connections/test_mysql", "mysql://h"),
        ("/airflow/variables/hello", "world"),
        ("/airflow/config/config", "c"),
    ] {
        Mock::given(method("POST"))
            .and(header("x-amz-target", "AmazonSSM.GetParameter"))
            .and(body_partial_json(
                json!({"Name": name, "WithDecryption": true}),
            ))
            .respond_with(parameter(name, value))
            .expect(1)
            .mount(&server)
            .await;
    }
    let l = lookup(
        BackendKind::Ssm,
        &server.uri(),
        json!({"connections_prefix": "airflow/connections", "variables_prefix": "airflow/variables",
               "config_prefix": "airflow/config"}),
    );
    assert_eq!(
        read(&l, LookupKind::Connection, "test_mysql")
            .await
            .as_deref(),
        Some("mysql://h")
    );
    assert_eq!(
        read(&l, LookupKind::Variable, "hello").await.as_deref(),
        Some("world")
    );
    assert_eq!(
        read(&l, LookupKind::Config, "config").await.as_deref(),
        Some("c")
    );
    server.verify().await;
}

// Secrets Manager names: prefix, sep, id; the secret id is sent as built.
#[tokio::test]
async fn secrets_manager_names() {
    let server = MockServer::start().await;
    for name in ["airflow/connections/smtp_default", "vars::hello"] {
        Mock::given(method("POST"))
            .and(header("x-amz-target", "secretsmanager.GetSecretValue"))
            .and(body_partial_json(json!({"SecretId": name})))
            .respond_with(secret_string(name, "smtp://h"))
            .expect(1)
            .mount(&server)
            .await;
    }
    let l = lookup(BackendKind::SecretsManager, &server.uri(), json!({}));
    assert!(l.connection("smtp_default").await.unwrap().is_some());
    let l = lookup(
        BackendKind::SecretsManager,
        &server.uri(),
        json!({"variables_prefix": "vars::", "sep": "::"}),
    );
    assert_eq!(
        l.variable("hello").await.unwrap().as_deref(),
        Some("smtp://h")
    );
    server.verify().await;
}

// SSM: only ParameterNotFound means absent; everything else is an error.
#[tokio::test]
async fn ssm_only_parameter_not_found_is_absent() {
    for (status, code, expected) in [
        (400, "ParameterNotFound", None),
        (
            400,
            "AccessDeniedException",
            Some(ErrorKind::PermissionDenied),
        ),
        (400, "ThrottlingException", Some(ErrorKind::Throttled)),
        (400, "ValidationException", Some(ErrorKind::Backend)),
        (400, "InvalidKeyId", Some(ErrorKind::Backend)),
        (500, "InternalServerError", Some(ErrorKind::Unavailable)),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(aws_error(status, code))
            .expect(1)
            .mount(&server)
            .await;
        let l = Lookup::with_ssm_client(
            settings(BackendKind::Ssm, &server.uri(), json!({})),
            lockbox_ssm::SsmClient::from_client(ssm_client(&server.uri())),
        )
        .unwrap();
        match (l.variable("v").await, expected) {
            (Ok(None), None) => {}
            (Err(e), Some(kind)) => assert_eq!(e.kind(), kind, "{code}: {e}"),
            (other, _) => panic!("{code}: {other:?}"),
        }
        server.verify().await;
    }
}

// Secrets Manager: exactly the codes Airflow catches mean absent.
#[tokio::test]
async fn secrets_manager_absent_codes() {
    let mut cases: Vec<(u16, &str, Option<ErrorKind>)> = SECRETS_MANAGER_ABSENT_CODES
        .iter()
        .map(|c| {
            (
                if *c == "InternalServiceError" {
                    500
                } else {
                    400
                },
                *c,
                None,
            )
        })
        .collect();
    cases.extend([
        (
            400,
            "AccessDeniedException",
            Some(ErrorKind::PermissionDenied),
        ),
        (400, "ThrottlingException", Some(ErrorKind::Throttled)),
        (400, "ValidationException", Some(ErrorKind::Backend)),
        (
            400,
            "UnrecognizedClientException",
            Some(ErrorKind::Unauthenticated),
        ),
        (500, "InternalFailure", Some(ErrorKind::Unavailable)),
        (503, "ServiceUnavailable", Some(ErrorKind::Unavailable)),
    ]);
    for (status, code, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(aws_error(status, code))
            .expect(1)
            .mount(&server)
            .await;
        let l = Lookup::with_secrets_manager_client(
            settings(BackendKind::SecretsManager, &server.uri(), json!({})),
            SecretsManagerClient::from_client(sm_client(&server.uri())),
        )
        .unwrap();
        match (l.lookup(LookupKind::Variable, "v").await, expected) {
            (Ok(Outcome::Absent(Absence::NotFound { code: got, .. })), None) => {
                assert_eq!(got, code)
            }
            (Err(e), Some(kind)) => assert_eq!(e.kind(), kind, "{code}: {e}"),
            (other, _) => panic!("{code}: {other:?}"),
        }
        server.verify().await;
    }
}

// Secrets Manager binary values are absent (Airflow reads SecretString only).
#[tokio::test]
async fn secrets_manager_binary_is_absent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_string(
                    json!({"ARN": "arn:aws:secretsmanager:us-east-1:1:secret:b-AbCdEf", "Name": "b",
                           "VersionId": "v1", "SecretBinary": "AAEC", "VersionStages": ["AWSCURRENT"]})
                    .to_string(),
                ),
        )
        .expect(2)
        .mount(&server)
        .await;
    let l = lookup(BackendKind::SecretsManager, &server.uri(), json!({}));
    assert!(l.variable("b").await.unwrap().is_none());
    assert!(l.connection("b").await.unwrap().is_none());
    server.verify().await;
}

// A connection stored as an empty string is no connection (Airflow's `if value:`), and a
// malformed one is an error that does not quote it.
#[tokio::test]
async fn empty_and_malformed_connections() {
    let server = MockServer::start().await;
    Mock::given(body_partial_json(
        json!({"SecretId": "airflow/connections/empty"}),
    ))
    .respond_with(secret_string("airflow/connections/empty", ""))
    .mount(&server)
    .await;
    Mock::given(body_partial_json(
        json!({"SecretId": "airflow/connections/bad"}),
    ))
    .respond_with(secret_string(
        "airflow/connections/bad",
        "{\"password\": \"hunter2\"",
    ))
    .mount(&server)
    .await;
    let l = lookup(BackendKind::SecretsManager, &server.uri(), json!({}));
    assert!(l.connection("empty").await.unwrap().is_none());
    let e = l.connection("bad").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(e.to_string().contains("airflow/connections/bad"), "{e}");
}

// With the cache layer: one call per name while fresh, absent answers (and why) remembered
// for the negative TTL, and names the cache cannot key read every time.
#[tokio::test]
async fn cached_lookups_call_once() {
    let server = MockServer::start().await;
    Mock::given(body_partial_json(
        json!({"Name": "/airflow/variables/hello"}),
    ))
    .respond_with(parameter("/airflow/variables/hello", "world"))
    .expect(1)
    .mount(&server)
    .await;
    Mock::given(body_partial_json(
        json!({"Name": "/airflow/variables/missing"}),
    ))
    .respond_with(aws_error(400, "ParameterNotFound"))
    .expect(1)
    .mount(&server)
    .await;
    Mock::given(body_partial_json(
        json!({"Name": "/airflow/variables/odd:key"}),
    ))
    .respond_with(parameter("/airflow/variables/odd:key", "odd"))
    .expect(3)
    .mount(&server)
    .await;
    let l = lookup(BackendKind::Ssm, &server.uri(), json!({}))
        .with_cache(lockbox_cache::CacheConfig::default());
    for _ in 0..3 {
        assert_eq!(l.variable("hello").await.unwrap().as_deref(), Some("world"));
        match l.lookup(LookupKind::Variable, "missing").await.unwrap() {
            Outcome::Absent(Absence::NotFound { name, code }) => {
                assert_eq!(name, "/airflow/variables/missing");
                assert_eq!(code, "ParameterNotFound");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(l.variable("odd:key").await.unwrap().as_deref(), Some("odd"));
    }
    server.verify().await;

    // Secrets Manager: a binary answer stays "binary" when it comes from the cache.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_string(
                    json!({"ARN": "arn:aws:secretsmanager:us-east-1:1:secret:b-AbCdEf", "Name": "b",
                           "VersionId": "v1", "SecretBinary": "AAEC", "VersionStages": ["AWSCURRENT"]})
                    .to_string(),
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let l = lookup(BackendKind::SecretsManager, &server.uri(), json!({}))
        .with_cache(lockbox_cache::CacheConfig::default());
    for _ in 0..2 {
        assert!(matches!(
            l.lookup(LookupKind::Variable, "b").await.unwrap(),
            Outcome::Absent(Absence::Binary { .. })
        ));
    }
    server.verify().await;
}

// DecryptionFailure and InternalServiceError are absent, as in Airflow, but a cached lookup
// never keeps them as absent: the next lookup asks again, and sees the value.
#[tokio::test]
async fn transient_absent_answers_are_not_cached() {
    for code in lockbox_lookup::TRANSIENT_ABSENT_CODES {
        let server = MockServer::start().await;
        let status = if code == "InternalServiceError" {
            500
        } else {
            400
        };
        Mock::given(method("POST"))
            .respond_with(aws_error(status, code))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(secret_string("airflow/variables/v", "value"))
            .mount(&server)
            .await;
        let l = Lookup::with_secrets_manager_client(
            settings(BackendKind::SecretsManager, &server.uri(), json!({})),
            SecretsManagerClient::from_client(sm_client(&server.uri())),
        )
        .unwrap()
        .with_cache(lockbox_cache::CacheConfig::default());
        match l.lookup(LookupKind::Variable, "v").await.unwrap() {
            Outcome::Absent(Absence::NotFound { code: c, .. }) => assert_eq!(c, code),
            other => panic!("{code}: {other:?}"),
        }
        assert_eq!(
            l.variable("v").await.unwrap().as_deref(),
            Some("value"),
            "{code}"
        );
        // Once found, the value is cached.
        assert_eq!(l.variable("v").await.unwrap().as_deref(), Some("value"));
        assert_eq!(
            wire::requests(&server, "secretsmanager", "GetSecretValue").await,
            2,
            "{code}"
        );
    }
}

// Airflow's SSM backend treats only ParameterNotFound as absent: `name:9` for a version the
// parameter does not have (ParameterVersionNotFound) is an error, not "absent".
#[tokio::test]
async fn a_missing_ssm_version_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(400, "ParameterVersionNotFound"))
        .mount(&server)
        .await;
    let l = lookup(BackendKind::Ssm, &server.uri(), json!({}));
    let e = l.lookup(LookupKind::Variable, "v:9").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert_eq!(e.code(), Some("ParameterVersionNotFound"));
}
