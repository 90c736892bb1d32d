//! Cache keys: blake3 over the binding (format version, cache name, function path, `version`)
//! and each kept argument, streamed into the hasher without an intermediate buffer.

use std::any::Any;
use std::fmt;

/// Version of the key format; part of every key, so a change of format never reads old entries.
pub const KEY_FORMAT_VERSION: u32 = 1;

/// The 32-byte digest that identifies one entry of one cache.
///
/// ```
/// let key = cachex_core::Key::direct("fib", &42u64).unwrap();
/// assert_eq!(key.to_hex().len(), 64);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// The key of a direct `get`/`set` through a cache handle: `key` encoded with serde;
    /// `None` when it does not serialize.
    pub fn direct<K: serde::Serialize + ?Sized>(cache: &str, key: &K) -> Option<Key> {
        let mut builder = KeyBuilder::new(&binding_seed(cache, "<direct>", 0));
        builder.serde(key);
        builder.finish()
    }

    /// Lowercase hex, 64 characters: what backends append to the cache's prefix.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        self.push_hex(&mut out);
        out
    }

    /// Appends the lowercase hex of the key to `out`.
    pub fn push_hex(&self, out: &mut String) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for byte in self.0 {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.to_hex())
    }
}

/// The seed of every key of one binding: blake3 over format version, cache name, function
/// path and version attribute. Arguments are then hashed with blake3 keyed by this seed.
pub fn binding_seed(cache: &str, function: &str, version: u32) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&KEY_FORMAT_VERSION.to_le_bytes());
    for part in [cache, function] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.update(&version.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// Accumulates the key material of one call.
///
/// Each argument is framed (an encoding tag before it, its length after it for text encodings),
/// so two different argument lists never produce the same byte stream.
pub struct KeyBuilder {
    hasher: blake3::Hasher,
    usable: bool,
}

impl KeyBuilder {
    /// Starts a key for the binding whose seed is given.
    pub fn new(seed: &[u8; 32]) -> Self {
        KeyBuilder {
            hasher: blake3::Hasher::new_keyed(seed),
            usable: true,
        }
    }

    /// Adds a value through `serde::Serialize` (bincode's encoding, streamed into the hasher).
    pub fn serde<T: serde::Serialize + ?Sized>(&mut self, value: &T) {
        self.hasher.update(b"s");
        let writer = HashWriter(&mut self.hasher);
        if bincode::serde::encode_into_writer(value, writer, bincode::config::standard()).is_err() {
            // A Serialize impl that fails (e.g. a map with non-string keys in some formats):
            // no key can be formed, so the call runs uncached rather than risk a collision.
            self.usable = false;
        }
    }

    /// Adds a value through its `Display` text.
    pub fn display<T: fmt::Display + ?Sized>(&mut self, value: &T) {
        self.text(b'd', format_args!("{value}"));
    }

    /// Adds a value through its `Debug` text.
    pub fn debug<T: fmt::Debug + ?Sized>(&mut self, value: &T) {
        self.text(b'g', format_args!("{value:?}"));
    }

    /// Adds raw bytes (what custom encoders may call), framed by their length.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.hasher.update(b"b");
        self.hasher.update(&(bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
    }

    /// Marks an argument that is left out of the key (`skip`), so the position still counts.
    pub fn skip(&mut self) {
        self.hasher.update(b"k");
    }

    /// Marks the key unusable: the call runs uncached (an encoding the type does not support).
    pub fn invalidate(&mut self) {
        self.usable = false;
    }

    fn text(&mut self, tag: u8, args: fmt::Arguments<'_>) {
        self.hasher.update(&[tag]);
        let mut writer = TextWriter {
            hasher: &mut self.hasher,
            len: 0,
        };
        if fmt::write(&mut writer, args).is_err() {
            self.usable = false;
            return;
        }
        let len = writer.len;
        self.hasher.update(&len.to_le_bytes());
    }

    /// The key, or `None` when an argument could not be encoded.
    pub fn finish(&self) -> Option<Key> {
        self.usable.then(|| Key(*self.hasher.finalize().as_bytes()))
    }
}

struct HashWriter<'a>(&'a mut blake3::Hasher);

impl bincode::enc::write::Writer for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.update(bytes);
        Ok(())
    }
}

struct TextWriter<'a> {
    hasher: &'a mut blake3::Hasher,
    len: u64,
}

