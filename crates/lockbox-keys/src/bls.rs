//! The BLS12-381 validator key of Polygon Edge's IBFT (`validator-bls-key`).
//!
//! Polygon Edge signs IBFT seals with kryptology's BLS12-381 proof-of-possession scheme:
//! public keys in G1, signatures in G2. The stored key is the 32-byte big-endian secret scalar;
//! the public key is the 48-byte compressed G1 point (ZCash serialisation), which is what
//! `bls12_381` writes.

use std::fmt;

use bls12_381::{G1Affine, G1Projective, Scalar};
use lockbox_core::SecretValue;
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::{Address, KeyError, REDACTED, hexkey};

/// Hex characters of a stored BLS key (32 bytes).
const HEX_LEN: usize = 64;

/// A node's BLS12-381 validator key. Its public identity is its [`BlsPublicKey`].
///
/// `Debug` shows the public key and redacts the secret; the secret is zeroed on drop.
pub struct BlsKey {
    secret: Scalar,
}

impl BlsKey {
    /// A new random key from the operating system's random number generator: 64 random bytes
    /// reduced modulo the group order (uniform to within 2^-256), never zero.
    pub fn generate() -> Self {
        loop {
            let mut wide = Zeroizing::new([0u8; 64]);
            rand::rngs::OsRng.fill_bytes(&mut wide[..]);
            let secret = Scalar::from_bytes_wide(&wide);
            if secret != Scalar::zero() {
                return Self { secret };
            }
        }
    }

    /// Reads a stored key: exactly 64 hex characters (32 bytes, big-endian, either case), no
    /// `0x`, no whitespace or newline, and a canonical non-zero scalar (at least 1 and below
    /// the BLS12-381 group order r). That is what Polygon Edge writes; anything else is refused
    /// rather than reduced or guessed at.
    pub fn decode(value: &SecretValue) -> Result<Self, KeyError> {
        let bytes = hexkey::decode(value, Some(HEX_LEN))?;
        // `Scalar::from_bytes` takes little-endian bytes.
        let mut little = Zeroizing::new([0u8; 32]);
        for (to, from) in little.iter_mut().zip(bytes.iter().rev()) {
            *to = *from;
        }
        let secret: Option<Scalar> = Scalar::from_bytes(&little).into();
        let secret = secret.ok_or(KeyError::BlsScalarOutOfRange)?;
        let key = Self { secret };
        if key.secret == Scalar::zero() {
            return Err(KeyError::BlsScalarZero);
        }
        Ok(key)
    }

    /// The stored form: 64 lowercase hex characters of the big-endian scalar (leading zero
    /// bytes kept), no `0x`, no newline.
    pub fn encode(&self) -> SecretValue {
        let little = Zeroizing::new(self.secret.to_bytes());
        let mut big = Zeroizing::new([0u8; 32]);
        for (to, from) in big.iter_mut().zip(little.iter().rev()) {
            *to = *from;
        }
        hexkey::encode(&big[..])
    }

    /// The public key: the secret times the G1 generator, compressed.
    pub fn public_key(&self) -> BlsPublicKey {
        BlsPublicKey(G1Affine::from(G1Projective::generator() * self.secret).to_compressed())
    }
}

impl Drop for BlsKey {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl fmt::Debug for BlsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlsKey")
            .field("public_key", &format_args!("{}", self.public_key()))
            .field("secret", &format_args!("{REDACTED}"))
            .finish()
    }
}

/// A BLS validator public key: a 48-byte compressed BLS12-381 G1 point. `Display` prints `0x`
/// and lowercase hex, as `polygon-edge secrets output --bls` does; `Debug` shows the same text
/// (a public key is public).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlsPublicKey([u8; 48]);

impl BlsPublicKey {
    /// The 48 bytes of the compressed point.
    pub fn as_bytes(&self) -> &[u8; 48] {
        &self.0
    }
}

impl fmt::Display for BlsPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for BlsPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlsPublicKey({self})")
    }
}

/// The validator string Polygon Edge's `genesis --ibft-validator` takes for a BLS validator
/// (the default `--ibft-validator-type bls`): the EIP-55 address, `:`, then `0x` and the BLS
/// public key hex, e.g. `0x7E5F…5Bdf:0x97f1…c6bb`. It is what Polygon Edge's
/// `BLSValidator.String()` prints and `ParseBLSValidator` reads back.
///
/// From the private keys: `genesis_validator(&validator.address(), &bls.public_key())`.
pub fn genesis_validator(address: &Address, bls_public_key: &BlsPublicKey) -> String {
    format!("{address}:{bls_public_key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compressed G1 generator (the public key of scalar 1), from the ZCash serialisation.
    const G1_GENERATOR: &str = "0x97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb";

    #[test]
    fn scalar_one_is_the_generator() {
        let key =
            BlsKey::decode(&SecretValue::from(format!("{}1", "0".repeat(63)).as_str())).unwrap();
        assert_eq!(key.public_key().to_string(), G1_GENERATOR);
        assert_eq!(
            format!("{:?}", key.public_key()),
            format!("BlsPublicKey({G1_GENERATOR})")
        );
    }

    #[test]
    fn generated_keys_round_trip_and_differ() {
        let a = BlsKey::generate();
        let b = BlsKey::generate();
        assert_ne!(a.public_key(), b.public_key());
        let back = BlsKey::decode(&a.encode()).unwrap();
        assert_eq!(back.public_key(), a.public_key());
        assert_eq!(back.encode().expose_bytes(), a.encode().expose_bytes());
        assert_eq!(a.encode().expose_bytes().len(), HEX_LEN);
    }

    #[test]
    fn debug_redacts_the_secret() {
        let key = BlsKey::decode(&SecretValue::from("2a".repeat(32).as_str())).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(REDACTED), "{debug}");
        assert!(debug.contains(&key.public_key().to_string()), "{debug}");
        assert!(!debug.contains("2a2a2a"), "{debug}");
    }
}
