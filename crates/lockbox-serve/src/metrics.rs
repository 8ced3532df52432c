//! Counters for `GET /metrics`, in the Prometheus text format. Lock-free: fixed tables of
//! atomics indexed by route and status.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lockbox_cache::CacheStats;
use lockbox_core::ErrorKind;

use crate::admission::Refusal;

/// The routes requests are counted under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Ping,
    SecretsGet,
    Prefix,
    Parameters,
    Metrics,
    Other,
}

const ROUTES: [(Route, &str); 6] = [
    (Route::Ping, "/ping"),
    (Route::SecretsGet, "/secretsmanager/get"),
    (Route::Prefix, "path_prefix"),
    (Route::Parameters, "/systemsmanager/parameters/get"),
    (Route::Metrics, "/metrics"),
    (Route::Other, "other"),
];

const STATUSES: [u16; 12] = [200, 400, 401, 403, 404, 405, 429, 500, 502, 503, 504, 0];

const KINDS: [(ErrorKind, &str); 5] = [
    (ErrorKind::NotFound, "not_found"),
    (ErrorKind::PermissionDenied, "permission_denied"),
    (ErrorKind::Throttled, "throttled"),
    (ErrorKind::Unavailable, "unavailable"),
    (ErrorKind::Backend, "other"),
];

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 10.0,
];

/// The endpoint's counters.
#[derive(Default)]
pub(crate) struct Metrics {
    requests: [[AtomicU64; STATUSES.len()]; ROUTES.len()],
    errors: [AtomicU64; KINDS.len()],
    backend_calls: AtomicU64,
    uncached_reads: AtomicU64,
    timeouts: AtomicU64,
    fallback_served: AtomicU64,
    syncs_ok: AtomicU64,
    syncs_failed: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_nanos: AtomicU64,
    /// Connections closed at once, by [`Refusal`]: overflow, reserve, peer.
    refused: [AtomicU64; 3],
    write_timeouts: AtomicU64,
    pipelined: AtomicU64,
}

