//! lockbox-resources: Greengrass-style secret resources.
//!
//! A device lists the AWS Secrets Manager secrets it needs, and the staging labels of each, in a
//! [`Manifest`] shaped like the configuration of AWS IoT Greengrass v2's secret manager
//! component (`{"cloudSecrets": [{"arn": ..., "labels": [...]}]}`; `AWSCURRENT` is always
//! included). [`sync`] fetches every (secret, label) and replaces a sealed local store in one
//! atomic step; [`Store`] reads it back offline, by name or ARN, by stage or version id.
//!
//! # Files
//! - Store: `<store dir>/secrets.sealed` ([`STORE_FILE`]), one JSON file, mode 0600, directory
//!   0700, replaced atomically (temporary file, fsync, rename, directory fsync) by each
//!   successful sync. Format: see [`sealed`].
//! - Key: by default `<store dir>.key`, a sibling of the store directory (for store
//!   `/var/lib/lockbox/resources`, `/var/lib/lockbox/resources.key`; see
//!   [`default_key_file`]): 64 hex characters, created with mode 0600 on the first sync. A key
//!   file group or others can access is refused (fix: `chmod 600 FILE`).
//!
//! # Guarantees
//! - Values are encrypted at rest with XChaCha20-Poly1305; each value's associated data binds it
//!   to its secret (ARN, name, manifest id) and version (id, stages, date, binary flag), and a
//!   whole-file seal covers the list of records. A wrong key, a flipped byte, swapped records or
//!   edited metadata fail with an error that says which (and names the secret when a record is
//!   at fault). Metadata (ARNs, names, version ids, stages, dates, value sizes) is plaintext.
//! - Nothing is written until every fetch succeeded: a missing secret or label, a denied call or
//!   an unreachable endpoint (bounded by retries and timeouts) leaves the previous store byte
//!   for byte as it was, and readers keep working.
//! - A secret dropped from the manifest is gone after the next successful sync.
//! - A sync killed at any moment leaves the old store or the new one, never a mix; temporary
//!   files it leaves are removed by the next sync.
//!
//! - One writer per store: a sync holds an advisory lock on `<store dir>.lock` from reading the
//!   old store to writing the new one; a second sync waits (bounded) or fails with "another
//!   sync is running". Readers never take it.
//! - Rollback: each store carries a generation, and the highest seen is remembered in
//!   `<key file>.generation` (owner-only); an older store copied back is refused by reads and
//!   syncs unless explicitly accepted ([`SyncOptions::allow_rollback`]). See [`lock_and_generations`].
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

pub mod consumers;
mod key;
pub mod lock_and_generations;
mod manifest;
pub mod sealed;
#[cfg(feature = "sync")]
mod secretsmanager_source;
mod store;
mod sync;

/// Backend name used in this crate's errors.
pub(crate) const BACKEND: &str = "resources";

pub use consumers::{Consumer, Consumers, Decision, Identity, authorize, resource_key};
pub use key::{KEY_FILE_SUFFIX, KEY_LEN, StoreKey, default_key_file};
pub use lock_and_generations::{
    DEFAULT_LOCK_WAIT, GENERATION_FILE_SUFFIX, LOCK_FILE_SUFFIX, StoreLock, SyncOptions,
    generation_file, lock_file,
};
pub use lockbox_secretsmanager::{FetchedMany, SecretVersion};
pub use manifest::{
    AWSCURRENT, CLOUD_SECRETS, CloudSecret, MAX_LABELS, MAX_RESOURCE_ID_LEN, Manifest, Resource,
    V1_INITIAL_VERSION, V1_RESOURCES, V1_SECRET_DATA, V1_SKIPPED_DATA, check_label,
    check_resource_id, check_secret_id,
};
pub use sealed::{STORE_FILE, Snapshot, SnapshotSecret};
pub use store::{SecretInfo, Selector, Store};
pub use sync::{
    FETCH_TIMEOUT, SYNC_CONCURRENCY, SyncReport, SyncTarget, SyncedSecret, TEMP_PREFIX,
    VersionSource, fetch, sync,
};
