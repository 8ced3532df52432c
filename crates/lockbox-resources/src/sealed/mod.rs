//! The sealed store file: format, sealing and verification.
//!
//! One JSON file, `<store dir>/secrets.sealed` ([`STORE_FILE`]), mode 0600:
//!
//! ```json
//! {
//!   "format": "lockbox-sealed-store",
//!   "format_version": 2,
//!   "cipher": "XChaCha20-Poly1305",
//!   "synced_at": 1732700000,
//!   "generation": 7,
//!   "key_check": {"nonce": "<base64>", "ciphertext": "<base64>"},
//!   "secrets": [
//!     {
//!       "arn": "arn:aws:secretsmanager:...:secret:db-AbCdEf",
//!       "name": "db",
//!       "manifest_id": "db",
//!       "versions": [
//!         {
//!           "version_id": "...",
//!           "version_stages": ["AWSCURRENT", "blue"],
//!           "created_date": 1732690000,
//!           "created_date_nanos": 713000000,
//!           "binary": false,
//!           "nonce": "<base64, 24 bytes>",
//!           "ciphertext": "<base64: value + 16-byte tag>"
//!         }
//!       ]
//!     }
//!   ],
//!   "seal": {"nonce": "<base64>", "ciphertext": "<base64>"}
//! }
//! ```
//!
//! - Every value is encrypted with XChaCha20-Poly1305 under the store key with a fresh random
//!   192-bit nonce. Its associated data is the record's own metadata (ARN, name, manifest id,
//!   version id, stages, creation date, binary flag), so a record moved to another secret or
//!   version, or whose metadata was edited, fails to decrypt.
//! - `created_date_nanos` (format version 4, written only when not 0) is the fraction of a
//!   second of `created_date`; version 1 to 3 files have none (read as 0).
//! - `key_check` is an empty message sealed under fixed associated data: it tells a wrong key
//!   file apart from a tampered record.
//! - `seal` is an empty message whose associated data is everything else in the file (every
//!   field and every ciphertext), so removing, adding or reordering records, or editing
//!   `synced_at`, is detected too.
//! - `generation` (format version 2) is one more than the highest generation seen for the store
//!   when it was written; it is covered by the seal. The highest generation seen is remembered
//!   next to the key (see [`lock_and_generations`](crate::lock_and_generations)), so a whole older store sealed under the
//!   same key (a rollback) is refused. Version 1 files (no `generation`, read as 0) are still
//!   read; every sync writes version 2.
//! - Metadata (ARNs, names, version ids, stages, dates, sizes) is plaintext; secret values never
//!   are.
//!
//! Files: this one holds the format (the file's records and what a sync hands over to be
//! sealed); `crypto.rs` the cipher and the associated data that binds each field; `seal.rs`
//! writes a store file; `open.rs` reads one back and verifies it.

mod crypto;
mod open;
mod seal;

use lockbox_secretsmanager::SecretVersion;
use serde::{Deserialize, Serialize};

pub(crate) use open::{open, open_value};
pub(crate) use seal::seal;

/// The store file's name inside the store directory.
pub const STORE_FILE: &str = "secrets.sealed";

/// The `format` field of a store file.
pub const FORMAT: &str = "lockbox-sealed-store";

/// The newest `format_version` this code writes and reads: 4 when a version's creation date
/// has a fraction of a second (`created_date_nanos`), else 3 when a secret carries a
/// Greengrass v1 resource id and name, else 2 (so older readers still read what they can);
/// 1 is read too.
pub const FORMAT_VERSION: u32 = 4;

/// The `format_version` written when a secret carries a resource id and no creation date
/// has a fraction.
pub const FORMAT_VERSION_WITH_RESOURCES: u32 = 3;

/// The `format_version` written when no secret carries a resource id and no creation date
/// has a fraction.
pub const FORMAT_VERSION_WITHOUT_RESOURCES: u32 = 2;

/// The oldest `format_version` this code reads (without a generation).
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// The `cipher` field of a store file.
pub const CIPHER: &str = "XChaCha20-Poly1305";

