//! The BLS validator key: known answers against vectors computed independently in Python
//! (py_ecc, see `vectors/gen_bls_vectors.py`), decoding rules, the genesis validator string,
//! and the BLS key in `init_node_with`, `add_bls_key` and the readers.

use std::sync::Mutex;

use async_trait::async_trait;
use lockbox_core::{
    Error, ErrorKind, MemoryBackend, PutMode, SecretName, SecretValue, SecretsManager,
    SecretsManagerExt,
};
use lockbox_keys::{
    BlsKey, KeyError, NETWORK_KEY, NetworkKey, NodeKeys, VALIDATOR_BLS_KEY, VALIDATOR_KEY,
    ValidatorKey, add_bls_key, genesis_validator, init_node, init_node_with, read_bls_public_key,
    read_identity, read_public_keys,
};
use proptest::prelude::*;

/// The BLS12-381 group order r, big-endian.
const R_HEX: &str = "73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001";

struct Vector {
    label: String,
    secret_key_hex: String,
    public_key: String,
    genesis_validator: String,
}

fn fixture() -> serde_json::Value {
    serde_json::from_str(include_str!("vectors/bls_vectors.json")).expect("bls_vectors.json parses")
}

fn vectors() -> Vec<Vector> {
    let field = |v: &serde_json::Value, k: &str| v[k].as_str().expect(k).to_owned();
    fixture()["vectors"]
        .as_array()
        .expect("vectors array")
        .iter()
        .map(|v| Vector {
            label: field(v, "label"),
            secret_key_hex: field(v, "secret_key_hex"),
            public_key: field(v, "public_key"),
            genesis_validator: field(v, "genesis_validator"),
        })
        .collect()
}

/// The secp256k1 validator keys of vectors.json, in order (gen_bls_vectors.py pairs BLS vector
/// i with validator vector i modulo their number).
fn validator_keys() -> Vec<String> {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("vectors/vectors.json")).expect("vectors.json parses");
    json["vectors"]
        .as_array()
        .expect("vectors array")
        .iter()
        .map(|v| v["private_key_hex"].as_str().unwrap().to_owned())
        .collect()
}

fn value(text: &str) -> SecretValue {
    SecretValue::from(text)
}

#[test]
fn fixture_covers_the_edges() {
    let vs = vectors();
    assert!(vs.len() >= 8, "only {} vectors", vs.len());
    for needed in [
        "one",
        "r-minus-one",
        "leading-zero-byte",
        "leading-zero-bytes",
    ] {
        assert!(vs.iter().any(|v| v.label == needed), "no {needed} vector");
    }
    assert!(vs.iter().any(|v| v.secret_key_hex.starts_with("0000")));
    assert_eq!(
        vs.iter().find(|v| v.label == "one").unwrap().secret_key_hex,
        format!("{}1", "0".repeat(63))
    );
    assert_eq!(
        vs.iter()
            .find(|v| v.label == "r-minus-one")
            .unwrap()
            .secret_key_hex,
        format!("{}0", &R_HEX[..63])
    );
}

#[test]
fn public_keys_match_py_ecc() {
    for v in vectors() {
        let key = BlsKey::decode(&value(&v.secret_key_hex))
            .unwrap_or_else(|e| panic!("{}: {e}", v.label));
        let public = key.public_key();
        assert_eq!(public.to_string(), v.public_key, "{}", v.label);
        assert_eq!(
            format!("0x{}", hex::encode(public.as_bytes())),
            v.public_key,
            "{}",
            v.label
        );
        // The stored form is written back byte for byte, leading zeros included.
        assert_eq!(
            key.encode().expose_str(),
            Some(v.secret_key_hex.as_str()),
            "{}",
            v.label
        );
        // Polygon Edge writes lowercase, but uppercase hex is the same key.
        let upper = BlsKey::decode(&value(&v.secret_key_hex.to_uppercase())).unwrap();
        assert_eq!(upper.public_key(), public, "{}", v.label);
        assert_eq!(upper.encode().expose_str(), Some(v.secret_key_hex.as_str()));
    }
}

