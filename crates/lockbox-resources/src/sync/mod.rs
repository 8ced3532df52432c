//! Sync: fetch every (secret, label) of a manifest, then replace the sealed store in one atomic
//! step.
//!
//! Nothing is written until every fetch succeeded, so a missing secret, a missing label, a
//! denied call or an unreachable endpoint leaves the previous store byte for byte as it was.
//! The store is rebuilt from the manifest each time: a secret dropped from the manifest is gone
//! after the next successful sync.
//!
//! Files: this one holds the entry point [`sync`] and what it reports; `fetch.rs` reads the
//! secrets from Secrets Manager (or any [`VersionSource`]); `write.rs` holds the store being
//! replaced ([`SyncTarget`]: its lock, key, previous contents and generation) and writes it.

mod fetch;
#[cfg(test)]
mod testing;
mod write;

use std::path::{Path, PathBuf};

use lockbox_core::Result;

pub use fetch::{FETCH_TIMEOUT, SYNC_CONCURRENCY, VersionSource, fetch};
pub use write::SyncTarget;

use crate::lock_and_generations::SyncOptions;
use crate::manifest::Manifest;

/// Prefix of the temporary files `write_file_atomic` leaves behind when killed mid-write.
pub use lockbox_fs::TMP_PREFIX as TEMP_PREFIX;

/// What a sync did.
#[derive(Clone, Debug)]
pub struct SyncReport {
    /// The store file written.
    pub store_file: PathBuf,
    /// The key file used.
    pub key_file: PathBuf,
    /// True when this sync created the key file.
    pub key_created: bool,
    /// What the store now holds (no values).
    pub secrets: Vec<SyncedSecret>,
    /// ARNs the previous store held and this one does not.
    pub removed: Vec<String>,
    /// Requests made (GetSecretValue calls and BatchGetSecretValue pages).
    pub requests: usize,
    /// Stale temporary files of interrupted syncs that were removed.
    pub temp_files_removed: usize,
    /// True when the previous store could not be verified (altered or damaged) and was
    /// replaced.
    pub replaced_unreadable_store: bool,
    /// The generation of the store written.
    pub generation: u64,
    /// True when the previous store was older than the newest seen and accepted
    /// ([`SyncOptions::allow_rollback`]).
    pub accepted_rollback: bool,
}

/// One synced secret, without values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncedSecret {
    /// Full ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// The Greengrass v1 resource `Id` the manifest gave it, if any.
    pub resource_id: Option<String>,
    /// (version id, stages) per stored version.
    pub versions: Vec<(String, Vec<String>)>,
}

/// Fetches what `manifest` names from `source` (Secrets Manager's
/// [`lockbox_secretsmanager::SecretsManagerClient`], or any [`VersionSource`]) and replaces the
/// store in `store` in one atomic step, sealed with the key in `key_file` (created, mode 0600,
/// if missing): lock the store, prepare (check the key and the existing store), fetch
/// everything, then write. Nothing is written when any step fails. `options` says how long to
/// wait for another sync and whether to accept a rolled-back store
/// (`&SyncOptions::default()`: wait, refuse).
pub async fn sync(
    manifest: &Manifest,
    store: &Path,
    key_file: &Path,
    source: &dyn VersionSource,
    options: &SyncOptions,
) -> Result<SyncReport> {
    let target = SyncTarget::prepare(store, key_file, options).await?;
    let snapshot = target.fetch(manifest, source).await?;
    target.write(&snapshot)
}
