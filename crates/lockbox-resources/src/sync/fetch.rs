//! Fetching: every (secret, label) a manifest names, read from a [`VersionSource`] (Secrets
//! Manager, batched where it can) into a [`Snapshot`], each distinct version once.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use lockbox_core::{Error, ErrorKind, Result, RetryPolicy};
use lockbox_secretsmanager::{FetchedMany, SecretVersion};

use crate::BACKEND;
use crate::manifest::{AWSCURRENT, CloudSecret, Manifest};
use crate::sealed::{Snapshot, SnapshotSecret};

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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use lockbox_core::ErrorKind;

    use super::super::testing::{Batching, Fake, contents, dirs, fake, manifest, synced_db};
    use crate::store::{Selector, Store};

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
        let r1 = d1.sync(&m, &plain).await.unwrap();
        assert_eq!(r1.requests, 80);

        // AWSCURRENT of all 40 in one batch, then 40 reads of green.
        let batching = Batching::default();
        many(&batching.inner);
        let d2 = dirs();
        let r2 = d2.sync(&m, &batching).await.unwrap();
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
        let e = d2.sync(&manifest(&entries), &batching).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(
            e.to_string()
                .contains("cloudSecrets[7]: the secret does not exist"),
            "{e}"
        );
        assert_eq!(contents(&d1), contents(&d2), "the store was kept");
    }

    #[tokio::test]
    async fn missing_secret_or_label_fails_and_leaves_store_byte_identical() {
        let (f, d, before) = synced_db().await;
        let e = d
            .sync(&manifest(&[("db", &[]), ("ghost", &[])]), &f)
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
        let e = d
            .sync(&manifest(&[("db", &["purple"])]), &f)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("no version with staging label purple"),
            "{e}"
        );
        assert_eq!(d.store_bytes(), before);
    }

    #[tokio::test]
    async fn unavailable_is_retried_then_fails_without_touching_the_store() {
        let (f, d, before) = synced_db().await;
        *f.fail.lock().unwrap() = Some(ErrorKind::Unavailable);
        f.calls.store(0, Ordering::SeqCst);
        let start = std::time::Instant::now();
        let e = d.sync(&manifest(&[("db", &[])]), &f).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(f.calls.load(Ordering::SeqCst), 3, "three attempts");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(d.store_bytes(), before);
        *f.fail.lock().unwrap() = Some(ErrorKind::PermissionDenied);
        f.calls.store(0, Ordering::SeqCst);
        let e = d.sync(&manifest(&[("db", &[])]), &f).await.unwrap_err();
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
        let r = d.sync(&manifest(&[("db", &["green"])]), &f).await.unwrap();
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
        let e = d
            .sync(&manifest(&[("db", &[]), (arn, &["blue"])]), &f)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("are the same secret"), "{e}");
    }
}
