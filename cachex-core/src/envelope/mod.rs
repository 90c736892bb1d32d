//! The value envelope that byte-storing backends keep, format version 2:
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..4 | magic `CHX\x01` |
//! | 4 | format version (2) |
//! | 5 | flags (bit 0: signed) |
//! | 6..22 | the structural fingerprint of the value's type ([`fingerprint`]) |
//! | 22..30 | fresh until: ms since the Unix epoch, 0 = forever (stale serving reads it) |
//! | 30..38 | stored until: ms since the Unix epoch, 0 = forever (backends expire by it) |
//! | 38..70 | the MAC of a signed entry ([`SigningKeys`]), zeros otherwise |
//! | 70..78 | payload length |
//! | 78.. | the bincode payload (standard configuration) |
//!
//! Readers treat every other version (v1 entries included) as a miss. Decoding is bounded in
//! nesting and in allocation whatever the bytes claim (see [`MAX_DEPTH`]).

mod bounded;
mod shape;
mod signing;

use std::any::Any;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::varint::Varint;

pub use bounded::MAX_DEPTH;
pub use shape::{fingerprint, Fingerprint};
pub use signing::{ShortSigningKey, SigningKeys, Verified, MIN_SIGNING_KEY_BYTES};

/// The first bytes of every envelope.
pub const MAGIC: [u8; 4] = *b"CHX\x01";
/// The envelope format version.
pub const FORMAT_VERSION: u8 = 2;
const VERSION_AT: usize = 4;
pub(crate) const FLAGS_AT: usize = 5;
pub(crate) const FLAG_SIGNED: u8 = 1;
const FINGERPRINT_AT: usize = 6;
const FRESH_AT: usize = 22;
const STORED_AT: usize = 30;
pub(crate) const MAC_AT: usize = 38;
pub(crate) const MAC_LEN: usize = 32;
const LENGTH_AT: usize = 70;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 78;

/// Why stored bytes were not a usable value. Every one of these is treated as a miss.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than a header, or a payload shorter than its length field says.
    #[error("truncated envelope ({0} bytes)")]
    Truncated(usize),
    /// The bytes are not a cachex envelope.
    #[error("not a cachex envelope (bad magic)")]
    Foreign,
    /// Written by another envelope format version.
    #[error("envelope format version {0}, expected {FORMAT_VERSION}")]
    Version(u8),
    /// Written for another return type (the type changed between deploys).
    #[error("value written for another type (fingerprint {found}, expected {expected})")]
    TypeChanged {
        /// The fingerprint in the envelope.
        found: Fingerprint,
        /// The fingerprint of the type asked for.
        expected: Fingerprint,
    },
    /// The entry's stored-until instant has passed.
    #[error("expired")]
    Expired,
    /// The cache signs its values and this one carries no signature.
    #[error("unsigned value in a cache that signs its values")]
    Unsigned,
    /// The signature does not verify with any of the cache's keys (forged, signed with another
    /// key, or moved from another entry).
    #[error("signature does not verify")]
    BadSignature,
    /// The payload did not decode as the type (or left bytes over, or nested too deeply).
    #[error("payload does not decode: {0}")]
    Payload(String),
}

/// When an entry stops being fresh and when it stops being stored, in ms since the Unix
/// epoch; 0 = never.
///
/// ```
/// use std::time::Duration;
/// use cachex_core::envelope::Expiry;
/// let expiry = Expiry::after(Some(Duration::from_secs(60)), Duration::from_secs(30));
/// assert_eq!(expiry.stored_until - expiry.fresh_until, 30_000);
/// assert_eq!(Expiry::after(None, Duration::from_secs(30)), Expiry::NEVER);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// Until then the value is fresh.
    pub fresh_until: u64,
    /// Until then the value is kept (fresh, then stale); backends expire it then.
    pub stored_until: u64,
}

impl Expiry {
    /// Never stale, never expired.
    pub const NEVER: Expiry = Expiry {
        fresh_until: 0,
        stored_until: 0,
    };

