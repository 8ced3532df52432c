//! Fuzzing (issue 13, item 10) of the key file parsers through lockbox-keys' public decode
//! functions: arbitrary bytes, and near-valid hex, never panic, and are refused with a
//! `KeyError` unless they are a valid key. Inputs are bounded and the case count fixed (256
//! per property).

use lockbox_core::SecretValue;
use lockbox_keys::{BlsKey, NetworkKey, ValidatorKey};
use proptest::prelude::*;

/// Key-file-like bytes: hex of about the right length, with the prefixes, whitespace and
/// newlines the decoders must handle, or anything at all.
fn key_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "(0x)?[0-9a-fA-F]{0,140}\n?".prop_map(String::into_bytes),
        "[ \t]{0,2}[0-9a-f]{60,70}[ \t\r\n]{0,2}".prop_map(String::into_bytes),
        "[0-9a-f]{64}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn key_files_never_panic(bytes in key_like()) {
        let value = SecretValue::new(bytes);
        // Each decoder returns a key or a KeyError; its message never echoes the bytes.
        if let Err(e) = ValidatorKey::decode(&value) {
            let _ = e.to_string();
        }
        if let Err(e) = BlsKey::decode(&value) {
            let _ = e.to_string();
        }
        if let Err(e) = NetworkKey::decode(&value) {
            let _ = e.to_string();
        }
    }
}
