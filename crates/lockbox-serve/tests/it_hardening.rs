//! Attacks of issue 23 on `lockbox serve` that do not need the new server: each a test that
//! failed before its fix. Against the AWS emulator (skipped without LOCKBOX_IT_ENDPOINT).
//!
//! The in-process servers read their SSRF token from `CARGO_MANIFEST_DIR` (cargo sets it for
//! test runs), since tests cannot set environment variables without `unsafe`.

use lockbox_testkit::aws::aws_sdk_secretsmanager;
use std::time::Duration;

use lockbox_serve::{ServeConfig, Server};
use lockbox_testkit::{emulator, prefix};

const TOKEN_VAR: &str = "CARGO_MANIFEST_DIR";

fn config(lockbox: &str) -> ServeConfig {
    ServeConfig::from_toml(&format!(
        "validate_credentials = false\nssrf_env_variables = [\"{TOKEN_VAR}\"]\n\
         [lockbox]\nlisten = \"127.0.0.1:0\"\n{lockbox}\n"
    ))
    .unwrap()
}

async fn start(endpoint: &str, lockbox: &str) -> lockbox_core::Result<Server> {
    let sdk = lockbox_testkit::aws::sdk_config(endpoint, Duration::from_secs(5));
    Server::start_with_sdk(config(lockbox), &sdk).await
}

/// Item 7: an older copy of the store put back while the cloud is reachable is repaired by the
/// start sync (fresh values, a generation above any seen), instead of stopping serve from
/// starting; the copy is not what is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_store_is_repaired_by_the_start_sync() {
    let Some(ep) = emulator("serve rolled-back store") else {
        return;
    };
    let name = prefix("serve-rollback");
    let sm = aws_sdk_secretsmanager::Client::new(&lockbox_testkit::aws::setup_config(&ep));
    sm.create_secret()
        .name(&name)
        .secret_string("old-value")
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.json");
    std::fs::write(
        &manifest,
        serde_json::json!({"cloudSecrets": [{"arn": name}]}).to_string(),
    )
    .unwrap();
    let store = dir.path().join("store");
    let keys = format!(
        "manifest = \"{}\"\nstore = \"{}\"\nsync_interval_seconds = 0\n",
        manifest.display(),
        store.display()
    );
    let sealed = store.join(lockbox_resources::STORE_FILE);
    // Generation 1, saved by the attacker; then the secret rotates and generation 2 is synced.
    drop(start(&ep, &keys).await.unwrap());
    let old_copy = std::fs::read(&sealed).unwrap();
    sm.put_secret_value()
        .secret_id(&name)
        .secret_string("new-value")
        .send()
        .await
        .unwrap();
    drop(start(&ep, &keys).await.unwrap());
    std::fs::write(&sealed, &old_copy).unwrap();

    let server = start(&ep, &keys)
        .await
        .expect("a rolled-back store while the cloud answers must be repaired, not fatal");
    drop(server);
    let store_now = lockbox_resources::Store::open(&store, &store.with_extension("key"))
        .expect("the repaired store opens without --allow-rollback");
    let version = store_now
        .read(&name, &lockbox_resources::Selector::current())
        .unwrap();
    assert_eq!(version.value.expose_bytes(), b"new-value");

    // Without the cloud, the old copy is still refused: never served as if current.
    std::fs::write(&sealed, &old_copy).unwrap();
    let Err(e) = start("http://127.0.0.1:9", &keys).await else {
        panic!("a rolled-back store was accepted with no cloud to repair it");
    };
    assert!(e.to_string().contains("rollback"), "{e}");
}
