//! What a [`LoadingCache`](crate::LoadingCache) is generic over: its keys, its values and the
//! loader that fills it.

use std::fmt;
use std::future::Future;
use std::hash::Hash;

use lockbox_core::{Result, SecretValue};

/// A cache key: hashed, compared and cloned once per miss; its `Display` names it in the
/// errors the cache makes itself (never a value).
pub trait Key: Hash + Eq + Clone + Send + Sync + fmt::Display + 'static {}

impl<T: Hash + Eq + Clone + Send + Sync + fmt::Display + 'static> Key for T {}

/// A cached value: a cheap shared handle that the cache hands out on every hit.
pub trait CacheValue: Clone + Send + Sync + 'static {
    /// A copy with its own reference count, so that threads reading one entry do not share
    /// one count's cache line (the cache keeps one replica per thread stripe).
    fn replicate(&self) -> Self;
}

impl CacheValue for SecretValue {
    /// A new zeroizing buffer with the same bytes.
    fn replicate(&self) -> Self {
        SecretValue::copy_from(self.expose_bytes())
    }
}

impl CacheValue for bytes::Bytes {
    fn replicate(&self) -> Self {
        bytes::Bytes::copy_from_slice(self)
    }
}

/// What fills a [`LoadingCache`](crate::LoadingCache): one key at a time, or a batch of keys
/// that missed together (override [`Load::load_many`] where the service has a batch call).
///
/// Errors are lockbox's: `NotFound` may be remembered (negative TTL), retryable kinds let a
/// stale value be served, anything else drops the entry.
pub trait Load<K: Key>: Send + Sync + 'static {
    /// What the cache keeps per key.
    type Value: CacheValue;

    /// The backend's name, for the errors the cache makes itself.
    fn backend(&self) -> &'static str;

    /// Loads one key.
    fn load(&self, key: &K) -> impl Future<Output = Result<Self::Value>> + Send;

    /// Loads several keys, one result per key in order. The default loads them concurrently
    /// one by one.
    fn load_many(&self, keys: &[K]) -> impl Future<Output = Vec<Result<Self::Value>>> + Send {
        futures_util::future::join_all(keys.iter().map(|k| self.load(k)))
    }
}
