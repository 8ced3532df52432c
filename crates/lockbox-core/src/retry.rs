//! A wrapper that retries transient failures with jittered exponential backoff.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{
    Error, PutMode, Result, SecretName, SecretValue, SecretsManager, Version, VersionInfo,
};

/// Bounds for [`Retry`]: attempts, backoff and total time.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles each time, up to `max_delay`.
    pub base_delay: Duration,
    /// Longest single backoff.
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(15),
        }
    }
}

/// A random duration from zero to `max` (inclusive), uniformly: the jitter of
/// [`RetryPolicy`]'s backoff, and of any other wait that a fleet must not run in step.
pub fn jitter(max: Duration) -> Duration {
    use rand::Rng;
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::thread_rng().gen_range(0..=nanos))
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (0-based): "full jitter", a random duration
    /// between zero and the capped exponential delay, so many clients spread out.
    fn backoff(&self, retry: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        jitter(cap)
    }

    /// Runs `op` until it succeeds, fails with an error that is not retryable, or the policy's
    /// attempts or time run out (then the last error is returned).
    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = Result<T>> + Send,
    {
        let start = Instant::now();
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if e.is_retryable() && attempt < self.max_attempts => {
                    let delay = self.backoff(attempt - 1);
                    if start.elapsed() + delay > self.max_elapsed {
                        return Err(e);
                    }
                    tracing::debug!(
                        backend = e.backend(),
                        kind = ?e.kind(),
                        attempt,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "transient failure, retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// Retries the inner backend's transient failures (throttling, unavailability) under a
/// [`RetryPolicy`]. NotFound, AlreadyExists, PermissionDenied and the like pass straight through.
///
/// An AWS backend under this wrapper should have its SDK's own retries turned off (one attempt),
/// so that attempts do not multiply.
#[derive(Debug)]
pub struct Retry<B> {
    inner: B,
    policy: RetryPolicy,
}

impl<B> Retry<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }
}

// A forwarding wrapper: a new trait method must be forwarded (and retried) here too.
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<B: SecretsManager> SecretsManager for Retry<B> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn location(&self, name: &SecretName) -> String {
        self.inner.location(name)
    }

    fn get<'a>(&'a self, name: &'a SecretName) -> crate::GetFuture<'a> {
        match self.inner.get_cached(name) {
            Some(answer) => crate::GetFuture::ready(answer),
            None => crate::GetFuture::boxed(self.get_uncached(name)),
        }
    }

    /// An answer the inner backend holds (a cache hit) needs no retry.
    #[inline]
    fn get_cached(&self, name: &SecretName) -> Option<Result<SecretValue>> {
        self.inner.get_cached(name)
    }

    async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
        self.policy.run(|| self.inner.get(name)).await
    }

    async fn get_version(&self, name: &SecretName, version: &Version) -> Result<SecretValue> {
        self.policy
            .run(|| self.inner.get_version(name, version))
            .await
    }

    async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
        // A create that failed transiently may still have been applied; if a retry then finds
        // the secret present, we cannot tell whose write it was, so say so instead of
        // reporting AlreadyExists.
        let transient_seen = std::sync::atomic::AtomicBool::new(false);
        let result = self
            .policy
            .run(|| async {
                let r = self.inner.put(name, value, mode).await;
                if r.as_ref().is_err_and(|e| e.is_retryable()) {
                    transient_seen.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                r
            })
            .await;
        match result {
            Err(e)
                if mode == PutMode::Create
                    && e.kind() == crate::ErrorKind::AlreadyExists
                    && transient_seen.load(std::sync::atomic::Ordering::Relaxed) =>
            {
                Err(Error::new(
                    crate::ErrorKind::Unavailable,
                    e.backend(),
                    "create outcome unknown: an attempt failed transiently and a retry found the \
                     secret present, possibly written by that attempt",
                )
                .with_secret(name))
            }
            other => other,
        }
    }

    async fn delete(&self, name: &SecretName) -> Result<()> {
        self.policy.run(|| self.inner.delete(name)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        self.policy.run(|| self.inner.list(prefix)).await
    }

    async fn has(&self, name: &SecretName) -> Result<bool> {
        self.policy.run(|| self.inner.has(name)).await
    }

    fn check_put(&self, name: &SecretName, value: &SecretValue) -> Result<()> {
        self.inner.check_put(name, value)
    }

    async fn read_prefix(&self, prefix: &str) -> Result<Vec<(SecretName, SecretValue)>> {
        self.policy.run(|| self.inner.read_prefix(prefix)).await
    }

    async fn history(&self, name: &SecretName) -> Result<Vec<VersionInfo>> {
        self.policy.run(|| self.inner.history(name)).await
    }

    async fn version_tags(&self, prefix: &str) -> Result<Vec<(SecretName, Option<String>)>> {
        self.policy.run(|| self.inner.version_tags(prefix)).await
    }

    /// Retries the names whose fetch failed transiently together, as one batch, under the same
    /// policy: after a throttled batch a node sends one batched call, not one call per name.
    async fn get_many(&self, names: &[SecretName]) -> Vec<Result<SecretValue>> {
        let start = Instant::now();
        let mut results = self.inner.get_many(names).await;
        let mut attempt = 1;
        loop {
            let pending: Vec<usize> = (0..names.len())
                .filter(|&i| results[i].as_ref().is_err_and(|e| e.is_retryable()))
                .collect();
            if pending.is_empty() || attempt >= self.policy.max_attempts {
                return results;
            }
            let delay = self.policy.backoff(attempt - 1);
            if start.elapsed() + delay > self.policy.max_elapsed {
                return results;
            }
            tokio::time::sleep(delay).await;
            let retry: Vec<SecretName> = pending.iter().map(|&i| names[i].clone()).collect();
            for (i, result) in pending.into_iter().zip(self.inner.get_many(&retry).await) {
                results[i] = result;
            }
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, MemoryBackend, SecretsManagerExt};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Fails the first `fail` calls with `kind`, then delegates to memory.
    #[derive(Debug)]
    struct Flaky {
        inner: MemoryBackend,
        fail: AtomicU32,
        kind: ErrorKind,
        calls: AtomicU32,
        apply_failed_writes: bool,
        log: Mutex<Vec<ErrorKind>>,
    }

    impl Flaky {
        fn new(fail: u32, kind: ErrorKind) -> Self {
            Self {
                inner: MemoryBackend::new(),
                fail: AtomicU32::new(fail),
                kind,
                calls: AtomicU32::new(0),
                apply_failed_writes: false,
                log: Mutex::new(vec![]),
            }
        }
        fn trip(&self) -> Result<()> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) > 0 {
                self.fail.fetch_sub(1, Ordering::SeqCst);
                self.log.lock().unwrap().push(self.kind);
                return Err(Error::new(self.kind, "flaky", "injected"));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl SecretsManager for Flaky {
        fn backend(&self) -> &'static str {
            "flaky"
        }
        async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
            self.trip()?;
            self.inner.get(name).await
        }
        async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
            if let Err(e) = self.trip() {
                if self.apply_failed_writes {
                    self.inner.put(name, value, mode).await?;
                }
                return Err(e);
            }
            self.inner.put(name, value, mode).await
        }
        async fn delete(&self, name: &SecretName) -> Result<()> {
            self.trip()?;
            self.inner.delete(name).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
            self.trip()?;
            self.inner.list(prefix).await
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            max_elapsed: Duration::from_secs(5),
        }
    }

    fn n(s: &str) -> SecretName {
        SecretName::new(s).unwrap()
    }

    #[tokio::test]
    async fn retries_throttling_until_success() {
        let flaky = Flaky::new(2, ErrorKind::Throttled);
        flaky
            .inner
            .create(&n("k"), &SecretValue::from("v"))
            .await
            .unwrap();
        let r = Retry::new(flaky, fast());
        assert_eq!(r.get(&n("k")).await.unwrap().expose_bytes(), b"v");
        assert_eq!(r.inner.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_with_the_last_error() {
        let r = Retry::new(Flaky::new(10, ErrorKind::Unavailable), fast());
        let e = r.get(&n("k")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(r.inner.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn never_retries_permanent_errors() {
        for kind in [
            ErrorKind::PermissionDenied,
            ErrorKind::NotFound,
            ErrorKind::Backend,
        ] {
            let r = Retry::new(Flaky::new(10, kind), fast());
            assert_eq!(r.get(&n("k")).await.unwrap_err().kind(), kind);
            assert_eq!(r.inner.calls.load(Ordering::SeqCst), 1, "{kind:?}");
        }
    }

    #[tokio::test]
    async fn stops_when_total_time_would_be_exceeded() {
        let policy = RetryPolicy {
            max_attempts: 100,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(20),
            max_elapsed: Duration::from_millis(60),
        };
        let r = Retry::new(Flaky::new(1000, ErrorKind::Throttled), policy);
        let start = Instant::now();
        assert!(r.get(&n("k")).await.is_err());
        assert!(start.elapsed() < Duration::from_millis(500));
        assert!(r.inner.calls.load(Ordering::SeqCst) < 100);
    }

    #[tokio::test]
    async fn create_that_may_have_landed_is_not_reported_as_already_exists() {
        let mut flaky = Flaky::new(1, ErrorKind::Unavailable);
        flaky.apply_failed_writes = true;
        let r = Retry::new(flaky, fast());
        let e = r
            .put(&n("k"), &SecretValue::from("v"), PutMode::Create)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains("outcome unknown"), "{e}");
        assert_eq!(r.inner.log.lock().unwrap().len(), 1);
    }

    /// Answers `get_many` from memory, except that its first call throttles every name but the
    /// first; records each batch's size and counts single `get`s.
    #[derive(Debug, Default)]
    struct Batches {
        inner: MemoryBackend,
        sizes: Mutex<Vec<usize>>,
        gets: AtomicU32,
    }

    #[async_trait]
    impl SecretsManager for Batches {
        fn backend(&self) -> &'static str {
            "batches"
        }
        async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.inner.get(name).await
        }
        async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
            self.inner.put(name, value, mode).await
        }
        async fn delete(&self, name: &SecretName) -> Result<()> {
            self.inner.delete(name).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
            self.inner.list(prefix).await
        }
        async fn get_many(&self, names: &[SecretName]) -> Vec<Result<SecretValue>> {
            let first = {
                let mut sizes = self.sizes.lock().unwrap();
                sizes.push(names.len());
                sizes.len() == 1
            };
            let mut out = Vec::new();
            for (i, name) in names.iter().enumerate() {
                out.push(if first && i > 0 {
                    Err(Error::new(ErrorKind::Throttled, "batches", "injected"))
                } else {
                    self.inner.get(name).await
                });
            }
            out
        }
    }

    #[tokio::test]
    async fn get_many_retries_the_failed_names_as_one_batch() {
        let backend = Batches::default();
        for k in ["a", "b", "c"] {
            backend
                .inner
                .create(&n(k), &SecretValue::from(k))
                .await
                .unwrap();
        }
        let r = Retry::new(backend, fast());
        let got = r.get_many(&[n("a"), n("b"), n("missing"), n("c")]).await;
        assert_eq!(got[0].as_ref().unwrap().expose_bytes(), b"a");
        assert_eq!(got[1].as_ref().unwrap().expose_bytes(), b"b");
        assert_eq!(got[2].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(got[3].as_ref().unwrap().expose_bytes(), b"c");
        assert_eq!(
            *r.inner.sizes.lock().unwrap(),
            vec![4, 3],
            "one retry batch of the 3 throttled names"
        );
        assert_eq!(r.inner.gets.load(Ordering::SeqCst), 0, "no per-name gets");
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        for retry in 0..20 {
            assert!(p.backoff(retry) <= p.max_delay);
        }
        let samples: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(3)).collect();
        assert!(samples.len() > 1, "backoff must be jittered");
    }
}
