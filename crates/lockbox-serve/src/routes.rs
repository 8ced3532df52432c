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
use std::time::Instant;

use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request as HttpRequest, Response};
use lockbox_resources::{Consumer, Decision};

use crate::admission::Slot;
use crate::conn_io::Pipeline;
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

/// One connection, as its requests see it.
pub(crate) struct Conn {
    /// Its place in the connection counts.
    pub(crate) slot: Slot,
    /// The uid owning the client's socket, when found.
    pub(crate) peer_uid: Option<u32>,
    /// Requests that arrived together.
    pub(crate) pipeline: Arc<Pipeline>,
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
pub(crate) fn handle(state: &Arc<State>, conn: &Conn, req: HttpRequest<Incoming>) -> Reply {
    let started = Instant::now();
    let route = route_of(req.uri().path(), &state.path_prefix);
    let answered = if conn.pipeline.request() > state.max_pipelined {
        state.metrics.pipelined();
        Err(Rejection::Pipelined)
    } else {
        answer(state, conn, &req, route)
    };
    match answered {
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
        Err(rejection) => {
            let close = rejection.closes();
            let mut r = rejection.into_response();
            if close {
                // The slot is given back at once rather than after the header timeout.
                r.headers_mut()
                    .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
            }
            r
        }
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

/// May `caller` read `query`? Without consumers, anything (a secret named by its Greengrass
/// v1 resource id in the store is read by its ARN). With consumers, only a secret the store
/// holds whose resource is in the consumer's policies, and it is then read by the ARN of that
/// stored secret (never by a name the cloud would resolve again); a secret outside the store
/// and every SSM parameter is nobody's resource. Every denial is the same 403, naming only the
/// id asked.
fn authorize<'a>(
    state: &State,
    caller: &Caller<'_>,
    mut query: Query<'a>,
) -> Result<Query<'a>, Rejection> {
    let consumer = match caller {
        Caller::Anyone => return Ok(by_resource(state, query)),
        Caller::Consumer(c) => Some(*c),
        Caller::Unidentified => None,
    };
    let denied = |why: &str, query: &Query<'_>| {
        let asked = query.request.target();
        tracing::info!(
            "denied a read of {asked} to {}: {why}",
            consumer.map_or("a request identifying no consumer", |c| c.name.as_str())
        );
        Rejection::Denied(asked.to_owned())
    };
    let Some(consumer) = consumer else {
        return Err(denied(
            "send a consumer's token, or connect as a consumer's uid",
            &query,
        ));
    };
    let (RequestRef::Secret { id, .. }, Some(offline)) = (&mut query.request, &state.offline)
    else {
        return Err(denied("SSM parameters are no consumer's resource", &query));
    };
    let Some(secret) = offline.find(id) else {
        return Err(denied("the secret is not in the store", &query));
    };
    match consumer.authorize_secret(&secret) {
        Decision::Allowed => {
            *id = Cow::Owned(secret.arn);
            Ok(query)
        }
        denial => Err(denied(&denial.message().unwrap_or_default(), &query)),
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
    conn: &Conn,
    req: &HttpRequest<Incoming>,
    route: Route,
) -> Result<Answer, Rejection> {
    // The agent's order: connection limit, then (except /ping) forwarding and token, then
    // the method. Whether the token is there is known first: it decides the limit.
    let ping = route == Route::Ping;
    let identity = (!ping).then(|| identify(state, req.headers(), conn.peer_uid));
    let token = matches!(identity, Some(Ok(_)));
    if token {
        conn.slot.prove();
    }
    if state.conns.over_limit(ping, token) {
        return Err(Rejection::ConnectionLimit);
    }
    if req.headers().len() > state.max_headers {
        return Err(Rejection::TooManyHeaders);
    }
    let mut caller = Caller::Anyone;
    if let Some(identity) = identity {
        if req.headers().contains_key(X_FORWARDED_FOR) {
            tracing::warn!("Rejecting request with X-Forwarded-For header");
            return Err(Rejection::Forwarded);
        }
        caller = identity.inspect_err(|_| {
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
            let q = authorize(state, &caller, Query::secret(query, None)?)?;
            Ok(lookup(state, Service::Secrets, q))
        }
        Route::Prefix => {
            let id = &req.uri().path()[state.path_prefix.len()..];
            if id.is_empty() {
                return Err(Rejection::BadQuery("missing secret ID".into()));
            }
            let q = authorize(state, &caller, Query::secret(query, Some(id))?)?;
            Ok(lookup(state, Service::Secrets, q))
        }
        Route::Parameters => {
            let q = authorize(state, &caller, Query::parameter(query)?)?;
            Ok(lookup(state, Service::Parameters, q))
        }
        Route::Metrics
            if state.metrics_enabled
                && state.consumers.is_some()
                && !token_ok(state, req.headers()) =>
        {
            // /metrics takes the SSRF token, not a consumer's identity.
            Err(Rejection::Denied("/metrics".into()))
        }
        Route::Metrics if state.metrics_enabled => {
            Ok(Answer::Body(Bytes::from(state.metrics.render(
                state.secrets.stats(),
                state.parameters.stats(),
                (state.conns.active(), state.conns.unproven()),
            ))))
        }
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
