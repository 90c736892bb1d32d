//! The value envelope that byte-storing backends keep: magic, format version, a fingerprint of
//! the return type, expiry, then the bincode payload. Decoding is bounded by the stored size.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::passthrough::PassThrough;
use crate::varint::Varint;

/// The first bytes of every envelope.
pub const MAGIC: [u8; 4] = *b"CHX\x01";
/// The envelope format version.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes before the payload: magic, version, fingerprint (8), expiry (8), payload length (8).
pub const HEADER_LEN: usize = 4 + 1 + 8 + 8 + 8;

/// A 64-bit fingerprint of a Rust type: its name and size, hashed. Entries written by a binary
/// whose return type differs (renamed, resized) are misses instead of wrongly decoded values.
/// Computed once per type and thread (blake3 of the name costs about 80 ns; every decode asks).
///
/// ```
/// use cachex_core::envelope::fingerprint;
/// assert_eq!(fingerprint::<u64>(), fingerprint::<u64>());
/// assert_ne!(fingerprint::<u64>(), fingerprint::<i64>());
/// ```
pub fn fingerprint<T: ?Sized + 'static>() -> u64 {
    thread_local! {
        static KNOWN: RefCell<HashMap<TypeId, u64, PassThrough>> = RefCell::default();
    }
    let id = TypeId::of::<T>();
    KNOWN
        .try_with(|known| {
            if let Some(&fingerprint) = known.borrow().get(&id) {
                return fingerprint;
            }
            let fingerprint = type_fingerprint::<T>();
            known.borrow_mut().insert(id, fingerprint);
            fingerprint
        })
        .unwrap_or_else(|_| type_fingerprint::<T>())
}

fn type_fingerprint<T: ?Sized + 'static>() -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(std::any::type_name::<T>().as_bytes());
    hasher.update(&(std::mem::size_of_val::<Option<&T>>(&None)).to_le_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

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
    #[error("value written for another type (fingerprint {found:016x}, expected {expected:016x})")]
    TypeChanged {
        /// The fingerprint in the envelope.
        found: u64,
        /// The fingerprint of the type asked for.
        expected: u64,
    },
    /// The entry's expiry has passed.
    #[error("expired")]
    Expired,
    /// The payload did not decode as the type (or left bytes over).
    #[error("payload does not decode: {0}")]
    Payload(String),
}

/// Milliseconds since the Unix epoch at which a value written now with `ttl` expires; 0 = never.
pub fn expiry_millis(ttl: Option<Duration>) -> u64 {
    match ttl {
        Some(ttl) if !ttl.is_zero() => now_millis().saturating_add(ttl.as_millis().min(u128::from(u64::MAX)) as u64),
        _ => 0,
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64)
        .unwrap_or(0)
}

/// Encodes `value` in an envelope that expires after `ttl` (`None` = never).
///
/// ```
/// use cachex_core::envelope::{decode, encode};
/// let bytes = encode(&vec![1u32, 2, 3], None).unwrap();
/// assert_eq!(decode::<Vec<u32>>(&bytes).unwrap(), vec![1, 2, 3]);
/// assert!(decode::<String>(&bytes).is_err());
/// ```
pub fn encode<T: Serialize + 'static>(
    value: &T,
    ttl: Option<Duration>,
) -> Result<Vec<u8>, bincode::error::EncodeError> {
    let mut out = Vec::with_capacity(HEADER_LEN + 64);
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&fingerprint::<T>().to_le_bytes());
    out.extend_from_slice(&expiry_millis(ttl).to_le_bytes());
    out.extend_from_slice(&[0u8; 8]);
    match (value as &dyn Any).downcast_ref::<Vec<u8>>() {
        Some(bytes) => write_byte_vec(&mut out, bytes),
        None => {
            bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard())?;
        }
    }
    let payload_len = (out.len() - HEADER_LEN) as u64;
    out[HEADER_LEN - 8..HEADER_LEN].copy_from_slice(&payload_len.to_le_bytes());
    Ok(out)
}

/// The expiry written in an envelope's header (ms since the epoch, 0 = never), if it has one.
pub fn header_expiry(bytes: &[u8]) -> Option<u64> {
    (bytes.len() >= HEADER_LEN && bytes[..4] == MAGIC).then(|| read_u64(&bytes[13..21]))
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(buf)
}

