//! A read: the response cache's fresh entry, else AWS (through the cache, single-flight,
//! within the request timeout), else, for an outage, the offline store.

use hyper::body::Bytes;

use crate::offline::Verdict;
use crate::rejection::Rejection;
use crate::request::{Request, RequestRef};
use crate::state::{ServiceCache, State};
use crate::upstream::UpstreamError;

/// The hot path: a fresh hit found by the borrowed request, with no key built, no timer armed
/// and no upstream involved.
pub(crate) fn fresh(service: &ServiceCache, request: &RequestRef<'_>) -> Option<Bytes> {
    service.cache.as_ref()?.get_fresh(request)
}

/// The body for `request` from AWS (through the cache, invalidating first on `refresh`), or
/// why there is none.
pub(crate) async fn read(
    state: &State,
    service: &ServiceCache,
    request: Request,
    refresh: bool,
) -> Result<Bytes, Rejection> {
    let fetch = async {
        match &service.cache {
            Some(cache) => {
                if refresh {
                    cache.invalidate(&request);
                }
                cache.get(&request).await
            }
            None => {
                state.metrics.uncached_read();
                state.upstream.fetch(&request).await
            }
        }
    };
    let result = match tokio::time::timeout(service.timeout, fetch).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => {
            // The error names the secret and AWS's code, never a value.
            tracing::warn!("read of {} failed: {e}", request.target());
            Err((UpstreamError::of(&e), Verdict::of_error(Some(&e))))
        }
        Err(_) => {
            state.metrics.timeout();
            Err((UpstreamError::timeout(), Verdict::of_error(None)))
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
            Err((up, verdict)) => match verdict {
                Verdict::Deleted => offline.cloud_deleted(id, version_id, stage, up),
                Verdict::Unreachable => {
                    if let Some(answer) = offline.answer(id, version_id, stage) {
                        return answer.map_err(Rejection::from);
                    }
                }
                Verdict::Other => {}
            },
        }
    }
    result.map_err(|(up, _)| Rejection::from(up))
}
