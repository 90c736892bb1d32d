//! Forming the key of one call: the framed material of its arguments, kept on the stack while
//! short and streamed into blake3 beyond, and the finished [`CallKey`].

use std::fmt;

use super::seed::DIGESTED;
use super::{Integer, Key, Seed};
use crate::varint::{Varint, VARINT_ROOM};

pub(super) const LOCAL_LEN: usize = 4;
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

    /// Adds the entries of an unordered collection (`HashMap`, `HashSet`) independently of
    /// their iteration order, which differs between two equal collections and between
    /// processes: each entry is encoded with serde, and the entries are written sorted.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use cachex_core::key::{KeyBuilder, Seed};
    /// let seed = Seed::new("search", "app::search", 0);
    /// let a: HashMap<String, u32> = (0..50).map(|i| (format!("k{i}"), i)).collect();
    /// let b: HashMap<String, u32> = (0..50).rev().map(|i| (format!("k{i}"), i)).collect();
    /// let (mut ka, mut kb) = (KeyBuilder::new(&seed), KeyBuilder::new(&seed));
    /// ka.unordered(a.iter());
    /// kb.unordered(b.iter());
    /// assert_eq!(ka.finish(), kb.finish());
    /// ```
    pub fn unordered<E: serde::Serialize>(&mut self, entries: impl IntoIterator<Item = E>) {
        let mut encoded = Vec::new();
        for entry in entries {
            match bincode::serde::encode_to_vec(entry, bincode::config::standard()) {
                Ok(bytes) => encoded.push(bytes),
                Err(_) => {
                    self.usable = false;
                    return;
                }
            }
        }
        encoded.sort_unstable();
        self.write(b"u");
        self.serde_varint(&Varint::unsigned(encoded.len() as u128));
        for entry in &encoded {
            // Each entry is a whole bincode encoding of one type: self-delimiting.
            self.write(entry);
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
    pub(super) fn serde_varint(&mut self, value: &Varint) {
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
    pub(super) digest: Option<Key>,
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
