//! `init_node`, `read_address` and `read_node_id` against the in-memory backend and a wrapper
//! that injects failures.

use lockbox_core::{
    ErrorKind, MemoryBackend, PutMode, SecretName, SecretValue, SecretsManager, SecretsManagerExt,
};
use lockbox_keys::{
    NETWORK_KEY, NetworkKey, VALIDATOR_KEY, ValidatorKey, init_node, read_address, read_node_id,
};
use lockbox_testkit::{FaultyBackend as Faulty, Op};

fn name(n: &str) -> SecretName {
    SecretName::new(n).unwrap()
}

async fn stored(b: &dyn SecretsManager, n: &str) -> Option<SecretValue> {
    b.get_optional(&name(n)).await.unwrap()
}

async fn put(b: &dyn SecretsManager, n: &str, v: &str) {
    b.put(&name(n), &SecretValue::from(v), PutMode::Create)
        .await
        .unwrap();
}

#[tokio::test]
async fn creates_both_keys_and_reports_their_identity() {
    let b = MemoryBackend::new();
    let id = init_node(&b).await.unwrap();
    let v = stored(&b, VALIDATOR_KEY)
        .await
        .expect("validator-key created");
    let n = stored(&b, NETWORK_KEY).await.expect("network-key created");
    assert_eq!(ValidatorKey::decode(&v).unwrap().address(), id.address);
    assert_eq!(NetworkKey::decode(&n).unwrap().node_id(), id.node_id);
    assert_eq!(read_address(&b).await.unwrap(), id.address);
    assert_eq!(read_node_id(&b).await.unwrap(), id.node_id);
    assert!(id.node_id.starts_with("16Uiu2"));
    assert_eq!(b.list("").await.unwrap().len(), 2, "nothing else written");

    // A second node gets different keys.
    let other = init_node(&MemoryBackend::new()).await.unwrap();
    assert_ne!(other.address, id.address);
    assert_ne!(other.node_id, id.node_id);
}

#[tokio::test]
async fn uses_create_mode_validator_first() {
    let b = Faulty::new();
    init_node(&b).await.unwrap();
    assert_eq!(
        b.log(),
        [
            // The init intent record (issue 13): checked, written before the first key,
            // removed after the last.
            "has lockbox-init-intent",
            "has validator-key",
            "has network-key",
            "put-Create lockbox-init-intent",
            "put-Create validator-key",
            "put-Create network-key",
            "delete lockbox-init-intent"
        ]
    );
}

#[tokio::test]
async fn refuses_when_validator_key_exists_and_writes_nothing() {
    let b = MemoryBackend::new();
    put(&b, VALIDATOR_KEY, "existing-validator").await;
    let err = init_node(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.secret(), Some(VALIDATOR_KEY));
    assert!(
        err.message().contains("validator-key already exists"),
        "{err}"
    );
    assert!(err.message().contains("nothing was written"), "{err}");
    assert!(!err.message().contains(NETWORK_KEY), "{err}");
    assert!(stored(&b, NETWORK_KEY).await.is_none());
    assert_eq!(
        stored(&b, VALIDATOR_KEY).await.unwrap().expose_str(),
        Some("existing-validator")
    );
}

#[tokio::test]
async fn refuses_when_network_key_exists_and_writes_nothing() {
    let b = MemoryBackend::new();
    put(&b, NETWORK_KEY, "existing-network").await;
    let err = init_node(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.secret(), Some(NETWORK_KEY));
    assert!(
        err.message().contains("network-key already exists"),
        "{err}"
    );
    assert!(!err.message().contains(VALIDATOR_KEY), "{err}");
    assert!(stored(&b, VALIDATOR_KEY).await.is_none());
    assert_eq!(
        stored(&b, NETWORK_KEY).await.unwrap().expose_str(),
        Some("existing-network")
    );
}

