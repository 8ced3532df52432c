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

use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use lockbox_core::{Error, ErrorKind, Result, SecretValue};
use lockbox_secretsmanager::SecretVersion;
use serde::{Deserialize, Serialize};

use crate::BACKEND;
use crate::key::StoreKey;

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

const NONCE_LEN: usize = 24;

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
    /// zeroizing [`SecretValue`]).
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

/// Length-prefixed encoding of associated data: no two different field lists encode alike.
struct Aad(Vec<u8>);

impl Aad {
    fn new(domain: &str) -> Self {
        let mut a = Self(Vec::with_capacity(256));
        a.str(domain);
        a
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&(b.len() as u64).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    fn u64(&mut self, n: u64) -> &mut Self {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }
    fn i64(&mut self, n: i64) -> &mut Self {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }
    fn opt_i64(&mut self, n: Option<i64>) -> &mut Self {
        match n {
            None => self.0.push(0),
            Some(n) => {
                self.0.push(1);
                self.i64(n);
            }
        }
        self
    }
    fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
        self
    }
    fn bool(&mut self, b: bool) -> &mut Self {
        self.0.push(u8::from(b));
        self
    }
}

const KEY_CHECK_DOMAIN: &str = "lockbox-sealed-store/1/key-check";
const RECORD_DOMAIN: &str = "lockbox-sealed-store/1/record";
const SEAL_DOMAIN: &str = "lockbox-sealed-store/1/seal";

/// The associated data that binds a value to its secret and version; from format version 3
/// on, to its resource id and name too.
#[allow(clippy::too_many_arguments)]
fn record_aad(
    format_version: u32,
    arn: &str,
    name: &str,
    manifest_id: &str,
    resource: (Option<&str>, Option<&str>),
    version_id: &str,
    stages: &[String],
    created_date: (Option<i64>, u32),
    binary: bool,
) -> Vec<u8> {
    let mut a = Aad::new(RECORD_DOMAIN);
    a.str(arn)
        .str(name)
        .str(manifest_id)
        .str(version_id)
        .u64(stages.len() as u64);
    for s in stages {
        a.str(s);
    }
    a.opt_i64(created_date.0).bool(binary);
    if format_version >= 3 {
        a.opt_str(resource.0).opt_str(resource.1);
    }
    if format_version >= 4 {
        a.u64(u64::from(created_date.1));
    }
    a.0
}

fn version_aad(format_version: u32, secret: &SecretRecord, v: &VersionRecord) -> Vec<u8> {
    record_aad(
        format_version,
        &secret.arn,
        &secret.name,
        &secret.manifest_id,
        (
            secret.resource_id.as_deref(),
            secret.resource_name.as_deref(),
        ),
        &v.version_id,
        &v.version_stages,
        (v.created_date, v.created_date_nanos),
        v.binary,
    )
}

/// Associated data of the whole-file seal: every field but the seal itself.
fn seal_aad(f: &StoreFile) -> Vec<u8> {
    let mut a = Aad::new(SEAL_DOMAIN);
    a.str(&f.format)
        .u64(u64::from(f.format_version))
        .str(&f.cipher)
        .i64(f.synced_at);
    if f.format_version >= 2 {
        a.u64(f.generation.unwrap_or(0));
    }
    a.str(&f.key_check.nonce)
        .str(&f.key_check.ciphertext)
        .u64(f.secrets.len() as u64);
    for s in &f.secrets {
        a.str(&s.arn).str(&s.name).str(&s.manifest_id);
        if f.format_version >= 3 {
            a.opt_str(s.resource_id.as_deref())
                .opt_str(s.resource_name.as_deref());
        }
        a.u64(s.versions.len() as u64);
        for v in &s.versions {
            a.str(&v.version_id).u64(v.version_stages.len() as u64);
            for st in &v.version_stages {
                a.str(st);
            }
            a.opt_i64(v.created_date).bool(v.binary);
            if f.format_version >= 4 {
                a.u64(u64::from(v.created_date_nanos));
            }
            a.str(&v.nonce).str(&v.ciphertext);
        }
    }
    a.0
}

fn encrypt(cipher: &XChaCha20Poly1305, msg: &[u8], aad: &[u8]) -> Result<Sealed> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ct = cipher
        .encrypt(&nonce, Payload { msg, aad })
        .map_err(|_| Error::new(ErrorKind::Backend, BACKEND, "encryption failed"))?;
    Ok(Sealed {
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ct),
    })
}

/// Why a sealed message did not open.
enum OpenFailure {
    /// The nonce or ciphertext is not valid base64 or has the wrong length.
    Encoding(String),
    /// Authentication failed.
    Auth,
}

fn decrypt(
    cipher: &XChaCha20Poly1305,
    nonce: &str,
    ciphertext: &str,
    aad: &[u8],
) -> std::result::Result<SecretValue, OpenFailure> {
    let nonce = B64
        .decode(nonce)
        .map_err(|e| OpenFailure::Encoding(format!("nonce is not base64: {e}")))?;
    let nonce: [u8; NONCE_LEN] = nonce.as_slice().try_into().map_err(|_| {
        OpenFailure::Encoding(format!("nonce is {} bytes, not {NONCE_LEN}", nonce.len()))
    })?;
    let ct = B64
        .decode(ciphertext)
        .map_err(|e| OpenFailure::Encoding(format!("ciphertext is not base64: {e}")))?;
    cipher
        .decrypt(&XNonce::from(nonce), Payload { msg: &ct, aad })
        .map(SecretValue::new)
        .map_err(|_| OpenFailure::Auth)
}

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
pub(crate) mod tests {
    use super::*;

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

    fn edit(bytes: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    fn open_err(bytes: &[u8], k: &StoreKey) -> Error {
        open(bytes, k, "S").unwrap_err()
    }

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
