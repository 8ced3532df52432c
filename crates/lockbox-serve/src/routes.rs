//! One request: the agent's checks in the agent's order (connection limit, forwarding, token,
//! method), who is asking (with consumers), and the route's answer.
//!
//! Everything answered from memory (a fresh hit, `/ping`, `/metrics`, every rejection) is
//! answered before [`handle`] returns, while it borrows hyper's request; only a read that waits
//! on AWS becomes a future, owning a copy of what it asks. So hyper's request, and the read
//! buffer its head shares, is released before hyper reads the connection again, and hyper
//! reuses that buffer instead of allocating (and, under lockbox's zeroizing allocator,
//! clearing) a new 8 KiB one per request.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderName;
use hyper::{HeaderMap, Method, Request as HttpRequest, Response};
use lockbox_resources::{Consumer, Decision};

use crate::metrics::Route;
use crate::query::Query;
use crate::read::{fresh, read};
use crate::rejection::{Body, Rejection};
use crate::request::{Request, RequestRef};
use crate::state::{ServiceCache, State};

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

/// How a request is answered: at once, or by a read that waits on AWS.
pub(crate) enum Reply {
    /// Answered from memory; already counted.
    Now(Response<Body>),
    /// A read of AWS (through the cache), owning what it asks.
    Later(PendingRead),
}

/// A read that waits on AWS, with what counting its answer needs.
pub(crate) struct PendingRead {
    state: Arc<State>,
    service: Service,
    request: Request,
    refresh: bool,
    route: Route,
    started: Instant,
}

impl PendingRead {
    /// Reads, then answers and counts the request.
    pub(crate) async fn run(self) -> Response<Body> {
        let state = &*self.state;
        let result = read(state, self.service.of(state), self.request, self.refresh).await;
        respond(state, self.route, self.started, result)
    }
}

/// Which response cache a read goes through.
#[derive(Clone, Copy)]
enum Service {
    Secrets,
    Parameters,
}

impl Service {
    fn of(self, state: &State) -> &ServiceCache {
        match self {
            Self::Secrets => &state.secrets,
            Self::Parameters => &state.parameters,
        }
    }
}

/// What a route gives: a body, or a read to wait for.
enum Answer {
    Body(Bytes),
    Read {
        service: Service,
        request: Request,
        refresh: bool,
    },
}

/// Answers one request: at once when memory can (counting it), else with the read to run.
pub(crate) fn handle(
    state: &Arc<State>,
    req: HttpRequest<Incoming>,
    peer_uid: Option<u32>,
) -> Reply {
    let started = Instant::now();
    let route = route_of(req.uri().path(), &state.path_prefix);
    match answer(state, &req, route, peer_uid) {
        Ok(Answer::Body(body)) => Reply::Now(respond(state, route, started, Ok(body))),
        Ok(Answer::Read {
            service,
            request,
            refresh,
        }) => Reply::Later(PendingRead {
            state: Arc::clone(state),
            service,
            request,
            refresh,
            route,
            started,
        }),
        Err(rejection) => Reply::Now(respond(state, route, started, Err(rejection))),
    }
}

/// The response for `result`, counted.
fn respond(
    state: &State,
    route: Route,
    started: Instant,
    result: Result<Bytes, Rejection>,
) -> Response<Body> {
    let response = match result {
        Ok(body) => Response::new(Body::new(body)),
        Err(rejection) => rejection.into_response(),
    };
    state
        .metrics
        .request(route, response.status().as_u16(), started.elapsed());
    response
}

/// A fresh cached body, else the read that fetches it.
fn lookup(state: &State, service: Service, query: Query<'_>) -> Answer {
    if !query.refresh
        && let Some(body) = fresh(service.of(state), &query.request)
    {
        return Answer::Body(body);
    }
    Answer::Read {
        service,
        request: query.request.to_owned(),
        refresh: query.refresh,
    }
}

/// Who a request is from, when a consumers file is configured.
enum Caller<'a> {
    /// No consumers file: the SSRF token is all there is.
    Anyone,
    /// The consumer the request's token or peer uid names.
    Consumer(&'a Consumer),
    /// The SSRF token, and no consumer (its uid is nobody's): `/metrics` only.
    Unidentified,
}

