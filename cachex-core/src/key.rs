//! Cache keys. The key material of a call is its binding's seed followed by each kept
//! argument, framed. Inside the process, short material is the key itself: the memory backend
//! and single-flight compare it whole, with a 4-byte process-local id standing for the seed, so
//! a hit hashes a few bytes with a fast hasher instead of running blake3. Material that leaves
//! the process (every byte-storing backend), and material too long to keep on the stack,
//! becomes a blake3 digest keyed by the seed: the same digest for the same call in every
//! process, on every machine.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::varint::{Varint, VARINT_ROOM};

/// Version of the key format; part of every key, so a change of format never reads old entries.
pub const KEY_FORMAT_VERSION: u32 = 2;

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
        // Only the digest is wanted: no process-local id to intern (that takes a lock).
        let seed = Seed {
            digest: binding_seed(cache, DIRECT, 0),
            local: Seed::UNBOUND.local,
        };
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

/// The identity of one binding in its keys: the blake3 seed that keys its digests, and a
/// process-local number that stands for the seed in in-process keys (equal numbers exactly
/// when the seeds are equal).
///
/// ```
/// use cachex_core::key::Seed;
/// assert_eq!(Seed::new("fib", "app::fib", 0), Seed::new("fib", "app::fib", 0));
/// assert_ne!(Seed::new("fib", "app::fib", 0), Seed::new("fib", "app::fib", 1));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    digest: [u8; 32],
    local: u32,
}

/// The function identity of direct-access keys.
const DIRECT: &str = "<direct>";

/// Set in the local id of an in-process key that holds a digest instead of literal material.
const DIGESTED: u32 = 1 << 31;

impl Seed {
    /// The seed of the binding of `function` (its identity in keys) to cache `cache`.
    pub fn new(cache: &str, function: &str, version: u32) -> Seed {
        let digest = binding_seed(cache, function, version);
        Seed {
            digest,
            local: local_id(&digest),
        }
    }

    /// The seed of the keys of direct access through a cache handle.
    pub fn direct(cache: &str) -> Seed {
        Seed::new(cache, DIRECT, 0)
    }

    /// The seed of keys that never meet a binding's keys (a singleton's per-argument cells).
    pub const UNBOUND: Seed = Seed {
        digest: [0; 32],
        local: 0,
    };

    /// The blake3 seed.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seed({})", Key(self.digest).to_hex())
    }
}

/// The process-local id of a seed: 1, 2, 3... in order of first use (0 is [`Seed::UNBOUND`]).
fn local_id(digest: &[u8; 32]) -> u32 {
    static IDS: Mutex<Option<HashMap<[u8; 32], u32>>> = Mutex::new(None);
    let mut ids = IDS.lock().unwrap_or_else(PoisonError::into_inner);
    let ids = ids.get_or_insert_with(HashMap::new);
    let next = u32::try_from(ids.len() + 1).unwrap_or(DIGESTED - 1).min(DIGESTED - 1);
    *ids.entry(*digest).or_insert(next)
}

const LOCAL_LEN: usize = 4;
/// Argument material up to this many bytes is kept literally in the in-process key; beyond,
/// the in-process key holds the digest.
pub const LITERAL_MATERIAL: usize = 92;
const CAPACITY: usize = LOCAL_LEN + LITERAL_MATERIAL;

/// Accumulates the key material of one call.
///
/// Each argument is framed so that the material reads back into its argument list: an
/// encoding tag, then serde's bincode bytes (self-delimiting for the argument's type), a
/// length and raw bytes, or a text in length-prefixed chunks ended by an empty chunk. Two
/// different argument lists never produce the same byte stream. Up to
/// [`LITERAL_MATERIAL`] bytes stay in a buffer on the stack, so forming a short key never
/// allocates; longer material streams into a blake3 hasher (one allocation).
///
/// ```
/// use cachex_core::key::{KeyBuilder, Seed};
/// let seed = Seed::new("fib", "my_crate::fib", 0);
/// let mut builder = KeyBuilder::new(&seed);
/// builder.serde(&40u64);
/// let key = builder.finish_call().unwrap();
/// assert_eq!(key.local().len(), 4 + 2); // the local id, then `s` and the varint 40
/// ```
pub struct KeyBuilder<'s> {
    key: CallKey<'s>,
    /// Takes the material once it outgrows the buffer (boxed: most keys never need it, and
    /// the builder stays small enough to move for free).
    spill: Option<Box<Spill>>,
    usable: bool,
}

