//! The cipher (XChaCha20-Poly1305 with a fresh random 192-bit nonce per message) and the
//! associated data that binds every sealed message to the fields it covers.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use lockbox_core::{Error, ErrorKind, Result, SecretValue};

use super::{Sealed, SecretRecord, StoreFile, VersionRecord};
use crate::BACKEND;

const NONCE_LEN: usize = 24;

/// Length-prefixed encoding of associated data: no two different field lists encode alike.
pub(super) struct Aad(pub(super) Vec<u8>);

impl Aad {
    pub(super) fn new(domain: &str) -> Self {
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

pub(super) const KEY_CHECK_DOMAIN: &str = "lockbox-sealed-store/1/key-check";
pub(super) const RECORD_DOMAIN: &str = "lockbox-sealed-store/1/record";
pub(super) const SEAL_DOMAIN: &str = "lockbox-sealed-store/1/seal";

/// The associated data that binds a value to its secret and version; from format version 3
/// on, to its resource id and name too.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_aad(
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

pub(super) fn version_aad(
    format_version: u32,
    secret: &SecretRecord,
    v: &VersionRecord,
) -> Vec<u8> {
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
pub(super) fn seal_aad(f: &StoreFile) -> Vec<u8> {
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

pub(super) fn encrypt(cipher: &XChaCha20Poly1305, msg: &[u8], aad: &[u8]) -> Result<Sealed> {
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
pub(super) enum OpenFailure {
    /// The nonce or ciphertext is not valid base64 or has the wrong length.
    Encoding(String),
    /// Authentication failed.
    Auth,
}

pub(super) fn decrypt(
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
