//! Hex text of private keys, decoded and encoded without leaving copies in freed memory and
//! without ever quoting the input in an error.

use lockbox_core::SecretValue;
use zeroize::Zeroizing;

use crate::KeyError;

/// Checks that `value` is bare hex (either case) and decodes it. With `exact_chars`, the text
/// must have exactly that many hex characters.
pub(crate) fn decode(
    value: &SecretValue,
    exact_chars: Option<usize>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let text = value.expose_bytes();
    if text.is_empty() {
        return Err(KeyError::Empty);
    }
    if text.starts_with(b"0x") || text.starts_with(b"0X") {
        return Err(KeyError::HexPrefix);
    }
    if text.ends_with(b"\n") || text.ends_with(b"\r") {
        return Err(KeyError::TrailingNewline);
    }
    if let Some(position) = text.iter().position(|b| b.is_ascii_whitespace()) {
        return Err(KeyError::Whitespace { position });
    }
    if let Some(position) = text.iter().position(|b| !b.is_ascii_hexdigit()) {
        return Err(KeyError::NotHex { position });
    }
    match exact_chars {
        Some(expected) if text.len() != expected => {
            return Err(KeyError::WrongLength {
                expected,
                found: text.len(),
            });
        }
        _ if text.len() & 1 == 1 => return Err(KeyError::OddLength { found: text.len() }),
        _ => {}
    }
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 2));
    for pair in text.chunks_exact(2) {
        out.push((nibble(pair[0]) << 4) | nibble(pair[1]));
    }
    Ok(out)
}

/// Lowercase hex of `bytes` as a secret value, built in one allocation.
pub(crate) fn encode(bytes: &[u8]) -> SecretValue {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[usize::from(b >> 4)]);
        text.push(DIGITS[usize::from(b & 0x0f)]);
    }
    SecretValue::new(text)
}

/// The value of one hex digit (already checked to be one).
fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}
