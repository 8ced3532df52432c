//! One configurable fault-injecting backend for the tests of code built on `SecretsManager`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use lockbox_core::{
    Error, ErrorKind, MemoryBackend, PutMode, Result, SecretName, SecretValue, SecretsManager,
};
use tokio::sync::watch;

/// The calls a fault can be injected into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `get`, and every name of `get_many`.
    Get,
    /// `has`.
    Has,
    /// `put`.
    Put,
    /// `delete`.
    Delete,
}

/// An in-memory store that injects errors per call and name (`"*"` for every name), logs the
/// calls made (`"has k"`, `"put-Create k"`, `"get k"`, `"delete k"`), counts reads (`has`
/// counts as a `get`, as the trait's default does), splits `get_many` into requests of a
/// backend's batch size, and can hold reads at a gate.
///
/// Injected errors carry the backend's name (`"faulty"` unless [`named`](Self::named)), the
/// secret's name and the message `injected failure`.
#[derive(Debug)]
pub struct FaultyBackend {
    /// The store behind the faults; write to it to bypass them.
    pub inner: MemoryBackend,
    name: &'static str,
    /// Names per backend request in `get_many` (SSM 10, Secrets Manager 20); 0 = unlimited.
    pub chunk: usize,
    /// `get` calls.
    pub gets: AtomicUsize,
    /// `get_many` calls.
    pub get_many_calls: AtomicUsize,
    /// Backend requests, as a real backend would send them.
    pub requests: AtomicUsize,
    /// Names per `get_many` call.
    pub batch_sizes: Mutex<Vec<usize>>,
    faults: Mutex<HashMap<(Op, String), ErrorKind>>,
    has_says_absent: bool,
    fail_after_storing: bool,
    gate: watch::Sender<bool>,
    /// Reads that reached the gate.
    pub entered: AtomicUsize,
    /// When set, a read that passes the gate panics.
    pub panic: AtomicBool,
    log: Mutex<Vec<String>>,
}

impl Default for FaultyBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl FaultyBackend {
    /// An empty store named `faulty`, with no faults, no batch limit and an open gate.
    pub fn new() -> Self {
        Self {
            inner: MemoryBackend::new(),
            name: "faulty",
            chunk: 0,
            gets: AtomicUsize::new(0),
            get_many_calls: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            batch_sizes: Mutex::new(Vec::new()),
            faults: Mutex::new(HashMap::new()),
            has_says_absent: false,
            fail_after_storing: false,
            gate: watch::channel(true).0,
            entered: AtomicUsize::new(0),
            panic: AtomicBool::new(false),
            log: Mutex::new(Vec::new()),
        }
    }

    /// Reports `name` as its backend name.
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Counts a `get_many` as one request per `chunk` names (0 = one request).
    pub fn chunked(mut self, chunk: usize) -> Self {
        self.chunk = chunk;
        self
    }

    /// `op` on `name` (`"*"`: every name) fails with `kind`.
    pub fn failing(self, op: Op, name: &str, kind: ErrorKind) -> Self {
        self.set_fault(op, name, Some(kind));
        self
    }

    /// `has` answers false for every name (as if a concurrent writer got in after the check).
    pub fn has_says_absent(mut self) -> Self {
        self.has_says_absent = true;
        self
    }

    /// A failing `put` stores the value first (a timeout after the backend committed).
    pub fn fail_after_storing(mut self) -> Self {
        self.fail_after_storing = true;
        self
    }

    /// Sets (`Some`) or clears (`None`) the fault of `op` on `name` (`"*"`: every name).
    pub fn set_fault(&self, op: Op, name: &str, kind: Option<ErrorKind>) {
        let mut faults = self.faults.lock().unwrap();
        match kind {
            Some(k) => faults.insert((op, name.to_string()), k),
            None => faults.remove(&(op, name.to_string())),
        };
    }

    /// Reads of `name` (`"*"`: every name) fail with `kind`, or no longer fail (`None`).
    pub fn fail_with(&self, name: &str, kind: Option<ErrorKind>) {
        self.set_fault(Op::Get, name, kind);
    }

    /// Stores `value` at `name`, bypassing faults and counters.
    pub async fn seed(&self, name: &str, value: &str) {
        self.inner
            .put(
                &SecretName::new(name).unwrap(),
                &SecretValue::from(value),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
    }

    /// Holds every read at the gate until [`open_gate`](Self::open_gate).
    pub fn close_gate(&self) {
        self.gate.send_replace(false);
    }

    /// Lets held and later reads through.
    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    /// Read calls made: `get` plus `get_many`.
    pub fn calls(&self) -> usize {
        self.gets.load(Ordering::SeqCst) + self.get_many_calls.load(Ordering::SeqCst)
    }

    /// Backend requests made (see [`chunked`](Self::chunked)).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The calls logged so far, such as `"has validator-key"` or `"put-Create network-key"`.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Forgets the calls logged so far.
    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }

    fn record(&self, call: &str, name: &SecretName) {
        self.log.lock().unwrap().push(format!("{call} {name}"));
    }

    fn fault(&self, op: Op, name: &SecretName) -> Result<()> {
        let faults = self.faults.lock().unwrap();
        let kind = faults
            .get(&(op, name.as_str().to_string()))
            .or_else(|| faults.get(&(op, "*".to_string())));
        match kind {
            Some(&kind) => Err(Error::new(kind, self.name, "injected failure").with_secret(name)),
            None => Ok(()),
        }
    }

    async fn pass_gate(&self) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut rx = self.gate.subscribe();
        rx.wait_for(|open| *open).await.unwrap();
        if self.panic.load(Ordering::SeqCst) {
            panic!("faulty backend told to panic");
        }
    }

    async fn read(&self, name: &SecretName) -> Result<SecretValue> {
        self.fault(Op::Get, name)?;
        self.inner.get(name).await
    }
}

#[async_trait]
impl SecretsManager for FaultyBackend {
    fn backend(&self) -> &'static str {
        self.name
    }

    async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
        self.record("get", name);
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
        self.record(&format!("put-{mode:?}"), name);
        if let Err(e) = self.fault(Op::Put, name) {
            if self.fail_after_storing {
                self.inner.put(name, value, mode).await?;
            }
            return Err(e);
        }
        self.inner.put(name, value, mode).await
    }

    async fn delete(&self, name: &SecretName) -> Result<()> {
        self.record("delete", name);
        self.fault(Op::Delete, name)?;
        self.inner.delete(name).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        self.inner.list(prefix).await
    }

    async fn version_tags(&self, prefix: &str) -> Result<Vec<(SecretName, Option<String>)>> {
        self.inner.version_tags(prefix).await
    }

    async fn has(&self, name: &SecretName) -> Result<bool> {
        self.record("has", name);
        self.pass_gate().await;
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.fault(Op::Has, name)?;
        if self.has_says_absent {
            return Ok(false);
        }
        self.inner.has(name).await
    }
}
