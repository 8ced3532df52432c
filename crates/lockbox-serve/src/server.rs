//! The HTTP side: accept loop, connection limits, SSRF token, routes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderName;
use hyper::{Method, Request as HttpRequest, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use lockbox_cache::{Cache, CacheConfig, CacheStats};
use lockbox_core::{Error, ErrorKind, Result, SecretValue};
use sha3::{Digest, Sha3_256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use crate::config::ServeConfig;
use crate::metrics::{Metrics, Route};
use crate::offline::{Offline, Verdict};
use crate::upstream::{Request, Upstream, UpstreamError};
use lockbox_resources::{Consumer, Consumers, Decision, Identity};

/// Largest request head hyper buffers (the agent's bound: 321 KiB).
const MAX_BUF_BYTES: usize = (65 + 256) * 1024;

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Connections past `max_conn` are still answered (429) up to this many more; past that they
/// are closed at once, so a flood cannot exhaust memory or file descriptors.
const OVERFLOW_CONNECTIONS: usize = 64;

/// One service's cache, or none when its TTL is 0.
struct ServiceCache {
    cache: Option<Cache<Upstream>>,
}

impl ServiceCache {
    fn new(upstream: &Upstream, ttl: Duration, config: &ServeConfig) -> Self {
        let cache = (!ttl.is_zero()).then(|| {
            Cache::new(
                upstream.clone(),
                CacheConfig {
                    ttl,
                    // The agent remembers no errors: a secret created a moment after a 404
                    // is readable at once.
                    negative_ttl: Duration::ZERO,
                    max_entries: config.cache_size,
                    max_stale: if config.ignore_transient_errors {
                        // Served stale for as long as AWS stays unreachable, as the agent does.
                        Duration::from_secs(365 * 24 * 3600)
                    } else {
                        Duration::ZERO
                    },
                    batch_window: Duration::ZERO,
                    ..CacheConfig::default()
                },
            )
        });
        Self { cache }
    }

    fn stats(&self) -> CacheStats {
        self.cache.as_ref().map(Cache::stats).unwrap_or_default()
    }
}

/// Everything a request handler needs.
pub(crate) struct State {
    upstream: Upstream,
    secrets: ServiceCache,
    parameters: ServiceCache,
    metrics: Arc<Metrics>,
    token_digest: [u8; 32],
    ssrf_headers: Vec<HeaderName>,
    path_prefix: String,
    max_conn: usize,
    active: AtomicUsize,
    request_timeout: Duration,
    metrics_enabled: bool,
    offline: Option<Arc<Offline>>,
    consumers: Option<Consumers>,
    /// Some consumer is identified by `Uid`: look up each connection's peer uid.
    uid_consumers: bool,
}

/// A bound, ready endpoint. [`Server::run`] serves until the shutdown future completes.
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
    header_read_timeout: Duration,
    max_headers: usize,
    refresh: Option<tokio::task::AbortHandle>,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha3_256::digest(bytes).into()
}

impl Server {
    /// Reads the SSRF token, loads AWS settings, binds the listener and prefetches the
    /// configured names. Fails (and nothing listens) without a token, with an address that
    /// cannot be bound, or, with `validate_credentials`, when no AWS credentials resolve.
    pub async fn start(config: ServeConfig) -> Result<Self> {
        let file_credentials = match &config.credentials_file_path {
            Some(path) => Some(crate::credentials::FileCredentials::watch(path.clone()).await),
            None => None,
        };
        let options = lockbox_aws::SdkOptions {
            region: config.region.clone(),
            endpoint_url: config.lockbox.endpoint_url.clone(),
            credentials: file_credentials
                .clone()
                .map(aws_credential_types::provider::SharedCredentialsProvider::new),
            ..lockbox_aws::SdkOptions::default()
        };
        let sdk = options.load().await;
        let server = Self::start_with_sdk(config, &sdk).await?;
        if let Some(f) = &file_credentials {
            f.log_start();
        }
        Ok(server)
    }

    /// [`Server::start`] with an SDK config the caller built (custom credentials, tests);
    /// the config's `region` and `[lockbox] endpoint_url` are not applied to it.
    pub async fn start_with_sdk(config: ServeConfig, sdk: &aws_config::SdkConfig) -> Result<Self> {
        let token = crate::token::read_token(&config.ssrf_env_variables)?;
        // A credentials file may appear or be fixed later (the agent starts anyway too).
        if config.validate_credentials && config.credentials_file_path.is_none() {
            check_credentials(sdk).await?;
        }
        let metrics = Arc::new(Metrics::default());
        let upstream = Upstream::new(sdk, metrics.clone());
        let offline = match &config.lockbox.offline {
            Some(settings) => Some(Offline::start(settings, sdk, metrics.clone()).await?),
            None => None,
        };
        let consumers = match &config.lockbox.consumers {
            Some(path) => {
                let consumers = Consumers::read(path)?;
                if let Some(offline) = &offline {
                    for (consumer, resource) in consumers.unknown_resources(|id| {
                        offline
                            .find(id)
                            .is_some_and(|s| lockbox_resources::resource_key(&s) == id)
                    }) {
                        tracing::warn!(
                            "consumer {consumer} may read resource {resource}, which is not in the store"
                        );
                    }
                }
                Some(consumers)
            }
            None => None,
        };
        let addr = config.listen_addr();
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "lockbox serve listens on {addr}, reachable from other hosts; every request but /ping still needs the SSRF token"
            );
        }
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                "serve",
                format!("cannot listen on {addr}: {e}"),
            )
        })?;
        let state = Arc::new(State {
            secrets: ServiceCache::new(&upstream, config.ttl, &config),
            parameters: ServiceCache::new(&upstream, config.lockbox.ssm_ttl, &config),
            upstream,
            metrics,
            token_digest: digest(token.as_bytes()),
            ssrf_headers: config
                .ssrf_headers
                .iter()
                .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                .collect(),
            path_prefix: config.path_prefix.clone(),
            max_conn: config.max_conn,
            active: AtomicUsize::new(0),
            request_timeout: config.lockbox.request_timeout,
            metrics_enabled: config.lockbox.metrics,
            offline,
            uid_consumers: consumers.as_ref().is_some_and(|c| {
                c.consumers()
                    .iter()
                    .any(|c| matches!(c.identity, Identity::Uid(_)))
            }),
            consumers,
        });
        drop(token);
        prefetch(&state, &config).await;
        let refresh = state.offline.as_ref().and_then(|o| {
            tracing::info!(
                "offline fallback: answering from the sealed store in {} when Secrets Manager cannot be reached",
                o.store_dir().display()
            );
            o.spawn_refresh()
        });
        tracing::info!(
            "lockbox serve listening on {}",
            listener.local_addr().unwrap_or(addr)
        );
        Ok(Self {
            listener,
            state,
            header_read_timeout: config.lockbox.header_read_timeout,
            max_headers: config.lockbox.max_headers,
            refresh,
        })
    }

    /// The address it listens on (the port is the one bound, also when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// (up to 10 s) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(MAX_BUF_BYTES)
            .max_headers(self.max_headers)
            .keep_alive(true);
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let active = self.state.active.load(Ordering::Relaxed);
            if active >= self.state.max_conn + OVERFLOW_CONNECTIONS {
                drop(stream);
                continue;
            }
            // Prohibit network hops, as the agent does.
            let _ = stream.set_ttl(1);
            let _ = stream.set_nodelay(true);
            let guard = ConnGuard::new(self.state.clone());
            let state = self.state.clone();
            // Only looked up when some consumer is identified by uid.
            let local = if self.state.uid_consumers {
                stream.local_addr().ok()
            } else {
                None
            };
            let builder = builder.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _guard = guard;
                let peer_uid = match (state.uid_consumers, local) {
                    (true, Some(local)) => {
                        tokio::task::spawn_blocking(move || crate::peer::tcp_peer_uid(peer, local))
                            .await
                            .ok()
                            .flatten()
                    }
                    _ => None,
                };
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(&state, req, peer_uid).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = watcher.watch(conn);
                if let Err(e) = conn.await {
                    tracing::debug!("connection ended: {e}");
                }
            });
        }
        drop(self.listener);
        if let Some(refresh) = &self.refresh {
            refresh.abort();
        }
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(SHUTDOWN_GRACE) => {
                tracing::warn!("in-flight requests did not finish within {SHUTDOWN_GRACE:?}");
            }
        }
        Ok(())
    }
}

