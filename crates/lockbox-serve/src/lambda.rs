//! Lambda extension mode: `lockbox serve` as an external extension of the Lambda Extensions API
//! (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html>).
//!
//! - Starts the server (token, listen, prefetch) first, then registers
//!   (`POST /2020-01-01/extension/register`, header `Lambda-Extension-Name`, body
//!   `{"events":["INVOKE","SHUTDOWN"]}`): Lambda starts the runtime's init as soon as register
//!   returns, so the endpoint answers by then.
//! - Loops on `GET /2020-01-01/extension/event/next` with `Lambda-Extension-Identifier`; on
//!   `SHUTDOWN` stops the server and returns before the event's `deadlineMs`.
//! - A start that fails is reported to `/2020-01-01/extension/init/error`, a failure after init
//!   to `/2020-01-01/extension/exit/error` (header `Lambda-Extension-Function-Error-Type`).
//! - [`LambdaOptions::start_on_invoke`] (SnapStart): registers at once and starts serving on
//!   the first `INVOKE`, so no secret is read before the snapshot is taken.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use lockbox_core::{Error, ErrorKind, Result};
use serde::Deserialize;

use crate::{ServeConfig, Server};

/// The variable Lambda sets to the Extensions API's `host:port`.
pub const RUNTIME_API_VAR: &str = "AWS_LAMBDA_RUNTIME_API";
/// The extension name of the layer `cargo xtask lambda-layer` builds (`extensions/lockbox`):
/// Lambda wants the extension's file name.
pub const DEFAULT_EXTENSION_NAME: &str = "lockbox";
/// Time kept back from a SHUTDOWN deadline for the process to exit.
const EXIT_MARGIN: Duration = Duration::from_millis(200);
/// Most bytes read from an Extensions API answer.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// How to run as a Lambda extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LambdaOptions {
    /// The Extensions API's `host:port` (the value of `AWS_LAMBDA_RUNTIME_API`).
    pub runtime_api: String,
    /// `Lambda-Extension-Name`: the extension's file name under `/opt/extensions`.
    pub extension_name: String,
    /// Start the server on the first `INVOKE` instead of before registering (SnapStart).
    pub start_on_invoke: bool,
}

impl LambdaOptions {
    /// Options from `AWS_LAMBDA_RUNTIME_API`, or `None` when it is not set (or empty).
    pub fn from_env() -> Option<Self> {
        let api = std::env::var(RUNTIME_API_VAR).ok()?;
        (!api.trim().is_empty()).then(|| Self {
            runtime_api: api.trim().to_owned(),
            extension_name: DEFAULT_EXTENSION_NAME.to_owned(),
            start_on_invoke: false,
        })
    }
}

/// A lifecycle event from `event/next`.
#[derive(Deserialize, Debug)]
#[serde(tag = "eventType", rename_all = "UPPERCASE")]
enum Event {
    Invoke,
    Shutdown {
        #[serde(rename = "deadlineMs")]
        deadline_ms: u64,
        #[serde(rename = "shutdownReason", default)]
        shutdown_reason: Option<String>,
    },
}

/// A client of the Extensions API, registered.
struct Extension {
    api: String,
    id: String,
}

fn api_error(message: String) -> Error {
    Error::new(ErrorKind::Unavailable, "lambda extension", message)
}

