//! The offline fallback: a Greengrass-style sealed store (lockbox-resources) that `serve`
//! syncs at start and on an interval, and answers Secrets Manager reads from when AWS cannot
//! be reached.
//!
//! The store answers only for an outage (the cloud unreachable: network, timeout, 5xx), never
//! for a refusal. Deleted secrets: when Secrets Manager answers a read of a stored secret with
//! a not-found about the whole secret ("can't find the specified secret", whatever
//! `versionStage` or `versionId` was asked), or with `InvalidRequestException` saying it is
//! marked for deletion, the whole secret is remembered as deleted; a not-found about one
//! version ("... secret value for staging label / VersionId") remembers that version only.
//! While the cloud stays unreachable, later reads of it get that same answer, never the
//! store's copy; a successful cloud read of it forgets it again.
//!
//! That memory holds only secrets and versions the store holds (a read of an id or a stage
//! the store does not have adds nothing: the store could not answer it anyway), at most
//! [`MAX_TOMBSTONES`] entries (the least recently used goes first), each for [`TOMBSTONE_TTL`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

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

/// Most "deleted in the cloud" answers remembered; the least recently used is dropped first.
pub(crate) const MAX_TOMBSTONES: usize = 4096;

/// How long a "deleted in the cloud" answer is remembered without being seen again.
pub(crate) const TOMBSTONE_TTL: Duration = Duration::from_secs(3600);

/// The cloud's "deleted" answers, by key, bounded in number and age (an LRU with a TTL).
#[derive(Default)]
struct Tombstones {
    /// key -> (answer, last used, use stamp).
    entries: HashMap<String, (UpstreamError, Instant, u64)>,
    /// Increases with every insert or hit; the smallest stamp is the least recently used.
    clock: u64,
}

impl Tombstones {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn insert(&mut self, key: String, answer: UpstreamError, now: Instant) {
        self.clock += 1;
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_TOMBSTONES {
            self.entries
                .retain(|_, (_, used, _)| now.duration_since(*used) < TOMBSTONE_TTL);
            if self.entries.len() >= MAX_TOMBSTONES
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, _, stamp))| *stamp)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (answer, now, self.clock));
    }

    fn get(&mut self, key: &str, now: Instant) -> Option<UpstreamError> {
        let (answer, used, stamp) = self.entries.get_mut(key)?;
        if now.duration_since(*used) >= TOMBSTONE_TTL {
            self.entries.remove(key);
            return None;
        }
        self.clock += 1;
        *used = now;
        *stamp = self.clock;
        Some(answer.clone())
    }

    fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// Whether the cloud's not-found (or marked-for-deletion) answer is about the whole secret,
/// not one version or label of it. Secrets Manager says "can't find the specified secret." for
/// a missing secret whatever `versionStage` or `versionId` was asked, and "can't find the
/// specified secret value for staging label: X" (or "for VersionId: X") for a missing
/// version. An answer that names no version counts as the whole secret.
pub(crate) fn secret_is_gone(answer: &UpstreamError) -> bool {
    match answer.code.as_str() {
        "ResourceNotFoundException" => {
            let message = answer.message.to_lowercase();
            !["secret value", "staging label", "versionid", "version id"]
                .iter()
                .any(|about_a_version| message.contains(about_a_version))
        }
        "InvalidRequestException" => answer.message.to_lowercase().contains("delet"),
        _ => false,
    }
}

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
    /// Tombstones of stored secrets: `s:<ARN>` for a whole secret,
    /// `v:<ARN>\0<version id>\0<stage>` for one stored version the cloud said does not exist;
    /// the cloud's answer.
    deleted: Mutex<Tombstones>,
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
    /// Anything else (access denied, throttled, bad request, missing or invalid credentials):
    /// answer the cloud's error, never the store's copy.
    Other,
}

impl Verdict {
    /// What a failed read means for the store, from the lockbox error the read ended with
    /// (`None`: serve's own request timeout). The kinds come from each AWS crate's one code
    /// table: a secret Secrets Manager says is gone is `Deleted`; missing, invalid or expired
    /// credentials (`Unauthenticated`) and refusals are never an outage; only `Unavailable`
    /// (timeouts, connection failures, 5xx) is answered from the store.
    pub(crate) fn of_error(err: Option<&lockbox_core::Error>) -> Self {
        match err {
            None => Self::Unreachable,
            Some(e) if lockbox_secretsmanager::error_is_gone(e) => Self::Deleted,
            Some(e) if e.kind() == ErrorKind::Unavailable => Self::Unreachable,
            Some(_) => Self::Other,
        }
    }
}

