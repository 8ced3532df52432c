//! Ethereum-style addresses with the EIP-55 checksum.

use std::fmt;

use sha3::{Digest, Keccak256};

/// A validator's public address: the last 20 bytes of the Keccak-256 hash of its uncompressed
/// public key. `Display` prints `0x` and the EIP-55 checksummed hex, the form Polygon Edge and
/// wallets show, so users can compare addresses by eye. `Debug` shows the same text (an address
/// is public).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address([u8; 20]);

impl Address {
    /// The address of these 20 bytes.
    pub fn new(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    /// The 20 address bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl From<[u8; 20]> for Address {
    fn from(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lower = hex::encode(self.0);
        let hash = Keccak256::digest(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            out.push(if nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            });
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples from EIP-55 itself.
    #[test]
    fn eip55_examples() {
        for expected in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let mut bytes = [0u8; 20];
            hex::decode_to_slice(&expected[2..], &mut bytes).unwrap();
            assert_eq!(Address::new(bytes).to_string(), expected);
        }
    }

    #[test]
    fn all_digit_address_has_no_case() {
        let a = Address::from([0x11; 20]);
        assert_eq!(a.to_string(), format!("0x{}", "11".repeat(20)));
        assert_eq!(a.as_bytes(), &[0x11; 20]);
        assert_eq!(format!("{a:?}"), format!("Address(0x{})", "11".repeat(20)));
    }
}
