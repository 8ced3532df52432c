//! Helpers for the cache tests, and the probe backend: the test kit's fault-injecting backend
//! named "probe", which counts calls, splits `get_many` into requests of a backend's batch
//! size, injects errors and can hold fetches at a gate.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use lockbox_cache::{CacheConfig, ManualClock};
use lockbox_core::{SecretName, SecretValue};
pub use lockbox_testkit::FaultyBackend as Probe;

pub fn n(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

pub fn v(s: &str) -> SecretValue {
    SecretValue::from(s)
}

/// A config on `clock` with no batching delay (misses still gather until the fetch task runs).
pub fn config(clock: &ManualClock) -> CacheConfig {
    CacheConfig {
        clock: clock.clock(),
        batch_window: Duration::ZERO,
        ..CacheConfig::default()
    }
}

/// Polls `cond` (sleeping 1 ms of Tokio time between looks, so paused clocks move too) until it
/// holds; panics after 20,000 looks. Used to wait for concurrent tasks to reach a point, never
/// to assert on durations.
pub async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..20_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("never happened: {what}");
}

/// A probe whose `get_many` counts one backend request per `chunk` names (SSM 10, Secrets
/// Manager 20; 0 = unlimited).
pub fn probe(chunk: usize) -> Arc<Probe> {
    Arc::new(Probe::new().named("probe").chunked(chunk))
}
