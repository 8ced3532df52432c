//! Sync: fetch every (secret, label) of a manifest, then replace the sealed store in one atomic
//! step.
//!
//! Nothing is written until every fetch succeeded, so a missing secret, a missing label, a
//! denied call or an unreachable endpoint leaves the previous store byte for byte as it was.
//! The store is rebuilt from the manifest each time: a secret dropped from the manifest is gone
//! after the next successful sync.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use lockbox_core::{Error, ErrorKind, PutMode, Result, RetryPolicy};
use lockbox_secretsmanager::{FetchedMany, SecretVersion};

use crate::BACKEND;
use crate::key::StoreKey;
use crate::lock_and_generations::{
    Generations, StoreLock, SyncOptions, generation_file, rollback_error,
};
use crate::manifest::{AWSCURRENT, CloudSecret, Manifest};
use crate::sealed::{self, STORE_FILE, Snapshot, SnapshotSecret};

/// Prefix of the temporary files `write_file_atomic` leaves behind when killed mid-write.
pub use lockbox_fs::TMP_PREFIX as TEMP_PREFIX;

/// Longest a single fetch may take, retries excluded, even if the client has no timeout.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// How often a secret is re-read when its labels moved while it was being read.
const CONSISTENCY_ATTEMPTS: usize = 3;

/// How many secrets a sync reads at once (each secret's labels are read in turn).
pub const SYNC_CONCURRENCY: usize = 16;

/// Where a sync reads secrets from: Secrets Manager ([`lockbox_secretsmanager::SecretsManagerClient`]), or a
/// fake in tests.
#[async_trait]
pub trait VersionSource: Send + Sync {
    /// The version of `secret_id` (name or ARN) that carries staging label `stage`. A secret
    /// or label that does not exist is `NotFound`.
    async fn fetch(&self, secret_id: &str, stage: &str) -> Result<SecretVersion>;

    /// The AWSCURRENT version of each of `secret_ids`, read together in as few requests as the
    /// source can (Secrets Manager: BatchGetSecretValue, or concurrent GetSecretValue where
    /// that is denied): one result per id in order, and the number of requests sent. `None`
    /// (the default) when the source has no such read: each id is then fetched on its own.
    /// A failed slot is fetched again on its own, with retries, so its error is the one
    /// [`VersionSource::fetch`] gives.
    async fn fetch_current_many(&self, _secret_ids: &[String]) -> Option<FetchedMany> {
        None
    }
}

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

/// Fetches every (secret, label) the manifest names. Each distinct version is fetched once:
/// a label already carried by a fetched version is not asked for again. A secret whose labels
/// move while it is read is read again (up to 3 times), so the stored stages are consistent.
///
/// The AWSCURRENT versions of all secrets are first read together where the source can
/// ([`VersionSource::fetch_current_many`]); then up to [`SYNC_CONCURRENCY`] secrets are read at
/// once, each secret's other labels in turn. When several secrets fail, the error is the one
/// of the first in manifest order, as in a sequential read.
pub async fn fetch(manifest: &Manifest, source: &dyn VersionSource) -> Result<Snapshot> {
    use futures_util::StreamExt;

    let mut snapshot = Snapshot::default();
    let entries = &manifest.cloud_secrets;
    let mut seeds: Vec<Option<SecretVersion>> = vec![None; entries.len()];
    if entries.len() > 1 {
        let ids: Vec<String> = entries.iter().map(|e| e.arn.clone()).collect();
        let batch = tokio::time::timeout(FETCH_TIMEOUT, source.fetch_current_many(&ids)).await;
        if let Ok(Some(batch)) = batch {
            snapshot.requests += batch.requests;
            for ((seed, answer), entry) in seeds.iter_mut().zip(batch.results).zip(entries) {
                // Only an answer that carries AWSCURRENT stands for it; anything else is
                // read again on its own.
                if entry.labels.iter().any(|l| l == AWSCURRENT) {
                    *seed = answer
                        .ok()
                        .filter(|v| v.version_stages.iter().any(|s| s == AWSCURRENT));
                }
            }
        }
    }
    let mut reads = Vec::with_capacity(entries.len());
    for (index, (entry, seed)) in entries.iter().zip(seeds).enumerate() {
        reads.push(fetch_secret(index, entry, source, seed));
    }
    let mut reads = futures_util::stream::iter(reads).buffered(SYNC_CONCURRENCY);
    // Full ARN -> index of the entry that fetched it.
    let mut fetched: HashMap<String, usize> = HashMap::new();
    let mut index = 0;
    while let Some((requests, secret)) = reads.next().await {
        snapshot.requests += requests;
        let entry = &entries[index];
        let secret = secret?;
        if let Some(&j) = fetched.get(&secret.arn) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                BACKEND,
                format!(
                    "{} ({}) and {} ({}) are the same secret {}; list it once with all its \
                     labels; the local store was not changed",
                    entries[j].describe(j),
                    entries[j].arn,
                    entry.describe(index),
                    entry.arn,
                    secret.arn
                ),
            )
            .with_secret(&entry.arn));
        }
        fetched.insert(secret.arn.clone(), index);
        snapshot.secrets.push(secret);
        index += 1;
    }
    Ok(snapshot)
}

