//! A probe backend for the cache tests: an in-memory store that counts calls, splits
//! `get_many` into requests of a backend's batch size, injects errors and can hold fetches at
//! a gate.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lockbox_cache::{CacheConfig, ManualClock};
use lockbox_core::{
    Error, ErrorKind, MemoryBackend, PutMode, Result, SecretName, SecretValue, SecretsManager,
};
use tokio::sync::watch;

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

#[derive(Debug)]
pub struct Probe {
    pub store: MemoryBackend,
    /// Names per backend request in `get_many` (SSM 10, Secrets Manager 20); 0 = unlimited.
    pub chunk: usize,
    pub gets: AtomicUsize,
    pub get_many_calls: AtomicUsize,
    /// Backend requests, as a real backend would send them.
    pub requests: AtomicUsize,
    pub batch_sizes: Mutex<Vec<usize>>,
    /// Error kinds to answer with, per name ("*" for every name).
    pub fail: Mutex<HashMap<String, ErrorKind>>,
    gate: watch::Sender<bool>,
    /// Fetches that reached the gate.
    pub entered: AtomicUsize,
    pub panic: std::sync::atomic::AtomicBool,
}

impl Probe {
    pub fn new(chunk: usize) -> Arc<Self> {
        Arc::new(Self {
            store: MemoryBackend::new(),
            chunk,
            gets: AtomicUsize::new(0),
            get_many_calls: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            batch_sizes: Mutex::new(Vec::new()),
            fail: Mutex::new(HashMap::new()),
            gate: watch::channel(true).0,
            entered: AtomicUsize::new(0),
            panic: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub async fn seed(&self, name: &str, value: &str) {
        self.store
            .put(&n(name), &v(value), PutMode::Overwrite)
            .await
            .unwrap();
    }

    pub fn close_gate(&self) {
        self.gate.send_replace(false);
    }

    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    pub fn fail_with(&self, name: &str, kind: Option<ErrorKind>) {
        let mut fail = self.fail.lock().unwrap();
        match kind {
            Some(k) => fail.insert(name.to_string(), k),
            None => fail.remove(name),
        };
    }

    pub fn calls(&self) -> usize {
        self.gets.load(Ordering::SeqCst) + self.get_many_calls.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    async fn pass_gate(&self) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut rx = self.gate.subscribe();
        rx.wait_for(|open| *open).await.unwrap();
        if self.panic.load(Ordering::SeqCst) {
            panic!("probe told to panic");
        }
    }

    async fn read(&self, name: &SecretName) -> Result<SecretValue> {
        let kind = {
            let fail = self.fail.lock().unwrap();
            fail.get(name.as_str()).or_else(|| fail.get("*")).copied()
        };
        match kind {
            Some(kind) => Err(Error::new(kind, "probe", "injected").with_secret(name)),
            None => self.store.get(name).await,
        }
    }
}

#[async_trait]
impl SecretsManager for Probe {
    fn backend(&self) -> &'static str {
        "probe"
    }

    async fn get(&self, name: &SecretName) -> Result<SecretValue> {
        self.pass_gate().await;
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.read(name).await
    }

    async fn get_many(&self, names: &[SecretName]) -> Vec<Result<SecretValue>> {
        self.pass_gate().await;
        self.get_many_calls.fetch_add(1, Ordering::SeqCst);
        self.batch_sizes.lock().unwrap().push(names.len());
        let requests = if self.chunk == 0 {
            1
        } else {
            names.len().div_ceil(self.chunk)
        };
        self.requests.fetch_add(requests, Ordering::SeqCst);
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(self.read(name).await);
        }
        out
    }

    async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
        self.store.put(name, value, mode).await
    }

    async fn delete(&self, name: &SecretName) -> Result<()> {
        self.store.delete(name).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        self.store.list(prefix).await
    }
}