    /// Fresh for `ttl` from now (`None` or zero = forever), then kept `stale` longer.
    pub fn after(ttl: Option<Duration>, stale: Duration) -> Expiry {
        match ttl {
            Some(ttl) if !ttl.is_zero() => {
                let fresh_until = now_millis().saturating_add(millis(ttl));
                Expiry {
                    fresh_until,
                    stored_until: fresh_until.saturating_add(millis(stale)),
                }
            }
            _ => Expiry::NEVER,
        }
    }

    /// How long the entry is still stored from now: `None` = forever, zero = expired.
    pub fn remaining(&self) -> Option<Duration> {
        (self.stored_until != 0).then(|| Duration::from_millis(self.stored_until.saturating_sub(now_millis())))
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(millis).unwrap_or(0)
}

/// Encodes `value` in an envelope that expires after `ttl` (`None` = never).
///
/// ```
/// use cachex_core::envelope::{decode, encode};
/// let bytes = encode(&vec![1u32, 2, 3], None).unwrap();
/// assert_eq!(decode::<Vec<u32>>(&bytes).unwrap(), vec![1, 2, 3]);
/// assert!(decode::<Vec<i32>>(&bytes).is_err());
/// ```
pub fn encode<T: Serialize + DeserializeOwned + 'static>(
    value: &T,
    ttl: Option<Duration>,
) -> Result<Vec<u8>, bincode::error::EncodeError> {
    encode_until(value, Expiry::after(ttl, Duration::ZERO))
}

/// Encodes `value` in an unsigned envelope with these instants.
pub fn encode_until<T: Serialize + DeserializeOwned + 'static>(
    value: &T,
    expiry: Expiry,
) -> Result<Vec<u8>, bincode::error::EncodeError> {
    let mut out = Vec::with_capacity(HEADER_LEN + 64);
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.push(0);
    out.extend_from_slice(&fingerprint::<T>().0);
    out.extend_from_slice(&expiry.fresh_until.to_le_bytes());
    out.extend_from_slice(&expiry.stored_until.to_le_bytes());
    out.extend_from_slice(&[0u8; MAC_LEN + 8]);
    match (value as &dyn Any).downcast_ref::<Vec<u8>>() {
        Some(bytes) => write_byte_vec(&mut out, bytes),
        None => {
            bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard())?;
        }
    }
    let payload_len = (out.len() - HEADER_LEN) as u64;
    out[LENGTH_AT..HEADER_LEN].copy_from_slice(&payload_len.to_le_bytes());
    Ok(out)
}

/// The instants written in an envelope's header, if the bytes start with one of this format.
pub fn read_expiry(bytes: &[u8]) -> Option<Expiry> {
    (bytes.len() >= HEADER_LEN && bytes[..4] == MAGIC && bytes[VERSION_AT] == FORMAT_VERSION).then(|| Expiry {
        fresh_until: read_u64(&bytes[FRESH_AT..]),
        stored_until: read_u64(&bytes[STORED_AT..]),
    })
}

/// The stored-until instant of an envelope (ms since the epoch, 0 = never), if it has one:
/// what the file backend expires entries by.
pub fn header_expiry(bytes: &[u8]) -> Option<u64> {
    read_expiry(bytes).map(|expiry| expiry.stored_until)
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(buf)
}

/// Decodes an envelope written by [`encode`] for the same type `T` (signatures unchecked:
/// see [`SigningKeys::verify`]).
///
/// Never panics, never recurses deeper than [`MAX_DEPTH`], and never allocates on the word
/// of a length field more than the bytes stored.
pub fn decode<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<T, DecodeError> {
    check_header::<T>(bytes)?;
    decode_payload(&bytes[HEADER_LEN..])
}