#[test]
fn genesis_validator_strings_match_the_fixture_and_parse_as_polygon_edge_does() {
    let validators = validator_keys();
    for (i, v) in vectors().iter().enumerate() {
        let validator = ValidatorKey::decode(&value(&validators[i % validators.len()])).unwrap();
        let bls = BlsKey::decode(&value(&v.secret_key_hex)).unwrap();
        let text = genesis_validator(&validator.address(), &bls.public_key());
        assert_eq!(text, v.genesis_validator, "{}", v.label);

        // Polygon Edge's ParseBLSValidator: exactly two parts split on ':', each hex with an
        // optional 0x.
        let parts: Vec<&str> = text.split(':').collect();
        assert_eq!(parts.len(), 2, "{text}");
        let address = hex::decode(parts[0].strip_prefix("0x").unwrap()).unwrap();
        let public = hex::decode(parts[1].strip_prefix("0x").unwrap()).unwrap();
        assert_eq!(address, validator.address().as_bytes());
        assert_eq!(public, bls.public_key().as_bytes());
    }
}

#[test]
fn invalid_scalars_are_refused_by_rule() {
    let fixture = fixture();
    let invalid = fixture["invalid"].as_array().expect("invalid array");
    assert!(invalid.len() >= 3);
    for v in invalid {
        let label = v["label"].as_str().unwrap();
        let hex = v["secret_key_hex"].as_str().unwrap();
        let err = BlsKey::decode(&value(hex)).unwrap_err();
        let expected = if label == "zero" {
            KeyError::BlsScalarZero
        } else {
            KeyError::BlsScalarOutOfRange
        };
        assert_eq!(err, expected, "{label}");
    }
    assert_eq!(
        BlsKey::decode(&value(R_HEX)).unwrap_err(),
        KeyError::BlsScalarOutOfRange
    );
    let zero = BlsKey::decode(&value(&"0".repeat(64))).unwrap_err();
    assert!(zero.to_string().contains("zero"), "{zero}");
    let big = BlsKey::decode(&value(&"f".repeat(64))).unwrap_err();
    assert!(big.to_string().contains("group order"), "{big}");
}

#[test]
fn malformed_text_is_refused_without_quoting_it() {
    let good = "5a".repeat(32);
    let cases: Vec<(String, KeyError)> = vec![
        (String::new(), KeyError::Empty),
        (format!("0x{good}"), KeyError::HexPrefix),
        (format!("{good}\n"), KeyError::TrailingNewline),
        (
            format!("{} {}", &good[..10], &good[11..]),
            KeyError::Whitespace { position: 10 },
        ),
        (
            format!("{}g{}", &good[..7], &good[8..]),
            KeyError::NotHex { position: 7 },
        ),
        (
            good[..62].to_owned(),
            KeyError::WrongLength {
                expected: 64,
                found: 62,
            },
        ),
        (
            format!("{good}00"),
            KeyError::WrongLength {
                expected: 64,
                found: 66,
            },
        ),
    ];
    for (text, expected) in cases {
        let err = BlsKey::decode(&value(&text)).unwrap_err();
        assert_eq!(err, expected, "{text:?}");
        assert!(!err.to_string().contains("5a5a5a"), "{err}");
    }
}

proptest! {
    /// Any canonical non-zero scalar survives encode -> decode, and so does its public key.
    #[test]
    fn encode_decode_round_trip(mut bytes in any::<[u8; 32]>()) {
        bytes[0] &= 0x3f; // below r (which starts 0x73)
        prop_assume!(bytes.iter().any(|b| *b != 0));
        let text = hex::encode(bytes);
        let key = BlsKey::decode(&value(&text)).unwrap();
        let encoded = key.encode();
        prop_assert_eq!(encoded.expose_str(), Some(text.as_str()));
        let again = BlsKey::decode(&key.encode()).unwrap();
        prop_assert_eq!(again.public_key(), key.public_key());
    }

    /// Hex of any length other than 64 characters is refused by length.
    #[test]
    fn wrong_lengths_are_refused(len in 1usize..200) {
        prop_assume!(len != 64);
        let err = BlsKey::decode(&value(&"1".repeat(len))).unwrap_err();
        prop_assert_eq!(err, KeyError::WrongLength { expected: 64, found: len });
    }

    /// One non-hex character anywhere is refused at its position.
    #[test]
    fn non_hex_is_refused(position in 0usize..64, c in "[g-zG-Z!#%&*+,./:;=?@_~-]") {
        let mut text = "7".repeat(64);
        text.replace_range(position..position + 1, &c);
        let err = BlsKey::decode(&value(&text)).unwrap_err();
        prop_assert_eq!(err, KeyError::NotHex { position });
    }
}