/// With a consumers file: the consumer whose own token a header carries (the SSRF token is
/// then not needed); else, with the SSRF token, the consumer running as the peer's uid.
fn identify<'a>(
    state: &'a State,
    headers: &HeaderMap,
    peer_uid: Option<u32>,
) -> Result<Caller<'a>, Rejection> {
    let Some(consumers) = &state.consumers else {
        return if token_ok(state, headers) {
            Ok(Caller::Anyone)
        } else {
            Err(Rejection::BadToken)
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
        return Err(Rejection::BadToken);
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
    request: &RequestRef<'_>,
) -> Result<(), Rejection> {
    let consumer = match caller {
        Caller::Anyone => return Ok(()),
        Caller::Consumer(c) => c,
        Caller::Unidentified => {
            return Err(Rejection::Denied(format!(
                "no consumer is identified by this request, so it may not read {}: send a \
                 consumer's token, or connect as a consumer's uid",
                request.target()
            )));
        }
    };
    let decision = match (request, &state.offline) {
        (RequestRef::Secret { id, .. }, Some(offline)) => match offline.find(id) {
            Some(secret) => consumer.authorize_secret(&secret),
            None => consumer.authorize(id),
        },
        _ => consumer.authorize(request.target()),
    };
    match decision {
        Decision::Allowed => Ok(()),
        denial => Err(Rejection::Denied(denial.message().unwrap_or_default())),
    }
}

/// A secret named by its Greengrass v1 resource id in the store is read by its ARN.
fn by_resource<'a>(state: &State, mut query: Query<'a>) -> Query<'a> {
    if let (Some(offline), RequestRef::Secret { id, .. }) = (&state.offline, &mut query.request)
        && let Some(arn) = offline.resource_arn(id)
    {
        *id = Cow::Owned(arn);
    }
    query
}

fn answer(
    state: &State,
    req: &HttpRequest<Incoming>,
    route: Route,
    peer_uid: Option<u32>,
) -> Result<Answer, Rejection> {
    // The agent's order: connection limit, then (except /ping) forwarding and token, then
    // the method.
    let active = state.active.load(Ordering::Relaxed);
    let limit = if route == Route::Ping {
        state.max_conn + 2
    } else {
        state.max_conn
    };
    if active > limit {
        return Err(Rejection::ConnectionLimit);
    }
    if req.headers().len() > state.max_headers {
        return Err(Rejection::TooManyHeaders);
    }
    let mut caller = Caller::Anyone;
    if route != Route::Ping {
        let headers = req.headers();
        if headers.contains_key(X_FORWARDED_FOR) {
            tracing::warn!("Rejecting request with X-Forwarded-For header");
            return Err(Rejection::Forwarded);
        }
        caller = identify(state, headers, peer_uid).inspect_err(|_| {
            tracing::warn!("Rejecting request with incorrect SSRF token");
        })?;
    }
    if req.method() != Method::GET {
        return Err(Rejection::MethodNotAllowed);
    }
    let query = req.uri().query().unwrap_or("");
    match route {
        Route::Ping => Ok(Answer::Body(Bytes::from_static(b"healthy"))),
        Route::SecretsGet => {
            let q = by_resource(state, Query::secret(query, None)?);
            authorize(state, &caller, &q.request)?;
            Ok(lookup(state, Service::Secrets, q))
        }
        Route::Prefix => {
            let id = &req.uri().path()[state.path_prefix.len()..];
            if id.is_empty() {
                return Err(Rejection::BadQuery("missing secret ID".into()));
            }
            let q = by_resource(state, Query::secret(query, Some(id))?);
            authorize(state, &caller, &q.request)?;
            Ok(lookup(state, Service::Secrets, q))
        }
        Route::Parameters => {
            let q = Query::parameter(query)?;
            authorize(state, &caller, &q.request)?;
            Ok(lookup(state, Service::Parameters, q))
        }
        Route::Metrics
            if state.metrics_enabled
                && state.consumers.is_some()
                && !token_ok(state, req.headers()) =>
        {
            Err(Rejection::Denied(
                "/metrics takes the SSRF token, not a consumer's identity".into(),
            ))
        }
        Route::Metrics if state.metrics_enabled => Ok(Answer::Body(Bytes::from(
            state
                .metrics
                .render(state.secrets.stats(), state.parameters.stats()),
        ))),
        Route::Metrics | Route::Other => Err(Rejection::NotFound),
    }
}

/// The header the agent refuses proxied requests by.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Whether an SSRF header carries the token: each value compared with the token's bytes in
/// constant time (a length mismatch answers at once; the length is not the secret). One pass
/// over the request's few headers (at most `max_headers`) costs less than a hashed lookup per
/// SSRF header name.
fn token_ok(state: &State, headers: &HeaderMap) -> bool {
    let mut ok = false;
    for (name, value) in headers {
        if state.ssrf_headers.contains(name) {
            ok |= same_bytes(value.as_bytes(), &state.token);
        }
    }
    ok
}

/// `a == b` in time that depends only on the lengths: every byte pair is folded into one
/// difference (no early exit), which the optimizer cannot see through. (subtle's `ct_eq`
/// does the same with a barrier per byte, which cost more than the rest of the token check.)
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