/// Like [`decode`], taking the bytes: a `Vec<u8>` value reuses their allocation.
///
/// ```
/// use cachex_core::envelope::{decode_owned, encode};
/// let bytes = encode(&vec![1u8, 2, 3], None).unwrap();
/// assert_eq!(decode_owned::<Vec<u8>>(bytes).unwrap(), vec![1, 2, 3]);
/// ```
pub fn decode_owned<T: DeserializeOwned + 'static>(mut bytes: Vec<u8>) -> Result<T, DecodeError> {
    check_header::<T>(&bytes)?;
    let mut fast: Option<T> = None;
    if let Some(slot) = (&mut fast as &mut dyn Any).downcast_mut::<Option<Vec<u8>>>() {
        let body = byte_vec_body(&bytes[HEADER_LEN..]).ok_or_else(malformed_bytes)?;
        bytes.drain(..bytes.len() - body);
        *slot = Some(bytes);
        return fast.ok_or_else(malformed_bytes);
    }
    decode_payload(&bytes[HEADER_LEN..])
}

/// Checks magic, version, fingerprint, expiry and payload length.
fn check_header<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(if bytes.len() >= 4 && bytes[..4] != MAGIC {
            DecodeError::Foreign
        } else {
            DecodeError::Truncated(bytes.len())
        });
    }
    if bytes[..4] != MAGIC {
        return Err(DecodeError::Foreign);
    }
    if bytes[VERSION_AT] != FORMAT_VERSION {
        return Err(DecodeError::Version(bytes[VERSION_AT]));
    }
    let mut found = [0u8; 16];
    found.copy_from_slice(&bytes[FINGERPRINT_AT..FRESH_AT]);
    let expected = fingerprint::<T>();
    if Fingerprint(found) != expected {
        return Err(DecodeError::TypeChanged {
            found: Fingerprint(found),
            expected,
        });
    }
    let stored_until = read_u64(&bytes[STORED_AT..]);
    if stored_until != 0 && stored_until <= now_millis() {
        return Err(DecodeError::Expired);
    }
    if read_u64(&bytes[LENGTH_AT..]) != (bytes.len() - HEADER_LEN) as u64 {
        return Err(DecodeError::Truncated(bytes.len()));
    }
    Ok(())
}

fn malformed_bytes() -> DecodeError {
    DecodeError::Payload("malformed byte vector".into())
}

/// Byte vectors, the commonest cached blob, skip serde's element-by-element path; the bytes are
/// exactly what bincode writes for a `Vec<u8>` (a varint length, then the bytes), so entries
/// written either way decode either way.
fn write_byte_vec(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(Varint::unsigned(bytes.len() as u128).as_bytes());
    out.extend_from_slice(bytes);
}

/// The inverse of [`write_byte_vec`]: the length of the bytes, if the payload is exactly a
/// length and that many bytes.
fn byte_vec_body(payload: &[u8]) -> Option<usize> {
    let (len, body) = Varint::read_u64(payload)?;
    (body.len() as u64 == len).then_some(body.len())
}

