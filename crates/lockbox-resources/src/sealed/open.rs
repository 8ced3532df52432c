//! Opening: parsing a store file and verifying it (format, key, whole-file seal, every record)
//! before anything in it is believed; then decrypting one value at a time.

use std::fmt::Write as _;

use lockbox_core::{Error, ErrorKind, Result, SecretValue};

use super::crypto::{Aad, KEY_CHECK_DOMAIN, OpenFailure, decrypt, seal_aad, version_aad};
use super::{
    CIPHER, FORMAT, FORMAT_VERSION, OLDEST_FORMAT_VERSION, SecretRecord, StoreFile, VersionRecord,
};
use crate::BACKEND;
use crate::key::StoreKey;

fn corrupt(store: &str, msg: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        BACKEND,
        format!("sealed store {store}: {msg}"),
    )
}

/// Parses and verifies a store file: the format, the key (`key_check`), the whole-file seal;
/// when the seal fails, every record is tried so the error names the secret and version that
/// was altered. `store` names the file in errors.
pub(crate) fn open(bytes: &[u8], key: &StoreKey, store: &str) -> Result<StoreFile> {
    let file: StoreFile = serde_json::from_slice(bytes).map_err(|e| {
        corrupt(
            store,
            format_args!("not a readable store file ({e}); run `lockbox sync` to rebuild it"),
        )
    })?;
    if file.format != FORMAT {
        return Err(corrupt(
            store,
            format_args!("format is {:?}, expected {FORMAT:?}", file.format),
        ));
    }
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&file.format_version) {
        return Err(Error::new(
            ErrorKind::Unsupported,
            BACKEND,
            format!(
                "sealed store {store}: format version {} is not supported (this lockbox reads \
                 versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})",
                file.format_version
            ),
        ));
    }
    if (file.format_version >= 2) != file.generation.is_some() {
        return Err(corrupt(
            store,
            format_args!(
                "format version {} {} a generation",
                file.format_version,
                if file.generation.is_some() {
                    "must not have"
                } else {
                    "must have"
                }
            ),
        ));
    }
    if file.format_version < 3
        && file
            .secrets
            .iter()
            .any(|s| s.resource_id.is_some() || s.resource_name.is_some())
    {
        return Err(corrupt(
            store,
            format_args!(
                "format version {} cannot have resource ids (they came in version 3)",
                file.format_version
            ),
        ));
    }
    for s in &file.secrets {
        for v in &s.versions {
            if v.created_date_nanos != 0 && file.format_version < 4 {
                return Err(corrupt(
                    store,
                    format_args!(
                        "format version {} cannot have created_date_nanos (it came in version 4)",
                        file.format_version
                    ),
                ));
            }
            if v.created_date_nanos >= 1_000_000_000 {
                return Err(corrupt(
                    store,
                    format_args!(
                        "version {} of {}: created_date_nanos {} is not a fraction of a second",
                        v.version_id, s.name, v.created_date_nanos
                    ),
                ));
            }
        }
    }
    if file.cipher != CIPHER {
        return Err(corrupt(
            store,
            format_args!("cipher is {:?}, expected {CIPHER:?}", file.cipher),
        ));
    }
    let cipher = key.cipher();
    match decrypt(
        &cipher,
        &file.key_check.nonce,
        &file.key_check.ciphertext,
        &Aad::new(KEY_CHECK_DOMAIN).0,
    ) {
        Ok(_) => {}
        Err(OpenFailure::Encoding(e)) => {
            return Err(corrupt(store, format_args!("key_check: {e}")));
        }
        Err(OpenFailure::Auth) => {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                BACKEND,
                format!(
                    "key file {} does not open sealed store {store}: the store was sealed with \
                     another key (or its key check was altered)",
                    key.path().display()
                ),
            ));
        }
    }
    let sealed_ok = decrypt(
        &cipher,
        &file.seal.nonce,
        &file.seal.ciphertext,
        &seal_aad(&file),
    )
    .is_ok();
    // Every record is checked either way: a record that does not open is named.
    for s in &file.secrets {
        for v in &s.versions {
            match decrypt(
                &cipher,
                &v.nonce,
                &v.ciphertext,
                &version_aad(file.format_version, s, v),
            ) {
                Ok(_) => {}
                Err(OpenFailure::Encoding(e)) => {
                    return Err(corrupt(
                        store,
                        format_args!("secret {}, version {}: {e}", s.arn, v.version_id),
                    )
                    .with_secret(&s.arn));
                }
                Err(OpenFailure::Auth) => {
                    return Err(corrupt(
                        store,
                        format_args!(
                            "secret {} (name {}), version {}: the record failed authentication: \
                             it was altered, or moved from another secret or version; run \
                             `lockbox sync` to rebuild the store",
                            s.arn, s.name, v.version_id
                        ),
                    )
                    .with_secret(&s.arn));
                }
            }
        }
    }
    if !sealed_ok {
        return Err(corrupt(
            store,
            "the store failed authentication: its metadata or list of records was altered (a \
             record added, removed or reordered, or synced_at edited); run `lockbox sync` to \
             rebuild it",
        ));
    }
    check_structure(&file, store)?;
    Ok(file)
}