async fn check_credentials(sdk: &aws_config::SdkConfig) -> Result<()> {
    use aws_credential_types::provider::ProvideCredentials;
    let unauthenticated = |detail: String| {
        Error::new(
            ErrorKind::Unauthenticated,
            "serve",
            format!(
                "no usable AWS credentials ({detail}); set validate_credentials = false to start anyway"
            ),
        )
    };
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| unauthenticated("no credentials provider".into()))?;
    provider
        .provide_credentials()
        .await
        .map(|_| ())
        .map_err(|e| unauthenticated(e.to_string()))
}

async fn prefetch(state: &State, config: &ServeConfig) {
    let lists = [
        (
            &state.secrets,
            config
                .lockbox
                .prefetch_secrets
                .iter()
                .map(|id| Request::Secret {
                    id: id.clone(),
                    version_id: None,
                    stage: None,
                })
                .collect::<Vec<_>>(),
        ),
        (
            &state.parameters,
            config
                .lockbox
                .prefetch_parameters
                .iter()
                .map(|name| Request::Parameter {
                    name: name.clone(),
                    decrypt: true,
                })
                .collect(),
        ),
    ];
    for (service, requests) in lists {
        let Some(cache) = &service.cache else {
            continue;
        };
        let names: Vec<_> = requests.iter().filter_map(Request::cache_name).collect();
        for (req, result) in requests.iter().zip(cache.get_many(&names).await) {
            if let Err(e) = result {
                tracing::warn!("prefetch of {} failed: {e}", req.target());
            }
        }
    }
}