/// Reads one secret's labels in turn, starting from `seed` (its AWSCURRENT version, read
/// already) when given. Returns the requests sent, and the secret.
async fn fetch_secret(
    index: usize,
    entry: &CloudSecret,
    source: &dyn VersionSource,
    mut seed: Option<SecretVersion>,
) -> (usize, Result<SnapshotSecret>) {
    let mut requests = 0;
    let secret = async {
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(20),
        };
        let mut last_race = String::new();
        for attempt in 0..CONSISTENCY_ATTEMPTS {
            if attempt > 0 {
                // Read again: the batch's answer is as stale as the rest.
                seed = None;
            }
            let mut id = entry.arn.clone();
            let mut identity: Option<(String, String)> = None;
            let mut versions: Vec<SecretVersion> = Vec::new();
            let mut race = None;
            for label in &entry.labels {
                if versions
                    .iter()
                    .any(|v| v.version_stages.iter().any(|s| s == label))
                {
                    continue;
                }
                let seeded = if label == AWSCURRENT {
                    seed.take()
                } else {
                    None
                };
                let got = match seeded {
                    Some(v) => v,
                    None => policy
                        .run(|| {
                            requests += 1;
                            let (id, label) = (id.clone(), label.clone());
                            async move {
                                match tokio::time::timeout(FETCH_TIMEOUT, source.fetch(&id, &label))
                                    .await
                                {
                                    Ok(r) => r,
                                    Err(_) => Err(Error::new(
                                        ErrorKind::Unavailable,
                                        BACKEND,
                                        format!("no answer within {}s", FETCH_TIMEOUT.as_secs()),
                                    )),
                                }
                            }
                        })
                        .await
                        .map_err(|e| fetch_error(e, index, entry, label))?,
                };
                match &identity {
                    None => {
                        // Later labels are read by ARN, so a secret deleted and re-created under
                        // the same name mid-sync is not mixed with the old one.
                        id = got.arn.clone();
                        identity = Some((got.arn.clone(), got.name.clone()));
                    }
                    Some((arn, _)) if *arn != got.arn => {
                        race = Some(format!("its ARN changed from {arn} to {}", got.arn));
                        break;
                    }
                    Some(_) => {}
                }
                let mut stages: Vec<String> = got.version_stages.clone();
                if !stages.contains(label) {
                    stages.push(label.clone());
                }
                stages.sort();
                stages.dedup();
                match versions.iter().find(|v| v.version_id == got.version_id) {
                    Some(existing) if existing.version_stages != stages => {
                        race = Some(format!(
                            "version {} had stages [{}] then [{}]",
                            got.version_id,
                            existing.version_stages.join(", "),
                            stages.join(", ")
                        ));
                        break;
                    }
                    Some(_) => {}
                    None => versions.push(SecretVersion {
                        version_stages: stages,
                        ..got
                    }),
                }
            }
            if race.is_none() {
                race = stage_on_two_versions(&versions);
            }
            match race {
                None => {
                    let (arn, name) = identity.unwrap_or_default();
                    return Ok(SnapshotSecret {
                        arn,
                        name,
                        manifest_id: entry.arn.clone(),
                        resource_id: entry.resource.as_ref().map(|r| r.id.clone()),
                        resource_name: entry.resource.as_ref().map(|r| r.name.clone()),
                        versions,
                    });
                }
                Some(why) => {
                    tracing::info!(secret = %entry.arn, %why, "labels moved while reading; reading again");
                    last_race = why;
                }
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            BACKEND,
            format!(
                "{}: the secret kept changing while it was read ({last_race}); try again; the \
                 local store was not changed",
                entry.describe(index)
            ),
        )
        .with_secret(&entry.arn))
    }
    .await;
    (requests, secret)
}

fn stage_on_two_versions(versions: &[SecretVersion]) -> Option<String> {
    let mut seen = BTreeSet::new();
    for v in versions {
        for s in &v.version_stages {
            if !seen.insert(s.as_str()) {
                return Some(format!("stage {s} was on two versions"));
            }
        }
    }
    None
}

