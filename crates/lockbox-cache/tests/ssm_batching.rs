//! The cache over the real SSM backend, against wiremock answering SSM's JSON protocol: misses
//! that arrive together become GetParameters calls of at most 10 names.

use lockbox_cache::{Cache, CacheConfig};
use lockbox_core::SecretName;
use lockbox_ssm::SsmBackend;
use lockbox_testkit::aws::{ATTEMPT_TIMEOUT, ssm_client, ssm_settings};
use lockbox_testkit::wire::{self, ok};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers GetParameter and GetParameters with `value-of:<parameter name>` for every name.
struct Echo;

fn parameter(name: &str) -> Value {
    json!({"Name": name, "Value": format!("value-of:{name}"), "Type": "SecureString", "Version": 1})
}

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        if wire::is_op(request, wire::SSM, "GetParameters") {
            let names = body["Names"].as_array().cloned().unwrap_or_default();
            let params: Vec<Value> = names
                .iter()
                .filter_map(Value::as_str)
                .map(parameter)
                .collect();
            ok(json!({"Parameters": params, "InvalidParameters": []}))
        } else if wire::is_op(request, wire::SSM, "GetParameter") {
            ok(json!({"Parameter": parameter(body["Name"].as_str().unwrap_or(""))}))
        } else {
            ResponseTemplate::new(400)
        }
    }
}

fn backend(endpoint: &str) -> SsmBackend {
    SsmBackend::with_client(
        ssm_client(endpoint, ATTEMPT_TIMEOUT),
        ssm_settings("/p", "node"),
    )
    .unwrap()
}

async fn calls(server: &MockServer, op: &str) -> usize {
    wire::requests(server, wire::SSM, op).await
}

fn names(count: usize, tag: &str) -> Vec<SecretName> {
    (0..count)
        .map(|i| SecretName::new(format!("{tag}-{i}")).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_become_get_parameters_calls_of_at_most_ten_names() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(Echo)
        .mount(&server)
        .await;
    let cache = Cache::new(backend(&server.uri()), CacheConfig::default());

    let mut expected = 0;
    for (count, requests) in [(10, 1), (11, 2), (20, 2), (21, 3)] {
        let batch = names(count, &format!("b{count}"));
        for (name, value) in batch.iter().zip(cache.get_many(&batch).await) {
            assert_eq!(
                value.unwrap().expose_str().unwrap(),
                format!("value-of:/p/node/{name}")
            );
        }
        expected += requests;
        assert_eq!(
            calls(&server, "GetParameters").await,
            expected,
            "{count} names"
        );
    }

    // Concurrent single gets are gathered the same way.
    let batch = names(25, "concurrent");
    let mut tasks = tokio::task::JoinSet::new();
    for name in batch.clone() {
        let cache = cache.clone();
        tasks.spawn(async move { cache.get(&name).await.map(|_| ()) });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(calls(&server, "GetParameters").await, expected + 3);

    // A lone miss uses GetParameter; a second read of anything is a hit.
    let lone = SecretName::new("lone").unwrap();
    cache.get(&lone).await.unwrap();
    cache.get(&lone).await.unwrap();
    cache.get_many(&batch).await;
    assert_eq!(calls(&server, "GetParameter").await, 1);
    assert_eq!(calls(&server, "GetParameters").await, expected + 3);
}