/// Invariants the writer keeps; a sealed file that breaks them was written by something else.
fn check_structure(file: &StoreFile, store: &str) -> Result<()> {
    let mut arns = std::collections::HashSet::with_capacity(file.secrets.len());
    for s in &file.secrets {
        if !arns.insert(s.arn.as_str()) {
            return Err(corrupt(
                store,
                format_args!("secret {} is listed twice", s.arn),
            ));
        }
        for (j, v) in s.versions.iter().enumerate() {
            if s.versions[..j].iter().any(|o| o.version_id == v.version_id) {
                return Err(corrupt(
                    store,
                    format_args!("secret {}: version {} is listed twice", s.arn, v.version_id),
                ));
            }
            for st in &v.version_stages {
                if s.versions[..j]
                    .iter()
                    .any(|o| o.version_stages.contains(st))
                {
                    return Err(corrupt(
                        store,
                        format_args!("secret {}: stage {st} is on two versions", s.arn),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Decrypts one record of a verified file.
pub(crate) fn open_value(
    file_key: &StoreKey,
    format_version: u32,
    secret: &SecretRecord,
    version: &VersionRecord,
    store: &str,
) -> Result<SecretValue> {
    decrypt(
        &file_key.cipher(),
        &version.nonce,
        &version.ciphertext,
        &version_aad(format_version, secret, version),
    )
    .map_err(|e| {
        let what = match e {
            OpenFailure::Encoding(e) => e,
            OpenFailure::Auth => "the record failed authentication".into(),
        };
        let mut msg = String::new();
        let _ = write!(
            msg,
            "secret {}, version {}: {what}",
            secret.arn, version.version_id
        );
        corrupt(store, msg).with_secret(&secret.arn)
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;

    use super::super::Snapshot;
    use super::super::seal::{seal, seal_as};
    use super::super::tests::*;
    use super::*;

    #[test]
    fn wrong_key_is_named_as_such() {
        let bytes = seal(&sample(), &key(1), 1, 1).unwrap();
        let e = open_err(&bytes, &key(2));
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(
            e.to_string()
                .contains("key file /keys/2 does not open sealed store S"),
            "{e}"
        );
    }

    #[test]
    fn flipped_ciphertext_byte_names_the_secret() {
        let k = key(1);
        let bytes = seal(&sample(), &k, 1, 1).unwrap();
        let tampered = edit(&bytes, |v| {
            let ct = v["secrets"][1]["versions"][0]["ciphertext"]
                .as_str()
                .unwrap();
            let mut raw = B64.decode(ct).unwrap();
            raw[2] ^= 0x01;
            v["secrets"][1]["versions"][0]["ciphertext"] = B64.encode(raw).into();
        });
        let e = open_err(&tampered, &k);
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        let msg = e.to_string();
        assert!(
            msg.contains("secret arn:aws:secretsmanager:us-east-1:123456789012:secret:cert-AbCdEf"),
            "{msg}"
        );
        assert!(msg.contains("version v-cert-1"), "{msg}");
        assert!(msg.contains("failed authentication"), "{msg}");
        assert_eq!(
            e.secret(),
            Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:cert-AbCdEf")
        );
    }

    #[test]
    fn swapped_records_between_secrets_fail() {
        let k = key(1);
        let bytes = seal(&sample(), &k, 1, 1).unwrap();
        let tampered = edit(&bytes, |v| {
            for f in ["nonce", "ciphertext"] {
                let a = v["secrets"][0]["versions"][0][f].clone();
                let b = v["secrets"][1]["versions"][0][f].clone();
                v["secrets"][0]["versions"][0][f] = b;
                v["secrets"][1]["versions"][0][f] = a;
            }
        });
        let msg = open_err(&tampered, &k).to_string();
        assert!(msg.contains("secret:db-AbCdEf"), "{msg}");
        assert!(
            msg.contains("moved from another secret or version"),
            "{msg}"
        );
        // Whole secret entries swapped (names and all) pass the records but not the seal.
        let tampered = edit(&bytes, |v| {
            let s = v["secrets"].as_array_mut().unwrap();
            s.swap(0, 1);
        });
        let msg = open_err(&tampered, &k).to_string();
        assert!(msg.contains("list of records was altered"), "{msg}");
    }

    #[test]
    fn swapped_versions_within_a_secret_fail() {
        let k = key(1);
        let bytes = seal(&sample(), &k, 1, 1).unwrap();
        let tampered = edit(&bytes, |v| {
            let vs = &mut v["secrets"][0]["versions"];
            let a = vs[0]["ciphertext"].clone();
            vs[0]["ciphertext"] = vs[1]["ciphertext"].clone();
            vs[1]["ciphertext"] = a;
            let a = vs[0]["nonce"].clone();
            vs[0]["nonce"] = vs[1]["nonce"].clone();
            vs[1]["nonce"] = a;
        });
        let msg = open_err(&tampered, &k).to_string();
        assert!(msg.contains("version v-db-1"), "{msg}");
    }

    #[test]
    fn edited_metadata_fails() {
        let k = key(1);
        let bytes = seal(&sample(), &k, 1, 1).unwrap();
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let edits: Vec<(&str, Edit)> = vec![
            (
                "stages",
                Box::new(|v| {
                    v["secrets"][0]["versions"][1]["version_stages"] =
                        serde_json::json!(["AWSCURRENT"])
                }),
            ),
            (
                "name",
                Box::new(|v| v["secrets"][0]["name"] = "other".into()),
            ),
            (
                "arn",
                Box::new(|v| {
                    v["secrets"][0]["arn"] = "arn:aws:secretsmanager:us-east-1:1:secret:x".into()
                }),
            ),
            (
                "manifest id",
                Box::new(|v| v["secrets"][1]["manifest_id"] = "db".into()),
            ),
            (
                "version id",
                Box::new(|v| v["secrets"][1]["versions"][0]["version_id"] = "v-x".into()),
            ),
            (
                "binary",
                Box::new(|v| v["secrets"][1]["versions"][0]["binary"] = false.into()),
            ),
            (
                "date",
                Box::new(|v| v["secrets"][1]["versions"][0]["created_date"] = 5.into()),
            ),
        ];
        for (what, f) in edits {
            let e = open_err(&edit(&bytes, f), &k);
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{what}");
            assert!(
                e.to_string().contains("failed authentication"),
                "{what}: {e}"
            );
        }
        let e = open_err(&edit(&bytes, |v| v["synced_at"] = 2.into()), &k);
        assert!(e.to_string().contains("synced_at edited"), "{e}");
        let e = open_err(
            &edit(&bytes, |v| {
                v["secrets"][0]["versions"].as_array_mut().unwrap().pop();
            }),
            &k,
        );
        assert!(e.to_string().contains("record added, removed"), "{e}");
        let e = open_err(&edit(&bytes, |v| v["extra"] = 1.into()), &k);
        assert!(e.to_string().contains("not a readable store file"), "{e}");
        let e = open_err(&edit(&bytes, |v| v["format_version"] = 9.into()), &k);
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = open_err(
            &edit(&bytes, |v| {
                v["secrets"][0]["versions"][0]["nonce"] = "!!".into()
            }),
            &k,
        );
        assert!(e.to_string().contains("nonce is not base64"), "{e}");
    }

    #[test]
    fn every_single_byte_flip_is_caught() {
        let k = key(1);
        let snapshot = Snapshot {
            secrets: vec![secret(
                "s",
                vec![version("v1", &["AWSCURRENT"], b"value", false)],
            )],
            requests: 1,
        };
        let bytes = seal(&snapshot, &k, 1, 1).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            // Some flips only change insignificant whitespace or letter case in a key that JSON
            // then rejects; none may open as a store that differs from the original.
            if let Ok(f) = open(&b, &k, "S") {
                let s = &f.secrets[0];
                let v = open_value(&k, 2, s, &s.versions[0], "S").unwrap();
                assert_eq!(v.expose_bytes(), b"value", "flip at {i}");
                assert_eq!(s.name, "s");
                assert_eq!(s.versions[0].version_stages, ["AWSCURRENT"]);
            }
        }
    }

    #[test]
    fn version_1_files_still_open_and_the_generation_is_sealed() {
        let k = key(1);
        let v1 = seal_as(&sample(), &k, 1, 1, None).unwrap();
        let f = open(&v1, &k, "S").unwrap();
        assert_eq!((f.format_version, f.generation), (1, None));
        let v2 = seal(&sample(), &k, 1, 7).unwrap();
        let f = open(&v2, &k, "S").unwrap();
        assert_eq!((f.format_version, f.generation), (2, Some(7)));
        let e = open_err(&edit(&v2, |v| v["generation"] = 8.into()), &k);
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(e.to_string().contains("failed authentication"), "{e}");
        let stripped = edit(&v2, |v| {
            v.as_object_mut().unwrap().remove("generation");
        });
        assert!(
            open_err(&stripped, &k)
                .to_string()
                .contains("must have a generation")
        );
        let downgraded = edit(&v2, |v| {
            v["format_version"] = 1.into();
            v.as_object_mut().unwrap().remove("generation");
        });
        assert_eq!(open_err(&downgraded, &k).kind(), ErrorKind::Corrupt);
    }

    #[test]
    fn truncated_file_is_corrupt() {
        let k = key(1);
        let bytes = seal(&sample(), &k, 1, 1).unwrap();
        let e = open_err(&bytes[..bytes.len() / 2], &k);
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(e.to_string().contains("lockbox sync"), "{e}");
    }

    /// What opening a store may fail with: never a panic, never a backend or I/O kind.
    fn store_error(kind: ErrorKind) -> bool {
        matches!(
            kind,
            ErrorKind::Corrupt | ErrorKind::Unsupported | ErrorKind::InvalidConfig
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Fuzzing: arbitrary bytes are refused as a store, with a store error.
        #[test]
        fn arbitrary_bytes_never_open(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let e = open(&bytes, &key(1), "S").unwrap_err();
            proptest::prop_assert!(store_error(e.kind()), "{:?}: {}", e.kind(), e);
        }

        /// Fuzzing: a valid store with bytes changed, cut or inserted never panics, and opens
        /// only when the change left its meaning intact.
        #[test]
        fn mutated_stores_never_panic(
            edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>(), 0u8..3), 1..6),
        ) {
            let k = key(1);
            let mut bytes = seal(&sample(), &k, 1, 3).unwrap();
            for (at, byte, op) in edits {
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.truncate(i),
                    _ => bytes.insert(i, byte),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            match open(&bytes, &k, "S") {
                Ok(f) => {
                    for s in &f.secrets {
                        for v in &s.versions {
                            open_value(&k, 2, s, v, "S").unwrap();
                        }
                    }
                }
                Err(e) => proptest::prop_assert!(store_error(e.kind()), "{:?}: {}", e.kind(), e),
            }
        }
    }
}
