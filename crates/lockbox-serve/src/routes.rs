//! One request: the agent's checks in the agent's order (connection limit, forwarding, token,
//! method), who is asking (with consumers), and the route's answer.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Method, Request as HttpRequest, Response};
use lockbox_resources::{Consumer, Decision};
use subtle::ConstantTimeEq;

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

/// Answers one request and counts it.
pub(crate) async fn handle(
    state: &State,
    req: HttpRequest<Incoming>,
    peer_uid: Option<u32>,
) -> Response<Body> {
    let started = Instant::now();
    let route = route_of(req.uri().path(), &state.path_prefix);
    let response = match answer(state, &req, route, peer_uid).await {
        Ok(body) => Response::new(Body::new(body)),
        Err(rejection) => rejection.into_response(),
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

async fn answer(
    state: &State,
    req: &HttpRequest<Incoming>,
    route: Route,
    peer_uid: Option<u32>,
) -> Result<Bytes, Rejection> {
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
    let mut caller = Caller::Anyone;
    if route != Route::Ping {
        let headers = req.headers();
        if headers.contains_key("x-forwarded-for") {
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
        Route::Ping => Ok(Bytes::from_static(b"healthy")),
        Route::SecretsGet => {
            let q = by_resource(state, Query::secret(query, None)?);
            authorize(state, &caller, &q.request)?;
            read(state, &state.secrets, q).await
        }
        Route::Prefix => {
            let id = &req.uri().path()[state.path_prefix.len()..];
            if id.is_empty() {
                return Err(Rejection::BadQuery("missing secret ID".into()));
            }
            let q = by_resource(state, Query::secret(query, Some(id))?);
            authorize(state, &caller, &q.request)?;
            read(state, &state.secrets, q).await
        }
        Route::Parameters => {
            let q = Query::parameter(query)?;
            authorize(state, &caller, &q.request)?;
            read(state, &state.parameters, q).await
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
        Route::Metrics if state.metrics_enabled => Ok(Bytes::from(
            state
                .metrics
                .render(state.secrets.stats(), state.parameters.stats()),
        )),
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
