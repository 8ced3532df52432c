//! `get_many`'s concurrent GetParameters calls, against wiremock: results keep the order and
//! the values of the names asked for, at most ten calls are in flight at once, and after a
//! throttled call the rest go one at a time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lockbox_core::{ErrorKind, SecretName, SecretsManager};
use lockbox_testkit::aws::ssm_backend;
use lockbox_testkit::wire::{self, JSON, target};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers GetParameters after `delay`: every name ending in `-missing` is absent, every
/// other one holds `value:<name>`; with `throttle`, every call is throttled instead. Records
/// when each call arrived.
struct Params {
    delay: Duration,
    throttle: bool,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Respond for Params {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.arrivals.lock().unwrap().push(Instant::now());
        if self.throttle {
            return wire::throttled().set_delay(self.delay);
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let names: Vec<&str> = body["Names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let (missing, found): (Vec<&str>, Vec<&str>) =
            names.iter().partition(|n| n.ends_with("-missing"));
        let parameters: Vec<Value> = found
            .iter()
            .map(|n| json!({"Name": n, "Value": format!("value:{n}"), "Type": "SecureString", "Version": 1}))
            .collect();
        ResponseTemplate::new(200)
            .insert_header("content-type", JSON)
            .set_body_string(
                json!({"Parameters": parameters, "InvalidParameters": missing}).to_string(),
            )
            .set_delay(self.delay)
    }
}

async fn server(delay: Duration, throttle: bool) -> (MockServer, Arc<Mutex<Vec<Instant>>>) {
    let server = MockServer::start().await;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(target(wire::SSM, "GetParameters"))
        .respond_with(Params {
            delay,
            throttle,
            arrivals: Arc::clone(&arrivals),
        })
        .mount(&server)
        .await;
    (server, arrivals)
}

fn names(n: usize) -> Vec<SecretName> {
    (0..n)
        .map(|i| {
            let suffix = if i % 7 == 3 { "-missing" } else { "" };
            SecretName::new(format!("k/{i}{suffix}")).unwrap()
        })
        .collect()
}

/// Arrival offsets from the first call.
fn offsets(arrivals: &Mutex<Vec<Instant>>) -> Vec<Duration> {
    let mut a = arrivals.lock().unwrap().clone();
    a.sort();
    a.iter().map(|t| t.duration_since(a[0])).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_keep_order_and_values_and_chunks_overlap() {
    let delay = Duration::from_millis(300);
    let (server, arrivals) = server(delay, false).await;
    let backend = ssm_backend(&server.uri(), "/p", "node");
    let names = names(95);
    let start = Instant::now();
    let got = backend.get_many(&names).await;
    let took = start.elapsed();
    assert_eq!(got.len(), names.len());
    for (name, result) in names.iter().zip(&got) {
        if name.as_str().ends_with("-missing") {
            let e = result.as_ref().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound, "{name}: {e}");
            assert_eq!(e.secret(), Some(name.as_str()));
        } else {
            let v = result.as_ref().unwrap();
            assert_eq!(
                v.expose_str().unwrap(),
                format!("value:/p/node/{name}"),
                "{name}"
            );
        }
    }
    // Ten calls of at most ten names, all in flight together: about one round trip, not ten.
    let offsets = offsets(&arrivals);
    assert_eq!(offsets.len(), 10);
    assert!(
        offsets.iter().all(|o| *o < delay / 2),
        "calls did not overlap: {offsets:?}"
    );
    assert!(took < delay * 3, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_ten_calls_are_in_flight() {
    let delay = Duration::from_millis(300);
    let (server, arrivals) = server(delay, false).await;
    let backend = ssm_backend(&server.uri(), "/p", "node");
    let names = names(150);
    let got = backend.get_many(&names).await;
    let present = names
        .iter()
        .filter(|n| !n.as_str().ends_with("-missing"))
        .count();
    assert_eq!(got.iter().filter(|r| r.is_ok()).count(), present);
    let offsets = offsets(&arrivals);
    assert_eq!(offsets.len(), 15);
    // The first ten together; the eleventh only once one of them was answered.
    assert!(offsets[9] < delay / 2, "{offsets:?}");
    assert!(
        offsets[10] >= delay - Duration::from_millis(20),
        "{offsets:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_throttled_call_the_rest_go_one_at_a_time() {
    let delay = Duration::from_millis(100);
    let (server, arrivals) = server(delay, true).await;
    let backend = ssm_backend(&server.uri(), "/p", "node");
    let names = names(130);
    let got = backend.get_many(&names).await;
    for (name, r) in names.iter().zip(&got) {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Throttled, "{name}: {e}");
    }
    let offsets = offsets(&arrivals);
    assert_eq!(offsets.len(), 13);
    // Ten at once; then, throttled, the last three one after another.
    assert!(offsets[9] < delay / 2, "{offsets:?}");
    for w in offsets[10..].windows(2) {
        assert!(
            w[1] - w[0] >= delay - Duration::from_millis(20),
            "{offsets:?}"
        );
    }
}