fn name(n: &str) -> SecretName {
    SecretName::new(n).unwrap()
}

async fn stored(b: &dyn SecretsManager, n: &str) -> Option<SecretValue> {
    b.get_optional(&name(n)).await.unwrap()
}

async fn put(b: &dyn SecretsManager, n: &str, v: &str) {
    b.put(&name(n), &value(v), PutMode::Create).await.unwrap();
}

/// A memory backend whose `put` of one name fails, that logs calls, and that reports
/// locations like a file backend does.
#[derive(Debug, Default)]
struct Faulty {
    inner: MemoryBackend,
    fail_put: Option<&'static str>,
    log: Mutex<Vec<String>>,
}

impl Faulty {
    fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

#[async_trait]
impl SecretsManager for Faulty {
    fn backend(&self) -> &'static str {
        "faulty"
    }
    fn location(&self, n: &SecretName) -> String {
        format!("/data/{n}.key")
    }
    async fn get_uncached(&self, n: &SecretName) -> lockbox_core::Result<SecretValue> {
        self.log.lock().unwrap().push(format!("get {n}"));
        self.inner.get(n).await
    }
    async fn put(
        &self,
        n: &SecretName,
        v: &SecretValue,
        mode: PutMode,
    ) -> lockbox_core::Result<()> {
        self.log.lock().unwrap().push(format!("put {n}"));
        if self.fail_put == Some(n.as_str()) {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "faulty",
                "injected failure",
            ));
        }
        self.inner.put(n, v, mode).await
    }
    async fn delete(&self, n: &SecretName) -> lockbox_core::Result<()> {
        self.log.lock().unwrap().push(format!("delete {n}"));
        self.inner.delete(n).await
    }
    async fn list(&self, prefix: &str) -> lockbox_core::Result<Vec<SecretName>> {
        self.inner.list(prefix).await
    }
    async fn has(&self, n: &SecretName) -> lockbox_core::Result<bool> {
        self.log.lock().unwrap().push(format!("has {n}"));
        self.inner.has(n).await
    }
}

#[tokio::test]
async fn default_init_creates_all_three_keys_in_polygon_edge_order() {
    assert_eq!(NodeKeys::default(), NodeKeys::ALL);
    let b = Faulty::default();
    let created = init_node_with(&b, NodeKeys::default()).await.unwrap();
    assert_eq!(
        b.calls(),
        [
            // The init intent record (issue 13): checked, written before the first key,
            // removed after the last.
            "has lockbox-init-intent",
            "has validator-key",
            "has validator-bls-key",
            "has network-key",
            "put lockbox-init-intent",
            "put validator-key",
            "put validator-bls-key",
            "put network-key",
            "delete lockbox-init-intent"
        ]
    );
    let v = stored(&b, VALIDATOR_KEY).await.unwrap();
    let bls = stored(&b, VALIDATOR_BLS_KEY).await.unwrap();
    let n = stored(&b, NETWORK_KEY).await.unwrap();
    assert_eq!(bls.expose_bytes().len(), 64);
    assert!(
        bls.expose_bytes()
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)),
        "lowercase hex"
    );
    let bls_public = BlsKey::decode(&bls).unwrap().public_key();
    assert_eq!(created.bls_public_key, Some(bls_public));
    assert_eq!(
        created.address,
        Some(ValidatorKey::decode(&v).unwrap().address())
    );
    assert_eq!(
        created.node_id,
        Some(NetworkKey::decode(&n).unwrap().node_id())
    );

    let id = read_identity(&b).await.unwrap();
    assert_eq!(Some(id.address), created.address);
    assert_eq!(Some(&id.node_id), created.node_id.as_ref());
    assert_eq!(id.bls_public_key, Some(bls_public));
    assert_eq!(
        id.genesis_validator(),
        Some(format!("{}:{}", id.address, bls_public))
    );
    assert_eq!(created.genesis_validator(), id.genesis_validator());
    assert_eq!(read_bls_public_key(&b).await.unwrap(), bls_public);
    assert_eq!(read_public_keys(&b).await.unwrap(), created);
}