/// One HTTP/1.1 request to the Extensions API; returns the status, the response headers and
/// the body. No timeout: `event/next` blocks until Lambda has an event.
async fn call(
    api: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(StatusCode, hyper::HeaderMap, Bytes)> {
    let stream = tokio::net::TcpStream::connect(api)
        .await
        .map_err(|e| api_error(format!("cannot reach the Extensions API at {api}: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| api_error(format!("Extensions API at {api}: {e}")))?;
    let conn = tokio::spawn(conn);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, api);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| api_error(format!("cannot build the request {path}: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| api_error(format!("{path}: {e}")))?;
    let (parts, body) = response.into_parts();
    let body = http_body_util::Limited::new(body, MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| api_error(format!("{path}: cannot read the answer: {e}")))?
        .to_bytes();
    conn.abort();
    Ok((parts.status, parts.headers, body))
}

/// The start of an answer body, for error messages (the API's bodies carry no secrets).
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

impl Extension {
    /// `POST /2020-01-01/extension/register` for INVOKE and SHUTDOWN.
    async fn register(api: &str, name: &str) -> Result<Self> {
        let body = serde_json::json!({"events": ["INVOKE", "SHUTDOWN"]}).to_string();
        let (status, headers, answer) = call(
            api,
            Method::POST,
            "/2020-01-01/extension/register",
            &[
                ("Lambda-Extension-Name", name),
                ("Content-Type", "application/json"),
            ],
            body.into_bytes(),
        )
        .await?;
        if status != StatusCode::OK {
            return Err(api_error(format!(
                "register as {name:?} answered {status}: {}",
                excerpt(&answer)
            )));
        }
        let id = headers
            .get("Lambda-Extension-Identifier")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                api_error("register answered without a Lambda-Extension-Identifier".into())
            })?;
        Ok(Self {
            api: api.to_owned(),
            id: id.to_owned(),
        })
    }

    /// `GET /2020-01-01/extension/event/next`: waits for the next event.
    async fn next(&self) -> Result<Event> {
        let (status, _, body) = call(
            &self.api,
            Method::GET,
            "/2020-01-01/extension/event/next",
            &[("Lambda-Extension-Identifier", &self.id)],
            Vec::new(),
        )
        .await?;
        if status != StatusCode::OK {
            return Err(api_error(format!(
                "event/next answered {status}: {}",
                excerpt(&body)
            )));
        }
        serde_json::from_slice(&body)
            .map_err(|e| api_error(format!("event/next: not an INVOKE or SHUTDOWN event: {e}")))
    }

    /// Reports `error` to `init/error` or `exit/error` (`which`); a failure to report is
    /// logged, the original error is what the caller returns.
    async fn report(&self, which: &str, error: &Error) {
        let error_type = format!("Extension.{:?}", error.kind());
        let body = serde_json::json!({
            "errorMessage": error.to_string(),
            "errorType": error_type,
            "stackTrace": [],
        })
        .to_string();
        let path = format!("/2020-01-01/extension/{which}");
        match call(
            &self.api,
            Method::POST,
            &path,
            &[
                ("Lambda-Extension-Identifier", &self.id),
                ("Lambda-Extension-Function-Error-Type", &error_type),
                ("Content-Type", "application/json"),
            ],
            body.into_bytes(),
        )
        .await
        {
            Ok((status, _, _)) if status == StatusCode::ACCEPTED || status.is_success() => {}
            Ok((status, _, body)) => {
                tracing::error!("{path} answered {status}: {}", excerpt(&body))
            }
            Err(e) => tracing::error!("{e}"),
        }
    }
}

/// A server started and serving on a task of its own.
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<()>>,
}

async fn start(
    config: ServeConfig,
    on_listening: &mut Option<impl FnOnce(SocketAddr)>,
) -> Result<Running> {
    let server = Server::start(config).await?;
    if let Some(f) = on_listening.take() {
        f(server.local_addr());
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Ok(Running { stop, task })
}

/// How long until `deadline_ms` (milliseconds since the epoch), less [`EXIT_MARGIN`].
fn time_left(deadline_ms: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_millis(deadline_ms)
        .saturating_sub(now)
        .saturating_sub(EXIT_MARGIN)
}

/// Stops a running server, waiting for requests in flight at most `within`.
async fn stop(running: Running, within: Duration) -> Result<()> {
    let _ = running.stop.send(());
    let mut task = running.task;
    match tokio::time::timeout(within, &mut task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(api_error(format!("the server task failed: {join}"))),
        Err(_) => {
            task.abort();
            tracing::warn!(
                "requests still in flight at the SHUTDOWN deadline were cut off ({} ms given)",
                within.as_millis()
            );
            Ok(())
        }
    }
}

/// Runs `lockbox serve` as a Lambda extension until SHUTDOWN (see the module docs).
/// `on_listening` is called with the bound address once the server accepts connections
/// (before register returns, or on the first INVOKE with `start_on_invoke`). Returns `Ok`
/// after a SHUTDOWN, and the error (after reporting it to the Extensions API) otherwise.
pub async fn run_extension(
    config: ServeConfig,
    options: LambdaOptions,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<()> {
    let mut on_listening = Some(on_listening);
    let mut pending = None;
    let mut running = None;
    if options.start_on_invoke {
        pending = Some(config);
    } else {
        // Started before registering; a failure is still registered, to report it.
        match start(config, &mut on_listening).await {
            Ok(r) => running = Some(r),
            Err(e) => {
                let ext =
                    Extension::register(&options.runtime_api, &options.extension_name).await?;
                ext.report("init/error", &e).await;
                return Err(e);
            }
        }
    }
    let ext = match Extension::register(&options.runtime_api, &options.extension_name).await {
        Ok(ext) => ext,
        Err(e) => {
            if let Some(r) = running.take() {
                stop(r, Duration::from_secs(1)).await.ok();
            }
            return Err(e);
        }
    };
    tracing::info!(
        "registered with the Lambda Extensions API as {:?}{}",
        options.extension_name,
        if options.start_on_invoke {
            " (serving from the first INVOKE)"
        } else {
            ""
        }
    );
    loop {
        let event = tokio::select! {
            event = ext.next() => event,
            // The server stopped on its own: a failure after init.
            finished = async {
                match running.as_mut() {
                    Some(r) => (&mut r.task).await,
                    None => std::future::pending().await,
                }
            } => {
                let e = match finished {
                    Ok(Ok(())) => api_error("the server stopped before SHUTDOWN".into()),
                    Ok(Err(e)) => e,
                    Err(join) => api_error(format!("the server task failed: {join}")),
                };
                ext.report("exit/error", &e).await;
                return Err(e);
            }
        };
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                ext.report("exit/error", &e).await;
                if let Some(r) = running.take() {
                    stop(r, Duration::from_secs(1)).await.ok();
                }
                return Err(e);
            }
        };
        match event {
            Event::Invoke => {
                if let Some(config) = pending.take() {
                    match start(config, &mut on_listening).await {
                        Ok(r) => running = Some(r),
                        Err(e) => {
                            ext.report("exit/error", &e).await;
                            return Err(e);
                        }
                    }
                }
            }
            Event::Shutdown {
                deadline_ms,
                shutdown_reason,
            } => {
                let within = time_left(deadline_ms);
                tracing::info!(
                    "SHUTDOWN ({}): stopping within {} ms",
                    shutdown_reason.as_deref().unwrap_or("no reason given"),
                    within.as_millis()
                );
                return match running.take() {
                    Some(r) => stop(r, within).await,
                    None => Ok(()),
                };
            }
        }
    }
}

/// [`run_extension`] on a multi-threaded runtime of its own, also stopping on SIGTERM or
/// SIGINT. Blocks the calling thread, which must not be inside a Tokio runtime.
pub fn run_extension_blocking(
    config: ServeConfig,
    options: LambdaOptions,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| api_error(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        tokio::select! {
            result = run_extension(config, options, on_listening) => result,
            () = crate::shutdown_signal() => Ok(()),
        }
    })
}
