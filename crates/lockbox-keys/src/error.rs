//! Why stored key bytes could not be decoded.

/// Why stored key bytes could not be decoded.
///
/// Its message names the rule broken and never includes the key bytes or any part of them
/// (positions and lengths only), so it is safe to log and to show to users.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The stored value is empty.
    #[error("the stored key is empty")]
    Empty,
    /// The stored value starts with `0x`; keys are stored as bare hex.
    #[error("the stored key starts with \"0x\"; keys are stored as bare hex without a prefix")]
    HexPrefix,
    /// The stored value ends with a line break; keys are stored without one.
    #[error(
        "the stored key ends with a line break; keys are stored as hex with no trailing newline"
    )]
    TrailingNewline,
    /// The stored value contains whitespace.
    #[error("the stored key contains whitespace at byte {position}; keys are stored as bare hex")]
    Whitespace {
        /// Byte offset of the first whitespace character.
        position: usize,
    },
    /// The stored value contains a character that is not a hex digit.
    #[error("the stored key has a character that is not a hex digit at byte {position}")]
    NotHex {
        /// Byte offset of the first offending character.
        position: usize,
    },
    /// The stored value has the wrong number of hex characters.
    #[error("expected {expected} hex characters ({} bytes), found {found}", expected / 2)]
    WrongLength {
        /// Hex characters required.
        expected: usize,
        /// Hex characters found.
        found: usize,
    },
    /// The stored value has an odd number of hex characters, so it is not whole bytes.
    #[error("the stored key has an odd number of hex characters ({found})")]
    OddLength {
        /// Hex characters found.
        found: usize,
    },
    /// The 32 bytes are zero or not below the secp256k1 group order.
    #[error(
        "the 32-byte scalar is not a valid secp256k1 private key (it must be at least 1 and \
         below the curve order)"
    )]
    InvalidScalar,
    /// A BLS secret scalar of zero, which is no key.
    #[error(
        "the 32-byte BLS secret scalar is zero; a BLS12-381 secret key must be at least 1 and \
         below the group order r"
    )]
    BlsScalarZero,
    /// A BLS secret scalar that is not below the BLS12-381 group order r (not canonical).
    #[error(
        "the 32-byte BLS secret scalar is not below the BLS12-381 group order r \
         (0x73eda753...00000001); a secret key must be a canonical big-endian scalar from 1 to r-1"
    )]
    BlsScalarOutOfRange,
    /// A libp2p private key of a type other than secp256k1 (Ed25519, RSA, ECDSA).
    #[error(
        "libp2p key type {} is not supported: network-key must be a secp256k1 key \
         (protobuf 08 02 12 20 followed by the 32-byte private scalar)",
        key_type_name(*type_code)
    )]
    UnsupportedKeyType {
        /// The protobuf `KeyType` code found (0 RSA, 1 Ed25519, 2 secp256k1, 3 ECDSA).
        type_code: u8,
    },
    /// Bytes that are not a libp2p secp256k1 private key in protobuf form.
    #[error(
        "not a libp2p secp256k1 private key: expected 36 bytes (08 02 12 20 followed by the \
         32-byte private scalar), found {len} bytes that do not follow that layout"
    )]
    NotLibp2pKey {
        /// Length in bytes of the decoded value.
        len: usize,
    },
}

fn key_type_name(code: u8) -> String {
    match code {
        0 => "RSA".into(),
        1 => "Ed25519".into(),
        2 => "secp256k1".into(),
        3 => "ECDSA".into(),
        other => format!("{other} (unknown)"),
    }
}
