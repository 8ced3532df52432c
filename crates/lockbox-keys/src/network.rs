//! The libp2p secp256k1 network key.

use std::fmt;

use libp2p_identity::{PeerId, PublicKey, secp256k1};
use lockbox_core::SecretValue;
use zeroize::Zeroizing;

use crate::{KeyError, REDACTED, hexkey};

/// Protobuf header of a libp2p secp256k1 private key: field 1 (`Type`) = 2 (secp256k1), then
/// field 2 (`Data`) of 32 bytes.
const HEADER: [u8; 4] = [0x08, 0x02, 0x12, 0x20];

/// Bytes of the protobuf encoding: the header and the 32-byte scalar.
const ENCODED_LEN: usize = HEADER.len() + 32;

/// A node's libp2p secp256k1 network key. Its public identity is its node ID (libp2p peer ID).
///
/// `Debug` shows the node ID and redacts the private key.
pub struct NetworkKey {
    keypair: secp256k1::Keypair,
}

impl NetworkKey {
    /// A new random key from the operating system's random number generator.
    pub fn generate() -> Self {
        Self {
            keypair: secp256k1::Keypair::generate(),
        }
    }

    /// Reads a stored key: bare hex (either case, no `0x`, no whitespace or newline) of the
    /// libp2p protobuf private key, which must be of type secp256k1 (`08 02 12 20` then a valid
    /// 32-byte scalar). Other key types (Ed25519, RSA, ECDSA) are refused by name, since Polygon
    /// Edge nodes use secp256k1 only.
    pub fn decode(value: &SecretValue) -> Result<Self, KeyError> {
        let bytes = hexkey::decode(value, None)?;
        if bytes.len() < 2 || bytes[0] != HEADER[0] {
            return Err(KeyError::NotLibp2pKey { len: bytes.len() });
        }
        // Key type codes are small, so the varint is one byte; a larger one is no key type.
        if bytes[1] != HEADER[1] {
            if bytes[1] < 0x80 {
                return Err(KeyError::UnsupportedKeyType {
                    type_code: bytes[1],
                });
            }
            return Err(KeyError::NotLibp2pKey { len: bytes.len() });
        }
        if bytes.len() != ENCODED_LEN || bytes[..HEADER.len()] != HEADER {
            return Err(KeyError::NotLibp2pKey { len: bytes.len() });
        }
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar.copy_from_slice(&bytes[HEADER.len()..]);
        // `try_from_bytes` zeroes the buffer it is given.
        let secret = secp256k1::SecretKey::try_from_bytes(&mut scalar[..])
            .map_err(|_| KeyError::InvalidScalar)?;
        Ok(Self {
            keypair: secp256k1::Keypair::from(secret),
        })
    }

    /// The stored form: lowercase hex of the libp2p protobuf encoding, `08021220` followed by
    /// the 64 hex characters of the scalar; no `0x`, no newline.
    pub fn encode(&self) -> SecretValue {
        let scalar = Zeroizing::new(self.keypair.secret().to_bytes());
        let mut bytes = Zeroizing::new([0u8; ENCODED_LEN]);
        bytes[..HEADER.len()].copy_from_slice(&HEADER);
        bytes[HEADER.len()..].copy_from_slice(&scalar[..]);
        hexkey::encode(&bytes[..])
    }

    /// The node ID: the base58btc libp2p peer ID of the public key (starts with `16Uiu2`).
    pub fn node_id(&self) -> String {
        let public = PublicKey::from(self.keypair.public().clone());
        PeerId::from_public_key(&public).to_base58()
    }
}

impl fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkKey")
            .field("node_id", &self.node_id())
            .field("secret", &format_args!("{REDACTED}"))
            .finish()
    }
}