/// Counts a connection while it lives.
struct ConnGuard(Arc<State>);

impl ConnGuard {
    fn new(state: Arc<State>) -> Self {
        state.active.fetch_add(1, Ordering::Relaxed);
        Self(state)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

type Body = Full<Bytes>;

fn reply(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

fn route_of(path: &str, prefix: &str) -> Route {
    match path {
        "/ping" => Route::Ping,
        "/secretsmanager/get" => Route::SecretsGet,
        "/systemsmanager/parameters/get" => Route::Parameters,
        "/metrics" => Route::Metrics,
        p if p.starts_with(prefix) => Route::Prefix,
        _ => Route::Other,
    }
}

async fn handle(
    state: &State,
    req: HttpRequest<Incoming>,
    peer_uid: Option<u32>,
) -> Response<Body> {
    let started = Instant::now();
    let route = route_of(req.uri().path(), &state.path_prefix);
    let response = match answer(state, &req, route, peer_uid).await {
        Ok(body) => reply(200, body),
        Err((status, body)) => reply(status, body),
    };
    state
        .metrics
        .request(route, response.status().as_u16(), started.elapsed());
    response
}

type Answer = std::result::Result<Bytes, (u16, String)>;

/// Who a request is from, when a consumers file is configured.
enum Caller<'a> {
    /// No consumers file: the SSRF token is all there is.
    Anyone,
    /// The consumer the request's token or peer uid names.
    Consumer(&'a Consumer),
    /// The SSRF token, and no consumer (its uid is nobody's): `/metrics` only.
    Unidentified,
}

fn denied(message: String) -> (u16, String) {
    let up = UpstreamError {
        status: 403,
        code: "AccessDeniedException".into(),
        message,
    };
    (403, up.body())
}

/// With a consumers file: the consumer whose own token a header carries (the SSRF token is
/// then not needed); else, with the SSRF token, the consumer running as the peer's uid.
fn identify<'a>(
    state: &'a State,
    headers: &hyper::HeaderMap,
    peer_uid: Option<u32>,
) -> std::result::Result<Caller<'a>, (u16, String)> {
    let Some(consumers) = &state.consumers else {
        return if token_ok(state, headers) {
            Ok(Caller::Anyone)
        } else {
            Err((403, "Bad Token".into()))
        };
    };
    let mut by_token = None;
    for name in &state.ssrf_headers {
        for value in headers.get_all(name) {
            if let Ok(v) = value.to_str()
                && let Some(c) = consumers.by_token(v)
            {
                by_token.get_or_insert(c);
            }
        }
    }
    if let Some(c) = by_token {
        return Ok(Caller::Consumer(c));
    }
    if !token_ok(state, headers) {
        return Err((403, "Bad Token".into()));
    }
    Ok(match peer_uid.and_then(|uid| consumers.by_uid(uid)) {
        Some(c) => Caller::Consumer(c),
        None => Caller::Unidentified,
    })
}

/// May `caller` read `request`? Secrets are authorised by their resource in the store;
/// anything the store does not hold (and every SSM parameter) is nobody's resource.
fn authorize(
    state: &State,
    caller: &Caller<'_>,
    request: &Request,
) -> std::result::Result<(), (u16, String)> {
    let consumer = match caller {
        Caller::Anyone => return Ok(()),
        Caller::Consumer(c) => c,
        Caller::Unidentified => {
            return Err(denied(format!(
                "no consumer is identified by this request, so it may not read {}: send a \
                 consumer's token, or connect as a consumer's uid",
                request.target()
            )));
        }
    };
    let decision = match (request, &state.offline) {
        (Request::Secret { id, .. }, Some(offline)) => match offline.find(id) {
            Some(secret) => consumer.authorize_secret(&secret),
            None => consumer.authorize(id),
        },
        _ => consumer.authorize(request.target()),
    };
    match decision {
        Decision::Allowed => Ok(()),
        denial => Err(denied(denial.message().unwrap_or_default())),
    }
}

async fn answer(
    state: &State,
    req: &HttpRequest<Incoming>,
    route: Route,
    peer_uid: Option<u32>,
) -> Answer {
    // The agent's order: connection limit, then (except /ping) forwarding and token, then
    // the method.
    let active = state.active.load(Ordering::Relaxed);
    let limit = if route == Route::Ping {
        state.max_conn + 2
    } else {
        state.max_conn
    };
    if active > limit {
        return Err((429, "Connection limit exceeded".into()));
    }
    let mut caller = Caller::Anyone;
    if route != Route::Ping {
        let headers = req.headers();
        if headers.contains_key("x-forwarded-for") {
            tracing::warn!("Rejecting request with X-Forwarded-For header");
            return Err((400, "Forwarded".into()));
        }
        caller = identify(state, headers, peer_uid).inspect_err(|_| {
            tracing::warn!("Rejecting request with incorrect SSRF token");
        })?;
    }
    if req.method() != Method::GET {
        return Err((405, "Not allowed".into()));
    }
    let query = req.uri().query().unwrap_or("");
    match route {
        Route::Ping => Ok(Bytes::from_static(b"healthy")),
        Route::SecretsGet => {
            let q = SecretQuery::parse(query, None)?.by_resource(state);
            authorize(state, &caller, &q.request)?;
            read(state, &state.secrets, q.request, q.refresh).await
        }
        Route::Prefix => {
            let id = &req.uri().path()[state.path_prefix.len()..];
            if id.is_empty() {
                return Err((400, "missing secret ID".into()));
            }
            let q = SecretQuery::parse(query, Some(id))?.by_resource(state);
            authorize(state, &caller, &q.request)?;
            read(state, &state.secrets, q.request, q.refresh).await
        }
        Route::Parameters => {
            let (request, refresh) = parameter_query(query)?;
            authorize(state, &caller, &request)?;
            read(state, &state.parameters, request, refresh).await
        }
        Route::Metrics
            if state.metrics_enabled
                && state.consumers.is_some()
                && !token_ok(state, req.headers()) =>
        {
            Err(denied(
                "/metrics takes the SSRF token, not a consumer's identity".into(),
            ))
        }
        Route::Metrics if state.metrics_enabled => Ok(Bytes::from(
            state
                .metrics
                .render(state.secrets.stats(), state.parameters.stats()),
        )),
        Route::Metrics | Route::Other => Err((404, "Not found".into())),
    }
}

fn token_ok(state: &State, headers: &hyper::HeaderMap) -> bool {
    let mut ok = subtle::Choice::from(0u8);
    for name in &state.ssrf_headers {
        for value in headers.get_all(name) {
            ok |= digest(value.as_bytes()).ct_eq(&state.token_digest);
        }
    }
    ok.into()
}

fn parse_bool(value: &str, what: &str) -> std::result::Result<bool, (u16, String)> {
    match value.to_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err((400, format!("invalid {what} value"))),
    }
}

