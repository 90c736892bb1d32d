//! bincode's variable-length integers (its standard configuration), written without going
//! through serde: key material and envelopes hold exactly the bytes bincode would write, so
//! values encoded either way meet. A value's bytes do not depend on its integer width: below 251
//! one byte, then a marker (251, 252, 253, 254) and the value in 2, 4, 8 or 16 little-endian
//! bytes. Signed integers are zigzagged first; `u8`, `i8` and `bool` are one raw byte.

/// The most bytes one value takes: a marker and 16 bytes.
pub(crate) const VARINT_ROOM: usize = 17;

/// The encoding of one integer.
pub(crate) struct Varint {
    bytes: [u8; VARINT_ROOM],
    len: u8,
}

impl Varint {
    /// The varint of an unsigned value of any width.
    #[inline]
    pub(crate) fn unsigned(value: u128) -> Varint {
        let mut bytes = [0u8; VARINT_ROOM];
        let len = if value < 251 {
            bytes[0] = value as u8;
            1
        } else if let Ok(value) = u16::try_from(value) {
            bytes[0] = 251;
            bytes[1..3].copy_from_slice(&value.to_le_bytes());
            3
        } else if let Ok(value) = u32::try_from(value) {
            bytes[0] = 252;
            bytes[1..5].copy_from_slice(&value.to_le_bytes());
            5
        } else if let Ok(value) = u64::try_from(value) {
            bytes[0] = 253;
            bytes[1..9].copy_from_slice(&value.to_le_bytes());
            9
        } else {
            bytes[0] = 254;
            bytes[1..17].copy_from_slice(&value.to_le_bytes());
            17
        };
        Varint { bytes, len }
    }

    /// The varint of a signed value of any width (zigzag: 0, -1, 1, -2, ... become 0, 1, 2, 3).
    #[inline]
    pub(crate) fn signed(value: i128) -> Varint {
        Varint::unsigned(((value << 1) ^ (value >> 127)) as u128)
    }

    /// One raw byte, as bincode writes `u8`, `i8` and `bool`.
    #[inline]
    pub(crate) fn raw(byte: u8) -> Varint {
        let mut bytes = [0u8; VARINT_ROOM];
        bytes[0] = byte;
        Varint { bytes, len: 1 }
    }

    /// The encoded bytes.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The encoded bytes followed by zeros, always [`VARINT_ROOM`] long (for a fixed-size copy).
    #[inline]
    pub(crate) fn room(&self) -> &[u8; VARINT_ROOM] {
        &self.bytes
    }

    /// The value at the start of `bytes` and the bytes after it, for values up to `u64`.
    pub(crate) fn read_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
        let (&marker, rest) = bytes.split_first()?;
        let (width, rest) = match marker {
            0..=250 => return Some((u64::from(marker), rest)),
            251 => (2, rest),
            252 => (4, rest),
            253 => (8, rest),
            _ => return None,
        };
        let (value, rest) = (rest.get(..width)?, &rest[width..]);
        let mut word = [0u8; 8];
        word[..width].copy_from_slice(value);
        Some((u64::from_le_bytes(word), rest))
    }
}

#[cfg(test)]
mod tests {
    use super::Varint;

    fn bincode<T: serde::Serialize>(value: T) -> Vec<u8> {
        bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap()
    }

    #[test]
    fn unsigned_values_encode_as_bincode_does_at_every_width() {
        let edges = [
            0u128,
            1,
            250,
            251,
            252,
            0xFFFF,
            0x1_0000,
            0xFFFF_FFFF,
            0x1_0000_0000,
            u64::MAX as u128,
        ];
        for value in edges.into_iter().chain([u64::MAX as u128 + 1, u128::MAX]) {
            let ours = Varint::unsigned(value);
            assert_eq!(ours.as_bytes(), bincode(value), "u128 {value}");
            if let Ok(v) = u64::try_from(value) {
                assert_eq!(ours.as_bytes(), bincode(v), "u64 {v}");
                assert_eq!(ours.as_bytes(), bincode(v as usize), "usize {v}");
                assert_eq!(Varint::read_u64(&bincode(v)), Some((v, &[][..])));
            }
            if let Ok(v) = u32::try_from(value) {
                assert_eq!(ours.as_bytes(), bincode(v), "u32 {v}");
            }
            if let Ok(v) = u16::try_from(value) {
                assert_eq!(ours.as_bytes(), bincode(v), "u16 {v}");
            }
        }
    }

    #[test]
    fn signed_values_encode_as_bincode_does_at_every_width() {
        let edges = [
            0i128,
            1,
            -1,
            125,
            -125,
            126,
            -126,
            127,
            -128,
            32_767,
            -32_768,
            1 << 40,
            -(1 << 40),
        ];
        let extremes = [i64::MAX as i128, i64::MIN as i128, i128::MAX, i128::MIN];
        for value in edges.into_iter().chain(extremes) {
            let ours = Varint::signed(value);
            assert_eq!(ours.as_bytes(), bincode(value), "i128 {value}");
            if let Ok(v) = i64::try_from(value) {
                assert_eq!(ours.as_bytes(), bincode(v), "i64 {v}");
                assert_eq!(ours.as_bytes(), bincode(v as isize), "isize {v}");
            }
            if let Ok(v) = i32::try_from(value) {
                assert_eq!(ours.as_bytes(), bincode(v), "i32 {v}");
            }
            if let Ok(v) = i16::try_from(value) {
                assert_eq!(ours.as_bytes(), bincode(v), "i16 {v}");
            }
        }
    }

    #[test]
    fn reading_refuses_what_it_cannot_hold() {
        assert_eq!(Varint::read_u64(&[]), None);
        assert_eq!(Varint::read_u64(&[251, 1]), None, "short");
        assert_eq!(Varint::read_u64(&[254; 17]), None, "wider than u64");
        assert_eq!(Varint::read_u64(&[7, 9]), Some((7, &[9][..])));
    }
}
