//! Writing: the store a sync replaces ([`SyncTarget`]), prepared before any fetch (lock, key,
//! previous contents, generation) and written in one atomic step.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use lockbox_core::{Error, ErrorKind, PutMode, Result};

use super::{SyncReport, SyncedSecret, VersionSource, fetch};
use crate::BACKEND;
use crate::key::StoreKey;
use crate::lock_and_generations::{
    Generations, StoreLock, SyncOptions, generation_file, rollback_error,
};
use crate::manifest::Manifest;
use crate::sealed::{self, STORE_FILE, Snapshot};

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
    use std::path::Path;
    use std::sync::atomic::Ordering;

    use lockbox_core::ErrorKind;

    use super::super::sync;
    use super::super::testing::{dirs, fake, manifest, synced_db};
    use crate::key::StoreKey;
    use crate::lock_and_generations::{SyncOptions, generation_file};
    use crate::sealed::STORE_FILE;
    use crate::store::{Selector, Store};

    /// Issue 23 item 7: deleting `<key>.generation` does not hide a rollback: the highest
    /// generation is also kept in an extended attribute of the key file, which only who may
    /// change the key can remove.
    #[tokio::test]
    async fn an_older_store_is_refused_even_when_the_generation_file_was_deleted() {
        let f = fake();
        let d = dirs();
        let m = manifest(&[("db", &[])]);
        d.sync(&m, &f).await.unwrap();
        let old = d.store_bytes();
        assert_eq!(d.sync(&m, &f).await.unwrap().generation, 2);
        std::fs::remove_file(generation_file(&d.key)).unwrap();
        d.put_store(&old);
        let e = Store::open(&d.store, &d.key).unwrap_err();
        assert!(
            e.to_string().contains("is generation 1, but generation 2"),
            "{e}"
        );
        let e = d.sync(&m, &f).await.unwrap_err();
        assert!(e.to_string().contains("rollback"), "{e}");
    }

    #[tokio::test]
    async fn an_older_store_copied_back_is_refused_unless_accepted() {
        let f = fake();
        let d = dirs();
        let m = manifest(&[("db", &[])]);
        let first = d.sync(&m, &f).await.unwrap();
        assert_eq!(first.generation, 1);
        let old = d.store_bytes();
        let second = d.sync(&m, &f).await.unwrap();
        assert_eq!(second.generation, 2);
        d.put_store(&old);
        // Reads refuse it ...
        let e = Store::open(&d.store, &d.key).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        let msg = e.to_string();
        assert!(msg.contains("is generation 1, but generation 2"), "{msg}");
        assert!(msg.contains("--allow-rollback"), "{msg}");
        // ... and so does a sync, leaving the file as it is.
        let e = d.sync(&m, &f).await.unwrap_err();
        assert!(e.to_string().contains("rollback"), "{e}");
        assert_eq!(d.store_bytes(), old);
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
        let r = d.sync(&m, &f).await.unwrap();
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
                tokio::spawn(async move { d.sync(&m, &*f).await })
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
        let r = d.sync(&m, &f).await.unwrap();
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
        let r2 = d.sync(&m, &f).await.unwrap();
        assert!(!r2.key_created);
    }

    #[tokio::test]
    async fn missing_secret_on_first_sync_creates_nothing() {
        let f = fake();
        let d = dirs();
        d.sync(&manifest(&[("ghost", &[])]), &f).await.unwrap_err();
        assert!(!d.key.exists());
        assert!(!d.store.exists());
    }

    #[tokio::test]
    async fn secret_removed_from_manifest_disappears() {
        let f = fake();
        let d = dirs();
        d.sync(&manifest(&[("db", &[]), ("bin", &[])]), &f)
            .await
            .unwrap();
        let r = d.sync(&manifest(&[("db", &[])]), &f).await.unwrap();
        assert_eq!(
            r.removed,
            ["arn:aws:secretsmanager:us-east-1:123456789012:secret:bin-XyZ123"]
        );
        let s = Store::open(&d.store, &d.key).unwrap();
        assert_eq!(
            s.read("bin", &Selector::current()).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        let r = d.sync(&manifest(&[]), &f).await.unwrap();
        assert_eq!(r.removed.len(), 1);
        assert!(Store::open(&d.store, &d.key).unwrap().secrets().is_empty());
    }

    #[tokio::test]
    async fn store_without_its_key_or_with_another_key_is_not_replaced() {
        let (f, d, before) = synced_db().await;
        let other = d.key.with_file_name("other.key");
        let e = d
            .sync_with_key(&manifest(&[("db", &[])]), &other, &f)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("exists but its key file"), "{e}");
        assert!(!other.exists());
        StoreKey::create(&other).unwrap();
        let e = d
            .sync_with_key(&manifest(&[("db", &[])]), &other, &f)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("refusing to replace a store sealed with another key"),
            "{e}"
        );
        assert_eq!(d.store_bytes(), before);
    }

    #[tokio::test]
    async fn a_damaged_store_is_rebuilt_and_temp_files_are_cleaned() {
        let f = fake();
        let d = dirs();
        d.sync(&manifest(&[("db", &[])]), &f).await.unwrap();
        d.put_store(b"{ broken");
        std::fs::write(d.store.join(".lockbox-tmp-abc123"), b"partial").unwrap();
        std::fs::write(d.store.join("unrelated"), b"keep").unwrap();
        let r = d.sync(&manifest(&[("db", &[])]), &f).await.unwrap();
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
        let e = d.sync(&manifest(&[("db", &[])]), &f).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert_eq!(f.calls.load(Ordering::SeqCst), 0);
    }
}
