//! The offline fallback: a Greengrass-style sealed store (lockbox-resources) that `serve`
//! syncs at start and on an interval, and answers Secrets Manager reads from when AWS cannot
//! be reached.
//!
//! Deleted secrets: when Secrets Manager answers a read of a secret with
//! `ResourceNotFoundException`, or with `InvalidRequestException` saying it is marked for
//! deletion, that answer is remembered for the secret (by the id asked and by its ARN in the
//! store), and while the cloud stays unreachable later reads of it get that same answer, never
//! the store's copy. A successful cloud read of it forgets it again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hyper::body::Bytes;
use lockbox_core::{Error, ErrorKind, Result};
use lockbox_resources::{Manifest, SecretInfo, Selector, Store};
use lockbox_secretsmanager::SecretsManagerClient;

use crate::config::OfflineSettings;
use crate::metrics::Metrics;
use crate::upstream::{UpstreamError, version_body};

/// Sync period when neither `sync_interval_seconds` nor the manifest's
/// `periodicRefreshIntervalMin` says one.
pub(crate) const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(3600);

/// The store, its sync and what the cloud said was deleted.
pub(crate) struct Offline {
    store: PathBuf,
    key_file: PathBuf,
    manifest: Option<PathBuf>,
    /// Zero: sync (and re-read the store) only at start.
    interval: Duration,
    client: SecretsManagerClient,
    /// The store's secrets, without values: read at start and after each sync.
    index: RwLock<Arc<Vec<SecretInfo>>>,
    /// Tombstones: `s:<id or ARN>` for a whole secret, `v:<id>\0<version id>\0<stage>` for one
    /// version the cloud said does not exist; the cloud's answer.
    deleted: Mutex<HashMap<String, UpstreamError>>,
    /// How many tombstones there are (a read that succeeds skips the lock when none).
    deleted_count: AtomicUsize,
    metrics: Arc<Metrics>,
}

/// What the cloud's answer means for the store's copy of a secret.
pub(crate) enum Verdict {
    /// The cloud could not be reached (network, timeout, 5xx): answer from the store.
    Unreachable,
    /// The cloud says the secret (or this version) is gone: never answer it from the store.
    Deleted,
    /// Anything else (access denied, throttled, bad request): answer the cloud's error.
    Other,
}

impl Verdict {
    pub(crate) fn of(e: &UpstreamError) -> Self {
        match e.code.as_str() {
            "ResourceNotFoundException" => Self::Deleted,
            "InvalidRequestException" if e.message.to_lowercase().contains("delet") => {
                Self::Deleted
            }
            "TimeoutError" | "ConnectionError" => Self::Unreachable,
            _ if e.status >= 500 => Self::Unreachable,
            _ => Self::Other,
        }
    }
}

fn version_key(id: &str, version_id: Option<&str>, stage: Option<&str>) -> String {
    format!(
        "v:{id}\0{}\0{}",
        version_id.unwrap_or(""),
        stage.unwrap_or("AWSCURRENT")
    )
}

fn selector(version_id: Option<&str>, stage: Option<&str>) -> Selector {
    match (version_id, stage) {
        (Some(v), _) => Selector::version_id(v),
        (None, Some(s)) => Selector::stage(s),
        (None, None) => Selector::current(),
    }
}