struct SecretQuery {
    request: Request,
    refresh: bool,
}

impl SecretQuery {
    /// A secret named by its Greengrass v1 resource id in the store is read by its ARN.
    fn by_resource(mut self, state: &State) -> Self {
        if let (Some(offline), Request::Secret { id, .. }) = (&state.offline, &mut self.request)
            && let Some(arn) = offline.resource_arn(id)
        {
            *id = arn;
        }
        self
    }

    /// The agent's query rules: `secretId` (only on `/secretsmanager/get`), `versionId`,
    /// `versionStage`, `refreshNow`; anything else is refused by name.
    fn parse(query: &str, path_id: Option<&str>) -> std::result::Result<Self, (u16, String)> {
        let mut id = path_id.map(str::to_owned).unwrap_or_default();
        let (mut version_id, mut stage, mut refresh) = (None, None, false);
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "secretId" if path_id.is_none() => id = v.into_owned(),
                "versionId" => version_id = Some(v.into_owned()),
                "versionStage" => stage = Some(v.into_owned()),
                "refreshNow" => refresh = parse_bool(&v, "refreshNow")?,
                p => return Err((400, format!("unknown parameter: {p}"))),
            }
        }
        if id.is_empty() {
            return Err((400, "missing parameter secretId".into()));
        }
        Ok(Self {
            request: Request::Secret {
                id,
                version_id,
                stage,
            },
            refresh,
        })
    }
}

