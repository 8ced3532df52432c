//! Secret-resource sync against the AWS emulator `cargo xtask` starts (moto serves Secrets
//! Manager). Every test uses its own random secret-name prefix; without LOCKBOX_IT_ENDPOINT the
//! tests say they were skipped.

use lockbox_testkit::aws::aws_sdk_secretsmanager;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::primitives::Blob;
use lockbox_core::{ErrorKind, SecretValue};
use lockbox_resources::{
    CloudSecret, Manifest, STORE_FILE, Selector, Store, SyncOptions, SyncReport, sync,
};
use lockbox_secretsmanager::SecretsManagerClient;
use lockbox_testkit::aws::{ATTEMPT_TIMEOUT, secretsmanager_client};
use lockbox_testkit::wire::unreachable_endpoint;
use lockbox_testkit::{emulator, tag};

/// A prefix no other test (or run) uses.
fn prefix(test: &str) -> String {
    format!("it-res/{test}/{}", tag())
}

struct Env {
    sdk: aws_sdk_secretsmanager::Client,
    client: SecretsManagerClient,
    prefix: String,
    _tmp: tempfile::TempDir,
    store: PathBuf,
    key: PathBuf,
}

fn setup(test: &str) -> Option<Env> {
    let endpoint = emulator(test)?;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let key = tmp.path().join("store.key");
    let sdk = secretsmanager_client(&endpoint, ATTEMPT_TIMEOUT);
    Some(Env {
        client: SecretsManagerClient::from_client(sdk.clone()),
        sdk,
        prefix: prefix(test),
        _tmp: tmp,
        store,
        key,
    })
}

impl Env {
    fn name(&self, n: &str) -> String {
        format!("{}/{n}", self.prefix)
    }

    /// Creates a string secret; returns (ARN, version id).
    async fn create(&self, n: &str, value: &str) -> (String, String) {
        let out = self
            .sdk
            .create_secret()
            .name(self.name(n))
            .secret_string(value)
            .send()
            .await
            .unwrap();
        (out.arn.unwrap(), out.version_id.unwrap())
    }

    async fn create_binary(&self, n: &str, value: &[u8]) -> (String, String) {
        let out = self
            .sdk
            .create_secret()
            .name(self.name(n))
            .secret_binary(Blob::new(value.to_vec()))
            .send()
            .await
            .unwrap();
        (out.arn.unwrap(), out.version_id.unwrap())
    }

    /// A new version carrying only `stages` (empty: AWSCURRENT); returns its id.
    async fn put(&self, n: &str, value: &[u8], stages: &[&str]) -> String {
        let stages: Vec<String> = stages.iter().map(|s| s.to_string()).collect();
        self.client
            .put_version(&self.name(n), &SecretValue::new(value.to_vec()), &stages)
            .await
            .unwrap()
    }

    /// Syncs `m` from the emulator into this test's store, with the default options.
    async fn sync(&self, m: &Manifest) -> lockbox_core::Result<SyncReport> {
        self.sync_from(m, &self.client).await
    }

    /// Syncs `m` into this test's store from `source` (an unreachable endpoint, say).
    async fn sync_from(
        &self,
        m: &Manifest,
        source: &SecretsManagerClient,
    ) -> lockbox_core::Result<SyncReport> {
        sync(m, &self.store, &self.key, source, &SyncOptions::default()).await
    }

    fn store_bytes(&self) -> Vec<u8> {
        std::fs::read(self.store.join(STORE_FILE)).unwrap()
    }
}

fn manifest(entries: &[(String, &[&str])]) -> Manifest {
    Manifest {
        cloud_secrets: entries
            .iter()
            .map(|(id, ls)| CloudSecret::new(id.clone(), ls.iter().copied()))
            .collect(),
        ..Manifest::default()
    }
}

fn read(store: &Path, key: &Path, id: &str, sel: &Selector) -> lockbox_core::Result<Vec<u8>> {
    let s = Store::open(store, key)?;
    Ok(s.read(id, sel)?.value.expose_bytes().to_vec())
}

