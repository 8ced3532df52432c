//! lockbox-cache: a caching layer for any lockbox backend.
//!
//! Programs read the same few secrets thousands of times a second, and fleets of nodes start at
//! once against account-wide rate limits (SSM: 40 reads a second). [`Cache`] wraps any
//! [`SecretsManager`](lockbox_core::SecretsManager) and implements the trait itself, so opting
//! in is one line:
//!
//! ```no_run
//! # fn demo(backend: lockbox_core::MemoryBackend) {
//! use lockbox_cache::{Cache, CacheConfig};
//! let secrets = Cache::new(backend, CacheConfig::default());
//! # let _ = secrets; }
//! ```
//!
//! The engine is generic: [`LoadingCache`] keeps any [`CacheValue`] by any [`Key`], filled by
//! a [`Load`]er; [`Cache`] is its instance for a backend by secret name. (lockbox serve keys
//! one by typed requests and keeps finished response bodies.)
//!
//! What it does:
//! - hits without locks or allocations, also through `Arc<dyn SecretsManager>` (a concurrent
//!   map with lock-free reads; values are shared handles, one copy per thread stripe so that
//!   threads do not share a reference count); a fill costs the same however many entries are
//!   held;
//! - single-flight: concurrent misses on one name make one backend call and share its answer;
//! - batching: misses arriving together are fetched with the backend's `get_many`;
//! - per-entry TTL, an LRU bound on entries, brief negative caching of `NotFound`;
//! - stale-if-error within a configurable limit (transient errors only), optional
//!   refresh-ahead, explicit [`Cache::invalidate`], and invalidation on writes through it;
//! - counters ([`Cache::stats`]) and a controllable clock ([`ManualClock`]) for tests.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod cache;
mod clock;
mod config;
mod load;
mod loading;
mod stats;

pub use cache::{BackendLoader, Cache};
pub use clock::{Clock, ManualClock};
pub use config::CacheConfig;
pub use load::{CacheValue, Key, Load};
pub use loading::LoadingCache;
pub use papaya::Equivalent;
pub use stats::CacheStats;