impl fmt::Write for TextWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.hasher.update(s.as_bytes());
        self.len += s.len() as u64;
        Ok(())
    }
}

/// How one argument becomes key material, as resolved from the configuration at init.
#[derive(Clone, Copy)]
pub enum ArgEncoding {
    /// `serde::Serialize` (the default).
    Serde,
    /// `Display` text.
    Display,
    /// `Debug` text.
    Debug,
    /// Left out of the key.
    Skip,
    /// A function marked `#[cachex::encoder]`.
    Custom(CustomEncodeFn),
}

/// The type-erased entry point of a `#[cachex::encoder]` function.
pub type CustomEncodeFn = fn(&dyn Any, &mut KeyBuilder) -> bool;

impl fmt::Debug for ArgEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArgEncoding::Serde => "serde",
            ArgEncoding::Display => "display",
            ArgEncoding::Debug => "debug",
            ArgEncoding::Skip => "skip",
            ArgEncoding::Custom(_) => "custom",
        })
    }
}

/// Which encodings an argument type supports, found at compile time by [`probe`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgCaps {
    /// The type implements `serde::Serialize`.
    pub serde: bool,
    /// The type implements `Display`.
    pub display: bool,
    /// The type implements `Debug`.
    pub debug: bool,
    /// The type is `'static + Sized`, so a `#[cachex::encoder]` for it can be used.
    pub type_id: Option<std::any::TypeId>,
}

/// Compile-time detection of the traits an argument type implements ("autoref
/// specialisation"). Generated code calls `(&Probe::<T>::NEW).serde()` and friends with a
/// concrete `T`; method resolution picks the `…Yes` impl when the bound holds.
pub mod probe {
    use super::KeyBuilder;
    use std::any::{Any, TypeId};
    use std::marker::PhantomData;

    /// The probe for one type.
    pub struct Probe<T: ?Sized>(PhantomData<T>);

    impl<T: ?Sized> Probe<T> {
        /// The only value of the probe.
        pub const NEW: Probe<T> = Probe(PhantomData);
    }

    /// An encoder function for `T`.
    pub type EncodeFn<T> = fn(&T, &mut KeyBuilder);

    macro_rules! capability {
        ($yes:ident, $no:ident, $method:ident, [$($bound:tt)*], $body:expr) => {
            #[doc = concat!("`", stringify!($method), "` is supported.")]
            pub trait $yes<T: ?Sized> {
                #[doc = concat!("The `", stringify!($method), "` encoder of `T`.")]
                fn $method(&self) -> Option<EncodeFn<T>>;
            }
            impl<T: ?Sized + $($bound)*> $yes<T> for Probe<T> {
                #[inline]
                fn $method(&self) -> Option<EncodeFn<T>> {
                    Some($body)
                }
            }
            #[doc = concat!("`", stringify!($method), "` is not supported.")]
            pub trait $no<T: ?Sized> {
                #[doc = concat!("No `", stringify!($method), "` encoder.")]
                fn $method(&self) -> Option<EncodeFn<T>>;
            }
            impl<T: ?Sized> $no<T> for &Probe<T> {
                #[inline]
                fn $method(&self) -> Option<EncodeFn<T>> {
                    None
                }
            }
        };
    }

    capability!(SerdeYes, SerdeNo, serde, [serde::Serialize], |v, k| k.serde(v));
    capability!(DisplayYes, DisplayNo, display, [std::fmt::Display], |v, k| k.display(v));
    capability!(DebugYes, DebugNo, debug, [std::fmt::Debug], |v, k| k.debug(v));

    /// The type can be seen as `&dyn Any` (for `#[cachex::encoder]` functions).
    pub trait AnyYes<T: ?Sized> {
        /// The conversion to `&dyn Any`.
        fn any(&self) -> Option<fn(&T) -> &dyn Any>;
        /// The `TypeId` of `T`.
        fn type_id(&self) -> Option<TypeId>;
    }
    impl<T: Any> AnyYes<T> for Probe<T> {
        #[inline]
        fn any(&self) -> Option<fn(&T) -> &dyn Any> {
            Some(|v| v)
        }
        fn type_id(&self) -> Option<TypeId> {
            Some(TypeId::of::<T>())
        }
    }
    /// The type cannot be seen as `&dyn Any`.
    pub trait AnyNo<T: ?Sized> {
        /// No conversion.
        fn any(&self) -> Option<fn(&T) -> &dyn Any>;
        /// No `TypeId`.
        fn type_id(&self) -> Option<TypeId>;
    }
    impl<T: ?Sized> AnyNo<T> for &Probe<T> {
        #[inline]
        fn any(&self) -> Option<fn(&T) -> &dyn Any> {
            None
        }
        fn type_id(&self) -> Option<TypeId> {
            None
        }
    }

