//! Sealing: a [`Snapshot`] into the bytes of a store file, in the oldest format version that
//! holds what it has.

use lockbox_core::{Error, ErrorKind, Result};

use super::crypto::{Aad, KEY_CHECK_DOMAIN, encrypt, record_aad, seal_aad};
use super::{
    CIPHER, FORMAT, FORMAT_VERSION, FORMAT_VERSION_WITH_RESOURCES,
    FORMAT_VERSION_WITHOUT_RESOURCES, Sealed, SecretRecord, Snapshot, StoreFile, VersionRecord,
};
use crate::BACKEND;
use crate::key::StoreKey;

/// Seals `snapshot` under `key` into the bytes of a store file.
pub(crate) fn seal(
    snapshot: &Snapshot,
    key: &StoreKey,
    synced_at: i64,
    generation: u64,
) -> Result<Vec<u8>> {
    let format_version = if snapshot
        .secrets
        .iter()
        .flat_map(|s| &s.versions)
        .any(|v| v.created_date_nanos != 0)
    {
        FORMAT_VERSION
    } else if snapshot
        .secrets
        .iter()
        .any(|s| s.resource_id.is_some() || s.resource_name.is_some())
    {
        FORMAT_VERSION_WITH_RESOURCES
    } else {
        FORMAT_VERSION_WITHOUT_RESOURCES
    };
    seal_as(snapshot, key, synced_at, format_version, Some(generation))
}