#[tokio::test]
async fn refusal_names_every_existing_secret() {
    let b = Faulty::new();
    put(&b.inner, VALIDATOR_KEY, "v").await;
    put(&b.inner, NETWORK_KEY, "n").await;
    let err = init_node(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(
        err.message()
            .contains("validator-key and network-key already exist"),
        "{err}"
    );
    assert!(
        b.log().iter().all(|c| c.starts_with("has ")),
        "{:?}",
        b.log()
    );
    assert_eq!(
        stored(&b, VALIDATOR_KEY).await.unwrap().expose_str(),
        Some("v")
    );
    assert_eq!(
        stored(&b, NETWORK_KEY).await.unwrap().expose_str(),
        Some("n")
    );
}

#[tokio::test]
async fn failed_second_write_removes_the_first() {
    let b = Faulty::new().failing(Op::Put, NETWORK_KEY, ErrorKind::Unavailable);
    let err = init_node(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retryable());
    assert_eq!(err.secret(), Some(NETWORK_KEY));
    assert_eq!(err.backend(), "faulty");
    let msg = err.message();
    assert!(msg.contains("writing network-key failed"), "{msg}");
    assert!(msg.contains("injected failure"), "{msg}");
    assert!(
        msg.contains("removed validator-key written by this run"),
        "{msg}"
    );
    assert!(msg.contains("the node was left as it was"), "{msg}");
    assert!(stored(&b, VALIDATOR_KEY).await.is_none());
    assert!(stored(&b, NETWORK_KEY).await.is_none());
    assert!(b.log().contains(&"delete validator-key".to_string()));
    assert!(!b.log().contains(&"delete network-key".to_string()));
}

#[tokio::test]
async fn failed_first_write_writes_nothing_else() {
    let b = Faulty::new().failing(Op::Put, VALIDATOR_KEY, ErrorKind::PermissionDenied);
    let err = init_node(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(err.secret(), Some(VALIDATOR_KEY));
    assert!(
        err.message().contains("writing validator-key failed"),
        "{err}"
    );
    assert!(
        err.message().contains("the node was left as it was"),
        "{err}"
    );
    assert!(
        !b.log()
            .iter()
            .any(|c| c.contains("network-key") && !c.starts_with("has"))
    );
    assert!(b.inner.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_writer_is_never_clobbered_nor_deleted() {
    // Another writer creates network-key between our check and our write.
    let b = Faulty::new().has_says_absent();
    put(&b.inner, NETWORK_KEY, "theirs").await;
    let err = init_node(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.secret(), Some(NETWORK_KEY));
    assert!(err.message().contains("removed validator-key"), "{err}");
    assert_eq!(
        stored(&b, NETWORK_KEY).await.unwrap().expose_str(),
        Some("theirs")
    );
    assert!(stored(&b, VALIDATOR_KEY).await.is_none());
    assert!(!b.log().contains(&"delete network-key".to_string()));
}

#[tokio::test]
async fn failed_write_over_someone_elses_secret_leaves_it_alone() {
    // The write fails with an error other than AlreadyExists, and the secret there now is not
    // the value this run wrote: it belongs to someone else and must survive the clean-up.
    let b = Faulty::new()
        .has_says_absent()
        .failing(Op::Put, NETWORK_KEY, ErrorKind::Unavailable);
    put(&b.inner, NETWORK_KEY, "theirs").await;
    let err = init_node(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("left as it was"), "{err}");
    assert_eq!(
        stored(&b, NETWORK_KEY).await.unwrap().expose_str(),
        Some("theirs")
    );
    assert!(stored(&b, VALIDATOR_KEY).await.is_none());
    assert!(!b.log().contains(&"delete network-key".to_string()));
}

#[tokio::test]
async fn write_that_landed_despite_an_error_is_removed_too() {
    let b = Faulty::new()
        .failing(Op::Put, NETWORK_KEY, ErrorKind::Unavailable)
        .fail_after_storing();
    let err = init_node(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.message()
            .contains("removed validator-key and network-key written by this run"),
        "{err}"
    );
    assert!(err.message().contains("left as it was"), "{err}");
    assert!(b.inner.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn failed_rollback_names_the_secret_left_behind() {
    let b = Faulty::new()
        .failing(Op::Put, NETWORK_KEY, ErrorKind::Unavailable)
        .failing(Op::Delete, VALIDATOR_KEY, ErrorKind::PermissionDenied);
    let err = init_node(&b).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Unavailable,
        "the write's kind is kept"
    );
    assert_eq!(err.secret(), Some(NETWORK_KEY));
    let msg = err.message();
    assert!(msg.contains("writing network-key failed"), "{msg}");
    assert!(
        msg.contains("removing validator-key written by this run also failed"),
        "{msg}"
    );
    assert!(msg.contains("validator-key was left behind"), "{msg}");
    assert!(!msg.contains("left as it was"), "{msg}");
    assert!(stored(&b.inner, VALIDATOR_KEY).await.is_some());
}

#[tokio::test]
async fn unknown_outcome_of_a_failed_write_is_said_so() {
    let b = Faulty::new()
        .failing(Op::Put, NETWORK_KEY, ErrorKind::Unavailable)
        .failing(Op::Get, NETWORK_KEY, ErrorKind::Unavailable);
    let err = init_node(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let msg = err.message();
    assert!(msg.contains("removed validator-key"), "{msg}");
    assert!(
        msg.contains("could not check whether network-key was stored"),
        "{msg}"
    );
    assert!(!msg.contains("left as it was"), "{msg}");
}

#[tokio::test]
async fn has_failure_is_not_taken_as_absent() {
    for target in [VALIDATOR_KEY, NETWORK_KEY] {
        let b = Faulty::new().failing(Op::Has, target, ErrorKind::PermissionDenied);
        let err = init_node(&b).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{target}");
        assert_eq!(err.secret(), Some(target));
        assert!(
            !b.log().iter().any(|c| c.starts_with("put")),
            "{:?}",
            b.log()
        );
        assert!(b.inner.list("").await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn reads_touch_only_their_own_secret() {
    let b = Faulty::new();
    let id = init_node(&b.inner).await.unwrap();
    assert_eq!(read_address(&b).await.unwrap(), id.address);
    assert_eq!(b.log(), ["get validator-key"]);
    b.clear_log();
    assert_eq!(read_node_id(&b).await.unwrap(), id.node_id);
    assert_eq!(b.log(), ["get network-key"]);
}

#[tokio::test]
async fn reading_missing_keys_is_not_found() {
    let b = MemoryBackend::new();
    let err = read_address(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.secret(), Some(VALIDATOR_KEY));
    let err = read_node_id(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.secret(), Some(NETWORK_KEY));
}

#[tokio::test]
async fn corrupt_keys_are_corrupt_errors_without_key_bytes() {
    let scalar = "e643677f505cfcb50645ace25448c9dc65fc2e2152b883e5f9c9dd403da6c276";
    let b = MemoryBackend::new();
    put(&b, VALIDATOR_KEY, &format!("{scalar}\n")).await;
    put(&b, NETWORK_KEY, &format!("08011220{scalar}")).await;

    let err = read_address(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert_eq!(err.secret(), Some(VALIDATOR_KEY));
    assert_eq!(err.backend(), "memory");
    assert!(err.message().contains("newline"), "{err}");
    let all = format!("{err} {err:?}");
    assert!(
        !all.contains(&scalar[..8]) && !all.contains(&scalar[56..]),
        "{all}"
    );

    let err = read_node_id(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert_eq!(err.secret(), Some(NETWORK_KEY));
    assert_eq!(err.backend(), "memory");
    assert!(err.message().contains("Ed25519"), "{err}");
    let all = format!("{err} {err:?}");
    assert!(
        !all.contains(&scalar[..8]) && !all.contains(&scalar[56..]),
        "{all}"
    );
}