/// Decodes a bincode payload, bounded (see [`bounded`]); every byte must be used.
fn decode_payload<T: DeserializeOwned + 'static>(payload: &[u8]) -> Result<T, DecodeError> {
    let mut fast: Option<T> = None;
    if let Some(slot) = (&mut fast as &mut dyn Any).downcast_mut::<Option<Vec<u8>>>() {
        let body = byte_vec_body(payload).ok_or_else(malformed_bytes)?;
        *slot = Some(payload[payload.len() - body..].to_vec());
        return fast.ok_or_else(malformed_bytes);
    }
    match bounded::decode::<T>(payload) {
        Ok((value, used)) if used == payload.len() => Ok(value),
        Ok((_, used)) => Err(DecodeError::Payload(format!(
            "{} bytes left over",
            payload.len() - used
        ))),
        Err(e) => Err(DecodeError::Payload(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Part of the stored format: a change makes every stored entry a miss.
    #[test]
    fn fingerprints_are_stable() {
        assert_eq!(fingerprint::<u64>().to_string(), "0cf98be009991602ee1642dc2613a251");
        assert_eq!(fingerprint::<Vec<u8>>().to_string(), "9180507561d8f47ea1d074d4999dce39");
        let from_another_thread = std::thread::spawn(fingerprint::<u64>).join().unwrap();
        assert_eq!(from_another_thread, fingerprint::<u64>());
    }

    #[allow(dead_code)] // only their shapes matter
    mod deploy_a {
        #[derive(serde::Deserialize)]
        pub struct User {
            pub name: String,
            pub email: String,
            pub role: Role,
        }
        #[derive(serde::Deserialize)]
        pub enum Role {
            User,
            Admin,
        }
        #[derive(serde::Deserialize)]
        pub struct Comment {
            pub text: String,
            pub replies: Vec<Comment>,
        }
        #[derive(serde::Deserialize)]
        pub struct Balance(pub i64);
    }

    #[allow(dead_code)]
    mod same_as_a {
        #[derive(serde::Deserialize)]
        pub struct User {
            pub name: String,
            pub email: String,
            pub role: Role,
        }
        #[derive(serde::Deserialize)]
        pub enum Role {
            User,
            Admin,
        }
        #[derive(serde::Deserialize)]
        pub struct Comment {
            pub text: String,
            pub replies: Vec<Comment>,
        }
    }

    #[allow(dead_code)]
    mod swapped_fields {
        #[derive(serde::Deserialize)]
        pub struct User {
            pub email: String,
            pub name: String,
            pub role: super::deploy_a::Role,
        }
    }

    #[allow(dead_code)]
    mod reordered_nested_variants {
        #[derive(serde::Deserialize)]
        pub struct User {
            pub name: String,
            pub email: String,
            pub role: Role,
        }
        #[derive(serde::Deserialize)]
        pub enum Role {
            Admin,
            User,
        }
    }

    #[allow(dead_code)]
    mod unsigned {
        #[derive(serde::Deserialize)]
        pub struct Balance(pub u64);
    }

    #[test]
    fn the_fingerprint_is_the_shape_not_the_path() {
        use std::any::type_name;
        // Same shape under another module path: traced, so equal (a name-based fallback
        // would differ, since the full paths do).
        assert_ne!(type_name::<deploy_a::User>(), type_name::<same_as_a::User>());
        assert_eq!(fingerprint::<deploy_a::User>(), fingerprint::<same_as_a::User>());
        assert_eq!(fingerprint::<deploy_a::Comment>(), fingerprint::<same_as_a::Comment>());
        // Same names, other shapes.
        assert_ne!(fingerprint::<deploy_a::User>(), fingerprint::<swapped_fields::User>());
        assert_ne!(
            fingerprint::<deploy_a::User>(),
            fingerprint::<reordered_nested_variants::User>()
        );
        assert_ne!(fingerprint::<deploy_a::Balance>(), fingerprint::<unsigned::Balance>());
        assert_ne!(fingerprint::<u32>(), fingerprint::<u64>());
    }

    #[test]
    fn round_trip_and_expiry() {
        let bytes = encode(&"hello".to_string(), Some(Duration::from_secs(60))).unwrap();
        assert_eq!(decode::<String>(&bytes).unwrap(), "hello");
        let expiry = read_expiry(&bytes).unwrap();
        assert!(expiry.fresh_until > now_millis());
        assert_eq!(header_expiry(&bytes), Some(expiry.stored_until));
        let mut expired = bytes.clone();
        expired[STORED_AT..STORED_AT + 8].copy_from_slice(&1u64.to_le_bytes());
        assert_eq!(decode::<String>(&expired), Err(DecodeError::Expired));
        // Past fresh-until but within stored-until: still decodes (stale serving decides).
        let stale = encode_until(
            &7u64,
            Expiry {
                fresh_until: 1,
                stored_until: now_millis() + 60_000,
            },
        )
        .unwrap();
        assert_eq!(decode::<u64>(&stale), Ok(7));
    }

    #[test]
    fn every_corruption_is_an_error() {
        let bytes = encode(&vec![7u8; 100], None).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                decode::<Vec<u8>>(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
        assert_eq!(
            decode::<Vec<u8>>(b"random bytes that are not ours at all, long enough for a header ......"),
            Err(DecodeError::Foreign)
        );
        let mut version = bytes.clone();
        version[VERSION_AT] = 1;
        assert_eq!(decode::<Vec<u8>>(&version), Err(DecodeError::Version(1)));
        assert!(matches!(
            decode::<Vec<u16>>(&bytes),
            Err(DecodeError::TypeChanged { .. })
        ));
    }

    #[test]
    fn the_byte_vector_fast_path_writes_what_bincode_writes() {
        for len in [0usize, 1, 250, 251, 65_535, 65_536, 1 << 20] {
            let value: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut fast = Vec::new();
            write_byte_vec(&mut fast, &value);
            let serde = bincode::serde::encode_to_vec(&value, bincode::config::standard()).unwrap();
            assert_eq!(fast, serde, "length {len}");
            assert_eq!(byte_vec_body(&serde), Some(len));
            let owned = encode(&value, None).unwrap();
            assert_eq!(decode_owned::<Vec<u8>>(owned.clone()).unwrap(), value);
            assert_eq!(decode::<Vec<u8>>(&owned).unwrap(), value);
            let generic: Vec<u8> = decode_payload_generic(&fast);
            assert_eq!(generic, value);
        }
        assert_eq!(byte_vec_body(&[5, 1, 2]), None, "short");
        assert_eq!(byte_vec_body(&[1, 1, 2]), None, "long");
        assert_eq!(byte_vec_body(&[254]), None, "bad tag");
    }

    fn decode_payload_generic(payload: &[u8]) -> Vec<u8> {
        bincode::serde::decode_from_slice(payload, bincode::config::standard())
            .unwrap()
            .0
    }

    /// An envelope for `T` around a hand-made payload.
    fn envelope_of<T: serde::Serialize + DeserializeOwned + Default + 'static>(payload: &[u8]) -> Vec<u8> {
        let mut bytes = encode(&T::default(), None).unwrap();
        bytes.truncate(HEADER_LEN);
        bytes.extend_from_slice(payload);
        bytes[LENGTH_AT..HEADER_LEN].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes
    }

    #[test]
    fn a_length_claiming_gigabytes_is_refused_without_allocating_it() {
        // Varint tag 253: a u64 length follows.
        let mut payload = vec![253u8];
        payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
        for padding in [0usize, 1024, 9 << 20] {
            let mut payload = payload.clone();
            payload.resize(payload.len() + padding, b'x');
            assert!(matches!(
                decode::<Vec<u8>>(&envelope_of::<Vec<u8>>(&payload)),
                Err(DecodeError::Payload(_))
            ));
            assert!(matches!(
                decode::<String>(&envelope_of::<String>(&payload)),
                Err(DecodeError::Payload(_))
            ));
            assert!(matches!(
                decode::<Vec<u64>>(&envelope_of::<Vec<u64>>(&payload)),
                Err(DecodeError::Payload(_))
            ));
        }
    }

    #[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
    struct Comment {
        text: String,
        replies: Vec<Comment>,
    }

    #[test]
    fn a_deep_nesting_is_an_error_not_a_stack_overflow() {
        // 20,000 levels of one reply each: 40 KB, and a 2 MiB stack like a tokio worker's.
        let mut payload = [0u8, 1].repeat(20_000);
        payload.extend_from_slice(&[0, 0]);
        let bytes = envelope_of::<Comment>(&payload);
        let outcome = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || decode::<Comment>(&bytes))
            .unwrap()
            .join()
            .unwrap();
        match outcome {
            Err(DecodeError::Payload(message)) => assert!(message.contains("nested deeper"), "{message}"),
            other => panic!("expected a nesting error, got {other:?}"),
        }
        // Within the limit it decodes.
        let mut shallow = Comment::default();
        for _ in 0..40 {
            shallow = Comment {
                text: "r".into(),
                replies: vec![shallow],
            };
        }
        let bytes = encode(&shallow, None).unwrap();
        assert_eq!(decode::<Comment>(&bytes).unwrap(), shallow);
    }
}