/// [`seal`] in a given format version (tests write version 1 files with it).
pub(crate) fn seal_as(
    snapshot: &Snapshot,
    key: &StoreKey,
    synced_at: i64,
    format_version: u32,
    generation: Option<u64>,
) -> Result<Vec<u8>> {
    let cipher = key.cipher();
    let key_check = encrypt(&cipher, b"", &Aad::new(KEY_CHECK_DOMAIN).0)?;
    let mut secrets = Vec::with_capacity(snapshot.secrets.len());
    for s in &snapshot.secrets {
        let mut versions = Vec::with_capacity(s.versions.len());
        for v in &s.versions {
            let nanos = if format_version >= 4 {
                v.created_date_nanos
            } else {
                0
            };
            let aad = record_aad(
                format_version,
                &s.arn,
                &s.name,
                &s.manifest_id,
                (s.resource_id.as_deref(), s.resource_name.as_deref()),
                &v.version_id,
                &v.version_stages,
                (v.created_date, nanos),
                v.binary,
            );
            let sealed = encrypt(&cipher, v.value.expose_bytes(), &aad)?;
            versions.push(VersionRecord {
                version_id: v.version_id.clone(),
                version_stages: v.version_stages.clone(),
                created_date: v.created_date,
                created_date_nanos: nanos,
                binary: v.binary,
                nonce: sealed.nonce,
                ciphertext: sealed.ciphertext,
            });
        }
        secrets.push(SecretRecord {
            arn: s.arn.clone(),
            name: s.name.clone(),
            manifest_id: s.manifest_id.clone(),
            resource_id: s.resource_id.clone().filter(|_| format_version >= 3),
            resource_name: s.resource_name.clone().filter(|_| format_version >= 3),
            versions,
        });
    }
    let mut file = StoreFile {
        format: FORMAT.into(),
        format_version,
        cipher: CIPHER.into(),
        synced_at,
        generation,
        key_check,
        secrets,
        seal: Sealed {
            nonce: String::new(),
            ciphertext: String::new(),
        },
    };
    file.seal = encrypt(&cipher, b"", &seal_aad(&file))?;
    let mut out = serde_json::to_vec_pretty(&file).map_err(|e| {
        Error::new(
            ErrorKind::Backend,
            BACKEND,
            format!("cannot encode store: {e}"),
        )
    })?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::open::{open, open_value};
    use super::super::tests::*;
    use super::*;
    use lockbox_secretsmanager::SecretVersion;

    #[test]
    fn resource_ids_are_sealed_in_format_version_3() {
        let k = key(1);
        let mut snap = sample();
        snap.secrets[0].resource_id = Some("db-resource".into());
        snap.secrets[0].resource_name = Some("Db".into());
        let bytes = seal(&snap, &k, 42, 1).unwrap();
        let file = open(&bytes, &k, "S").unwrap();
        assert_eq!(file.format_version, 3);
        let s = &file.secrets[0];
        assert_eq!(s.resource_id.as_deref(), Some("db-resource"));
        assert_eq!(s.resource_name.as_deref(), Some("Db"));
        let v = open_value(&k, 3, s, &s.versions[0], "S").unwrap();
        assert_eq!(v.expose_bytes(), b"db-password-current");
        assert_eq!(file.secrets[1].resource_id, None);
        // Without resources the writer keeps format version 2.
        let plain = open(&seal(&sample(), &k, 42, 1).unwrap(), &k, "S").unwrap();
        assert_eq!(plain.format_version, 2);
        // An edited resource id fails authentication, naming the secret.
        let e = open_err(
            &edit(&bytes, |v| v["secrets"][0]["resource_id"] = "other".into()),
            &k,
        );
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(e.to_string().contains("failed authentication"), "{e}");
        // A resource id added to a version 2 file is refused.
        let v2 = seal(&sample(), &k, 42, 1).unwrap();
        let e = open_err(
            &edit(&v2, |v| v["secrets"][0]["resource_id"] = "x".into()),
            &k,
        );
        assert!(e.to_string().contains("cannot have resource ids"), "{e}");
    }

    #[test]
    fn creation_date_fractions_are_sealed_in_format_version_4() {
        let k = key(1);
        let mut snap = sample();
        snap.secrets[0].versions[0].created_date_nanos = 713_000_000;
        let bytes = seal(&snap, &k, 42, 1).unwrap();
        let file = open(&bytes, &k, "S").unwrap();
        assert_eq!(file.format_version, 4);
        let s = &file.secrets[0];
        assert_eq!(s.versions[0].created_date_nanos, 713_000_000);
        assert_eq!(s.versions[1].created_date_nanos, 0);
        let v = open_value(&k, 4, s, &s.versions[0], "S").unwrap();
        assert_eq!(v.expose_bytes(), b"db-password-current");
        // A zero fraction is not written; the file stays at the older version.
        let text = String::from_utf8(seal(&sample(), &k, 42, 1).unwrap()).unwrap();
        assert!(!text.contains("created_date_nanos"), "{text}");
        // An edited fraction fails authentication.
        let e = open_err(
            &edit(&bytes, |v| {
                v["secrets"][0]["versions"][0]["created_date_nanos"] = 1.into()
            }),
            &k,
        );
        assert!(e.to_string().contains("failed authentication"), "{e}");
        // A fraction in an older file, or one of a second or more, is refused.
        let v2 = seal(&sample(), &k, 42, 1).unwrap();
        let e = open_err(
            &edit(&v2, |v| {
                v["secrets"][0]["versions"][0]["created_date_nanos"] = 5.into()
            }),
            &k,
        );
        assert!(e.to_string().contains("came in version 4"), "{e}");
        let e = open_err(
            &edit(&bytes, |v| {
                v["secrets"][0]["versions"][0]["created_date_nanos"] = 1_000_000_000.into()
            }),
            &k,
        );
        assert!(e.to_string().contains("not a fraction"), "{e}");
    }

    #[test]
    fn round_trip_and_no_plaintext_in_file() {
        let k = key(1);
        let bytes = seal(&sample(), &k, 42, 1).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("db-password"), "plaintext in store");
        let file = open(&bytes, &k, "S").unwrap();
        assert_eq!(file.synced_at, 42);
        let s = &file.secrets[0];
        let v = open_value(&k, 2, s, &s.versions[0], "S").unwrap();
        assert_eq!(v.expose_bytes(), b"db-password-current");
        let c = &file.secrets[1];
        let v = open_value(&k, 2, c, &c.versions[0], "S").unwrap();
        assert_eq!(v.expose_bytes(), &[0, 159, 146, 150, 255]);
        assert!(c.versions[0].binary);
    }

    #[test]
    fn same_content_seals_differently_each_time() {
        let k = key(1);
        let a = seal(&sample(), &k, 1, 1).unwrap();
        let b = seal(&sample(), &k, 1, 1).unwrap();
        assert_ne!(a, b, "fresh nonces every sync");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        #[test]
        fn arbitrary_values_round_trip(
            values in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048), 1..5),
            binary in proptest::prelude::any::<bool>(),
        ) {
            let k = key(7);
            let versions: Vec<SecretVersion> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let stage = format!("L{i}");
                    version(&format!("v{i}"), &[stage.as_str()], v, binary)
                })
                .collect();
            let snapshot = Snapshot { secrets: vec![secret("p", versions)], requests: 0 };
            let bytes = seal(&snapshot, &k, 9, 1).unwrap();
            let f = open(&bytes, &k, "S").unwrap();
            for (i, v) in values.iter().enumerate() {
                let got = open_value(&k, 2, &f.secrets[0], &f.secrets[0].versions[i], "S").unwrap();
                proptest::prop_assert_eq!(got.expose_bytes(), v.as_slice());
            }
        }
    }
}