fn fetch_error(e: Error, index: usize, entry: &CloudSecret, label: &str) -> Error {
    let what = if e.kind() == ErrorKind::NotFound {
        if label == AWSCURRENT {
            "the secret does not exist".to_owned()
        } else {
            format!("the secret has no version with staging label {label}")
        }
    } else {
        format!("reading staging label {label} failed: {e}")
    };
    Error::new(
        e.kind(),
        BACKEND,
        format!(
            "{}: {what}; the local store was not changed",
            entry.describe(index)
        ),
    )
    .with_secret(&entry.arn)
}

/// A store about to be replaced: its lock (held until the target is written or dropped), its
/// key (loaded now, or created at write time), what the previous store held and the highest
/// generation seen. Preparing first means a bad key file fails before any network call.
#[derive(Debug)]
pub struct SyncTarget {
    _lock: StoreLock,
    store_dir: PathBuf,
    key_file: PathBuf,
    key: Option<StoreKey>,
    /// What the previous store held: (ARN, name, manifest id).
    previous: Vec<(String, String, String)>,
    replaced_unreadable_store: bool,
    highest_generation: u64,
    accepted_rollback: bool,
}

impl SyncTarget {
    /// Takes the store's lock (waiting up to `options.lock_wait` for another sync), then
    /// checks the key file and the existing store. Refuses when a store exists but its key
    /// file does not, or when the key file does not open the existing store (replacing it
    /// would make every other reader's key useless): remove the store to start over. Refuses
    /// a store older than the newest seen (a rollback) unless `options.allow_rollback`.
    pub async fn prepare(store_dir: &Path, key_file: &Path, options: &SyncOptions) -> Result<Self> {
        let lock = StoreLock::acquire(store_dir, options.lock_wait).await?;
        let store_file = store_dir.join(STORE_FILE);
        let store_exists = store_file.exists();
        let key = match StoreKey::load(key_file) {
            Ok(k) => Some(k),
            Err(e) if e.kind() == ErrorKind::NotFound && !key_file.exists() => {
                if store_exists {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        BACKEND,
                        format!(
                            "store {} exists but its key file {} does not; pass the key file it \
                             was sealed with (--key-file), or remove the store to start over",
                            store_file.display(),
                            key_file.display()
                        ),
                    ));
                }
                None
            }
            Err(e) => return Err(e),
        };
        let mut previous = Vec::new();
        let mut replaced_unreadable_store = false;
        let mut highest_generation = 0;
        let mut accepted_rollback = false;
        if key.is_some() {
            let seen = Generations::load(key_file)?;
            highest_generation = seen.get(store_dir);
        }
        if let (Some(key), true) = (&key, store_exists) {
            let bytes = lockbox_fs::read_trusted(&store_file, lockbox_fs::MAX_STORE_FILE_LEN)
                .map_err(|e| Error::new(e.kind(), BACKEND, format!("cannot read store: {e}")))?;
            match sealed::open(&bytes, key, &store_file.display().to_string()) {
                Ok(old) => {
                    let generation = old.generation.unwrap_or(0);
                    if generation < highest_generation {
                        if !options.allow_rollback {
                            return Err(rollback_error(
                                &store_file,
                                generation,
                                highest_generation,
                                &generation_file(key_file),
                            ));
                        }
                        tracing::warn!(
                            store = %store_file.display(),
                            generation,
                            seen = highest_generation,
                            "replacing an older store than the newest seen (--allow-rollback)"
                        );
                        accepted_rollback = true;
                    }
                    highest_generation = highest_generation.max(generation);
                    previous = old
                        .secrets
                        .into_iter()
                        .map(|s| (s.arn, s.name, s.manifest_id))
                        .collect();
                }
                Err(e) if e.kind() == ErrorKind::InvalidConfig => {
                    let message = format!(
                        "{}; refusing to replace a store sealed with another key: pass the key \
                         file it was sealed with (--key-file), or remove {} to start over",
                        e.message(),
                        store_file.display()
                    );
                    return Err(e.with_message(message));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the existing store cannot be verified; it will be replaced");
                    replaced_unreadable_store = true;
                }
            }
        }
        Ok(Self {
            _lock: lock,
            store_dir: store_dir.to_owned(),
            key_file: key_file.to_owned(),
            key,
            previous,
            replaced_unreadable_store,
            highest_generation,
            accepted_rollback,
        })
    }

    /// [`fetch`], with a secret the previous store held that is gone from Secrets Manager
    /// (deleted in the cloud) reported as such: see [`SyncTarget::explain`].
    pub async fn fetch(&self, manifest: &Manifest, source: &dyn VersionSource) -> Result<Snapshot> {
        fetch(manifest, source).await.map_err(|e| self.explain(e))
    }

    /// Says more about a failed fetch when it is about a secret the previous store held: a
    /// `NotFound` for it means it was deleted in Secrets Manager since the last sync. The
    /// error then names the secret by name (and ARN), says the store was kept with its last
    /// copy, and how to drop it (remove it from the manifest). Other errors are returned as
    /// they are. The kind stays `NotFound` (exit 1 from the CLI, like any failed sync).
    pub fn explain(&self, e: Error) -> Error {
        if e.kind() != ErrorKind::NotFound {
            return e;
        }
        let Some(id) = e.secret() else { return e };
        let Some((arn, name, _)) = self
            .previous
            .iter()
            .find(|(arn, name, manifest_id)| manifest_id == id || arn == id || name == id)
        else {
            return e;
        };
        let message = format!(
            "{}; it was synced before as {name} ({arn}) and is gone from Secrets Manager \
             (deleted in the cloud?): the last store is kept, still holding its last copy; \
             remove it from the manifest to drop it",
            e.message()
                .trim_end_matches("; the local store was not changed")
        );
        let name = name.clone();
        e.with_message(message).with_secret(name)
    }

    /// Seals `snapshot` and replaces the store file in one atomic step (temporary file,
    /// fsync, rename, directory fsync), creating the key file first when needed and removing
    /// temporary files an interrupted earlier sync left behind.
    pub fn write(self, snapshot: &Snapshot) -> Result<SyncReport> {
        let (key, key_created) = match self.key {
            Some(k) => (k, false),
            None => (StoreKey::create(&self.key_file)?, true),
        };
        let synced_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let generation = self.highest_generation.saturating_add(1);
        let bytes = sealed::seal(snapshot, &key, synced_at, generation)?;
        // Leftovers of a sync killed mid-write (a write in progress holds its file's lock).
        let temp_files_removed = lockbox_fs::remove_stale_temp_files(&self.store_dir);
        let store_file = self.store_dir.join(STORE_FILE);
        lockbox_fs::write_file_atomic(&store_file, &bytes, PutMode::Overwrite).map_err(|e| {
            Error::new(
                match e.kind() {
                    std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                    _ => ErrorKind::Backend,
                },
                BACKEND,
                format!("writing the store: {e}; the previous store was left as it was"),
            )
        })?;
        // Remembered after the store is in place: a crash in between leaves a store newer
        // than the one remembered, never an older one.
        if let Err(e) = Generations::record(&self.key_file, &self.store_dir, generation) {
            tracing::warn!(error = %e, "cannot remember the store's generation; rollback detection is weaker until the next sync");
        }
        let secrets: Vec<SyncedSecret> = snapshot
            .secrets
            .iter()
            .map(|s| SyncedSecret {
                arn: s.arn.clone(),
                name: s.name.clone(),
                resource_id: s.resource_id.clone(),
                versions: s
                    .versions
                    .iter()
                    .map(|v| (v.version_id.clone(), v.version_stages.clone()))
                    .collect(),
            })
            .collect();
        let removed = self
            .previous
            .into_iter()
            .map(|(arn, _, _)| arn)
            .filter(|arn| !secrets.iter().any(|s| &s.arn == arn))
            .collect();
        tracing::info!(
            store = %store_file.display(),
            secrets = secrets.len(),
            "sealed store written"
        );
        Ok(SyncReport {
            store_file,
            key_file: self.key_file,
            key_created,
            secrets,
            removed,
            requests: snapshot.requests,
            temp_files_removed,
            replaced_unreadable_store: self.replaced_unreadable_store,
            generation,
            accepted_rollback: self.accepted_rollback,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Selector, Store};
    use lockbox_core::SecretValue;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// (version id, stages, value, binary).
    type FakeVersion = (String, Vec<String>, Vec<u8>, bool);
    type Hook = Box<dyn FnMut(&Fake) + Send>;

    /// An in-memory Secrets Manager: name -> (arn, versions).
    #[derive(Default)]
    struct Fake {
        secrets: Mutex<HashMap<String, (String, Vec<FakeVersion>)>>,
        calls: AtomicUsize,
        fail: Mutex<Option<ErrorKind>>,
        /// Called before every answer (to move labels mid-sync).
        hook: Mutex<Option<Hook>>,
    }

    impl Fake {
        fn add(&self, name: &str, versions: &[(&str, &[&str], &[u8], bool)]) {
            let arn = format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-XyZ123");
            let vs = versions
                .iter()
                .map(|(id, st, v, b)| {
                    (
                        id.to_string(),
                        st.iter().map(|s| s.to_string()).collect(),
                        v.to_vec(),
                        *b,
                    )
                })
                .collect();
            self.secrets.lock().unwrap().insert(name.into(), (arn, vs));
        }
        fn move_stage(&self, name: &str, stage: &str, to: &str) {
            let mut g = self.secrets.lock().unwrap();
            let (_, vs) = g.get_mut(name).unwrap();
            for (id, st, _, _) in vs.iter_mut() {
                st.retain(|s| s != stage);
                if id == to {
                    st.push(stage.into());
                }
            }
        }
    }

    #[async_trait]
    impl VersionSource for Fake {
        async fn fetch(&self, secret_id: &str, stage: &str) -> Result<SecretVersion> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(kind) = *self.fail.lock().unwrap() {
                return Err(Error::new(kind, "fake", "injected"));
            }
            let hook = self.hook.lock().unwrap().take();
            if let Some(mut h) = hook {
                h(self);
                *self.hook.lock().unwrap() = Some(h);
            }
            let g = self.secrets.lock().unwrap();
            let (name, (arn, vs)) = g
                .iter()
                .find(|(n, (a, _))| *n == secret_id || a == secret_id)
                .ok_or_else(|| Error::not_found("fake", secret_id))?;
            let (id, st, v, b) = vs
                .iter()
                .find(|(_, st, _, _)| st.iter().any(|s| s == stage))
                .ok_or_else(|| Error::not_found("fake", secret_id))?;
            Ok(SecretVersion {
                arn: arn.clone(),
                name: name.clone(),
                version_id: id.clone(),
                version_stages: st.clone(),
                created_date: Some(1),
                created_date_nanos: 0,
                value: SecretValue::new(v.clone()),
                binary: *b,
            })
        }
    }

    /// [`Fake`] with a batch read of AWSCURRENT (one request per call), as Secrets Manager's
    /// BatchGetSecretValue; `deny` makes the batch read unavailable to the caller (`None`).
    #[derive(Default)]
    struct Batching {
        inner: Fake,
        batches: AtomicUsize,
        deny: bool,
    }

    #[async_trait]
    impl VersionSource for Batching {
        async fn fetch(&self, secret_id: &str, stage: &str) -> Result<SecretVersion> {
            self.inner.fetch(secret_id, stage).await
        }

        async fn fetch_current_many(&self, secret_ids: &[String]) -> Option<FetchedMany> {
            if self.deny {
                return None;
            }
            self.batches.fetch_add(1, Ordering::SeqCst);
            let mut out = Vec::new();
            for id in secret_ids {
                out.push(self.inner.fetch(id, AWSCURRENT).await);
            }
            self.inner
                .calls
                .fetch_sub(secret_ids.len(), Ordering::SeqCst);
            Some(FetchedMany {
                results: out,
                requests: 1,
            })
        }
    }

    /// Everything a store holds, values included, in order.
    fn contents(d: &Dirs) -> Vec<(String, String, Vec<String>, Vec<u8>)> {
        let s = Store::open(&d.store, &d.key).unwrap();
        let mut out = Vec::new();
        for info in s.secrets() {
            for (id, stages) in &info.versions {
                let v = s.read(&info.arn, &Selector::version_id(id)).unwrap();
                out.push((
                    info.arn.clone(),
                    id.clone(),
                    stages.clone(),
                    v.value.expose_bytes().to_vec(),
                ));
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batched_and_concurrent_sync_stores_what_a_sequential_one_does() {
        let many = |f: &Fake| {
            for i in 0..40 {
                f.add(
                    &format!("s{i}"),
                    &[
                        ("c", &["AWSCURRENT"], format!("cur{i}").as_bytes(), false),
                        (
                            "p",
                            &["AWSPREVIOUS", "green"],
                            format!("old{i}").as_bytes(),
                            false,
                        ),
                    ],
                );
            }
        };
        let entries: Vec<(String, &[&str])> =
            (0..40).map(|i| (format!("s{i}"), &["green"][..])).collect();
        let entries: Vec<(&str, &[&str])> = entries.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        let m = manifest(&entries);

        // One at a time, as before: 80 GetSecretValue calls.
        let plain = Batching {
            deny: true,
            ..Batching::default()
        };
        many(&plain.inner);
        let d1 = dirs();
        let r1 = sync(&m, &d1.store, &d1.key, &plain, &SyncOptions::default())
            .await
            .unwrap();
        assert_eq!(r1.requests, 80);

        // AWSCURRENT of all 40 in one batch, then 40 reads of green.
        let batching = Batching::default();
        many(&batching.inner);
        let d2 = dirs();
        let r2 = sync(&m, &d2.store, &d2.key, &batching, &SyncOptions::default())
            .await
            .unwrap();
        assert_eq!(batching.batches.load(Ordering::SeqCst), 1);
        assert_eq!(batching.inner.calls.load(Ordering::SeqCst), 40);
        assert_eq!(r2.requests, 41);
        assert_eq!(r1.secrets, r2.secrets);
        assert_eq!(contents(&d1), contents(&d2));
        assert_eq!(contents(&d1).len(), 80);

        // A secret the batch cannot read is read on its own, and its error is the usual one,
        // naming the first missing entry in manifest order.
        let mut entries = entries.clone();
        entries.insert(7, ("ghost", &[]));
        entries.insert(30, ("ghost2", &[]));
        let e = sync(
            &manifest(&entries),
            &d2.store,
            &d2.key,
            &batching,
            &SyncOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(
            e.to_string()
                .contains("cloudSecrets[7]: the secret does not exist"),
            "{e}"
        );
        assert_eq!(contents(&d1), contents(&d2), "the store was kept");
    }

    fn manifest(entries: &[(&str, &[&str])]) -> Manifest {
        Manifest {
            cloud_secrets: entries
                .iter()
                .map(|(id, ls)| CloudSecret::new(*id, ls.iter().copied()))
                .collect(),
            ..Manifest::default()
        }
    }

    fn fake() -> Fake {
        let f = Fake::default();
        f.add(
            "db",
            &[
                ("v2", &["AWSCURRENT", "blue"], b"new", false),
                ("v1", &["AWSPREVIOUS", "green"], b"old", false),
            ],
        );
        f.add("bin", &[("b1", &["AWSCURRENT"], &[0, 255, 10], true)]);
        f
    }

    struct Dirs {
        _tmp: tempfile::TempDir,
        store: PathBuf,
        key: PathBuf,
    }

    fn dirs() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let key = tmp.path().join("store.key");
        Dirs {
            _tmp: tmp,
            store,
            key,
        }
    }

    /// Issue 23 item 7: deleting `<key>.generation` does not hide a rollback: the highest
    /// generation is also kept in an extended attribute of the key file, which only who may
    /// change the key can remove.
    #[tokio::test]
    async fn an_older_store_is_refused_even_when_the_generation_file_was_deleted() {
        let f = fake();
        let d = dirs();
        let m = manifest(&[("db", &[])]);
        sync(&m, &d.store, &d.key, &f, &SyncOptions::default())
            .await
            .unwrap();
        let old = std::fs::read(d.store.join(STORE_FILE)).unwrap();
        assert_eq!(
            sync(&m, &d.store, &d.key, &f, &SyncOptions::default())
                .await
                .unwrap()
                .generation,
            2
        );
        std::fs::remove_file(generation_file(&d.key)).unwrap();
        std::fs::write(d.store.join(STORE_FILE), &old).unwrap();
        let e = Store::open(&d.store, &d.key).unwrap_err();
        assert!(
            e.to_string().contains("is generation 1, but generation 2"),
            "{e}"
        );
        let e = sync(&m, &d.store, &d.key, &f, &SyncOptions::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("rollback"), "{e}");
    }

    #[tokio::test]
    async fn an_older_store_copied_back_is_refused_unless_accepted() {
        let f = fake();
        let d = dirs();
        let m = manifest(&[("db", &[])]);
        let first = sync(&m, &d.store, &d.key, &f, &SyncOptions::default())
            .await
            .unwrap();
        assert_eq!(first.generation, 1);
        let old = std::fs::read(d.store.join(STORE_FILE)).unwrap();
        let second = sync(&m, &d.store, &d.key, &f, &SyncOptions::default())
            .await
            .unwrap();
        assert_eq!(second.generation, 2);
        std::fs::write(d.store.join(STORE_FILE), &old).unwrap();
        // Reads refuse it ...
        let e = Store::open(&d.store, &d.key).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        let msg = e.to_string();
        assert!(msg.contains("is generation 1, but generation 2"), "{msg}");
        assert!(msg.contains("--allow-rollback"), "{msg}");
        // ... and so does a sync, leaving the file as it is.
        let e = sync(&m, &d.store, &d.key, &f, &SyncOptions::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("rollback"), "{e}");
        assert_eq!(std::fs::read(d.store.join(STORE_FILE)).unwrap(), old);
        // Accepted knowingly: the read works, and the next sync moves past every generation.
        let s = Store::open_with(&d.store, &d.key, true).unwrap();
        assert_eq!(s.generation(), 1);
        let options = SyncOptions {
            allow_rollback: true,
            ..SyncOptions::default()
        };
        let r = sync(&m, &d.store, &d.key, &f, &options).await.unwrap();
        assert!(r.accepted_rollback);
        assert_eq!(r.generation, 3);
        assert_eq!(Store::open(&d.store, &d.key).unwrap().generation(), 3);
        // A removed store starts again above the remembered generation.
        std::fs::remove_dir_all(&d.store).unwrap();
        let r = sync(&m, &d.store, &d.key, &f, &SyncOptions::default())
            .await
            .unwrap();
        assert_eq!(r.generation, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_syncs_of_one_store_take_turns() {
        let f = std::sync::Arc::new(fake());
        let d = std::sync::Arc::new(dirs());
        let m = std::sync::Arc::new(manifest(&[("db", &["green"]), ("bin", &[])]));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (f, d, m) = (f.clone(), d.clone(), m.clone());
                tokio::spawn(async move {
                    sync(&m, &d.store, &d.key, &*f, &SyncOptions::default()).await
                })
            })
            .collect();
        let mut generations = Vec::new();
        for t in tasks {
            generations.push(t.await.unwrap().unwrap().generation);
        }
        generations.sort_unstable();
        assert_eq!(generations, (1..=64).collect::<Vec<u64>>());
        let s = Store::open(&d.store, &d.key).unwrap();
        assert_eq!(s.generation(), 64);
        assert_eq!(s.secrets().len(), 2);
        let leftovers = std::fs::read_dir(&d.store)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != STORE_FILE)
            .count();
        assert_eq!(leftovers, 0);
    }

    #[tokio::test]
    async fn first_sync_creates_key_and_stores_distinct_versions_once() {
        let f = fake();
        let d = dirs();
        let m = manifest(&[("db", &["blue", "green"]), ("bin", &[])]);
        let r = sync(&m, &d.store, &d.key, &f, &SyncOptions::default())
            .await
            .unwrap();
        assert!(r.key_created);
        // AWSCURRENT brings blue along: 2 calls for db, 1 for bin.
        assert_eq!(r.requests, 3);
        assert_eq!(f.calls.load(Ordering::SeqCst), 3);
        assert_eq!(r.secrets[0].versions.len(), 2);
        assert_eq!(
            r.secrets[0].versions[0],
            (
                "v2".to_string(),
                vec!["AWSCURRENT".to_string(), "blue".to_string()]
            )
        );
        let s = Store::open(&d.store, &d.key).unwrap();
        assert_eq!(
            s.read("db", &Selector::stage("green"))
                .unwrap()
                .value
                .expose_bytes(),
            b"old"
        );
        assert_eq!(
            s.read("db", &Selector::stage("AWSPREVIOUS"))
                .unwrap()
                .version_id,
            "v1"
        );
        let b = s.read("bin", &Selector::current()).unwrap();
        assert!(b.binary);
        assert_eq!(b.value.expose_bytes(), &[0, 255, 10]);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d.key), 0o600);
        assert_eq!(mode(&d.store.join(STORE_FILE)), 0o600);
        assert_eq!(mode(&d.store), 0o700);
        let r2 = sync(&m, &d.store, &d.key, &f, &SyncOptions::default())
            .await
            .unwrap();
        assert!(!r2.key_created);
    }

    #[tokio::test]
    async fn missing_secret_or_label_fails_and_leaves_store_byte_identical() {
        let f = fake();
        let d = dirs();
        sync(
            &manifest(&[("db", &[])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap();
        let before = std::fs::read(d.store.join(STORE_FILE)).unwrap();
        let e = sync(
            &manifest(&[("db", &[]), ("ghost", &[])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let msg = e.to_string();
        assert!(msg.contains("secret ghost"), "{msg}");
        assert!(
            msg.contains("cloudSecrets[1]: the secret does not exist"),
            "{msg}"
        );
        assert!(msg.contains("not changed"), "{msg}");
        let e = sync(
            &manifest(&[("db", &["purple"])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("no version with staging label purple"),
            "{e}"
        );
        assert_eq!(std::fs::read(d.store.join(STORE_FILE)).unwrap(), before);
    }

    #[tokio::test]
    async fn missing_secret_on_first_sync_creates_nothing() {
        let f = fake();
        let d = dirs();
        sync(
            &manifest(&[("ghost", &[])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(!d.key.exists());
        assert!(!d.store.exists());
    }

    #[tokio::test]
    async fn unavailable_is_retried_then_fails_without_touching_the_store() {
        let f = fake();
        let d = dirs();
        sync(
            &manifest(&[("db", &[])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap();
        let before = std::fs::read(d.store.join(STORE_FILE)).unwrap();
        *f.fail.lock().unwrap() = Some(ErrorKind::Unavailable);
        f.calls.store(0, Ordering::SeqCst);
        let start = std::time::Instant::now();
        let e = sync(
            &manifest(&[("db", &[])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(f.calls.load(Ordering::SeqCst), 3, "three attempts");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(std::fs::read(d.store.join(STORE_FILE)).unwrap(), before);
        *f.fail.lock().unwrap() = Some(ErrorKind::PermissionDenied);
        f.calls.store(0, Ordering::SeqCst);
        let e = sync(
            &manifest(&[("db", &[])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert_eq!(f.calls.load(Ordering::SeqCst), 1, "not retried");
        let s = Store::open(&d.store, &d.key).unwrap();
        assert_eq!(
            s.read("db", &Selector::current())
                .unwrap()
                .value
                .expose_bytes(),
            b"new"
        );
    }

    #[tokio::test]
    async fn secret_removed_from_manifest_disappears() {
        let f = fake();
        let d = dirs();
        sync(
            &manifest(&[("db", &[]), ("bin", &[])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap();
        let r = sync(
            &manifest(&[("db", &[])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            r.removed,
            ["arn:aws:secretsmanager:us-east-1:123456789012:secret:bin-XyZ123"]
        );
        let s = Store::open(&d.store, &d.key).unwrap();
        assert_eq!(
            s.read("bin", &Selector::current()).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        let r = sync(
            &manifest(&[]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(r.removed.len(), 1);
        assert!(Store::open(&d.store, &d.key).unwrap().secrets().is_empty());
    }

    #[tokio::test]
    async fn labels_moving_mid_sync_are_read_again() {
        let f = fake();
        let d = dirs();
        // After the first answer, move AWSCURRENT to v1 once: the first pass sees v2 as
        // current, then v1 carrying AWSCURRENT too, and starts over.
        let moved = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let m2 = moved.clone();
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let c2 = calls.clone();
        *f.hook.lock().unwrap() = Some(Box::new(move |fk: &Fake| {
            if c2.fetch_add(1, Ordering::SeqCst) == 1 && !m2.swap(true, Ordering::SeqCst) {
                fk.move_stage("db", "AWSCURRENT", "v1");
            }
        }));
        let r = sync(
            &manifest(&[("db", &["green"])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap();
        assert!(moved.load(Ordering::SeqCst));
        let s = Store::open(&d.store, &d.key).unwrap();
        let cur = s.read("db", &Selector::current()).unwrap();
        assert_eq!(cur.version_id, "v1");
        assert_eq!(cur.version_stages, ["AWSCURRENT", "AWSPREVIOUS", "green"]);
        assert!(r.requests >= 3, "{}", r.requests);
    }

    #[tokio::test]
    async fn same_secret_twice_under_two_ids_is_refused() {
        let f = fake();
        let d = dirs();
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-XyZ123";
        let e = sync(
            &manifest(&[("db", &[]), (arn, &["blue"])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("are the same secret"), "{e}");
    }

    #[tokio::test]
    async fn store_without_its_key_or_with_another_key_is_not_replaced() {
        let f = fake();
        let d = dirs();
        sync(
            &manifest(&[("db", &[])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap();
        let before = std::fs::read(d.store.join(STORE_FILE)).unwrap();
        let other = d.key.with_file_name("other.key");
        let e = sync(
            &manifest(&[("db", &[])]),
            &d.store,
            &other,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("exists but its key file"), "{e}");
        assert!(!other.exists());
        StoreKey::create(&other).unwrap();
        let e = sync(
            &manifest(&[("db", &[])]),
            &d.store,
            &other,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("refusing to replace a store sealed with another key"),
            "{e}"
        );
        assert_eq!(std::fs::read(d.store.join(STORE_FILE)).unwrap(), before);
    }

    #[tokio::test]
    async fn a_damaged_store_is_rebuilt_and_temp_files_are_cleaned() {
        let f = fake();
        let d = dirs();
        sync(
            &manifest(&[("db", &[])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap();
        std::fs::write(d.store.join(STORE_FILE), b"{ broken").unwrap();
        std::fs::write(d.store.join(".lockbox-tmp-abc123"), b"partial").unwrap();
        std::fs::write(d.store.join("unrelated"), b"keep").unwrap();
        let r = sync(
            &manifest(&[("db", &[])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap();
        assert!(r.replaced_unreadable_store);
        assert_eq!(r.temp_files_removed, 1);
        assert!(!d.store.join(".lockbox-tmp-abc123").exists());
        assert!(d.store.join("unrelated").exists());
        Store::open(&d.store, &d.key).unwrap();
    }

    #[tokio::test]
    async fn insecure_key_fails_before_any_fetch() {
        let f = fake();
        let d = dirs();
        StoreKey::create(&d.key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = sync(
            &manifest(&[("db", &[])]),
            &d.store,
            &d.key,
            &f,
            &SyncOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert_eq!(f.calls.load(Ordering::SeqCst), 0);
    }
}
