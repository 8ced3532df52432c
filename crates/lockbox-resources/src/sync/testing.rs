//! What the sync tests share: an in-memory Secrets Manager ([`Fake`], and [`Batching`] with a
//! batch read of AWSCURRENT), manifests, and a store directory with its key ([`Dirs`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use lockbox_core::{Error, ErrorKind, Result, SecretValue};
use lockbox_secretsmanager::{FetchedMany, SecretVersion};

use super::{SyncReport, VersionSource, sync};
use crate::lock_and_generations::SyncOptions;
use crate::manifest::{AWSCURRENT, CloudSecret, Manifest};
use crate::sealed::STORE_FILE;
use crate::store::{Selector, Store};

/// (version id, stages, value, binary).
pub(super) type FakeVersion = (String, Vec<String>, Vec<u8>, bool);
pub(super) type Hook = Box<dyn FnMut(&Fake) + Send>;

/// An in-memory Secrets Manager: name -> (arn, versions).
#[derive(Default)]
pub(super) struct Fake {
    pub(super) secrets: Mutex<HashMap<String, (String, Vec<FakeVersion>)>>,
    pub(super) calls: AtomicUsize,
    pub(super) fail: Mutex<Option<ErrorKind>>,
    /// Called before every answer (to move labels mid-sync).
    pub(super) hook: Mutex<Option<Hook>>,
}

impl Fake {
    pub(super) fn add(&self, name: &str, versions: &[(&str, &[&str], &[u8], bool)]) {
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
    pub(super) fn move_stage(&self, name: &str, stage: &str, to: &str) {
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
pub(super) struct Batching {
    pub(super) inner: Fake,
    pub(super) batches: AtomicUsize,
    pub(super) deny: bool,
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
pub(super) fn contents(d: &Dirs) -> Vec<(String, String, Vec<String>, Vec<u8>)> {
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

pub(super) fn manifest(entries: &[(&str, &[&str])]) -> Manifest {
    Manifest {
        cloud_secrets: entries
            .iter()
            .map(|(id, ls)| CloudSecret::new(*id, ls.iter().copied()))
            .collect(),
        ..Manifest::default()
    }
}

pub(super) fn fake() -> Fake {
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

pub(super) struct Dirs {
    _tmp: tempfile::TempDir,
    pub(super) store: PathBuf,
    pub(super) key: PathBuf,
}

pub(super) fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let key = tmp.path().join("store.key");
    Dirs {
        _tmp: tmp,
        store,
        key,
    }
}

impl Dirs {
    /// Syncs `m` from `source` into this store with the default options.
    pub(super) async fn sync(
        &self,
        m: &Manifest,
        source: &dyn VersionSource,
    ) -> Result<SyncReport> {
        self.sync_with_key(m, &self.key, source).await
    }

    /// Syncs `m` from `source` into this store with the key file `key` instead of its own.
    pub(super) async fn sync_with_key(
        &self,
        m: &Manifest,
        key: &Path,
        source: &dyn VersionSource,
    ) -> Result<SyncReport> {
        sync(m, &self.store, key, source, &SyncOptions::default()).await
    }

    /// The bytes of the store file.
    pub(super) fn store_bytes(&self) -> Vec<u8> {
        std::fs::read(self.store.join(STORE_FILE)).unwrap()
    }

    /// Replaces the store file with `bytes` (as a copy or an attacker would).
    pub(super) fn put_store(&self, bytes: impl AsRef<[u8]>) {
        std::fs::write(self.store.join(STORE_FILE), bytes).unwrap();
    }
}

/// A store synced once from [`fake`] with `db` alone: the source, the store, and the store
/// file's bytes (to show a failed sync left them as they were).
pub(super) async fn synced_db() -> (Fake, Dirs, Vec<u8>) {
    let f = fake();
    let d = dirs();
    d.sync(&manifest(&[("db", &[])]), &f).await.unwrap();
    let before = d.store_bytes();
    (f, d, before)
}
