//! Decoding that no stored bytes can turn into a stack overflow or a huge allocation.
//!
//! bincode reads what a type's `Deserialize` asks for; two things in that exchange are driven
//! by the bytes alone. Nesting: a recursive type (`struct Comment { replies: Vec<Comment> }`)
//! recurses once per level the bytes describe, so a few kilobytes can overflow a 2 MiB stack.
//! Lengths: a sequence's claimed length reaches serde's visitors as a size hint, which they
//! use to pre-allocate, and strings are allocated at their claimed length before their bytes
//! are read. [`decode`] wraps bincode's deserializer so that every nested value counts against
//! [`MAX_DEPTH`]; a sequence or map claiming more elements than the payload has bytes is
//! refused (every element but a zero-sized one takes at least a byte); the size hints they
//! pass on share a budget of the payload's length, so all of them together never announce
//! more elements than the bytes stored; and strings and byte buffers are read as borrowed
//! slices (their length checked against the bytes present) and copied once.

use std::cell::Cell;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

/// How deeply stored values may nest (each struct, sequence, map, option, enum or newtype is a
/// level). serde_json's default limit is the same.
pub const MAX_DEPTH: u32 = 128;

/// Decodes `payload` as bincode (standard configuration) under the bounds above; the value and
/// the bytes it used.
pub(crate) fn decode<T: de::DeserializeOwned>(payload: &[u8]) -> Result<(T, usize), bincode::error::DecodeError> {
    let limits = Limits {
        depth: Cell::new(0),
        stored: payload.len(),
        budget: Cell::new(payload.len()),
    };
    bincode::serde::seed_decode_from_slice(
        Root::<T> {
            limits: &limits,
            value: PhantomData,
        },
        payload,
        bincode::config::standard(),
    )
}

struct Limits {
    depth: Cell<u32>,
    /// The payload's length.
    stored: usize,
    /// Elements that size hints may still announce.
    budget: Cell<usize>,
}

impl Limits {
    fn enter<E: de::Error>(&self) -> Result<Level<'_>, E> {
        let depth = self.depth.get() + 1;
        if depth > MAX_DEPTH {
            return Err(E::custom(format_args!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth.set(depth);
        Ok(Level(self))
    }

    /// The size hint passed on for a length the bytes claim: refused past the payload's
    /// length, capped by what is left of the budget.
    fn claim<E: de::Error>(&self, claimed: Option<usize>) -> Result<Option<usize>, E> {
        let Some(claimed) = claimed else {
            return Ok(None);
        };
        if claimed > self.stored {
            return Err(E::custom(format_args!(
                "a length of {claimed} where {} bytes are stored",
                self.stored
            )));
        }
        let granted = claimed.min(self.budget.get());
        self.budget.set(self.budget.get() - granted);
        Ok(Some(granted))
    }
}

/// One level of nesting, left when dropped.
struct Level<'a>(&'a Limits);

impl Drop for Level<'_> {
    fn drop(&mut self) {
        self.0.depth.set(self.0.depth.get() - 1);
    }
}

struct Root<'a, T> {
    limits: &'a Limits,
    value: PhantomData<T>,
}

impl<'de, T: de::Deserialize<'de>> DeserializeSeed<'de> for Root<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(Bounded {
            inner: deserializer,
            limits: self.limits,
        })
    }
}

/// bincode's deserializer, bounded.
struct Bounded<'a, D> {
    inner: D,
    limits: &'a Limits,
}

impl<'a, D> Bounded<'a, D> {
    /// `claims`: the visitor's sequence or map length comes from the bytes (a `Vec`, a map),
    /// not from the type (a struct's fields, a tuple's arity).
    fn wrap<V>(&self, visitor: V, claims: bool) -> Wrap<'a, V> {
        Wrap {
            inner: visitor,
            limits: self.limits,
            claims,
        }
    }
}

