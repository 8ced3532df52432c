//! Decoding refuses everything but the exact stored forms, and errors and `Debug` never show
//! key material.

use lockbox_core::SecretValue;
use lockbox_keys::{KeyError, NetworkKey, ValidatorKey};

const SCALAR: &str = "c64c3243d8aca61a43883f16bbeff15deb29330b2026d5c912abbf960594b98d";

fn validator_err(text: &str) -> KeyError {
    ValidatorKey::decode(&SecretValue::from(text)).unwrap_err()
}

fn network_err(text: &str) -> KeyError {
    NetworkKey::decode(&SecretValue::from(text)).unwrap_err()
}

/// The message must not contain any 8-character run of the key's hex (either case).
fn assert_no_key_material(err: &KeyError, key_hex: &str) {
    let msg = err.to_string().to_lowercase();
    let debug = format!("{err:?}").to_lowercase();
    let key_hex = key_hex.to_lowercase();
    for start in 0..key_hex.len().saturating_sub(8) {
        let run = &key_hex[start..start + 8];
        assert!(!msg.contains(run), "message {msg:?} contains key hex {run}");
        assert!(
            !debug.contains(run),
            "debug {debug:?} contains key hex {run}"
        );
    }
}

#[test]
fn validator_wrong_lengths() {
    for text in [&SCALAR[..63], &SCALAR[..62], &format!("{SCALAR}00")[..]] {
        let err = validator_err(text);
        assert_eq!(
            err,
            KeyError::WrongLength {
                expected: 64,
                found: text.len()
            }
        );
        assert!(
            err.to_string().contains("expected 64 hex characters"),
            "{err}"
        );
        assert_no_key_material(&err, text);
    }
    assert_eq!(validator_err(""), KeyError::Empty);
}

#[test]
fn validator_non_hex() {
    let text = format!("{}g{}", &SCALAR[..10], &SCALAR[11..]);
    let err = validator_err(&text);
    assert_eq!(err, KeyError::NotHex { position: 10 });
    assert!(err.to_string().contains("not a hex digit"), "{err}");
    assert_no_key_material(&err, &text);
    // Non-UTF-8 bytes are refused the same way.
    let mut bytes = SCALAR.as_bytes().to_vec();
    bytes[5] = 0xff;
    let err = ValidatorKey::decode(&SecretValue::new(bytes)).unwrap_err();
    assert_eq!(err, KeyError::NotHex { position: 5 });
}

#[test]
fn validator_trailing_newline_and_whitespace() {
    for text in [format!("{SCALAR}\n"), format!("{SCALAR}\r\n")] {
        let err = validator_err(&text);
        assert_eq!(err, KeyError::TrailingNewline);
        assert!(err.to_string().contains("newline"), "{err}");
        assert_no_key_material(&err, &text);
    }
    let err = validator_err(&format!(" {}", &SCALAR[1..]));
    assert_eq!(err, KeyError::Whitespace { position: 0 });
    assert_no_key_material(&err, SCALAR);
}

#[test]
fn validator_0x_prefix() {
    for text in [format!("0x{SCALAR}"), format!("0X{}", &SCALAR[2..])] {
        let err = validator_err(&text);
        assert_eq!(err, KeyError::HexPrefix);
        assert!(err.to_string().contains("0x"), "{err}");
        assert_no_key_material(&err, &text);
    }
}

#[test]
fn validator_zero_scalar() {
    let err = validator_err(&"0".repeat(64));
    assert_eq!(err, KeyError::InvalidScalar);
    assert!(err.to_string().contains("secp256k1"), "{err}");
}

#[test]
fn network_wrong_key_type() {
    // An Ed25519 libp2p private key: 08 01 12 40, then 64 bytes (secret and public).
    let ed = format!("08011240{SCALAR}{SCALAR}");
    let err = network_err(&ed);
    assert_eq!(err, KeyError::UnsupportedKeyType { type_code: 1 });
    assert!(err.to_string().contains("Ed25519"), "{err}");
    assert!(err.to_string().contains("secp256k1"), "{err}");
    assert_no_key_material(&err, &ed);
    // The same with a 32-byte payload, and the other key types.
    for (code, name) in [("01", "Ed25519"), ("00", "RSA"), ("03", "ECDSA")] {
        let text = format!("08{code}1220{SCALAR}");
        let err = network_err(&text);
        assert!(err.to_string().contains(name), "{err}");
        assert_no_key_material(&err, &text);
    }
}

#[test]
fn network_malformed() {
    for text in [
        // bare scalar (a validator key in the network-key slot)
        SCALAR.to_string(),
        // truncated
        format!("08021220{}", &SCALAR[..62]),
        // extra byte
        format!("08021220{SCALAR}00"),
        // wrong data length field
        format!("08021221{SCALAR}00"),
        "08".to_string(),
    ] {
        let err = network_err(&text);
        assert!(
            matches!(err, KeyError::NotLibp2pKey { .. }),
            "{text}: {err:?}"
        );
        assert!(err.to_string().contains("08 02 12 20"), "{err}");
        assert_no_key_material(&err, &text);
    }
}

#[test]
fn network_text_rules() {
    let good = format!("08021220{SCALAR}");
    assert_eq!(network_err(&format!("{good}\n")), KeyError::TrailingNewline);
    assert_eq!(network_err(&format!("0x{good}")), KeyError::HexPrefix);
    assert_eq!(
        network_err(&good[..good.len() - 1]),
        KeyError::OddLength { found: 71 }
    );
    let err = network_err(&format!("{}z", &good[..good.len() - 1]));
    assert_eq!(err, KeyError::NotHex { position: 71 });
    assert_no_key_material(&err, &good);
    let err = network_err(&format!("08021220{}", "0".repeat(64)));
    assert_eq!(err, KeyError::InvalidScalar);
    // Uppercase is accepted.
    assert!(NetworkKey::decode(&SecretValue::from(good.to_uppercase())).is_ok());
}

#[test]
fn debug_redacts_keys() {
    let v = ValidatorKey::decode(&SecretValue::from(SCALAR)).unwrap();
    let debug = format!("{v:?} {v:#?}");
    assert!(!debug.to_lowercase().contains(&SCALAR[..16]), "{debug}");
    assert!(debug.contains("REDACTED"), "{debug}");
    assert!(debug.contains(&v.address().to_string()), "{debug}");

    let n = NetworkKey::decode(&SecretValue::from(format!("08021220{SCALAR}"))).unwrap();
    let debug = format!("{n:?} {n:#?}");
    assert!(!debug.to_lowercase().contains(&SCALAR[..16]), "{debug}");
    assert!(debug.contains("REDACTED"), "{debug}");
    assert!(debug.contains(&n.node_id()), "{debug}");

    for _ in 0..8 {
        let g = ValidatorKey::generate();
        let hex = g.encode().expose_str().unwrap().to_owned();
        assert!(!format!("{g:?}").contains(&hex[..16]));
        let g = NetworkKey::generate();
        let hex = g.encode().expose_str().unwrap().to_owned();
        assert!(!format!("{g:?}").contains(&hex[8..24]));
    }
}
