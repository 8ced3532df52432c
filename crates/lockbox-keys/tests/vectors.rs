//! Known-answer tests: keys -> addresses and node IDs, against vectors computed independently in
//! Python (coincurve + pycryptodome + base58, see `vectors/gen_vectors.py`), plus round trips.

use libp2p_identity::Keypair;
use lockbox_core::SecretValue;
use lockbox_keys::{NetworkKey, ValidatorKey};
use proptest::prelude::*;

/// secp256k1 group order, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

struct Vector {
    label: String,
    private_key_hex: String,
    address: String,
    network_key_hex: String,
    node_id: String,
}

fn vectors() -> Vec<Vector> {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("vectors/vectors.json")).expect("vectors.json parses");
    let field = |v: &serde_json::Value, k: &str| v[k].as_str().expect(k).to_owned();
    json["vectors"]
        .as_array()
        .expect("vectors array")
        .iter()
        .map(|v| Vector {
            label: field(v, "label"),
            private_key_hex: field(v, "private_key_hex"),
            address: field(v, "address"),
            network_key_hex: field(v, "network_key_hex"),
            node_id: field(v, "node_id"),
        })
        .collect()
}

#[test]
fn private_key_one_has_the_well_known_address() {
    let hex = format!("{}1", "0".repeat(63));
    let key = ValidatorKey::decode(&SecretValue::from(hex.as_str())).unwrap();
    assert_eq!(
        key.address().to_string(),
        "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    );
}

#[test]
fn fixture_has_enough_independent_vectors() {
    let vs = vectors();
    assert!(vs.len() >= 4, "only {} vectors", vs.len());
    // At least one EIP-55 checksum with both cases among the hex letters.
    assert!(vs.iter().any(|v| {
        let letters: Vec<char> = v.address[2..]
            .chars()
            .filter(char::is_ascii_alphabetic)
            .collect();
        letters.iter().any(char::is_ascii_uppercase) && letters.iter().any(char::is_ascii_lowercase)
    }));
}

#[test]
fn validator_addresses_match_independent_vectors() {
    for v in vectors() {
        let key = ValidatorKey::decode(&SecretValue::from(v.private_key_hex.as_str()))
            .unwrap_or_else(|e| panic!("{}: {e}", v.label));
        assert_eq!(key.address().to_string(), v.address, "{}", v.label);
        assert_eq!(
            key.encode().expose_str(),
            Some(v.private_key_hex.as_str()),
            "{}",
            v.label
        );
        // The address bytes are the checksummed text, lowercased.
        assert_eq!(
            hex::encode(key.address().as_bytes()),
            v.address[2..].to_lowercase(),
            "{}",
            v.label
        );
        // Uppercase hex is accepted too and means the same key.
        let upper = ValidatorKey::decode(&SecretValue::from(v.private_key_hex.to_uppercase()))
            .unwrap_or_else(|e| panic!("{}: {e}", v.label));
        assert_eq!(upper.address(), key.address(), "{}", v.label);
    }
}

#[test]
fn node_ids_match_independent_vectors() {
    for v in vectors() {
        let key = NetworkKey::decode(&SecretValue::from(v.network_key_hex.as_str()))
            .unwrap_or_else(|e| panic!("{}: {e}", v.label));
        assert_eq!(key.node_id(), v.node_id, "{}", v.label);
        assert!(key.node_id().starts_with("16Uiu2"), "{}", v.label);
        assert_eq!(
            key.encode().expose_str(),
            Some(v.network_key_hex.as_str()),
            "{}",
            v.label
        );
    }
}

#[test]
fn generated_validator_key_encodes_as_64_lowercase_hex() {
    let key = ValidatorKey::generate();
    let enc = key.encode();
    let text = enc.expose_str().unwrap();
    assert_eq!(text.len(), 64);
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let back = ValidatorKey::decode(&enc).unwrap();
    assert_eq!(back.address(), key.address());
    assert_ne!(ValidatorKey::generate().address(), key.address());
}

#[test]
fn generated_network_key_is_libp2p_protobuf_hex() {
    let key = NetworkKey::generate();
    let enc = key.encode();
    let text = enc.expose_str().unwrap();
    assert!(text.starts_with("08021220"), "{}", &text[..8]);
    assert_eq!(text.len(), 72);
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert!(key.node_id().starts_with("16Uiu2"));
    // libp2p itself reads our encoding as the same identity and writes the same bytes.
    let bytes = hex::decode(text).unwrap();
    let kp = Keypair::from_protobuf_encoding(&bytes).unwrap();
    assert_eq!(kp.public().to_peer_id().to_base58(), key.node_id());
    assert_eq!(kp.to_protobuf_encoding().unwrap(), bytes);
    let back = NetworkKey::decode(&enc).unwrap();
    assert_eq!(back.node_id(), key.node_id());
    assert_ne!(NetworkKey::generate().node_id(), key.node_id());
}

#[test]
fn largest_valid_scalar_decodes_and_the_order_does_not() {
    let mut below = N;
    below[31] -= 1;
    assert!(ValidatorKey::decode(&SecretValue::from(hex::encode(below))).is_ok());
    assert!(
        NetworkKey::decode(&SecretValue::from(format!(
            "08021220{}",
            hex::encode(below)
        )))
        .is_ok()
    );
    let mut above = N;
    above[31] += 1;
    for bad in [N, above, [0xff; 32]] {
        assert!(ValidatorKey::decode(&SecretValue::from(hex::encode(bad))).is_err());
        assert!(
            NetworkKey::decode(&SecretValue::from(format!("08021220{}", hex::encode(bad))))
                .is_err()
        );
    }
}

proptest! {
    #[test]
    fn validator_round_trip(bytes in any::<[u8; 32]>()) {
        // Valid scalars are 1..n; random bytes almost always are, but check independently.
        prop_assume!(bytes != [0u8; 32] && bytes < N);
        let hex_text = hex::encode(bytes);
        let key = ValidatorKey::decode(&SecretValue::from(hex_text.as_str())).unwrap();
        let enc = key.encode();
        prop_assert_eq!(enc.expose_bytes(), hex_text.as_bytes());
        let upper = ValidatorKey::decode(&SecretValue::from(hex_text.to_uppercase())).unwrap();
        let enc = upper.encode();
        prop_assert_eq!(enc.expose_bytes(), hex_text.as_bytes());
        prop_assert_eq!(upper.address(), key.address());
    }

    #[test]
    fn network_round_trip(bytes in any::<[u8; 32]>()) {
        prop_assume!(bytes != [0u8; 32] && bytes < N);
        let hex_text = format!("08021220{}", hex::encode(bytes));
        let key = NetworkKey::decode(&SecretValue::from(hex_text.as_str())).unwrap();
        let enc = key.encode();
        prop_assert_eq!(enc.expose_bytes(), hex_text.as_bytes());
        let node_id = key.node_id();
        prop_assert!(node_id.starts_with("16Uiu2"));
        let back = NetworkKey::decode(&key.encode()).unwrap();
        prop_assert_eq!(back.node_id(), node_id);
    }

    #[test]
    fn scalars_at_or_above_the_order_are_refused(tail in any::<[u8; 16]>()) {
        // n's top 16 bytes, then anything at least n's low half: always >= n.
        let mut bytes = N;
        for (b, t) in bytes[16..].iter_mut().zip(tail) {
            *b = (*b).max(t);
        }
        prop_assert!(ValidatorKey::decode(&SecretValue::from(hex::encode(bytes))).is_err());
    }
}