/// The extension's query: `name` (required), `version` or `label` (not both),
/// `withDecryption`; lockbox adds `refreshNow`.
fn parameter_query(query: &str) -> std::result::Result<(Request, bool), (u16, String)> {
    let (mut name, mut version, mut label, mut decrypt, mut refresh) =
        (String::new(), None, None, false, false);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "name" => name = v.into_owned(),
            "version" => version = Some(v.into_owned()),
            "label" => label = Some(v.into_owned()),
            "withDecryption" => decrypt = parse_bool(&v, "withDecryption")?,
            "refreshNow" => refresh = parse_bool(&v, "refreshNow")?,
            p => return Err((400, format!("unknown parameter: {p}"))),
        }
    }
    if name.is_empty() {
        return Err((400, "missing parameter name".into()));
    }
    let selector = match (version, label) {
        (Some(_), Some(_)) => {
            return Err((400, "version and label cannot both be given".into()));
        }
        (Some(v), None) => {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err((400, "invalid version value".into()));
            }
            Some(v)
        }
        (None, Some(l)) if l.is_empty() => return Err((400, "invalid label value".into())),
        (None, l) => l,
    };
    if let Some(sel) = selector {
        name = format!("{name}:{sel}");
    }
    Ok((Request::Parameter { name, decrypt }, refresh))
}

