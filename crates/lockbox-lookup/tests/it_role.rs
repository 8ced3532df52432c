//! Role assumption (`role_arn`) against the emulator's STS: the lookup's calls are signed with
//! the assumed credentials, under the session name Airflow uses.

mod common;

use common::{caller_identity_arn, emulator, lookup, put_parameter, tag};
use lockbox_lookup::BackendKind;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn access_key_of(request: &wiremock::Request) -> String {
    let auth = request
        .headers
        .get("authorization")
        .expect("signed request")
        .to_str()
        .unwrap();
    let start = auth.find("Credential=").unwrap() + "Credential=".len();
    auth[start..].split('/').next().unwrap().to_string()
}

/// Service calls go to a recording mock; AssumeRole goes to the emulator's STS
/// (`service_config.sts.endpoint_url`, as Airflow configures it). The key that signed the
/// service calls is then shown to the emulator, which says whose it is.
#[tokio::test]
async fn assumed_credentials_sign_the_calls() {
    let Some(ep) = emulator("assumed_credentials_sign_the_calls") else {
        return;
    };
    for (backend, target_response, default_session) in [
        (
            BackendKind::Ssm,
            json!({"Parameter": {"Name": "/airflow/variables/v", "Type": "SecureString", "Value": "x", "Version": 1}}),
            "airflow_systemsmanagerparameterstorebackend__connection",
        ),
        (
            BackendKind::SecretsManager,
            json!({"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:airflow/variables/v-AbCdEf",
                   "Name": "airflow/variables/v", "VersionId": "v1", "SecretString": "x",
                   "VersionStages": ["AWSCURRENT"]}),
            "airflow_secretsmanagerbackend__connection",
        ),
    ] {
        for custom_session in [None, Some("my-session")] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(
                    ResponseTemplate::new(200)
                        .insert_header("content-type", "application/x-amz-json-1.1")
                        .set_body_string(target_response.to_string()),
                )
                .mount(&server)
                .await;
            let role = format!("arn:aws:iam::123456789012:role/{}", tag());
            let mut kwargs = json!({
                "role_arn": role,
                "service_config": {"sts": {"endpoint_url": ep}},
            });
            if let Some(s) = custom_session {
                kwargs["assume_role_kwargs"] = json!({"RoleSessionName": s});
            }
            let l = lookup(backend, &server.uri(), kwargs);
            assert_eq!(l.variable("v").await.unwrap().as_deref(), Some("x"));
            assert_eq!(l.variable("v").await.unwrap().as_deref(), Some("x"));

            let requests = server.received_requests().await.unwrap();
            assert_eq!(
                requests.len(),
                2,
                "only the two reads reach the service endpoint"
            );
            let key = access_key_of(&requests[0]);
            assert_ne!(
                key, "test",
                "signed with the base credentials, not the role's"
            );
            assert!(
                requests[0].headers.get("x-amz-security-token").is_some(),
                "assumed credentials carry a session token"
            );
            // Cached: the second call reuses the assumed credentials.
            assert_eq!(access_key_of(&requests[1]), key);

            let role_name = role.rsplit('/').next().unwrap();
            let session = custom_session.unwrap_or(default_session);
            assert_eq!(
                caller_identity_arn(&ep, &key),
                format!("arn:aws:sts::123456789012:assumed-role/{role_name}/{session}"),
                "{backend}"
            );
        }
    }
}

/// End to end on the emulator: with a role in another account, the emulator serves that
/// account's parameters, so the parameter stored in the default account is not seen; with a
/// role in the default account it is.
#[tokio::test]
async fn assumed_role_account_decides_what_is_seen() {
    let Some(ep) = emulator("assumed_role_account_decides_what_is_seen") else {
        return;
    };
    let t = tag();
    put_parameter(&ep, &format!("/{t}/variables/hello"), "world", true).await;
    for (account, expected) in [(home_account(), Some("world")), ("111122223333", None)] {
        let l = lookup(
            BackendKind::Ssm,
            &ep,
            json!({
                "variables_prefix": format!("/{t}/variables"),
                "role_arn": format!("arn:aws:iam::{account}:role/lookup-{t}"),
                "service_config": {"sts": {"endpoint_url": ep}},
            }),
        );
        assert_eq!(
            l.variable("hello").await.unwrap().as_deref(),
            expected,
            "{account}"
        );
    }
}

/// STS refusing (here: nothing listening where STS should be) is an error, never "absent".
#[tokio::test]
async fn failed_role_assumption_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let l = lookup(
        BackendKind::Ssm,
        &server.uri(),
        json!({
            "role_arn": "arn:aws:iam::123456789012:role/r",
            "service_config": {"sts": {"endpoint_url": "http://127.0.0.1:1"}},
        }),
    );
    let e = l.variable("v").await.unwrap_err();
    assert_eq!(e.kind(), lockbox_core::ErrorKind::Unauthenticated, "{e}");
    server.verify().await;
}

/// The account the emulator puts the test credentials' data in: moto's default account, or
/// LocalStack's (which it derives from the access key `test`).
fn home_account() -> &'static str {
    match std::env::var("LOCKBOX_IT_EMULATOR").as_deref() {
        Ok("localstack") => "000000000000",
        _ => "123456789012",
    }
}