fn version_key(arn: &str, version_id: Option<&str>, stage: Option<&str>) -> String {
    format!(
        "v:{arn}\0{}\0{}",
        version_id.unwrap_or(""),
        stage.unwrap_or("AWSCURRENT")
    )
}

/// Whether the store holds the version of `secret` that `version_id` or `stage` selects.
fn holds_version(secret: &SecretInfo, version_id: Option<&str>, stage: Option<&str>) -> bool {
    secret.versions.iter().any(|(id, stages)| match version_id {
        Some(v) => id == v && stage.is_none_or(|s| stages.iter().any(|t| t == s)),
        None => {
            let stage = stage.unwrap_or("AWSCURRENT");
            stages.iter().any(|t| t == stage)
        }
    })
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
        sdk: &lockbox_aws::SdkConfig,
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
            client: SecretsManagerClient::new(sdk),
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
            lockbox_resources::sync(
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
        let Some(secret) = self.find(id) else {
            return;
        };
        let mut deleted = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        deleted.remove(&format!("s:{}", secret.arn));
        deleted.remove(&version_key(&secret.arn, version_id, stage));
        self.deleted_count.store(deleted.len(), Ordering::Relaxed);
    }

    /// The cloud said `id` (or this version of it) does not exist or is marked for deletion.
    /// Remembered only for a secret (or version) the store holds: for anything else the store
    /// has no answer to withhold.
    pub(crate) fn cloud_deleted(
        &self,
        id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
        answer: &UpstreamError,
    ) {
        let Some(secret) = self.find(id) else {
            return;
        };
        let key = if secret_is_gone(answer) {
            format!("s:{}", secret.arn)
        } else if holds_version(&secret, version_id, stage) {
            version_key(&secret.arn, version_id, stage)
        } else {
            return;
        };
        let mut deleted = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        deleted.insert(key, answer.clone(), Instant::now());
        self.deleted_count.store(deleted.len(), Ordering::Relaxed);
    }

    /// How many "deleted in the cloud" answers are remembered.
    #[cfg(test)]
    fn tombstones(&self) -> usize {
        self.deleted.lock().unwrap_or_else(|e| e.into_inner()).len()
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
        let secret = self.find(id)?;
        let now = Instant::now();
        let mut deleted = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        let found = deleted
            .get(&format!("s:{}", secret.arn), now)
            .or_else(|| deleted.get(&version_key(&secret.arn, version_id, stage), now));
        self.deleted_count.store(deleted.len(), Ordering::Relaxed);
        found
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

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";

    /// An `Offline` whose store index holds `db` (versions v1 AWSCURRENT, v0 AWSPREVIOUS),
    /// without a store on disk or a reachable cloud.
    fn offline() -> Offline {
        let sdk = lockbox_aws::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let info = SecretInfo {
            arn: ARN.into(),
            name: "db".into(),
            manifest_id: "db".into(),
            resource_id: None,
            resource_name: None,
            versions: vec![
                ("v1".into(), vec!["AWSCURRENT".into()]),
                ("v0".into(), vec!["AWSPREVIOUS".into()]),
            ],
        };
        Offline {
            store: PathBuf::from("/nonexistent"),
            key_file: PathBuf::from("/nonexistent.key"),
            manifest: None,
            interval: Duration::ZERO,
            client: SecretsManagerClient::new(&sdk),
            index: RwLock::new(Arc::new(vec![info])),
            deleted: Mutex::default(),
            deleted_count: AtomicUsize::new(0),
            metrics: Arc::default(),
        }
    }

    fn not_found(message: &str) -> UpstreamError {
        UpstreamError {
            status: 400,
            code: "ResourceNotFoundException".into(),
            message: message.into(),
        }
    }

    const GONE: &str = "Secrets Manager can't find the specified secret.";

    /// Item 6: a not-found about the whole secret, asked with any stage or version id, marks
    /// the whole secret deleted, so AWSCURRENT is not served from the store afterwards.
    #[test]
    fn a_not_found_about_the_whole_secret_marks_it_deleted_whatever_was_asked() {
        for (version_id, stage) in [
            (None, Some("random-stage-1")),
            (Some("no-such-version"), None),
            (None, Some("AWSPREVIOUS")),
            (None, None),
        ] {
            let o = offline();
            o.cloud_deleted("db", version_id, stage, &not_found(GONE));
            for (v, s) in [
                (None, None),
                (Some("v0"), None),
                (None, Some("AWSPREVIOUS")),
            ] {
                assert!(
                    o.tombstone(ARN, v, s).is_some(),
                    "asked {version_id:?}/{stage:?}; then {v:?}/{s:?} was served from the store"
                );
            }
        }
    }

    /// A not-found about one stored version withholds that version only.
    #[test]
    fn a_not_found_about_one_version_marks_only_that_version() {
        let o = offline();
        let answer = not_found(
            "Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS",
        );
        o.cloud_deleted("db", None, Some("AWSPREVIOUS"), &answer);
        assert!(o.tombstone("db", None, Some("AWSPREVIOUS")).is_some());
        assert!(o.tombstone("db", None, None).is_none());
        assert!(secret_is_gone(&not_found(GONE)));
        assert!(secret_is_gone(&not_found("")));
        assert!(!secret_is_gone(&not_found(
            "Secrets Manager can't find the specified secret value for VersionId: x"
        )));
    }

    /// Item 6: missing or invalid credentials are never an outage.
    #[test]
    fn credential_failures_are_never_answered_from_the_store() {
        use lockbox_aws::{AwsFailure, Transport};
        let creds = lockbox_core::Error::new(ErrorKind::Unauthenticated, "t", "no credentials");
        assert!(matches!(Verdict::of_error(Some(&creds)), Verdict::Other));
        let expired = AwsFailure::service(Some(400), "ExpiredTokenException", "").into_error(
            ErrorKind::Unauthenticated,
            "t",
            "expired".into(),
        );
        assert!(matches!(Verdict::of_error(Some(&expired)), Verdict::Other));
        let gone = AwsFailure::service(Some(400), "ResourceNotFoundException", GONE).into_error(
            ErrorKind::NotFound,
            "t",
            "gone".into(),
        );
        assert!(matches!(Verdict::of_error(Some(&gone)), Verdict::Deleted));
        let outage = AwsFailure::service(Some(503), "ServiceUnavailable", "").into_error(
            ErrorKind::Unavailable,
            "t",
            "down".into(),
        );
        assert!(matches!(
            Verdict::of_error(Some(&outage)),
            Verdict::Unreachable
        ));
        let _ = Transport::Timeout;
        assert!(matches!(Verdict::of_error(None), Verdict::Unreachable));
    }

    /// Item 2: reads of ids the store does not hold, and random stages of a stored secret,
    /// add nothing; the memory never passes its cap, and an entry expires after its TTL.
    #[test]
    fn the_deleted_memory_is_bounded() {
        let o = offline();
        for i in 0..30_000 {
            o.cloud_deleted(&format!("missing-{i}"), None, None, &not_found(GONE));
            let stage = format!("stage-{i}");
            let answer = not_found(&format!(
                "Secrets Manager can't find the specified secret value for staging label: {stage}"
            ));
            o.cloud_deleted("db", None, Some(&stage), &answer);
        }
        assert_eq!(o.tombstones(), 0);
        o.cloud_deleted("db", None, None, &not_found(GONE));
        assert_eq!(o.tombstones(), 1);

        let mut t = Tombstones::default();
        let start = Instant::now();
        for i in 0..MAX_TOMBSTONES + 100 {
            t.insert(format!("k{i}"), not_found(GONE), start);
        }
        assert_eq!(t.len(), MAX_TOMBSTONES);
        // The least recently used went first; a recent hit keeps an old key.
        assert!(t.get("k0", start).is_none());
        assert!(t.get("k100", start).is_some());
        t.insert("new".into(), not_found(GONE), start);
        assert!(
            t.get("k100", start).is_some(),
            "a recently used entry was dropped"
        );
        assert!(t.get("k101", start).is_none());
        assert!(
            t.get("new", start + TOMBSTONE_TTL).is_none(),
            "expired entry kept"
        );
        assert_eq!(t.len(), MAX_TOMBSTONES - 1);
    }
}
