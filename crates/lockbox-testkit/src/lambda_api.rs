//! A local Lambda Extensions API for tests: it implements the contract AWS documents
//! (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html>: Register,
//! Next event, Init error, Exit error and their headers) and records what an extension did.
//! Events are queued by the test with [`ExtensionsApi::push`] and handed out by `event/next`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The identifier register answers with (the documentation's example).
pub const EXTENSION_ID: &str = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111";

/// What the extension did, as the Extensions API saw it.
#[derive(Default, Debug)]
pub struct Seen {
    /// `Lambda-Extension-Name` of the register call.
    pub register_name: Option<String>,
    /// The register call's body.
    pub register_body: Option<Value>,
    /// At register: `Some(true)` when the endpoint already answered `/ping`, `None` when it
    /// had not told its address yet.
    pub listening_at_register: Option<bool>,
    /// How many `event/next` calls came with the right identifier.
    pub next_calls: usize,
    /// `(path, Lambda-Extension-Function-Error-Type, body)` of each error report.
    pub errors: Vec<(String, String, Value)>,
    /// Requests refused for a missing or wrong identifier.
    pub refused: Vec<String>,
}

/// A local Extensions API: events are queued by the test and handed out by `event/next`.
#[derive(Default)]
pub struct ExtensionsApi {
    seen: Mutex<Seen>,
    events: Mutex<VecDeque<Value>>,
    event_ready: tokio::sync::Notify,
    /// Where the extension's endpoint listens, once its `on_listening` said so.
    serve_addr: Mutex<Option<SocketAddr>>,
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r
}

impl ExtensionsApi {
    /// Queues an event for `event/next`.
    pub fn push(&self, event: Value) {
        self.events.lock().unwrap().push_back(event);
        self.event_ready.notify_one();
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let id = header("Lambda-Extension-Identifier");
        let name = header("Lambda-Extension-Name");
        let error_type = header("Lambda-Extension-Function-Error-Type");
        let method = req.method().clone();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let forbidden = |what: &str| {
            self.seen
                .lock()
                .unwrap()
                .refused
                .push(format!("{path}: {what}"));
            answer(
                StatusCode::FORBIDDEN,
                json!({"errorMessage": what, "errorType": "Extension.Forbidden"}),
            )
        };
        match (method.as_str(), path.as_str()) {
            ("POST", "/2020-01-01/extension/register") => {
                let Some(name) = name.filter(|n| !n.is_empty()) else {
                    return forbidden("missing Lambda-Extension-Name");
                };
                let Ok(events) = serde_json::from_slice::<Value>(&body) else {
                    return answer(
                        StatusCode::BAD_REQUEST,
                        json!({"errorMessage": "bad body", "errorType": "InvalidRequest"}),
                    );
                };
                let addr = *self.serve_addr.lock().unwrap();
                let listening = match addr {
                    None => None,
                    Some(addr) => Some(pings(addr).await),
                };
                let mut seen = self.seen.lock().unwrap();
                seen.register_name = Some(name);
                seen.register_body = Some(events);
                seen.listening_at_register = listening;
                let mut r = answer(
                    StatusCode::OK,
                    json!({"functionName": "f", "functionVersion": "$LATEST", "handler": "index.handler"}),
                );
                r.headers_mut()
                    .insert("Lambda-Extension-Identifier", EXTENSION_ID.parse().unwrap());
                r
            }
            ("GET", "/2020-01-01/extension/event/next") => {
                if id.as_deref() != Some(EXTENSION_ID) {
                    return forbidden("wrong Lambda-Extension-Identifier");
                }
                self.seen.lock().unwrap().next_calls += 1;
                let event = loop {
                    let ready = self.event_ready.notified();
                    if let Some(e) = self.events.lock().unwrap().pop_front() {
                        break e;
                    }
                    ready.await;
                };
                let mut r = answer(StatusCode::OK, event);
                r.headers_mut().insert(
                    "Lambda-Extension-Event-Identifier",
                    "event-1".parse().unwrap(),
                );
                r
            }
            ("POST", "/2020-01-01/extension/init/error" | "/2020-01-01/extension/exit/error") => {
                if id.as_deref() != Some(EXTENSION_ID) {
                    return forbidden("wrong Lambda-Extension-Identifier");
                }
                let Some(error_type) = error_type else {
                    return forbidden("missing Lambda-Extension-Function-Error-Type");
                };
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                self.seen
                    .lock()
                    .unwrap()
                    .errors
                    .push((path, error_type, body));
                answer(StatusCode::ACCEPTED, json!({"status": "OK"}))
            }
            _ => answer(
                StatusCode::NOT_FOUND,
                json!({"errorMessage": "no such path"}),
            ),
        }
    }
}

/// Starts an Extensions API on loopback; returns it and its `host:port` (the value of
/// `AWS_LAMBDA_RUNTIME_API`).
pub async fn start() -> (Arc<ExtensionsApi>, String) {
    let api = Arc::new(ExtensionsApi::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let served = api.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let api = served.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let api = api.clone();
                    async move { Ok::<_, std::convert::Infallible>(api.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (api, addr)
}

impl ExtensionsApi {
    /// What the extension did so far.
    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    /// Tells the API where the extension's endpoint listens (register then checks it answers
    /// `/ping`).
    pub fn set_serve_addr(&self, addr: SocketAddr) {
        *self.serve_addr.lock().unwrap() = Some(addr);
    }

    /// Where the extension's endpoint listens, once known.
    pub fn serve_addr(&self) -> Option<SocketAddr> {
        *self.serve_addr.lock().unwrap()
    }
}

/// Whether `GET /ping` at `addr` answers 200 `healthy`.
async fn pings(addr: SocketAddr) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = format!("GET /ping HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    answer.starts_with("HTTP/1.1 200") && answer.ends_with("healthy")
}

/// Milliseconds since the epoch (the unit of `deadlineMs`).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A SHUTDOWN event with a deadline `ms` from now.
pub fn shutdown_in(ms: u64) -> Value {
    json!({"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": now_ms() + ms})
}

/// An INVOKE event as the documentation shows it.
pub fn invoke() -> Value {
    json!({
        "eventType": "INVOKE",
        "deadlineMs": now_ms() + 3000,
        "requestId": "3da1f2dc-3222-475e-9205-e2e6c6318895",
        "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
        "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2"}
    })
}