macro_rules! forward {
    ($claims:literal: $($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let _level = self.limits.enter()?;
            let visitor = self.wrap(visitor, $claims);
            self.inner.$method($($arg,)* visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Bounded<'_, D> {
    type Error = D::Error;

    forward! { true: deserialize_seq(), deserialize_map() }

    forward! {
        false: deserialize_any(), deserialize_bool(), deserialize_i8(), deserialize_i16(), deserialize_i32(),
        deserialize_i64(), deserialize_i128(), deserialize_u8(), deserialize_u16(), deserialize_u32(),
        deserialize_u64(), deserialize_u128(), deserialize_f32(), deserialize_f64(), deserialize_char(),
        deserialize_str(), deserialize_bytes(), deserialize_option(), deserialize_unit(),
        deserialize_unit_struct(name: &'static str), deserialize_newtype_struct(name: &'static str),
        deserialize_tuple(len: usize), deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(), deserialize_ignored_any(),
    }

    /// Read borrowed: the length is checked against the bytes present before anything is
    /// allocated, and the visitor copies exactly the bytes that are there.
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.deserialize_bytes(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor whose nested deserializers and accessors are bounded too.
struct Wrap<'a, V> {
    inner: V,
    limits: &'a Limits,
    claims: bool,
}

impl<V> Wrap<'_, V> {
    fn hint<E: de::Error>(&self, hint: Option<usize>) -> Result<Option<usize>, E> {
        if self.claims {
            self.limits.claim(hint)
        } else {
            Ok(hint)
        }
    }
}

macro_rules! visit {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.inner.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.expecting(formatter)
    }

    visit! {
        visit_bool(bool), visit_i8(i8), visit_i16(i16), visit_i32(i32), visit_i64(i64), visit_i128(i128),
        visit_u8(u8), visit_u16(u16), visit_u32(u32), visit_u64(u64), visit_u128(u128), visit_f32(f32),
        visit_f64(f64), visit_char(char), visit_str(&str), visit_borrowed_str(&'de str), visit_string(String),
        visit_bytes(&[u8]), visit_borrowed_bytes(&'de [u8]), visit_byte_buf(Vec<u8>),
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Bounded {
            inner: deserializer,
            limits: self.limits,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Bounded {
            inner: deserializer,
            limits: self.limits,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let hint = self.hint(seq.size_hint())?;
        self.inner.visit_seq(Access {
            inner: seq,
            limits: self.limits,
            hint,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let hint = self.hint(map.size_hint())?;
        self.inner.visit_map(Access {
            inner: map,
            limits: self.limits,
            hint,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Access {
            inner: data,
            limits: self.limits,
            hint: None,
        })
    }
}

/// A seed whose deserializer is bounded.
struct Seed<'a, S> {
    inner: S,
    limits: &'a Limits,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Bounded {
            inner: deserializer,
            limits: self.limits,
        })
    }
}

/// A sequence, map, enum or variant accessor whose elements are bounded, with its size hint
/// capped by the budget.
struct Access<'a, A> {
    inner: A,
    limits: &'a Limits,
    hint: Option<usize>,
}

impl<'a, A> Access<'a, A> {
    fn seed<S>(&self, seed: S) -> Seed<'a, S> {
        Seed {
            inner: seed,
            limits: self.limits,
        }
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Access<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.hint
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Access<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.hint
    }
}

impl<'a, 'de, A: EnumAccess<'de>> EnumAccess<'de> for Access<'a, A> {
    type Error = A::Error;
    type Variant = Access<'a, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self::Variant), A::Error> {
        let limits = self.limits;
        let (value, variant) = self.inner.variant_seed(Seed { inner: seed, limits })?;
        Ok((
            value,
            Access {
                inner: variant,
                limits,
                hint: None,
            },
        ))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Access<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.seed(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let _level = self.limits.enter()?;
        self.inner.tuple_variant(
            len,
            Wrap {
                inner: visitor,
                limits: self.limits,
                claims: false,
            },
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let _level = self.limits.enter()?;
        self.inner.struct_variant(
            fields,
            Wrap {
                inner: visitor,
                limits: self.limits,
                claims: false,
            },
        )
    }
}
