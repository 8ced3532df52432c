//! The cache for any [`SecretsManager`]: the generic [`LoadingCache`] keyed by [`SecretName`],
//! filled by the backend, implementing the trait itself so it stacks with the other wrappers.

use std::fmt;
use std::future::Future;

use async_trait::async_trait;
use lockbox_core::{
    GetFuture, PutMode, Result, SecretName, SecretValue, SecretsManager, Version, VersionInfo,
};

use crate::load::Load;
use crate::loading::{Get, LoadingCache, Lookup, Shared};
use crate::{CacheConfig, CacheStats};

/// A backend as the loader of a [`LoadingCache`]: `get` for one name, `get_many` for a batch.
#[derive(Debug)]
pub struct BackendLoader<B>(pub B);

impl<B: SecretsManager + 'static> Load<SecretName> for BackendLoader<B> {
    type Value = SecretValue;

    fn backend(&self) -> &'static str {
        self.0.backend()
    }

    async fn load(&self, key: &SecretName) -> Result<SecretValue> {
        self.0.get(key).await
    }

    async fn load_many(&self, keys: &[SecretName]) -> Vec<Result<SecretValue>> {
        self.0.get_many(keys).await
    }
}

/// A caching [`SecretsManager`] over any backend `B`; it implements the trait itself, so it
/// stacks with the other wrappers (`Cache<Retry<B>>` retries what the cache fetches).
///
/// ```no_run
/// # async fn demo(backend: lockbox_core::MemoryBackend) -> lockbox_core::Result<()> {
/// use lockbox_cache::{Cache, CacheConfig};
/// let secrets = Cache::new(backend, CacheConfig::default());
/// let key = secrets.get(&"validator-key".parse()?).await?;
/// # let _ = key; Ok(()) }
/// ```
///
/// - A hit reads a concurrent map under a thread-local guard, takes no lock and allocates
///   nothing: the returned [`SecretValue`] is a shared handle (the reading thread's stripe's
///   copy, so threads do not share its reference count). Through `dyn SecretsManager` a hit
///   comes back the same way, in a ready [`GetFuture`] (see [`SecretsManager::get_cached`]).
/// - Filling an entry changes only that entry: a fill costs the same however many are held.
/// - Concurrent misses on one name make one backend call and share its result, error
///   included. Misses arriving together (see [`CacheConfig::batch_window`]) go to the backend
///   together through its `get_many`.
/// - Entries expire after [`CacheConfig::ttl`]; past [`CacheConfig::max_entries`] the least
///   recently used go (entries that can no longer be served at all go first).
/// - Stale-if-error, negative caching and refresh-ahead: see [`CacheConfig`].
/// - `put` and `delete` go to the backend and then drop the cached entry; an answer already
///   on its way from the backend for that name is then not stored.
/// - Only current versions are cached; `get_version` of another version, `list` and
///   uncached `has` go straight to the backend.
///
/// Misses spawn a Tokio task for the fetch, so a caller that gives up (its future dropped)
/// never strands the others waiting on the same fetch. Misses therefore need a Tokio runtime.
pub struct Cache<B: SecretsManager + 'static> {
    inner: LoadingCache<SecretName, BackendLoader<B>>,
}

impl<B: SecretsManager + 'static> Clone for Cache<B> {
    /// Another handle on the same cache.
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<B: SecretsManager + 'static> Cache<B> {
    /// Wraps `backend` in a cache with `config`.
    pub fn new(backend: B, config: CacheConfig) -> Self {
        Self {
            inner: LoadingCache::new(BackendLoader(backend), config),
        }
    }

    fn shared(&self) -> &std::sync::Arc<Shared<SecretName, BackendLoader<B>>> {
        &self.inner.shared
    }

    /// The secret's current value: from the cache when it holds a usable entry, otherwise
    /// fetched (coalesced and batched with other misses) and cached.
    ///
    /// The same as [`SecretsManager::get`] (which answers a hit without boxing too): a hit
    /// takes no lock and allocates nothing (only a miss boxes its wait).
    pub fn get<'a>(
        &'a self,
        name: &'a SecretName,
    ) -> impl Future<Output = Result<SecretValue>> + Send + 'a {
        Get {
            shared: self.shared(),
            name,
            miss: None,
        }
    }

    /// Values of several secrets, one result per name in order: hits from the cache, all
    /// misses in one batch.
    pub async fn get_many(&self, names: &[SecretName]) -> Vec<Result<SecretValue>> {
        self.inner.get_many(names).await
    }

    /// Forgets `name`: the next read asks the backend. A fetch of `name` already sent to the
    /// backend still answers the reads waiting on it but is not stored.
    pub fn invalidate(&self, name: &SecretName) {
        self.inner.invalidate(name);
    }

    /// Forgets every entry.
    pub fn invalidate_all(&self) {
        self.inner.invalidate_all();
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        self.inner.stats()
    }

    /// Entries held (values and remembered `NotFound`s, expired ones included until they are
    /// refreshed or evicted).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Whether an entry for `name` is held, usable or not. Does not count as a use.
    pub fn contains(&self, name: &SecretName) -> bool {
        self.inner.contains(name)
    }

    /// The answer a read would get from the cache right now, without asking the backend,
    /// counting a hit or starting a refresh: `None` when a read would have to wait for a fetch.
    pub fn peek(&self, name: &SecretName) -> Option<Result<SecretValue>> {
        self.inner.peek(name)
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner.loader().0
    }

    /// The settings this cache runs with.
    pub fn config(&self) -> &CacheConfig {
        self.inner.config()
    }
}

