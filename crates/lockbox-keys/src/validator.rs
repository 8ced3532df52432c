//! The secp256k1 validator key.

use std::fmt;

use k256::elliptic_curve::sec1::ToEncodedPoint;
use lockbox_core::SecretValue;
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

use crate::{Address, KeyError, REDACTED, hexkey};

/// Hex characters of a stored validator key (32 bytes).
const HEX_LEN: usize = 64;

/// A node's secp256k1 validator (consensus) key. Its public identity is its [`Address`].
///
/// `Debug` shows the address and redacts the private key; the key is zeroed on drop.
pub struct ValidatorKey {
    secret: k256::SecretKey,
}

impl ValidatorKey {
    /// A new random key from the operating system's random number generator.
    pub fn generate() -> Self {
        Self {
            secret: k256::SecretKey::random(&mut rand::rngs::OsRng),
        }
    }

    /// Reads a stored key: exactly 64 hex characters (32 bytes, either case), no `0x`, no
    /// whitespace or newline, and a valid secp256k1 scalar (not 0, below the curve order).
    /// That is what Polygon Edge writes; anything else is refused rather than guessed at.
    pub fn decode(value: &SecretValue) -> Result<Self, KeyError> {
        let bytes = hexkey::decode(value, Some(HEX_LEN))?;
        // Exactly 32 bytes here, so `from_slice` pads nothing.
        let secret = k256::SecretKey::from_slice(&bytes).map_err(|_| KeyError::InvalidScalar)?;
        Ok(Self { secret })
    }

    /// The stored form: 64 lowercase hex characters, no `0x`, no newline.
    pub fn encode(&self) -> SecretValue {
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(self.secret.to_bytes().into());
        hexkey::encode(&bytes[..])
    }

    /// The validator's address: the last 20 bytes of the Keccak-256 hash of the uncompressed
    /// public key without its `0x04` prefix.
    pub fn address(&self) -> Address {
        let point = self.secret.public_key().to_encoded_point(false);
        let hash = Keccak256::digest(&point.as_bytes()[1..]);
        let mut bytes = [0u8; 20];
        bytes.copy_from_slice(&hash[12..]);
        Address::new(bytes)
    }
}

impl fmt::Debug for ValidatorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorKey")
            .field("address", &format_args!("{}", self.address()))
            .field("secret", &format_args!("{REDACTED}"))
            .finish()
    }
}
