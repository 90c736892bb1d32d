//! Integer, `bool` and byte-sequence arguments written straight into the key, as the same
//! bytes serde and bincode would give, in one write instead of serde's element by element.

use super::KeyBuilder;
use crate::varint::Varint;

/// An integer or `bool` argument: [`KeyBuilder::integer`] writes the key material serde would.
/// `#[cached]` arguments of these types take that path.
///
/// ```
/// use cachex_core::key::{Integer, KeyBuilder, Seed};
/// let seed = Seed::new("users", "app::user", 0);
/// let mut builder = KeyBuilder::new(&seed);
/// (-42i32).write_key(&mut builder);
/// true.write_key(&mut builder);
/// assert!(builder.finish().is_some());
/// ```
pub trait Integer: Copy {
    /// Writes the value into the key.
    fn write_key(self, builder: &mut KeyBuilder<'_>);
}

macro_rules! integers {
    ($($ty:ty => |$value:ident| $varint:expr),* $(,)?) => {$(
        impl Integer for $ty {
            #[inline]
            fn write_key(self, builder: &mut KeyBuilder<'_>) {
                let $value = self;
                builder.serde_varint(&$varint);
            }
        }
    )*};
}

integers! {
    u16 => |v| Varint::unsigned(u128::from(v)),
    u32 => |v| Varint::unsigned(u128::from(v)),
    u64 => |v| Varint::unsigned(u128::from(v)),
    u128 => |v| Varint::unsigned(v),
    usize => |v| Varint::unsigned(v as u128),
    i16 => |v| Varint::signed(i128::from(v)),
    i32 => |v| Varint::signed(i128::from(v)),
    i64 => |v| Varint::signed(i128::from(v)),
    i128 => |v| Varint::signed(v),
    isize => |v| Varint::signed(v as i128),
    u8 => |v| Varint::raw(v),
    i8 => |v| Varint::raw(v as u8),
    bool => |v| Varint::raw(u8::from(v)),
}

/// A sequence of bytes that serde encodes element by element; [`KeyBuilder::byte_sequence`]
/// writes the same key material at once. `#[cached]` arguments of these types take that path.
///
/// ```
/// use cachex_core::key::ByteSequence;
/// assert_eq!(vec![1u8, 2].bytes(), &[1, 2]);
/// ```
pub trait ByteSequence {
    /// The bytes.
    fn bytes(&self) -> &[u8];
}

impl ByteSequence for [u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl ByteSequence for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl ByteSequence for Box<[u8]> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// An unordered collection, keyed independently of its iteration order (see
/// [`KeyBuilder::unordered`]): `HashMap` and `HashSet`.
///
/// ```
/// use std::collections::HashSet;
/// use cachex_core::key::{KeyBuilder, Seed, Unordered};
/// let seed = Seed::new("tags", "app::tagged", 0);
/// let a: HashSet<u32> = [1, 2, 3].into();
/// let b: HashSet<u32> = [3, 2, 1].into();
/// let (mut ka, mut kb) = (KeyBuilder::new(&seed), KeyBuilder::new(&seed));
/// a.write_key(&mut ka);
/// b.write_key(&mut kb);
/// assert_eq!(ka.finish(), kb.finish());
/// ```
pub trait Unordered {
    /// Writes the entries into the key, sorted by their encoding.
    fn write_key(&self, builder: &mut KeyBuilder<'_>);
}

impl<K: serde::Serialize, V: serde::Serialize, S> Unordered for std::collections::HashMap<K, V, S> {
    fn write_key(&self, builder: &mut KeyBuilder<'_>) {
        builder.unordered(self.iter());
    }
}

impl<T: serde::Serialize, S> Unordered for std::collections::HashSet<T, S> {
    fn write_key(&self, builder: &mut KeyBuilder<'_>) {
        builder.unordered(self.iter());
    }
}
