//! The 32-byte digest that names an entry outside the process, and its hex.

use std::fmt;

use super::{CallKey, Seed};

/// The 32-byte digest that identifies one entry of one cache outside the process.
///
/// ```
/// let key = cachex_core::Key::direct("fib", &42u64).unwrap();
/// assert_eq!(key.to_hex().len(), 64);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// The digest of a direct `get`/`set` key through a cache handle: `key` encoded with serde;
    /// `None` when it does not serialize.
    pub fn direct<K: serde::Serialize + ?Sized>(cache: &str, key: &K) -> Option<Key> {
        let seed = Seed::direct_digest_only(cache);
        CallKey::direct(&seed, key).map(|key| key.digest())
    }

    /// Lowercase hex, 64 characters: what backends append to the cache's prefix.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        self.push_hex(&mut out);
        out
    }

    /// Appends the lowercase hex of the key to `out`.
    pub fn push_hex(&self, out: &mut String) {
        if let Ok(hex) = std::str::from_utf8(&self.hex_digits()) {
            out.push_str(hex);
        }
    }

    /// The 64 lowercase hex digits, as ASCII bytes.
    ///
    /// ```
    /// let key = cachex_core::Key([0xab; 32]);
    /// assert_eq!(&key.hex_digits()[..4], b"abab");
    /// ```
    pub fn hex_digits(&self) -> [u8; 64] {
        let mut hex = [0u8; 64];
        for (pair, &byte) in hex.chunks_exact_mut(2).zip(&self.0) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
        hex
    }
}

/// The two lowercase hex digits of every byte value (one lookup per byte: the storage key of
/// every remote operation is formatted with it).
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0xf]];
        byte += 1;
    }
    pairs
};

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.to_hex())
    }
}