impl Offline {
    /// Reads the manifest, syncs once (a failure is a warning when a store is already there),
    /// and reads the store's index. Fails when there is no readable store afterwards.
    pub(crate) async fn start(
        settings: &OfflineSettings,
        sdk: &aws_config::SdkConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>> {
        let key_file = match &settings.key_file {
            Some(k) => k.clone(),
            None => lockbox_resources::default_key_file(&settings.store)?,
        };
        let from_manifest = match &settings.manifest {
            Some(path) => Manifest::read(path)?
                .periodic_refresh_interval_min
                .map(|m| Duration::from_secs(m.saturating_mul(60))),
            None => None,
        };
        let interval = settings
            .sync_interval
            .or(from_manifest)
            .unwrap_or(DEFAULT_SYNC_INTERVAL);
        let me = Arc::new(Self {
            store: settings.store.clone(),
            key_file,
            manifest: settings.manifest.clone(),
            interval,
            client: SecretsManagerClient::from_client(aws_sdk_secretsmanager::Client::new(sdk)),
            index: RwLock::default(),
            deleted: Mutex::default(),
            deleted_count: AtomicUsize::new(0),
            metrics,
        });
        if me.manifest.is_some()
            && let Err(e) = me.sync().await
        {
            if me.store.join(lockbox_resources::STORE_FILE).exists() {
                tracing::warn!(
                    "sync of {} at start failed, serving the store as it is: {e}",
                    me.store.display()
                );
            } else {
                return Err(Error::new(
                    e.kind(),
                    "serve",
                    format!(
                        "the first sync of {} failed and there is no store yet: {e}",
                        me.store.display()
                    ),
                ));
            }
        }
        me.reload()?;
        Ok(me)
    }

    /// Syncs (when there is a manifest) and re-reads the store every interval, until aborted.
    pub(crate) fn spawn_refresh(self: &Arc<Self>) -> Option<tokio::task::AbortHandle> {
        if self.interval.is_zero() {
            return None;
        }
        let me = self.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(me.interval).await;
                if me.manifest.is_some()
                    && let Err(e) = me.sync().await
                {
                    tracing::warn!(
                        "sync of {} failed, keeping the store: {e}",
                        me.store.display()
                    );
                }
                if let Err(e) = me.reload() {
                    tracing::warn!("cannot re-read the store {}: {e}", me.store.display());
                }
            }
        });
        Some(task.abort_handle())
    }

    async fn sync(&self) -> Result<()> {
        let Some(path) = &self.manifest else {
            return Ok(());
        };
        // Read again each round, so edits apply without a restart (as `lockbox sync`).
        let result = async {
            let manifest = Manifest::read(path)?;
            // A rolled-back store (an older copy put back) is replaced by what the cloud
            // answers now, under a generation above any seen: the old copy only names what
            // was there before, and nothing is written unless every fetch succeeds, so a
            // rolled-back store is never served and a reachable cloud repairs it.
            let options = lockbox_resources::SyncOptions {
                allow_rollback: true,
                ..lockbox_resources::SyncOptions::default()
            };
            lockbox_resources::sync_with_options(
                &manifest,
                &self.store,
                &self.key_file,
                &self.client,
                &options,
            )
            .await
        }
        .await;
        self.metrics.sync(result.is_ok());
        let report = result?;
        if report.accepted_rollback {
            tracing::warn!(
                "the store {} was older than one seen before (an older copy was put back); \
                 replaced it with the secrets the cloud holds now",
                self.store.display()
            );
        }
        tracing::info!(
            "synced {} secrets into {} ({} requests)",
            report.secrets.len(),
            report.store_file.display(),
            report.requests
        );
        Ok(())
    }

    fn open(&self) -> Result<Store> {
        Store::open(&self.store, &self.key_file)
    }

    fn reload(&self) -> Result<()> {
        let secrets = self.open()?.secrets();
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(secrets);
        Ok(())
    }

    /// The stored secret `id` names: its ARN, name, manifest id or Greengrass resource id.
    pub(crate) fn find(&self, id: &str) -> Option<SecretInfo> {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner()).clone();
        index
            .iter()
            .find(|s| s.arn == id)
            .or_else(|| {
                index.iter().find(|s| {
                    s.name == id || s.manifest_id == id || s.resource_id.as_deref() == Some(id)
                })
            })
            .cloned()
    }

    /// The ARN of the stored secret whose Greengrass v1 resource id is `id` (reads may name a
    /// secret by its resource id; the cloud is then asked for the ARN).
    pub(crate) fn resource_arn(&self, id: &str) -> Option<String> {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        index
            .iter()
            .find(|s| s.resource_id.as_deref() == Some(id))
            .map(|s| s.arn.clone())
    }

    /// The cloud answered a read of `id`: forget what it said about it before.
    pub(crate) fn cloud_answered(&self, id: &str, version_id: Option<&str>, stage: Option<&str>) {
        if self.deleted_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut deleted = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        deleted.remove(&format!("s:{id}"));
        deleted.remove(&version_key(id, version_id, stage));
        if let Some(s) = self.find(id) {
            deleted.remove(&format!("s:{}", s.arn));
        }
        self.deleted_count.store(deleted.len(), Ordering::Relaxed);
    }

    /// The cloud said `id` (or this version of it) does not exist or is marked for deletion.
    pub(crate) fn cloud_deleted(
        &self,
        id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
        answer: &UpstreamError,
    ) {
        let whole = answer.code != "ResourceNotFoundException"
            || (version_id.is_none() && stage.is_none_or(|s| s == "AWSCURRENT"));
        let mut keys = vec![version_key(id, version_id, stage)];
        if whole {
            keys.push(format!("s:{id}"));
            if let Some(s) = self.find(id) {
                keys.push(format!("s:{}", s.arn));
            }
        }
        let mut deleted = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            deleted.insert(k, answer.clone());
        }
        self.deleted_count.store(deleted.len(), Ordering::Relaxed);
    }

    fn tombstone(
        &self,
        id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Option<UpstreamError> {
        if self.deleted_count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let deleted = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        let arn = self.find(id).map(|s| format!("s:{}", s.arn));
        [
            Some(version_key(id, version_id, stage)),
            Some(format!("s:{id}")),
            arn,
        ]
        .into_iter()
        .flatten()
        .find_map(|k| deleted.get(&k).cloned())
    }

    /// The answer for a read the cloud could not take: the store's version, in the agent's
    /// JSON; the cloud's earlier answer for a secret it said was deleted; or `None` (then
    /// the caller answers the cloud's error) when the store does not hold it.
    pub(crate) fn answer(
        &self,
        id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Option<std::result::Result<Bytes, UpstreamError>> {
        if let Some(gone) = self.tombstone(id, version_id, stage) {
            return Some(Err(gone));
        }
        let store = match self.open() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("offline fallback: cannot open the store: {e}");
                return None;
            }
        };
        let sel = selector(version_id, stage);
        let read = match store.read(id, &sel) {
            Err(e) if e.kind() == ErrorKind::NotFound => store.read_resource(id, &sel),
            other => other,
        };
        match read {
            Ok(v) => {
                let body = version_body(&v).ok()?;
                self.metrics.fallback_served();
                tracing::warn!(
                    "Secrets Manager unreachable: answered {id} from the sealed store {}",
                    store.path().display()
                );
                Some(Ok(Bytes::copy_from_slice(body.expose_bytes())))
            }
            Err(e) => {
                tracing::debug!("offline fallback: {e}");
                None
            }
        }
    }

    /// The store directory.
    pub(crate) fn store_dir(&self) -> &Path {
        &self.store
    }
}