/// Decodes an envelope written by [`encode`] for the same type `T`.
///
/// Never panics and never allocates more than a small multiple of `bytes.len()`, whatever the
/// length fields inside claim.
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
fn check_header<T: 'static>(bytes: &[u8]) -> Result<(), DecodeError> {
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
    if bytes[4] != FORMAT_VERSION {
        return Err(DecodeError::Version(bytes[4]));
    }
    let found = read_u64(&bytes[5..13]);
    let expected = fingerprint::<T>();
    if found != expected {
        return Err(DecodeError::TypeChanged { found, expected });
    }
    let expires = read_u64(&bytes[13..21]);
    if expires != 0 && expires <= now_millis() {
        return Err(DecodeError::Expired);
    }
    if read_u64(&bytes[21..29]) != (bytes.len() - HEADER_LEN) as u64 {
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

/// Decodes a bincode payload with a limit on what length fields may claim, chosen from a few
/// size classes at least 32 times the payload (a decoded value can be larger than its bytes).
fn decode_payload<T: DeserializeOwned + 'static>(payload: &[u8]) -> Result<T, DecodeError> {
    let mut fast: Option<T> = None;
    if let Some(slot) = (&mut fast as &mut dyn Any).downcast_mut::<Option<Vec<u8>>>() {
        let body = byte_vec_body(payload).ok_or_else(malformed_bytes)?;
        *slot = Some(payload[payload.len() - body..].to_vec());
        return fast.ok_or_else(malformed_bytes);
    }
    fn with_limit<T: DeserializeOwned, const N: usize>(
        payload: &[u8],
    ) -> Result<(T, usize), bincode::error::DecodeError> {
        bincode::serde::decode_from_slice(payload, bincode::config::standard().with_limit::<N>())
    }
    let need = payload.len().saturating_mul(32);
    let decoded = if need <= 1 << 16 {
        with_limit::<T, { 1 << 16 }>(payload)
    } else if need <= 1 << 20 {
        with_limit::<T, { 1 << 20 }>(payload)
    } else if need <= 1 << 24 {
        with_limit::<T, { 1 << 24 }>(payload)
    } else if need <= 1 << 28 {
        with_limit::<T, { 1 << 28 }>(payload)
    } else {
        with_limit::<T, { 1 << 34 }>(payload)
    };
    match decoded {
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
        assert_eq!(fingerprint::<u64>(), 0xe402_2b6c_3951_467f);
        assert_eq!(fingerprint::<Vec<u8>>(), 0x0b3b_cac9_4380_646a);
        let from_another_thread = std::thread::spawn(fingerprint::<u64>).join().unwrap();
        assert_eq!(from_another_thread, fingerprint::<u64>());
    }

    #[test]
    fn round_trip_and_expiry() {
        let bytes = encode(&"hello".to_string(), Some(Duration::from_secs(60))).unwrap();
        assert_eq!(decode::<String>(&bytes).unwrap(), "hello");
        assert!(header_expiry(&bytes).unwrap() > now_millis());
        let mut expired = bytes.clone();
        expired[13..21].copy_from_slice(&1u64.to_le_bytes());
        assert_eq!(decode::<String>(&expired), Err(DecodeError::Expired));
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
            decode::<Vec<u8>>(b"random bytes that are not ours at all"),
            Err(DecodeError::Foreign)
        );
        let mut version = bytes.clone();
        version[4] = 99;
        assert_eq!(decode::<Vec<u8>>(&version), Err(DecodeError::Version(99)));
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

    #[test]
    fn a_length_claiming_gigabytes_is_refused_without_allocating_it() {
        // A Vec<u8> whose bincode length prefix claims 2^40 bytes (varint tag 253 = u64).
        let mut bytes = encode(&Vec::<u8>::new(), None).unwrap();
        bytes.truncate(HEADER_LEN);
        let mut payload = vec![253u8];
        payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
        bytes.extend_from_slice(&payload);
        bytes[21..29].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        assert!(matches!(decode::<Vec<u8>>(&bytes), Err(DecodeError::Payload(_))));
        assert!(matches!(decode::<String>(&bytes), Err(DecodeError::TypeChanged { .. })));
    }
}