#[tokio::test]
async fn string_and_binary_secrets_with_custom_labels() {
    let Some(env) = setup("string_and_binary_secrets_with_custom_labels") else {
        return;
    };
    let (db_arn, v1) = env.create("db", "db-v1").await;
    let v2 = env.put("db", b"db-v2", &[]).await;
    let blue = env.put("db", b"db-blue", &["blue"]).await;
    let bin_value = [0u8, 0xff, 0x80, b'\n', 0xfe, 0];
    let (bin_arn, bin_v) = env.create_binary("bin", &bin_value).await;
    let m = manifest(&[
        (env.name("db"), &["blue", "AWSPREVIOUS"]),
        (bin_arn.clone(), &[]),
    ]);
    let r = env.sync(&m).await.unwrap();
    assert!(r.key_created);
    assert_eq!(r.secrets.len(), 2);
    assert_eq!(r.secrets[0].versions.len(), 3, "{:?}", r.secrets[0]);
    // AWSCURRENT of both in one BatchGetSecretValue, then one GetSecretValue for each other
    // distinct version (blue, AWSPREVIOUS).
    assert_eq!(
        r.requests, 3,
        "one call per distinct version beyond AWSCURRENT, plus the batch"
    );

    let store = Store::open(&env.store, &env.key).unwrap();
    let db = env.name("db");
    for id in [db.as_str(), db_arn.as_str()] {
        let cur = store.read(id, &Selector::current()).unwrap();
        assert_eq!(cur.value.expose_bytes(), b"db-v2");
        assert_eq!(cur.version_id, v2);
        assert_eq!(cur.arn, db_arn);
        assert_eq!(cur.name, db);
        assert!(!cur.binary);
        assert!(cur.created_date.is_some());
    }
    let b = store.read(&db, &Selector::stage("blue")).unwrap();
    assert_eq!(
        (b.value.expose_bytes(), b.version_id.as_str()),
        (&b"db-blue"[..], blue.as_str())
    );
    assert_eq!(b.version_stages, ["blue"]);
    let p = store.read(&db, &Selector::stage("AWSPREVIOUS")).unwrap();
    assert_eq!(
        (p.value.expose_bytes(), p.version_id.as_str()),
        (&b"db-v1"[..], v1.as_str())
    );
    let by_id = store.read(&db_arn, &Selector::version_id(&v1)).unwrap();
    assert_eq!(by_id.value.expose_bytes(), b"db-v1");
    let bin = store.read(&env.name("bin"), &Selector::current()).unwrap();
    assert!(bin.binary);
    assert_eq!(bin.value.expose_bytes(), &bin_value);
    assert_eq!(bin.version_id, bin_v);

    let e = store.read(&db, &Selector::stage("green")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("stage green"), "{e}");

    let text = String::from_utf8(env.store_bytes()).unwrap();
    for plain in ["db-v1", "db-v2", "db-blue"] {
        assert!(!text.contains(plain), "{plain} in clear in the store");
    }
}