impl Metrics {
    pub(crate) fn request(&self, route: Route, status: u16, took: Duration) {
        let r = ROUTES.iter().position(|(x, _)| *x == route).unwrap_or(5);
        let s = STATUSES
            .iter()
            .position(|x| *x == status)
            .unwrap_or(STATUSES.len() - 1);
        self.requests[r][s].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|le| secs <= *le) {
            self.buckets[b].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn connection_refused(&self, why: Refusal) {
        let i = match why {
            Refusal::Overflow => 0,
            Refusal::Reserve => 1,
            Refusal::Peer => 2,
        };
        self.refused[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn write_timeout(&self) {
        self.write_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn pipelined(&self) {
        self.pipelined.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn backend_call(&self) {
        self.backend_calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn uncached_read(&self) {
        self.uncached_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn timeout(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn fallback_served(&self) {
        self.fallback_served.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sync(&self, ok: bool) {
        let c = if ok {
            &self.syncs_ok
        } else {
            &self.syncs_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn upstream_error(&self, kind: ErrorKind) {
        let i = KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(4);
        self.errors[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition; `connections` is (open, open without a token shown).
    pub(crate) fn render(
        &self,
        secrets: CacheStats,
        parameters: CacheStats,
        connections: (usize, usize),
    ) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut o = String::with_capacity(4096);
        let _ = writeln!(
            o,
            "# HELP lockbox_serve_requests_total Requests answered, by route and status."
        );
        let _ = writeln!(o, "# TYPE lockbox_serve_requests_total counter");
        for (r, (_, path)) in ROUTES.iter().enumerate() {
            for (s, status) in STATUSES.iter().enumerate() {
                let n = get(&self.requests[r][s]);
                if n > 0 {
                    let status = if *status == 0 {
                        "other".to_string()
                    } else {
                        status.to_string()
                    };
                    let _ = writeln!(
                        o,
                        "lockbox_serve_requests_total{{path=\"{path}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        let counters = [
            (
                "cache_hits_total",
                "Reads answered from the cache.",
                "service",
                [secrets.hits, parameters.hits],
            ),
            (
                "cache_misses_total",
                "Reads that waited for AWS.",
                "service",
                [secrets.misses, parameters.misses],
            ),
            (
                "cache_coalesced_total",
                "Misses that joined a read already under way.",
                "service",
                [secrets.coalesced_waits, parameters.coalesced_waits],
            ),
            (
                "stale_served_total",
                "Cached values served because a refresh failed transiently.",
                "service",
                [secrets.stale_served, parameters.stale_served],
            ),
            (
                "cache_evictions_total",
                "Entries dropped to stay within cache_size.",
                "service",
                [secrets.evictions, parameters.evictions],
            ),
        ];
        for (name, help, label, [sm, ssm]) in counters {
            let _ = writeln!(o, "# HELP lockbox_serve_{name} {help}");
            let _ = writeln!(o, "# TYPE lockbox_serve_{name} counter");
            let _ = writeln!(o, "lockbox_serve_{name}{{{label}=\"secretsmanager\"}} {sm}");
            let _ = writeln!(o, "lockbox_serve_{name}{{{label}=\"ssm\"}} {ssm}");
        }
        for (name, help, v) in [
            (
                "backend_calls_total",
                "Calls made to AWS.",
                get(&self.backend_calls),
            ),
            (
                "uncached_reads_total",
                "Reads made without the cache (refreshNow excluded).",
                get(&self.uncached_reads),
            ),
            (
                "request_timeouts_total",
                "Reads that took longer than the request timeout.",
                get(&self.timeouts),
            ),
            (
                "fallback_served_total",
                "Secrets answered from the sealed store because Secrets Manager could not be reached (stale answers).",
                get(&self.fallback_served),
            ),
        ] {
            let _ = writeln!(o, "# HELP lockbox_serve_{name} {help}");
            let _ = writeln!(o, "# TYPE lockbox_serve_{name} counter");
            let _ = writeln!(o, "lockbox_serve_{name} {v}");
        }
        let (open, unproven) = connections;
        let _ = writeln!(
            o,
            "# HELP lockbox_serve_connections Connections open, by whether one of their requests showed a valid token."
        );
        let _ = writeln!(o, "# TYPE lockbox_serve_connections gauge");
        let _ = writeln!(
            o,
            "lockbox_serve_connections{{token=\"yes\"}} {}",
            open.saturating_sub(unproven)
        );
        let _ = writeln!(o, "lockbox_serve_connections{{token=\"no\"}} {unproven}");
        let _ = writeln!(
            o,
            "# HELP lockbox_serve_connections_dropped_total Connections closed by a limit, by reason."
        );
        let _ = writeln!(o, "# TYPE lockbox_serve_connections_dropped_total counter");
        for (reason, v) in [
            ("overflow", &self.refused[0]),
            ("token_reserve", &self.refused[1]),
            ("peer_limit", &self.refused[2]),
            ("write_timeout", &self.write_timeouts),
            ("pipelined", &self.pipelined),
        ] {
            let _ = writeln!(
                o,
                "lockbox_serve_connections_dropped_total{{reason=\"{reason}\"}} {}",
                get(v)
            );
        }
        let _ = writeln!(
            o,
            "# HELP lockbox_serve_store_syncs_total Syncs of the sealed store, by result."
        );
        let _ = writeln!(o, "# TYPE lockbox_serve_store_syncs_total counter");
        for (result, v) in [("ok", &self.syncs_ok), ("failed", &self.syncs_failed)] {
            let _ = writeln!(
                o,
                "lockbox_serve_store_syncs_total{{result=\"{result}\"}} {}",
                get(v)
            );
        }
        let _ = writeln!(
            o,
            "# HELP lockbox_serve_upstream_errors_total Errors from AWS, by kind."
        );
        let _ = writeln!(o, "# TYPE lockbox_serve_upstream_errors_total counter");
        for (i, (_, kind)) in KINDS.iter().enumerate() {
            let _ = writeln!(
                o,
                "lockbox_serve_upstream_errors_total{{kind=\"{kind}\"}} {}",
                get(&self.errors[i])
            );
        }
        let _ = writeln!(
            o,
            "# HELP lockbox_serve_request_duration_seconds Time to answer a request."
        );
        let _ = writeln!(o, "# TYPE lockbox_serve_request_duration_seconds histogram");
        let mut cumulative = 0;
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += get(&self.buckets[i]);
            let _ = writeln!(
                o,
                "lockbox_serve_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(
            o,
            "lockbox_serve_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            o,
            "lockbox_serve_request_duration_seconds_sum {}",
            get(&self.latency_sum_nanos) as f64 / 1e9
        );
        let _ = writeln!(o, "lockbox_serve_request_duration_seconds_count {count}");
        o
    }
}