impl<B: SecretsManager + 'static> fmt::Debug for Cache<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("backend", self.inner())
            .field("entries", &self.len())
            .field("config", self.config())
            .finish()
    }
}

// A forwarding wrapper: a new trait method must be forwarded (and cached or invalidated) here too.
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<B: SecretsManager + 'static> SecretsManager for Cache<B> {
    fn backend(&self) -> &'static str {
        self.inner().backend()
    }

    fn location(&self, name: &SecretName) -> String {
        self.inner().location(name)
    }

    /// A hit is answered at once in a ready [`GetFuture`] (nothing boxed, so a hit through
    /// `Arc<dyn SecretsManager>` costs about what [`Cache::get`] does); a miss boxes its wait.
    fn get<'a>(&'a self, name: &'a SecretName) -> GetFuture<'a> {
        match self.shared().cached(name) {
            Some(answer) => GetFuture::ready(answer),
            None => GetFuture::boxed(Shared::miss(self.shared(), name)),
        }
    }

    /// A usable entry's answer (a value or a remembered `NotFound`), counted as a hit; a
    /// read that should refresh ahead starts its background refresh. `None` on a miss.
    #[inline]
    fn get_cached(&self, name: &SecretName) -> Option<Result<SecretValue>> {
        self.shared().cached(name)
    }

    async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
        Cache::get(self, name).await
    }

    async fn get_version(&self, name: &SecretName, version: &Version) -> Result<SecretValue> {
        match version {
            Version::Current => Cache::get(self, name).await,
            other => {
                self.shared().count_backend_call();
                self.inner().get_version(name, other).await
            }
        }
    }

    async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
        self.shared().count_backend_call();
        let result = self.inner().put(name, value, mode).await;
        // Even a failed write may have landed (a timeout after the backend applied it).
        self.invalidate(name);
        result
    }

    async fn delete(&self, name: &SecretName) -> Result<()> {
        self.shared().count_backend_call();
        let result = self.inner().delete(name).await;
        self.invalidate(name);
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        self.shared().count_backend_call();
        self.inner().list(prefix).await
    }

    async fn has(&self, name: &SecretName) -> Result<bool> {
        match self.shared().lookup(name) {
            Lookup::Hit(answer) => return answer_exists(answer),
            Lookup::HitRefresh(answer) => {
                self.shared().refresh_in_background(name);
                return answer_exists(answer);
            }
            Lookup::Miss => {}
        }
        self.shared().count_backend_call();
        self.inner().has(name).await
    }

    async fn get_many(&self, names: &[SecretName]) -> Vec<Result<SecretValue>> {
        Cache::get_many(self, names).await
    }

    fn check_put(&self, name: &SecretName, value: &SecretValue) -> Result<()> {
        self.inner().check_put(name, value)
    }

    /// A whole prefix is read from the backend in its own batches (one listing is never
    /// cached: it would hide secrets added since).
    async fn read_prefix(&self, prefix: &str) -> Result<Vec<(SecretName, SecretValue)>> {
        self.shared().count_backend_call();
        self.inner().read_prefix(prefix).await
    }

    async fn history(&self, name: &SecretName) -> Result<Vec<VersionInfo>> {
        self.shared().count_backend_call();
        self.inner().history(name).await
    }

    /// Always asked of the backend (a cached listing would hide changes, which is what a
    /// caller of this wants to see).
    async fn version_tags(&self, prefix: &str) -> Result<Vec<(SecretName, Option<String>)>> {
        self.shared().count_backend_call();
        self.inner().version_tags(prefix).await
    }
}

fn answer_exists(answer: Result<SecretValue>) -> Result<bool> {
    match answer {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}
