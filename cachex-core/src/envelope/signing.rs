//! Signed values: with a signing key, every envelope a byte-storing backend keeps carries a
//! keyed blake3 MAC over the storage key and the envelope, so bytes that anyone with write
//! access to the store planted, or copied from another entry, are misses.
//!
//! What it protects against: a writer without the key (another application, a compromised
//! neighbour service, a tool with store access) placing or moving values that this cache then
//! returns. What it does not: reading values (they are not encrypted), deleting or evicting
//! them, or replaying an old value of the same key within its stored lifetime.

use std::fmt;

use super::{DecodeError, FLAGS_AT, FLAG_SIGNED, HEADER_LEN, MAC_AT, MAC_LEN};

/// The shortest signing key accepted, in bytes.
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

/// The context string of `blake3::derive_key`: a key string serves only this purpose.
const CONTEXT: &str = "cachex 2026-12-01 signed value envelope v2";

/// The keys of one cache's signed values: the current key, which signs every write, and the
/// fallbacks that reads accept during a rotation. Secrets: `Debug` shows neither.
///
/// ```
/// use cachex_core::envelope::SigningKeys;
/// let keys = SigningKeys::new::<&str>("a secret of at least thirty-two bytes!", &[]).unwrap();
/// assert!(!format!("{keys:?}").contains("secret"));
/// assert!(SigningKeys::new("too short", &[""; 0]).is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeys {
    current: [u8; 32],
    fallbacks: Vec<[u8; 32]>,
}

/// A signing key shorter than [`MIN_SIGNING_KEY_BYTES`]: which one (0 = the current key,
/// 1.. = the fallbacks in order) and its length (never its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a signing key must be at least {MIN_SIGNING_KEY_BYTES} bytes; this one has {len}")]
pub struct ShortSigningKey {
    /// 0 for the current key, then 1, 2... for the fallbacks.
    pub index: usize,
    /// Its length in bytes.
    pub len: usize,
}

/// Which key an envelope verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The current key: nothing to do.
    Current,
    /// A fallback key: good during a rotation (the entry is signed with the current key at
    /// its next write).
    Fallback,
}

fn derive(index: usize, secret: &str) -> Result<[u8; 32], ShortSigningKey> {
    if secret.len() < MIN_SIGNING_KEY_BYTES {
        return Err(ShortSigningKey {
            index,
            len: secret.len(),
        });
    }
    Ok(blake3::derive_key(CONTEXT, secret.as_bytes()))
}

impl SigningKeys {
    /// The keys made from `current` and the rotation's `fallbacks` (strings of at least
    /// [`MIN_SIGNING_KEY_BYTES`] bytes).
    pub fn new<S: AsRef<str>>(current: &str, fallbacks: &[S]) -> Result<SigningKeys, ShortSigningKey> {
        Ok(SigningKeys {
            current: derive(0, current)?,
            fallbacks: fallbacks
                .iter()
                .enumerate()
                .map(|(i, key)| derive(i + 1, key.as_ref()))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Marks `envelope` signed and writes its MAC for the entry `storage_key`, with the
    /// current key.
    pub fn sign(&self, storage_key: &str, envelope: &mut [u8]) {
        if envelope.len() < HEADER_LEN {
            return;
        }
        envelope[FLAGS_AT] |= FLAG_SIGNED;
        let mac = mac(&self.current, storage_key, envelope);
        envelope[MAC_AT..MAC_AT + MAC_LEN].copy_from_slice(mac.as_bytes());
    }

    /// Whether `envelope` is signed for `storage_key` by one of these keys.
    pub fn verify(&self, storage_key: &str, envelope: &[u8]) -> Result<Verified, DecodeError> {
        if envelope.len() < HEADER_LEN {
            return Err(DecodeError::Truncated(envelope.len()));
        }
        if envelope[FLAGS_AT] & FLAG_SIGNED == 0 {
            return Err(DecodeError::Unsigned);
        }
        let mut stored = [0u8; MAC_LEN];
        stored.copy_from_slice(&envelope[MAC_AT..MAC_AT + MAC_LEN]);
        // blake3::Hash compares in constant time.
        let stored = blake3::Hash::from_bytes(stored);
        if mac(&self.current, storage_key, envelope) == stored {
            return Ok(Verified::Current);
        }
        if self
            .fallbacks
            .iter()
            .any(|key| mac(key, storage_key, envelope) == stored)
        {
            return Ok(Verified::Fallback);
        }
        Err(DecodeError::BadSignature)
    }
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("current", &"<redacted>")
            .field("fallbacks", &self.fallbacks.len())
            .finish()
    }
}

/// The MAC of an entry: the storage key (length-framed), then the envelope with its MAC slot
/// read as zeros.
fn mac(key: &[u8; 32], storage_key: &str, envelope: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(&(storage_key.len() as u64).to_le_bytes());
    hasher.update(storage_key.as_bytes());
    hasher.update(&envelope[..MAC_AT]);
    hasher.update(&[0u8; MAC_LEN]);
    hasher.update(&envelope[MAC_AT + MAC_LEN..]);
    hasher.finalize()
}