async fn read(state: &State, service: &ServiceCache, request: Request, refresh: bool) -> Answer {
    let name = request.cache_name();
    // A fresh hit answers at once: no upstream call, so no timer to arm.
    let hit = match (&service.cache, &name, refresh) {
        (Some(cache), Some(name), false) => lockbox_core::SecretsManager::get_cached(cache, name),
        _ => None,
    };
    let outcome = match hit {
        Some(outcome) => Ok(outcome),
        None => {
            let fetch = async {
                match (&service.cache, &name) {
                    (Some(cache), Some(name)) => {
                        if refresh {
                            cache.invalidate(name);
                        }
                        cache.get(name).await
                    }
                    _ => {
                        state.metrics.uncached_read();
                        state.upstream.fetch(&request).await
                    }
                }
            };
            tokio::time::timeout(state.request_timeout, fetch).await
        }
    };
    let result: std::result::Result<SecretValue, UpstreamError> = match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            // The error names the secret and AWS's code, never a value.
            tracing::warn!("read of {} failed: {e}", request.target());
            Err(UpstreamError::of(&e))
        }
        Err(_) => {
            state.metrics.timeout();
            Err(UpstreamError::timeout())
        }
    };
    if let (
        Some(offline),
        Request::Secret {
            id,
            version_id,
            stage,
        },
    ) = (&state.offline, &request)
    {
        let (version_id, stage) = (version_id.as_deref(), stage.as_deref());
        match &result {
            Ok(_) => offline.cloud_answered(id, version_id, stage),
            Err(up) => match Verdict::of(up) {
                Verdict::Deleted => offline.cloud_deleted(id, version_id, stage, up),
                Verdict::Unreachable => {
                    if let Some(answer) = offline.answer(id, version_id, stage) {
                        return answer.map_err(|e| (e.status, e.body()));
                    }
                }
                Verdict::Other => {}
            },
        }
    }
    match result {
        Ok(value) => Ok(Bytes::copy_from_slice(value.expose_bytes())),
        Err(up) => Err((up.status, up.body())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_follow_the_agent() {
        let q = SecretQuery::parse("secretId=a%2Fb&versionStage=AWSPREVIOUS&refreshNow=1", None)
            .unwrap();
        assert!(q.refresh);
        assert_eq!(
            q.request,
            Request::Secret {
                id: "a/b".into(),
                version_id: None,
                stage: Some("AWSPREVIOUS".into())
            }
        );
        assert_eq!(
            SecretQuery::parse("versionId=x", None).err().unwrap(),
            (400, "missing parameter secretId".into())
        );
        assert_eq!(
            SecretQuery::parse("secretId=a&foo=1", None).err().unwrap(),
            (400, "unknown parameter: foo".into())
        );
        assert_eq!(
            SecretQuery::parse("secretId=a", Some("b")).err().unwrap(),
            (400, "unknown parameter: secretId".into())
        );
        assert_eq!(
            SecretQuery::parse("refreshNow=maybe", Some("b"))
                .err()
                .unwrap(),
            (400, "invalid refreshNow value".into())
        );
        let (r, _) = parameter_query("name=/a/b&label=prod&withDecryption=true").unwrap();
        assert_eq!(
            r,
            Request::Parameter {
                name: "/a/b:prod".into(),
                decrypt: true
            }
        );
        assert!(parameter_query("name=a&version=1&label=x").is_err());
        assert!(parameter_query("version=1").is_err());
        assert!(parameter_query("name=a&version=x").is_err());
    }
}
