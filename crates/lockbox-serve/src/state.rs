//! What every request handler shares: the response caches, the token, the limits, the offline
//! store and the consumers.

use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderName;
use lockbox_cache::{CacheConfig, CacheStats, LoadingCache};
use lockbox_resources::Consumers;

use crate::admission::Admission;
use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::offline::Offline;
use crate::request::Request;
use crate::upstream::Upstream;

/// The response cache: finished bodies by typed request.
pub(crate) type ResponseCache = LoadingCache<Request, Upstream>;

/// One service's cache (none when its TTL is 0) and how long a read of it may wait for AWS.
pub(crate) struct ServiceCache {
    pub(crate) cache: Option<ResponseCache>,
    /// `request_timeout` for Secrets Manager; SSM's own (`SSM_PARAMETER_STORE_TIMEOUT_MILLIS`
    /// in Lambda extension mode) for parameters.
    pub(crate) timeout: Duration,
}

impl ServiceCache {
    pub(crate) fn new(
        upstream: &Upstream,
        ttl: Duration,
        timeout: Duration,
        config: &ServeConfig,
    ) -> Self {
        let cache = (!ttl.is_zero()).then(|| {
            LoadingCache::new(
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
        Self { cache, timeout }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        self.cache
            .as_ref()
            .map(LoadingCache::stats)
            .unwrap_or_default()
    }
}

/// Everything a request handler needs.
pub(crate) struct State {
    pub(crate) upstream: Upstream,
    pub(crate) secrets: ServiceCache,
    pub(crate) parameters: ServiceCache,
    pub(crate) metrics: Arc<Metrics>,
    /// The SSRF token's bytes, compared in constant time with each header value.
    pub(crate) token: Box<[u8]>,
    pub(crate) ssrf_headers: Vec<HeaderName>,
    pub(crate) path_prefix: String,
    /// `max_headers`: a request with more header lines is refused (431).
    pub(crate) max_headers: usize,
    /// Connection counts and limits.
    pub(crate) conns: Arc<Admission>,
    /// `max_pipelined_requests`.
    pub(crate) max_pipelined: usize,
    pub(crate) metrics_enabled: bool,
    pub(crate) offline: Option<Arc<Offline>>,
    pub(crate) consumers: Option<Consumers>,
}

impl Drop for State {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut *self.token);
    }
}