/// Material too long for the in-process key, on its way into blake3. Bytes are gathered
/// before they are hashed: serde hands a byte vector over one element at a time, and a blake3
/// update costs about 10 ns whatever its length (hashing a 1 KiB `Vec<u8>` argument byte by
/// byte took 9.6 µs).
struct Spill {
    hasher: blake3::Hasher,
    pending: [u8; SPILL_CHUNK],
    len: usize,
}

const SPILL_CHUNK: usize = 1024;

impl Spill {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // serde's byte vectors arrive one byte at a time: no copy call for those.
        if let ([byte], Some(slot)) = (bytes, self.pending.get_mut(self.len)) {
            *slot = *byte;
            self.len += 1;
            return;
        }
        if self.len + bytes.len() > SPILL_CHUNK {
            self.hasher.update(&self.pending[..self.len]);
            self.len = 0;
        }
        if bytes.len() >= SPILL_CHUNK {
            self.hasher.update(bytes);
        } else {
            self.pending[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    fn finish(mut self) -> Key {
        self.hasher.update(&self.pending[..self.len]);
        Key(*self.hasher.finalize().as_bytes())
    }
}

impl<'s> KeyBuilder<'s> {
    /// Starts a key for the binding whose seed is given.
    #[inline]
    pub fn new(seed: &'s Seed) -> Self {
        let mut material = [0u8; CAPACITY];
        material[..LOCAL_LEN].copy_from_slice(&seed.local.to_le_bytes());
        KeyBuilder {
            key: CallKey {
                seed,
                material,
                len: LOCAL_LEN as u8,
                digest: None,
            },
            spill: None,
            usable: true,
        }
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        if let Some(spill) = &mut self.spill {
            spill.write(bytes);
            return;
        }
        let start = usize::from(self.key.len);
        if let ([byte], Some(slot)) = (bytes, self.key.material.get_mut(start)) {
            *slot = *byte;
            self.key.len += 1;
            return;
        }
        let end = start + bytes.len();
        if end <= CAPACITY {
            self.key.material[start..end].copy_from_slice(bytes);
            self.key.len = end as u8;
        } else {
            self.spill().write(bytes);
        }
    }

    /// Moves the material written so far into a blake3 hasher, which takes everything after.
    #[cold]
    fn spill(&mut self) -> &mut Spill {
        let mut hasher = blake3::Hasher::new_keyed(&self.key.seed.digest);
        hasher.update(self.key.arguments());
        self.spill.insert(Box::new(Spill {
            hasher,
            pending: [0; SPILL_CHUNK],
            len: 0,
        }))
    }

    /// Adds a value through `serde::Serialize` (bincode's encoding, written straight into the
    /// key material).
    #[inline]
    pub fn serde<T: serde::Serialize + ?Sized>(&mut self, value: &T) {
        self.write(b"s");
        if bincode::serde::encode_into_writer(value, MaterialWriter(self), bincode::config::standard()).is_err() {
            // A Serialize impl that fails (e.g. a map with non-string keys in some formats):
            // no key can be formed, so the call runs uncached rather than risk a collision.
            self.usable = false;
        }
    }

    /// Adds a byte sequence (`Vec<u8>`, `[u8]`, `Box<[u8]>`) exactly as [`KeyBuilder::serde`]
    /// would, with its bytes in one write instead of one per element (serde hands a byte
    /// vector over element by element: 1.6 ns a byte).
    ///
    /// ```
    /// use cachex_core::key::{KeyBuilder, Seed};
    /// let seed = Seed::new("pages", "app::render", 0);
    /// let (mut a, mut b) = (KeyBuilder::new(&seed), KeyBuilder::new(&seed));
    /// a.byte_sequence(&[7; 300]);
    /// b.serde(&vec![7u8; 300]);
    /// assert_eq!(a.finish(), b.finish());
    /// ```
    pub fn byte_sequence(&mut self, bytes: &[u8]) {
        // bincode's encoding of a sequence: its length as a varint, then the elements.
        self.serde_varint(&Varint::unsigned(bytes.len() as u128));
        self.write(bytes);
    }

    /// Adds an integer or `bool` exactly as [`KeyBuilder::serde`] would, in one write (through
    /// serde and bincode, a `u64` argument took about 90 instructions a call).
    ///
    /// ```
    /// use cachex_core::key::{KeyBuilder, Seed};
    /// let seed = Seed::new("fib", "app::fib", 0);
    /// let (mut a, mut b) = (KeyBuilder::new(&seed), KeyBuilder::new(&seed));
    /// a.integer(300u64);
    /// b.serde(&300u64);
    /// assert_eq!(a.finish(), b.finish());
    /// ```
    #[inline]
    pub fn integer<I: Integer>(&mut self, value: I) {
        value.write_key(self);
    }

    /// Writes the serde tag and a value's varint, as bincode would write them. When the buffer
    /// has room, as one fixed-size copy (bytes past the new length are spare room, overwritten
    /// by what comes next): a copy of varying length is a `memcpy` call.
    #[inline]
    fn serde_varint(&mut self, value: &Varint) {
        let start = usize::from(self.key.len);
        match self.key.material.get_mut(start..start + 1 + VARINT_ROOM) {
            Some(room) if self.spill.is_none() => {
                room[0] = b's';
                room[1..].copy_from_slice(value.room());
                self.key.len += 1 + value.as_bytes().len() as u8;
            }
            _ => {
                self.write(b"s");
                self.write(value.as_bytes());
            }
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
        self.write(b"b");
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }

    /// Marks an argument that is left out of the key (`skip`), so the position still counts.
    pub fn skip(&mut self) {
        self.write(b"k");
    }

    /// Marks the key unusable: the call runs uncached (an encoding the type does not support).
    pub fn invalidate(&mut self) {
        self.usable = false;
    }

    /// A text whose length is known only once written: length-prefixed chunks of at most 255
    /// bytes, then an empty chunk. The chunks depend on the text alone (not on how `Display`
    /// splits its writes), and the material reads back unambiguously, whatever follows.
    fn text(&mut self, tag: u8, args: fmt::Arguments<'_>) {
        self.write(&[tag]);
        let mut writer = TextWriter {
            builder: self,
            chunk: [0; TEXT_CHUNK + 1],
            len: 0,
        };
        if fmt::write(&mut writer, args).is_err() {
            self.usable = false;
            return;
        }
        writer.flush();
        self.write(&[0]);
    }

    /// The digest of the key, or `None` when an argument could not be encoded.
    pub fn finish(self) -> Option<Key> {
        self.finish_call().map(|key| key.digest())
    }

    /// The key of the call, or `None` when an argument could not be encoded.
    pub fn finish_call(mut self) -> Option<CallKey<'s>> {
        self.finish_in_place(false)?;
        Some(self.key)
    }

    /// Finishes the key where it was formed (no copy), with its digest computed now when
    /// `with_digest`; `None` when an argument could not be encoded.
    ///
    /// ```
    /// use cachex_core::key::{KeyBuilder, Seed};
    /// let seed = Seed::new("fib", "app::fib", 0);
    /// let mut builder = KeyBuilder::new(&seed);
    /// builder.integer(10u64);
    /// let key = builder.finish_in_place(true).unwrap();
    /// assert_eq!(key.digest().to_hex().len(), 64);
    /// ```
    #[inline]
    pub fn finish_in_place(&mut self, with_digest: bool) -> Option<&CallKey<'s>> {
        if !self.usable {
            return None;
        }
        if let Some(spill) = self.spill.take() {
            let digest = spill.finish();
            let key = &mut self.key;
            key.material[..LOCAL_LEN].copy_from_slice(&(key.seed.local | DIGESTED).to_le_bytes());
            key.material[LOCAL_LEN..LOCAL_LEN + 32].copy_from_slice(&digest.0);
            key.len = (LOCAL_LEN + 32) as u8;
            key.digest = Some(digest);
        } else if with_digest && self.key.digest.is_none() {
            self.key.digest = Some(self.key.digest());
        }
        Some(&self.key)
    }
}

struct MaterialWriter<'a, 's>(&'a mut KeyBuilder<'s>);

impl bincode::enc::write::Writer for MaterialWriter<'_, '_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.write(bytes);
        Ok(())
    }
}