#[tokio::test]
async fn stage_moves_after_put_version_and_resync() {
    let Some(env) = setup("stage_moves_after_put_version_and_resync") else {
        return;
    };
    let id = env.name("s");
    let (_, v1) = env.create("s", "one").await;
    let blue1 = env.put("s", b"blue-one", &["blue"]).await;
    env.sync(&manifest(&[(id.clone(), &["blue"])]))
        .await
        .unwrap();
    assert_eq!(
        read(&env.store, &env.key, &id, &Selector::current()).unwrap(),
        b"one"
    );
    // AWSPREVIOUS does not exist yet, and was not asked for.
    let e = read(&env.store, &env.key, &id, &Selector::stage("AWSPREVIOUS")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    // A new current version: AWS moves AWSPREVIOUS to the old one.
    let v2 = env.put("s", b"two", &[]).await;
    // And blue moves to a new version too.
    let blue2 = env.put("s", b"blue-two", &["blue"]).await;
    let m = manifest(&[(id.clone(), &["blue", "AWSPREVIOUS"])]);
    let r = env.sync(&m).await.unwrap();
    assert_eq!(r.secrets[0].versions.len(), 3, "{:?}", r.secrets[0]);
    let s = Store::open(&env.store, &env.key).unwrap();
    let cur = s.read(&id, &Selector::current()).unwrap();
    assert_eq!(
        (cur.value.expose_bytes(), cur.version_id.as_str()),
        (&b"two"[..], v2.as_str())
    );
    assert_eq!(cur.version_stages, ["AWSCURRENT"]);
    let prev = s.read(&id, &Selector::stage("AWSPREVIOUS")).unwrap();
    assert_eq!(
        (prev.value.expose_bytes(), prev.version_id.as_str()),
        (&b"one"[..], v1.as_str())
    );
    let blue = s.read(&id, &Selector::stage("blue")).unwrap();
    assert_eq!(
        (blue.value.expose_bytes(), blue.version_id.as_str()),
        (&b"blue-two"[..], blue2.as_str())
    );
    // The version blue left is no longer kept.
    let e = s.read(&id, &Selector::version_id(&blue1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn missing_secret_fails_and_keeps_the_store_byte_identical() {
    let Some(env) = setup("missing_secret_fails_and_keeps_the_store_byte_identical") else {
        return;
    };
    env.create("here", "v").await;
    env.sync(&manifest(&[(env.name("here"), &[])]))
        .await
        .unwrap();
    let before = env.store_bytes();
    let ghost = env.name("ghost");
    let e = env
        .sync(&manifest(&[(env.name("here"), &[]), (ghost.clone(), &[])]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let msg = e.to_string();
    assert!(msg.contains(&ghost), "{msg}");
    assert!(msg.contains("cloudSecrets[1]"), "{msg}");
    assert_eq!(env.store_bytes(), before);
    let e = env
        .sync(&manifest(&[(env.name("here"), &["nosuchlabel"])]))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("no version with staging label nosuchlabel"),
        "{e}"
    );
    assert_eq!(env.store_bytes(), before);
}

#[tokio::test]
async fn secret_scheduled_for_deletion_fails_the_sync() {
    let Some(env) = setup("secret_scheduled_for_deletion_fails_the_sync") else {
        return;
    };
    env.create("a", "v").await;
    env.create("b", "v").await;
    let m = manifest(&[(env.name("a"), &[]), (env.name("b"), &[])]);
    env.sync(&m).await.unwrap();
    let before = env.store_bytes();
    env.sdk
        .delete_secret()
        .secret_id(env.name("b"))
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let e = env.sync(&m).await.unwrap_err();
    assert!(e.to_string().contains(&env.name("b")), "{e}");
    assert_eq!(env.store_bytes(), before);
}

#[tokio::test]
async fn unreachable_endpoint_fails_fast_and_reads_keep_working() {
    let Some(env) = setup("unreachable_endpoint_fails_fast_and_reads_keep_working") else {
        return;
    };
    env.create("s", "kept").await;
    let m = manifest(&[(env.name("s"), &[])]);
    env.sync(&m).await.unwrap();
    let before = env.store_bytes();

    // A closed port: connections are refused.
    let offline = SecretsManagerClient::from_client(secretsmanager_client(
        &unreachable_endpoint(),
        Duration::from_secs(10),
    ));
    let start = Instant::now();
    let e = env.sync_from(&m, &offline).await.unwrap_err();
    let took = start.elapsed();
    eprintln!("closed port: failed in {took:?}: {e}");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(env.store_bytes(), before);
    assert_eq!(
        read(&env.store, &env.key, &env.name("s"), &Selector::current()).unwrap(),
        b"kept"
    );

    // A server that accepts and never answers: bounded by the attempt timeout and retries.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_port = hang.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        hang.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until && held.len() < 10 {
            if let Ok((c, _)) = hang.accept() {
                held.push(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let silent = SecretsManagerClient::from_client(secretsmanager_client(
        &format!("http://127.0.0.1:{hang_port}"),
        Duration::from_secs(1),
    ));
    let start = Instant::now();
    let e = env.sync_from(&m, &silent).await.unwrap_err();
    let took = start.elapsed();
    eprintln!("silent server: failed in {took:?}: {e}");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(env.store_bytes(), before);
    drop(holder);
}

#[tokio::test]
async fn secret_removed_from_the_manifest_disappears() {
    let Some(env) = setup("secret_removed_from_the_manifest_disappears") else {
        return;
    };
    let (a_arn, _) = env.create("a", "va").await;
    let (b_arn, _) = env.create("b", "vb").await;
    env.sync(&manifest(&[(a_arn.clone(), &[]), (env.name("b"), &[])]))
        .await
        .unwrap();
    let r = env.sync(&manifest(&[(a_arn.clone(), &[])])).await.unwrap();
    assert_eq!(r.removed, [b_arn]);
    let e = read(&env.store, &env.key, &env.name("b"), &Selector::current()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        read(&env.store, &env.key, &env.name("a"), &Selector::current()).unwrap(),
        b"va"
    );
}

/// Measures a sync of many secrets (each with a custom label on its own version) and checks
/// the number of calls: AWSCURRENT of all in BatchGetSecretValue calls (20 a call), then one
/// GetSecretValue per other distinct version.
#[tokio::test]
async fn many_secrets_one_call_per_distinct_version() {
    let Some(env) = setup("many_secrets_one_call_per_distinct_version") else {
        return;
    };
    const N: usize = 40;
    let mut entries = Vec::new();
    for i in 0..N {
        let n = format!("s{i}");
        env.create(&n, &format!("value-{i}")).await;
        env.put(&n, format!("blue-{i}").as_bytes(), &["blue"]).await;
        entries.push(env.name(&n));
    }
    let m = manifest(
        &entries
            .iter()
            .map(|e| (e.clone(), &["blue"][..]))
            .collect::<Vec<_>>(),
    );
    let start = Instant::now();
    let r = env.sync(&m).await.unwrap();
    let took = start.elapsed();
    eprintln!(
        "MEASURED: sync of {N} secrets x 2 labels ({} calls, {} bytes store) on the emulator took {took:?}",
        r.requests,
        env.store_bytes().len()
    );
    assert_eq!(r.requests, N.div_ceil(20) + N);
    let start = Instant::now();
    let s = Store::open(&env.store, &env.key).unwrap();
    for (i, e) in entries.iter().enumerate() {
        let v = s.read(e, &Selector::stage("blue")).unwrap();
        assert_eq!(v.value.expose_bytes(), format!("blue-{i}").as_bytes());
    }
    eprintln!("MEASURED: open + {N} reads took {:?}", start.elapsed());
}
