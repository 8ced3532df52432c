//! Issue 13: an init that was killed (or whose clean-up failed) part way leaves an intent
//! record; the next init rolls back exactly the keys that run wrote and says so.

use lockbox_core::{
    ErrorKind, MemoryBackend, PutMode, SecretName, SecretValue, SecretsManager, SecretsManagerExt,
};
use lockbox_keys::{
    INIT_INTENT, InitRepair, NETWORK_KEY, NodeKeys, VALIDATOR_KEY, init_node,
    init_node_with_repair, read_identity,
};
use lockbox_testkit::{FaultyBackend as Faulty, Op};

fn name(n: &str) -> SecretName {
    SecretName::new(n).unwrap()
}

async fn stored(b: &dyn SecretsManager, n: &str) -> Option<SecretValue> {
    b.get_optional(&name(n)).await.unwrap()
}

/// A backend holding the half node of an init whose clean-up failed: `validator-key` written
/// by it, `network-key` not, and its intent record.
async fn half_node() -> (Faulty, SecretValue) {
    let b = Faulty::new()
        .failing(Op::Put, NETWORK_KEY, ErrorKind::Unavailable)
        .failing(Op::Delete, VALIDATOR_KEY, ErrorKind::PermissionDenied);
    let err = init_node(&b).await.unwrap_err();
    assert!(err.message().contains(INIT_INTENT), "{err}");
    assert!(stored(&b.inner, INIT_INTENT).await.is_some(), "record kept");
    let half = stored(&b.inner, VALIDATOR_KEY).await.unwrap();
    (b, half)
}

#[tokio::test]
async fn next_init_removes_what_the_interrupted_one_wrote_and_says_so() {
    let (b, half) = half_node().await;
    let init = init_node_with_repair(&b.inner, NodeKeys::ECDSA_AND_NETWORK)
        .await
        .unwrap();
    let repaired = init.repaired.expect("a repair");
    assert_eq!(
        repaired,
        InitRepair {
            removed: vec![name(VALIDATOR_KEY)],
            kept: vec![],
        }
    );
    assert_eq!(
        repaired.to_string(),
        "an interrupted init was rolled back: removed validator-key, the key it had written"
    );
    // A new, whole node; the record is gone.
    let now = stored(&b.inner, VALIDATOR_KEY).await.unwrap();
    assert_ne!(now.expose_bytes(), half.expose_bytes());
    let id = read_identity(&b.inner).await.unwrap();
    assert_eq!(Some(id.address), init.keys.address);
    assert!(stored(&b.inner, INIT_INTENT).await.is_none());
    // Nothing more to repair.
    b.inner.delete(&name(VALIDATOR_KEY)).await.unwrap();
    b.inner.delete(&name(NETWORK_KEY)).await.unwrap();
    let again = init_node_with_repair(&b.inner, NodeKeys::ECDSA_AND_NETWORK)
        .await
        .unwrap();
    assert_eq!(again.repaired, None);
}

#[tokio::test]
async fn a_key_the_interrupted_init_did_not_write_is_never_touched() {
    let (b, _) = half_node().await;
    // Someone replaced validator-key since: not that run's value.
    b.inner.delete(&name(VALIDATOR_KEY)).await.unwrap();
    b.inner
        .put(
            &name(VALIDATOR_KEY),
            &SecretValue::from("theirs"),
            PutMode::Create,
        )
        .await
        .unwrap();
    let err = init_node_with_repair(&b.inner, NodeKeys::ECDSA_AND_NETWORK)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(
        stored(&b.inner, VALIDATOR_KEY).await.unwrap().expose_str(),
        Some("theirs")
    );
    assert!(stored(&b.inner, INIT_INTENT).await.is_none());
}

#[tokio::test]
async fn a_record_lockbox_did_not_write_stops_init_and_touches_nothing() {
    let b = MemoryBackend::new();
    for (n, v) in [(INIT_INTENT, "hello"), (VALIDATOR_KEY, "v")] {
        b.put(&name(n), &SecretValue::from(v), PutMode::Create)
            .await
            .unwrap();
    }
    let err = init_node(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.message().contains("not an init intent record"), "{err}");
    assert_eq!(
        stored(&b, INIT_INTENT).await.unwrap().expose_str(),
        Some("hello")
    );
    assert_eq!(
        stored(&b, VALIDATOR_KEY).await.unwrap().expose_str(),
        Some("v")
    );
}

#[tokio::test]
async fn a_record_of_a_running_init_is_left_to_it() {
    // pid 1 is running: a record naming it (on this boot) is an init in progress.
    let (Ok(boot), Ok(stat)) = (
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id"),
        std::fs::read_to_string("/proc/1/stat"),
    ) else {
        eprintln!("skipped: needs Linux /proc");
        return;
    };
    let start = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_owned();
    let record = format!(
        "lockbox init intent v1\nrun {}\nprocess {} 1 {start}\n",
        "ab".repeat(16),
        boot.trim()
    );
    let b = MemoryBackend::new();
    b.put(
        &name(INIT_INTENT),
        &SecretValue::from(record),
        PutMode::Create,
    )
    .await
    .unwrap();
    let err = init_node(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(
        err.message().contains("another lockbox init (process 1)"),
        "{err}"
    );
    assert!(stored(&b, INIT_INTENT).await.is_some());
    assert!(stored(&b, VALIDATOR_KEY).await.is_none());
}
