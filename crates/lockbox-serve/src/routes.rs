//! One request: the agent's checks in the agent's order (connection limit, forwarding, token,
//! method), who is asking (with consumers), and the route's answer.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method, Request as HttpRequest, Response};
use lockbox_resources::{Consumer, Decision};
use subtle::ConstantTimeEq;

use crate::admission::Slot;
use crate::conn_io::Pipeline;
use crate::metrics::Route;
use crate::query::Query;
use crate::read::read;
use crate::rejection::{Body, Rejection};
use crate::request::RequestRef;
use crate::state::State;

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

/// Answers one request and counts it.
pub(crate) async fn handle(
    state: &State,
    conn: &Conn,
    req: HttpRequest<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    let route = route_of(req.uri().path(), &state.path_prefix);
    let answered = if conn.pipeline.request() > state.max_pipelined {
        state.metrics.pipelined();
        Err(Rejection::Pipelined)
    } else {
        answer(state, conn, &req, route).await
    };
    let response = match answered {
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

async fn answer(
    state: &State,
    conn: &Conn,
    req: &HttpRequest<Incoming>,
    route: Route,
) -> Result<Bytes, Rejection> {
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
    let mut caller = Caller::Anyone;
    if let Some(identity) = identity {
        if req.headers().contains_key("x-forwarded-for") {
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
        Route::Ping => Ok(Bytes::from_static(b"healthy")),
        Route::SecretsGet => {
            let q = authorize(state, &caller, Query::secret(query, None)?)?;
            read(state, &state.secrets, q).await
        }
        Route::Prefix => {
            let id = &req.uri().path()[state.path_prefix.len()..];
            if id.is_empty() {
                return Err(Rejection::BadQuery("missing secret ID".into()));
            }
            let q = authorize(state, &caller, Query::secret(query, Some(id))?)?;
            read(state, &state.secrets, q).await
        }
        Route::Parameters => {
            let q = authorize(state, &caller, Query::parameter(query)?)?;
            read(state, &state.parameters, q).await
        }
        Route::Metrics
            if state.metrics_enabled
                && state.consumers.is_some()
                && !token_ok(state, req.headers()) =>
        {
            // /metrics takes the SSRF token, not a consumer's identity.
            Err(Rejection::Denied("/metrics".into()))
        }
        Route::Metrics if state.metrics_enabled => Ok(Bytes::from(state.metrics.render(
            state.secrets.stats(),
            state.parameters.stats(),
            (state.conns.active(), state.conns.unproven()),
        ))),
        Route::Metrics | Route::Other => Err(Rejection::NotFound),
    }
}

/// Whether an SSRF header carries the token: each value compared with the token's bytes in
/// constant time (a length mismatch answers at once; the length is not the secret).
fn token_ok(state: &State, headers: &HeaderMap) -> bool {
    let mut ok = subtle::Choice::from(0u8);
    for name in &state.ssrf_headers {
        for value in headers.get_all(name) {
            ok |= value.as_bytes().ct_eq(&state.token);
        }
    }
    ok.into()
}