    /// The return type can carry a `cachex::Error` (`Result<T, E>` with `E: From<cachex::Error>`).
    pub trait FailYes<R> {
        /// The conversion from a cachex error into the return type.
        fn fail(&self) -> Option<fn(crate::Error) -> R>;
    }
    impl<T, E: From<crate::Error>> FailYes<Result<T, E>> for Probe<Result<T, E>> {
        #[inline]
        fn fail(&self) -> Option<fn(crate::Error) -> Result<T, E>> {
            Some(|e| Err(E::from(e)))
        }
    }
    /// The return type cannot carry a `cachex::Error`.
    pub trait FailNo<R> {
        /// No conversion.
        fn fail(&self) -> Option<fn(crate::Error) -> R>;
    }
    impl<R> FailNo<R> for &Probe<R> {
        #[inline]
        fn fail(&self) -> Option<fn(crate::Error) -> R> {
            None
        }
    }
}

/// Encodes one argument of a generated call: used by the code `#[cached]` emits.
///
/// `$ty` is the argument's type without its outer reference; `$value` a `&$ty`.
#[doc(hidden)]
#[macro_export]
macro_rules! __encode_arg {
    ($builder:expr, $encoding:expr, $value:expr, $ty:ty) => {{
        #[allow(unused_imports)]
        use $crate::key::probe::{AnyNo, AnyYes, DebugNo, DebugYes, DisplayNo, DisplayYes, SerdeNo, SerdeYes};
        let probe = $crate::key::probe::Probe::<$ty>::NEW;
        let builder: &mut $crate::KeyBuilder = $builder;
        let value: &$ty = $value;
        let encode = match $encoding {
            $crate::ArgEncoding::Serde => (&probe).serde(),
            $crate::ArgEncoding::Display => (&probe).display(),
            $crate::ArgEncoding::Debug => (&probe).debug(),
            $crate::ArgEncoding::Skip => Some((|_, b| b.skip()) as $crate::key::probe::EncodeFn<$ty>),
            $crate::ArgEncoding::Custom(custom) => match (&probe).any() {
                Some(as_any) => {
                    if !custom(as_any(value), builder) {
                        builder.invalidate();
                    }
                    None
                }
                None => {
                    builder.invalidate();
                    None
                }
            },
        };
        match encode {
            Some(encode) => encode(value, builder),
            None if matches!($encoding, $crate::ArgEncoding::Custom(_)) => {}
            None => builder.invalidate(),
        }
    }};
}

/// The [`ArgCaps`] of a concrete type: used by the code `#[cached]` emits.
#[doc(hidden)]
#[macro_export]
macro_rules! __arg_caps {
    ($ty:ty) => {{
        #[allow(unused_imports)]
        use $crate::key::probe::{AnyNo, AnyYes, DebugNo, DebugYes, DisplayNo, DisplayYes, SerdeNo, SerdeYes};
        let probe = $crate::key::probe::Probe::<$ty>::NEW;
        $crate::ArgCaps {
            serde: (&probe).serde().is_some(),
            display: (&probe).display().is_some(),
            debug: (&probe).debug().is_some(),
            type_id: (&probe).type_id(),
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_separates_arguments() {
        let seed = binding_seed("c", "f", 0);
        let mut a = KeyBuilder::new(&seed);
        a.display("ab");
        a.display("c");
        let mut b = KeyBuilder::new(&seed);
        b.display("a");
        b.display("bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn encodings_give_different_keys() {
        let seed = binding_seed("c", "f", 0);
        let mut a = KeyBuilder::new(&seed);
        a.display(&7u32);
        let mut b = KeyBuilder::new(&seed);
        b.debug(&7u32);
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn seed_depends_on_every_part() {
        let base = binding_seed("c", "f", 0);
        assert_ne!(base, binding_seed("d", "f", 0));
        assert_ne!(base, binding_seed("c", "g", 0));
        assert_ne!(base, binding_seed("c", "f", 1));
        assert_ne!(binding_seed("ab", "c", 0), binding_seed("a", "bc", 0));
    }
}