/// The longest chunk of a text argument.
const TEXT_CHUNK: usize = 255;

struct TextWriter<'a, 's> {
    builder: &'a mut KeyBuilder<'s>,
    /// The chunk being filled: its length byte, then its text.
    chunk: [u8; TEXT_CHUNK + 1],
    len: usize,
}

impl TextWriter<'_, '_> {
    fn flush(&mut self) {
        if self.len > 0 {
            self.chunk[0] = self.len as u8;
            self.builder.write(&self.chunk[..=self.len]);
            self.len = 0;
        }
    }
}

impl fmt::Write for TextWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Chunks split bytes, not characters: a chunk may end inside a UTF-8 sequence.
        let mut text = s.as_bytes();
        while !text.is_empty() {
            let take = text.len().min(TEXT_CHUNK - self.len);
            self.chunk[1 + self.len..1 + self.len + take].copy_from_slice(&text[..take]);
            self.len += take;
            text = &text[take..];
            if self.len == TEXT_CHUNK {
                self.flush();
            }
        }
        Ok(())
    }
}

/// The finished key of one call: its in-process bytes (what the memory backend and
/// single-flight compare) and the digest that names it outside the process.
///
/// ```
/// use cachex_core::key::{CallKey, Key, Seed};
/// let seed = Seed::direct("sessions");
/// let a = CallKey::direct(&seed, "user:42").unwrap();
/// let b = CallKey::direct(&seed, "user:42").unwrap();
/// assert_eq!(a.local(), b.local());
/// assert_eq!(a.digest(), Key::direct("sessions", "user:42").unwrap());
/// ```
#[derive(Clone)]
pub struct CallKey<'s> {
    seed: &'s Seed,
    material: [u8; CAPACITY],
    len: u8,
    digest: Option<Key>,
}