#[tokio::test]
async fn init_node_still_creates_no_bls_key_and_one_can_be_added_later() {
    let b = Faulty::default();
    let id = init_node(&b).await.unwrap();
    assert_eq!(id.bls_public_key, None);
    assert_eq!(id.genesis_validator(), None);
    assert!(stored(&b, VALIDATOR_BLS_KEY).await.is_none());
    assert_eq!(read_identity(&b).await.unwrap(), id);
    let err = read_bls_public_key(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let v = stored(&b, VALIDATOR_KEY).await.unwrap();
    let n = stored(&b, NETWORK_KEY).await.unwrap();
    b.log.lock().unwrap().clear();
    let bls = add_bls_key(&b).await.unwrap();
    assert_eq!(
        b.calls(),
        [
            "has lockbox-init-intent",
            "has validator-bls-key",
            "put lockbox-init-intent",
            "put validator-bls-key",
            "delete lockbox-init-intent"
        ]
    );
    assert_eq!(
        stored(&b, VALIDATOR_KEY).await.unwrap().expose_bytes(),
        v.expose_bytes()
    );
    assert_eq!(
        stored(&b, NETWORK_KEY).await.unwrap().expose_bytes(),
        n.expose_bytes()
    );
    let after = read_identity(&b).await.unwrap();
    assert_eq!(after.address, id.address);
    assert_eq!(after.node_id, id.node_id);
    assert_eq!(after.bls_public_key, Some(bls));

    // A second BLS key is refused and the first survives.
    let err = add_bls_key(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.secret(), Some(VALIDATOR_BLS_KEY));
    assert_eq!(read_bls_public_key(&b).await.unwrap(), bls);
}

#[tokio::test]
async fn refuses_when_any_requested_key_exists_and_writes_nothing() {
    let b = MemoryBackend::new();
    put(&b, VALIDATOR_BLS_KEY, "theirs").await;
    let err = init_node_with(&b, NodeKeys::ALL).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.secret(), Some(VALIDATOR_BLS_KEY));
    assert!(err.message().contains("nothing was written"), "{err}");
    assert_eq!(b.list("").await.unwrap().len(), 1);

    // Keys not requested are neither checked nor touched.
    let created = init_node_with(&b, NodeKeys::ECDSA_AND_NETWORK)
        .await
        .unwrap();
    assert_eq!(created.bls_public_key, None);
    assert_eq!(
        stored(&b, VALIDATOR_BLS_KEY).await.unwrap().expose_str(),
        Some("theirs")
    );
}

#[tokio::test]
async fn failure_after_the_bls_key_rolls_it_back() {
    let b = Faulty {
        fail_put: Some(NETWORK_KEY),
        ..Default::default()
    };
    let err = init_node_with(&b, NodeKeys::ALL).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.secret(), Some(NETWORK_KEY));
    assert!(
        err.message()
            .contains("removed validator-key and validator-bls-key written by this run"),
        "{err}"
    );
    assert!(err.message().contains("left as it was"), "{err}");
    assert!(b.inner.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn asking_for_no_key_is_invalid() {
    let b = MemoryBackend::new();
    let none = NodeKeys {
        ecdsa: false,
        bls: false,
        network: false,
    };
    let err = init_node_with(&b, none).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(b.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn corrupt_bls_key_is_a_corrupt_error_naming_where_it_is() {
    let scalar = "e643677f505cfcb50645ace25448c9dc65fc2e2152b883e5f9c9dd403da6c2";
    let b = Faulty::default();
    init_node(&b).await.unwrap();
    put(&b.inner, VALIDATOR_BLS_KEY, scalar).await;
    for err in [
        read_bls_public_key(&b).await.unwrap_err(),
        read_identity(&b).await.unwrap_err(),
        read_public_keys(&b).await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert_eq!(err.secret(), Some(VALIDATOR_BLS_KEY));
        assert!(
            err.message().contains("expected 64 hex characters"),
            "{err}"
        );
        assert!(
            err.message().contains("/data/validator-bls-key.key"),
            "{err}"
        );
        let all = format!("{err} {err:?}");
        assert!(
            !all.contains(&scalar[..8]) && !all.contains(&scalar[54..]),
            "{all}"
        );
    }
}

#[tokio::test]
async fn public_keys_of_a_partial_node() {
    let b = MemoryBackend::new();
    assert_eq!(read_public_keys(&b).await.unwrap(), Default::default());
    let bls = add_bls_key(&b).await.unwrap();
    let keys = read_public_keys(&b).await.unwrap();
    assert_eq!(keys.bls_public_key, Some(bls));
    assert_eq!(keys.address, None);
    assert_eq!(keys.node_id, None);
    assert_eq!(keys.genesis_validator(), None);
}