/// One secret as fetched: its identity and the versions its manifest labels point at.
#[derive(Clone, Debug)]
pub struct SnapshotSecret {
    /// The full ARN.
    pub arn: String,
    /// The secret's name.
    pub name: String,
    /// The id the manifest used for it (ARN or name).
    pub manifest_id: String,
    /// The Greengrass v1 resource `Id` the manifest gave it, if any.
    pub resource_id: Option<String>,
    /// The Greengrass v1 resource `Name` the manifest gave it, if any.
    pub resource_name: Option<String>,
    /// Distinct versions, each once with all its stages (sorted), value in clear (in a
    /// zeroizing [`SecretValue`](lockbox_core::SecretValue)).
    pub versions: Vec<SecretVersion>,
}

/// Everything a sync fetched, before it is sealed.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The secrets, in manifest order.
    pub secrets: Vec<SnapshotSecret>,
    /// GetSecretValue calls made to fetch it (retries included).
    pub requests: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sealed {
    pub(crate) nonce: String,
    pub(crate) ciphertext: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionRecord {
    pub(crate) version_id: String,
    pub(crate) version_stages: Vec<String>,
    pub(crate) created_date: Option<i64>,
    /// The fraction of a second of `created_date` (format version 4; absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) created_date_nanos: u32,
    pub(crate) binary: bool,
    pub(crate) nonce: String,
    pub(crate) ciphertext: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretRecord {
    pub(crate) arn: String,
    pub(crate) name: String,
    pub(crate) manifest_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) resource_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) resource_name: Option<String>,
    pub(crate) versions: Vec<VersionRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreFile {
    pub(crate) format: String,
    pub(crate) format_version: u32,
    pub(crate) cipher: String,
    pub(crate) synced_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) generation: Option<u64>,
    pub(crate) key_check: Sealed,
    pub(crate) secrets: Vec<SecretRecord>,
    pub(crate) seal: Sealed,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the tests of the sealed store and of its readers share: a key, versions, secrets, a
/// sample snapshot, and ways to edit and open a sealed file.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::key::StoreKey;
    use lockbox_core::{Error, SecretValue};

    pub(crate) fn key(b: u8) -> StoreKey {
        StoreKey::from_bytes([b; 32], format!("/keys/{b}"))
    }

    pub(crate) fn version(id: &str, stages: &[&str], value: &[u8], binary: bool) -> SecretVersion {
        SecretVersion {
            arn: String::new(),
            name: String::new(),
            version_id: id.into(),
            version_stages: stages.iter().map(|s| s.to_string()).collect(),
            created_date: Some(1_700_000_000),
            created_date_nanos: 0,
            binary,
            value: SecretValue::new(value.to_vec()),
        }
    }

    pub(crate) fn secret(name: &str, versions: Vec<SecretVersion>) -> SnapshotSecret {
        let arn = format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf");
        let versions = versions
            .into_iter()
            .map(|v| SecretVersion {
                arn: arn.clone(),
                name: name.into(),
                ..v
            })
            .collect();
        SnapshotSecret {
            arn,
            name: name.into(),
            manifest_id: name.into(),
            resource_id: None,
            resource_name: None,
            versions,
        }
    }

    pub(crate) fn sample() -> Snapshot {
        Snapshot {
            secrets: vec![
                secret(
                    "db",
                    vec![
                        version(
                            "v-db-1",
                            &["AWSCURRENT", "blue"],
                            b"db-password-current",
                            false,
                        ),
                        version("v-db-0", &["AWSPREVIOUS"], b"db-password-previous", false),
                    ],
                ),
                secret(
                    "cert",
                    vec![version(
                        "v-cert-1",
                        &["AWSCURRENT"],
                        &[0, 159, 146, 150, 255],
                        true,
                    )],
                ),
            ],
            requests: 3,
        }
    }

    pub(crate) fn edit(bytes: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    pub(crate) fn open_err(bytes: &[u8], k: &StoreKey) -> Error {
        open(bytes, k, "S").unwrap_err()
    }
}