impl<'s> CallKey<'s> {
    /// The key of a direct `get`/`set` under `seed` (see [`Seed::direct`]): `key` encoded with
    /// serde; `None` when it does not serialize.
    pub fn direct<K: serde::Serialize + ?Sized>(seed: &'s Seed, key: &K) -> Option<CallKey<'s>> {
        let mut builder = KeyBuilder::new(seed);
        builder.serde(key);
        builder.finish_call()
    }

    /// The in-process key: the seed's local id, then the literal argument material, or (with
    /// the id's top bit set) the digest. Equal for two calls exactly when their seeds and
    /// argument material are equal.
    #[inline]
    pub fn local(&self) -> &[u8] {
        &self.material[..usize::from(self.len)]
    }

    /// The literal argument material (before a digest replaces it).
    fn arguments(&self) -> &[u8] {
        &self.material[LOCAL_LEN..usize::from(self.len)]
    }

    /// The blake3 digest of the argument material keyed by the seed.
    pub fn digest(&self) -> Key {
        match self.digest {
            Some(digest) => digest,
            None => Key(*blake3::keyed_hash(&self.seed.digest, self.arguments()).as_bytes()),
        }
    }
}

impl fmt::Debug for CallKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CallKey").field(&self.digest()).finish()
    }
}

/// An in-process key kept by a store: inline up to 24 bytes (every small argument shape),
/// on the heap beyond.
pub(crate) type LocalKey = smallvec::SmallVec<[u8; 24]>;

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
pub type CustomEncodeFn = fn(&dyn Any, &mut KeyBuilder<'_>) -> bool;

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
    pub type EncodeFn<T> = fn(&T, &mut KeyBuilder<'_>);

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
    capability!(BytesYes, BytesNo, byte_sequence, [super::ByteSequence], |v, k| k
        .byte_sequence(v.bytes()));
    capability!(IntegerYes, IntegerNo, integer, [super::Integer], |v, k| k.integer(*v));
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
        use $crate::key::probe::{
            AnyNo, AnyYes, BytesNo, BytesYes, DebugNo, DebugYes, DisplayNo, DisplayYes, IntegerNo, IntegerYes, SerdeNo,
            SerdeYes,
        };
        let probe = $crate::key::probe::Probe::<$ty>::NEW;
        let builder: &mut $crate::KeyBuilder = $builder;
        let value: &$ty = $value;
        // Each arm calls its own encoder: a function known at compile time, so it inlines
        // (through one function pointer for all arms, every argument was an indirect call).
        let run = |encode: ::std::option::Option<$crate::key::probe::EncodeFn<$ty>>,
                   builder: &mut $crate::KeyBuilder| {
            match encode {
                ::std::option::Option::Some(encode) => encode(value, builder),
                ::std::option::Option::None => builder.invalidate(),
            }
        };
        match $encoding {
            $crate::ArgEncoding::Serde => run(
                (&probe)
                    .integer()
                    .or_else(|| (&probe).byte_sequence())
                    .or_else(|| (&probe).serde()),
                builder,
            ),
            $crate::ArgEncoding::Display => run((&probe).display(), builder),
            $crate::ArgEncoding::Debug => run((&probe).debug(), builder),
            $crate::ArgEncoding::Skip => builder.skip(),
            $crate::ArgEncoding::Custom(custom) => match (&probe).any() {
                ::std::option::Option::Some(as_any) if custom(as_any(value), builder) => {}
                _ => builder.invalidate(),
            },
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

    fn seed(function: &str) -> Seed {
        Seed::new("c", function, 0)
    }

    /// Text framing pinned by vectors computed independently (Python's `blake3`):
    /// seed = blake3(u32le 2 ‖ u64le 1 ‖ "c" ‖ u64le 1 ‖ "f" ‖ u32le 0);
    /// `display("A")` then serde `"x"` is `d 01 'A' 00 s 01 'x'`, and a 600-byte text is
    /// `d ff <255> ff <255> 5a <90> 00` (chunks split bytes, even inside a character).
    #[test]
    fn text_framing_vectors() {
        let seed = seed("f");
        let mut short = KeyBuilder::new(&seed);
        short.display("A");
        short.serde("x");
        assert_eq!(
            short.finish().unwrap().to_hex(),
            "c6bbf55e8704075f553172024aef28d54731ec4c8f37254299041cc2b92556f8"
        );
        let mut long = KeyBuilder::new(&seed);
        long.display(&"é".repeat(300));
        assert_eq!(
            long.finish().unwrap().to_hex(),
            "920048f609680d0454523b4628f33b95ca4eb7a7d94dbf0bf51b8e005ffb5d54"
        );
    }

    /// One argument of a random list, as the binding's type and encoder would give it.
    #[derive(Debug, Clone, PartialEq)]
    enum Arg {
        Serde(String),
        Integer(i64),
        ByteVec(Vec<u8>),
        Display(String),
        Debug(String),
        Raw(Vec<u8>),
        Skip,
    }

    fn arg() -> impl proptest::strategy::Strategy<Value = Arg> {
        use proptest::prelude::*;
        // Any char: NUL, control characters and multi-byte ones included.
        let text = || proptest::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter);
        let bytes = || proptest::collection::vec(any::<u8>(), 0..8);
        prop_oneof![
            text().prop_map(Arg::Serde),
            any::<i64>().prop_map(Arg::Integer),
            bytes().prop_map(Arg::ByteVec),
            text().prop_map(Arg::Display),
            text().prop_map(Arg::Debug),
            bytes().prop_map(Arg::Raw),
            Just(Arg::Skip),
        ]
    }

    fn encode(builder: &mut KeyBuilder<'_>, arg: &Arg) {
        match arg {
            Arg::Serde(text) => builder.serde(text),
            Arg::Integer(n) => builder.integer(*n),
            Arg::ByteVec(bytes) => builder.byte_sequence(bytes),
            Arg::Display(text) => builder.display(text),
            Arg::Debug(text) => builder.debug(text),
            Arg::Raw(bytes) => builder.bytes(bytes),
            Arg::Skip => builder.skip(),
        }
    }

    /// Reads key material back, knowing each argument's kind (as its binding does); `None`
    /// where the material does not frame the kinds exactly.
    fn read_back(mut material: &[u8], kinds: &[Arg]) -> Option<Vec<Arg>> {
        fn serde_value<T: serde::de::DeserializeOwned>(material: &mut &[u8]) -> Option<T> {
            let (value, used) = bincode::serde::decode_from_slice(material, bincode::config::standard()).ok()?;
            *material = &material[used..];
            Some(value)
        }
        fn take<'a>(material: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, rest) = (material.get(..n)?, material.get(n..)?);
            *material = rest;
            Some(head)
        }
        fn text(material: &mut &[u8]) -> Option<String> {
            let mut bytes = Vec::new();
            loop {
                let len = usize::from(take(material, 1)?[0]);
                if len == 0 {
                    return String::from_utf8(bytes).ok();
                }
                bytes.extend_from_slice(take(material, len)?);
            }
        }
        let mut args = Vec::new();
        for kind in kinds {
            let tag = take(&mut material, 1)?[0];
            args.push(match (kind, tag) {
                (Arg::Serde(_), b's') => Arg::Serde(serde_value(&mut material)?),
                (Arg::Integer(_), b's') => Arg::Integer(serde_value(&mut material)?),
                (Arg::ByteVec(_), b's') => Arg::ByteVec(serde_value(&mut material)?),
                (Arg::Display(_), b'd') => Arg::Display(text(&mut material)?),
                (Arg::Debug(_), b'g') => Arg::Debug(text(&mut material)?),
                (Arg::Raw(_), b'b') => {
                    let len = u64::from_le_bytes(take(&mut material, 8)?.try_into().ok()?);
                    Arg::Raw(take(&mut material, usize::try_from(len).ok()?)?.to_vec())
                }
                (Arg::Skip, b'k') => Arg::Skip,
                _ => return None,
            });
        }
        material.is_empty().then_some(args)
    }

    proptest::proptest! {
        /// Key material reads back into its argument list, so two different lists never share
        /// material: the framing is injective (random lists alone would rarely collide).
        #[test]
        fn key_material_reads_back_into_its_arguments(args in proptest::collection::vec(arg(), 0..5)) {
            let seed = seed("f");
            let mut builder = KeyBuilder::new(&seed);
            for arg in &args {
                encode(&mut builder, arg);
            }
            let key = builder.finish_call().unwrap();
            // Short lists stay literal: the in-process key is the id, then the material.
            proptest::prop_assume!(key.local()[..LOCAL_LEN] == seed.local.to_le_bytes());
            let expected: Vec<Arg> = args
                .iter()
                .map(|arg| match arg {
                    Arg::Debug(text) => Arg::Debug(format!("{text:?}")),
                    other => other.clone(),
                })
                .collect();
            proptest::prop_assert_eq!(read_back(&key.local()[LOCAL_LEN..], &args), Some(expected));
        }
    }

    /// The collision of the old framing (text, then its length): a `display` argument
    /// followed by a serde `String`.
    #[test]
    fn the_old_text_framing_collision_is_gone() {
        let seed = seed("f");
        let key = |first: &str, second: &str| {
            let mut builder = KeyBuilder::new(&seed);
            builder.display(first);
            builder.serde(second);
            builder.finish_call().unwrap()
        };
        let a = key("A", "\x0b\0\0\0\0\0\0\0s\x01x");
        let b = key("A\x01\0\0\0\0\0\0\0s\x0b", "x");
        assert_ne!(a.local(), b.local());
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn framing_separates_arguments() {
        let seed = seed("f");
        let key = |parts: [&str; 2]| {
            let mut builder = KeyBuilder::new(&seed);
            builder.display(parts[0]);
            builder.display(parts[1]);
            builder.finish_call().unwrap()
        };
        let (a, b) = (key(["ab", "c"]), key(["a", "bc"]));
        assert_ne!(a.digest(), b.digest());
        assert_ne!(a.local(), b.local());
    }

    #[test]
    fn encodings_give_different_keys() {
        let seed = seed("f");
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

    #[test]
    fn local_ids_are_equal_exactly_when_seeds_are() {
        assert_eq!(seed("f").local, seed("f").local);
        assert_ne!(seed("f").local, seed("g").local);
        assert_ne!(seed("f").local, Seed::UNBOUND.local);
        assert_eq!(seed("f").local & DIGESTED, 0);
    }

    /// Whether the material stays literal or spills into the hasher, the digest is blake3
    /// keyed by the seed over the whole argument stream: the format every store relies on.
    #[test]
    fn literal_and_spilled_material_digest_like_one_stream() {
        let seed = seed("f");
        for len in [
            0usize,
            1,
            LITERAL_MATERIAL - 9,
            LITERAL_MATERIAL - 8,
            LITERAL_MATERIAL,
            1024,
        ] {
            let bytes = vec![0xa5u8; len];
            let build = || {
                let mut builder = KeyBuilder::new(&seed);
                builder.bytes(&bytes);
                builder
            };
            let key = build().finish_call().unwrap();
            let mut stream = b"b".to_vec();
            stream.extend_from_slice(&(len as u64).to_le_bytes());
            stream.extend_from_slice(&bytes);
            let expected = Key(*blake3::keyed_hash(seed.digest(), &stream).as_bytes());
            assert_eq!(key.digest(), expected, "{len} bytes");
            assert_eq!(build().finish_in_place(true).unwrap().digest, Some(expected));
            let local = key.local();
            let id = u32::from_le_bytes(local[..LOCAL_LEN].try_into().unwrap());
            if stream.len() <= LITERAL_MATERIAL {
                assert_eq!(id, seed.local, "{len} bytes");
                assert_eq!(&local[LOCAL_LEN..], &stream[..]);
            } else {
                assert_eq!(id, seed.local | DIGESTED, "{len} bytes");
                assert_eq!(&local[LOCAL_LEN..], &expected.0[..]);
            }
        }
    }

    /// serde hands a byte vector over one element at a time; gathered or not, the digest is
    /// blake3 over the bincode encoding of the whole value.
    #[test]
    fn serde_byte_vectors_digest_like_their_encoding() {
        let seed = seed("f");
        let value: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let mut builder = KeyBuilder::new(&seed);
        builder.serde(&value);
        let mut stream = b"s".to_vec();
        stream.extend(bincode::serde::encode_to_vec(&value, bincode::config::standard()).unwrap());
        let expected = Key(*blake3::keyed_hash(seed.digest(), &stream).as_bytes());
        assert_eq!(builder.finish(), Some(expected));
    }

    #[test]
    fn byte_sequences_give_the_material_serde_gives() {
        let seed = seed("f");
        for len in [0usize, 1, 40, 250, 251, 3000, 70_000] {
            let value: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let by_serde = || {
                let mut builder = KeyBuilder::new(&seed);
                builder.serde(&value);
                builder.finish_call().unwrap()
            };
            let mut builder = KeyBuilder::new(&seed);
            builder.byte_sequence(&value);
            let at_once = builder.finish_call().unwrap();
            assert_eq!(at_once.local(), by_serde().local(), "{len} bytes");
            assert_eq!(at_once.digest(), by_serde().digest(), "{len} bytes");
        }
    }

    #[test]
    fn integers_give_the_material_serde_gives() {
        let seed = seed("f");
        fn check<I: Integer + serde::Serialize + fmt::Debug>(seed: &Seed, value: I) {
            let mut at_once = KeyBuilder::new(seed);
            at_once.integer(value);
            let mut by_serde = KeyBuilder::new(seed);
            by_serde.serde(&value);
            let (at_once, by_serde) = (at_once.finish_call().unwrap(), by_serde.finish_call().unwrap());
            assert_eq!(at_once.local(), by_serde.local(), "{value:?}");
        }
        for v in [0u64, 250, 251, 65_535, 65_536, u32::MAX as u64, u64::MAX] {
            check(&seed, v);
            check(&seed, v as usize);
            check(&seed, u128::from(v) << 1);
            check(&seed, v as u32);
            check(&seed, v as u16);
            check(&seed, v as u8);
        }
        for v in [0i64, -1, 1, -126, 126, i64::MIN, i64::MAX] {
            check(&seed, v);
            check(&seed, v as isize);
            check(&seed, i128::from(v) * 3);
            check(&seed, v as i32);
            check(&seed, v as i16);
            check(&seed, v as i8);
        }
        check(&seed, true);
        check(&seed, false);
    }

    #[test]
    fn local_keys_differ_with_seed_and_arguments() {
        let key = |seed: &Seed, n: u64| {
            let mut builder = KeyBuilder::new(seed);
            builder.serde(&n);
            builder.finish_call().unwrap().local().to_vec()
        };
        let (f, g) = (seed("f"), seed("g"));
        assert_eq!(key(&f, 7), key(&f, 7));
        assert_ne!(key(&f, 7), key(&f, 8));
        assert_ne!(key(&f, 7), key(&g, 7));
    }

    #[test]
    fn unusable_builder_gives_no_key() {
        let seed = seed("f");
        let unusable = || {
            let mut builder = KeyBuilder::new(&seed);
            builder.serde(&1u8);
            builder.invalidate();
            builder
        };
        assert!(unusable().finish_call().is_none());
        assert!(unusable().finish().is_none());
    }
}
