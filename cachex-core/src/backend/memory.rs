//! The in-process backend: typed values in `quick_cache` (S3-FIFO eviction), bounded by
//! entries and/or bytes, the cache's TTL and stale window carried in each entry. No
//! serialization on the hot path: a hit hashes the call's in-process key (a few bytes, read
//! byte by byte), finds the entry under its shard's read lock, compares the key whole, and
//! clones the value out while still under that lock.
//!
//! A hit writes no memory that another thread's hit writes: each shard's lock is a
//! `ShardedLock` (one reader lock per thread slot, on its own cache line), and values are lent
//! under the lock instead of handed out as an `Arc` whose count every hit would change. With
//! one shared lock word per shard, as in `quick_cache`'s sync cache, about every other hit on
//! two threads found that word in the other core's cache, and two threads did less than one.
//!
//! `moka` was the first store (224 ns per `#[cached] fn(u64) -> u64` hit); `quick_cache`'s sync
//! cache came next (151 ns, then 51 ns with in-process keys); see the memory bench in the
//! README for the figures of this design next to both.

use std::any::Any;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, PoisonError};
use std::time::Duration;

use crossbeam_utils::sync::ShardedLock;
use quick_cache::Equivalent;

use crate::clock;
use crate::key::LocalKey;
use crate::passthrough::PassThrough;
use crate::stale::{Found, Stale};

/// The number of entries a memory cache keeps when neither `max_entries` nor `max_bytes` is set.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;

/// Bounds and expiry of one memory cache.
///
/// ```
/// use std::time::Duration;
/// let limits = cachex_core::backend::memory::MemoryLimits {
///     max_entries: Some(100),
///     ttl: Some(Duration::from_secs(60)),
///     ..Default::default()
/// };
/// let store = cachex_core::backend::memory::MemoryStore::new(&limits);
/// assert_eq!(store.entry_count(), 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryLimits {
    /// At most this many entries.
    pub max_entries: Option<u64>,
    /// At most this many bytes of values, measured as their bincode size.
    pub max_bytes: Option<u64>,
    /// Entries are fresh this long after they were written (`None` = forever).
    pub ttl: Option<Duration>,
    /// Entries are kept this long after their `ttl`, stale (the longer stale window).
    pub stale: Duration,
}

/// The expiry of an entry that never expires.
const NEVER: u64 = u64::MAX;

struct Entry {
    value: Box<dyn Any + Send + Sync>,
    /// The reading of [`clock::now_nanos`] from which the entry is stale, or [`NEVER`].
    stale_from: u64,
    /// The reading of [`clock::now_nanos`] from which the entry is expired, or [`NEVER`].
    expires: u64,
    weight: u32,
}

impl Entry {
    #[inline]
    fn expired(&self) -> bool {
        self.expires != NEVER && self.expires <= clock::now_nanos()
    }
}

#[derive(Clone, Copy)]
struct EntryWeight;

impl quick_cache::Weighter<StoredKey, Entry> for EntryWeight {
    #[inline]
    fn weight(&self, _key: &StoredKey, entry: &Entry) -> u64 {
        u64::from(entry.weight)
    }
}

/// The shard tables hash with [`PassThrough`]: keys write their precomputed hash. Evicted
/// and replaced entries come out in the request state, to be counted and dropped after the
/// shard's lock is released.
type Shard = quick_cache::unsync::Cache<StoredKey, Entry, EntryWeight, PassThrough, Outgoing>;

/// Collects the entries an insert pushes out (evicted by the bounds, or replaced).
#[derive(Clone, Copy, Default)]
struct Outgoing;

impl quick_cache::Lifecycle<StoredKey, Entry> for Outgoing {
    type RequestState = Vec<(StoredKey, Entry)>;

    #[inline]
    fn on_evict(&self, state: &mut Self::RequestState, key: StoredKey, entry: Entry) {
        state.push((key, entry));
    }
}

/// The hash of an in-process key: FNV-1a over its bytes from a random basis per process, then
/// MurmurHash3's 64-bit finaliser (so every bit of the hash depends on every byte: the shard
/// is picked with the middle bits, the table probes with the low and the top ones). A lookup
/// computes it once and uses it both to pick the shard and to probe the shard's table.
///
/// Byte by byte, on purpose: the key was written a moment ago in pieces of 1 to 16 bytes, and
/// a hasher reading it in words (foldhash) waited for those stores at every word; a memory hit
/// went from about 64 ns to 39 ns on the project's host with this (see the memory bench).
#[inline]
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    static BASIS: OnceLock<u64> = OnceLock::new();
    let basis = *BASIS.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64));
    let mut hash = key.iter().fold(basis, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// A key as the store keeps it; it hashes to its [`key_hash`] (recomputed only when the
/// table moves or evicts it).
#[derive(PartialEq, Eq)]
struct StoredKey(LocalKey);

impl Hash for StoredKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(key_hash(&self.0));
    }
}

/// A key being looked up, with its hash already computed.
struct Lookup<'a> {
    hash: u64,
    key: &'a [u8],
}

impl<'a> Lookup<'a> {
    #[inline]
    fn new(key: &'a [u8]) -> Self {
        Lookup {
            hash: key_hash(key),
            key,
        }
    }
}

impl Hash for Lookup<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Equivalent<StoredKey> for Lookup<'_> {
    #[inline]
    fn equivalent(&self, stored: &StoredKey) -> bool {
        same_bytes(self.key, &stored.0)
    }
}

/// Byte equality with the short keys of typical arguments compared inline (two overlapping
/// words) instead of through a `memcmp` call.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    let word = |bytes: &[u8], at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let half = |bytes: &[u8], at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
    match len {
        4..=7 => half(a, 0) == half(b, 0) && half(a, len - 4) == half(b, len - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8),
        _ => a == b,
    }
}

/// A process-wide, typed in-memory store for one cache, keyed by in-process keys
/// ([`CallKey::local`](crate::key::CallKey::local)).
pub struct MemoryStore {
    shards: Box<[ShardedLock<Shard>]>,
    ttl: Option<Duration>,
    stale: Duration,
    measures_bytes: bool,
    min_weight: u64,
    /// Entries evicted by the bounds (written on inserts only, never by a hit).
    evictions: AtomicU64,
    /// Entries dropped when found expired.
    expirations: AtomicU64,
}

impl MemoryStore {
    /// A store with these limits. With both `max_entries` and `max_bytes`, each entry weighs at
    /// least `max_bytes / max_entries`, so both bounds hold.
    pub fn new(limits: &MemoryLimits) -> Self {
        let (capacity, min_weight, measures_bytes) = match (limits.max_entries, limits.max_bytes) {
            (entries, Some(bytes)) => (bytes, entries.map_or(1, |n| (bytes / n.max(1)).max(1)), true),
            (entries, None) => (entries.unwrap_or(DEFAULT_MAX_ENTRIES), 1, false),
        };
        let items = (capacity / min_weight).max(1);
        // As quick_cache's sync cache does: four shards per core, fewer when a shard would
        // hold under 32 entries; the capacity is split evenly.
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as u64;
        let mut shards = (cores * 4).next_power_of_two();
        while shards > 1 && items / shards < 32 {
            shards /= 2;
        }
        // Bounded for the whole cache: the tables and the records of evicted keys grow with it.
        let shard_items = items.min(1 << 20).div_ceil(shards) as usize;
        let shard_capacity = capacity.div_ceil(shards);
        MemoryStore {
            shards: (0..shards)
                .map(|_| {
                    ShardedLock::new(Shard::with(
                        shard_items,
                        shard_capacity,
                        EntryWeight,
                        PassThrough,
                        Outgoing,
                    ))
                })
                .collect(),
            ttl: limits.ttl.filter(|ttl| !ttl.is_zero()),
            stale: limits.stale,
            measures_bytes,
            min_weight,
            evictions: AtomicU64::new(0),
            expirations: AtomicU64::new(0),
        }
    }

    #[inline]
    fn shard(&self, key: &Lookup<'_>) -> &ShardedLock<Shard> {
        // The middle bits: the shard's own table probes with the low and the top ones.
        &self.shards[(key.hash.rotate_right(32) as usize) & (self.shards.len() - 1)]
    }

    /// The value under `key` if present, fresh, and of type `V`.
    ///
    /// ```
    /// use cachex_core::backend::memory::{MemoryLimits, MemoryStore};
    /// let store = MemoryStore::new(&MemoryLimits::default());
    /// store.insert(b"k", 7u32);
    /// assert_eq!(store.get::<u32>(b"k"), Some(7));
    /// assert_eq!(store.get::<u64>(b"k"), None);
    /// ```
    #[inline]
    pub fn get<V: Clone + 'static>(&self, key: &[u8]) -> Option<V> {
        self.fetch(key).fresh()
    }

    /// What is stored under `key`: a fresh value, a stale one (past its `ttl`, within the
    /// stale window), or nothing (absent, expired, or of another type than `V`).
    #[inline]
    pub(crate) fn fetch<V: Clone + 'static>(&self, key: &[u8]) -> Found<V> {
        let key = Lookup::new(key);
        let shard = self.shard(&key);
        {
            let entries = shard.read().unwrap_or_else(PoisonError::into_inner);
            let Some(entry) = entries.get(&key) else {
                return Found::Miss;
            };
            // One clock read, and none for a cache without a TTL.
            if entry.stale_from == NEVER {
                return entry
                    .value
                    .downcast_ref::<V>()
                    .cloned()
                    .map_or(Found::Miss, Found::Fresh);
            }
            let now = clock::now_nanos();
            if now < entry.stale_from {
                return entry
                    .value
                    .downcast_ref::<V>()
                    .cloned()
                    .map_or(Found::Miss, Found::Fresh);
            }
            if now < entry.expires {
                return entry.value.downcast_ref::<V>().cloned().map_or(Found::Miss, |value| {
                    Found::Stale(Stale {
                        value,
                        past: Duration::from_nanos(now - entry.stale_from),
                    })
                });
            }
        }
        let expired = shard
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove_if(&key, Entry::expired);
        if expired.is_some() {
            self.expirations.fetch_add(1, Ordering::Relaxed);
        }
        drop(expired); // after the lock, as in `insert`
        Found::Miss
    }

    /// Stores `value` under `key`, fresh for the store's `ttl` and kept its stale window after.
    pub fn insert<V: serde::Serialize + Send + Sync + 'static>(&self, key: &[u8], value: V) {
        let (stale_from, expires) = match self.ttl {
            None => (NEVER, NEVER),
            Some(ttl) => {
                let stale_from = clock::expiry(ttl).min(NEVER - 1);
                let kept = u64::try_from(self.stale.as_nanos()).unwrap_or(u64::MAX);
                (stale_from, stale_from.saturating_add(kept).min(NEVER - 1))
            }
        };
        self.insert_entry(key, value, stale_from, expires);
    }

    /// Stores `value` under `key`, fresh for `fresh_for` and then stale until `kept_for` has
    /// passed (the store's own `ttl` does not apply): how a local tier keeps the boundaries of
    /// the shared entry it copies.
    pub(crate) fn insert_for<V: serde::Serialize + Send + Sync + 'static>(
        &self,
        key: &[u8],
        value: V,
        fresh_for: Duration,
        kept_for: Duration,
    ) {
        let stale_from = clock::expiry(fresh_for).min(NEVER - 1);
        let expires = clock::expiry(kept_for.max(fresh_for)).min(NEVER - 1);
        self.insert_entry(key, value, stale_from, expires);
    }

    fn insert_entry<V: serde::Serialize + Send + Sync + 'static>(
        &self,
        key: &[u8],
        value: V,
        stale_from: u64,
        expires: u64,
    ) {
        let bytes = if self.measures_bytes { encoded_len(&value) } else { 0 };
        let weight = bytes.max(self.min_weight).min(u64::from(u32::MAX)) as u32;
        let entry = Entry {
            value: Box::new(value),
            stale_from,
            expires,
            weight,
        };
        let mut outgoing = Vec::new();
        self.shard(&Lookup::new(key))
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert_with_lifecycle(StoredKey(LocalKey::from_slice(key)), entry, &mut outgoing);
        let evicted = outgoing.iter().filter(|(stored, _)| *stored.0 != *key).count() as u64;
        if evicted > 0 {
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
        // Evicted and replaced values are dropped here, after the lock: a value's drop may take
        // its time, or call into the cache.
        drop(outgoing);
    }

    /// How many entries the bounds evicted so far (a replaced entry is not counted).
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// How many entries were dropped when a lookup found them expired.
    pub fn expirations(&self) -> u64 {
        self.expirations.load(Ordering::Relaxed)
    }

    /// Whether an entry is held under `key` (expired or not).
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        let key = Lookup::new(key);
        self.shard(&key)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .is_some()
    }

    /// Removes the entry under `key`.
    pub fn remove(&self, key: &[u8]) {
        let key = Lookup::new(key);
        let removed = self
            .shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        drop(removed); // after the lock, as in `insert`
    }

    /// Removes every entry.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            shard.write().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// The number of entries held (expired ones included until they are read or evicted).
    pub fn entry_count(&self) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(PoisonError::into_inner).len() as u64)
            .sum()
    }
}

fn encoded_len<V: serde::Serialize>(value: &V) -> u64 {
    struct Count<'a>(&'a mut u64);
    impl bincode::enc::write::Writer for Count<'_> {
        fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
            *self.0 += bytes.len() as u64;
            Ok(())
        }
    }
    let mut count = 0;
    match bincode::serde::encode_into_writer(value, Count(&mut count), bincode::config::standard()) {
        Ok(()) => count,
        Err(_) => 0,
    }
}

/// The memory backend: typed values in process memory, bounded by `max_entries` and/or
/// `max_bytes`.
pub const KIND: super::Kind = super::Kind {
    name: "memory",
    keys: &["max_entries", "max_bytes"],
    url_schemes: &[],
    stores_bytes: false,
    build: |spec| {
        Ok(super::Backend::Memory(MemoryStore::new(&MemoryLimits {
            max_entries: spec.max_entries,
            max_bytes: spec.max_bytes,
            ttl: spec.ttl,
            stale: spec.stale.kept(),
        })))
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(n: u8) -> [u8; 6] {
        [1, 0, 0, 0, b's', n]
    }

    #[test]
    fn typed_values_and_wrong_type_is_a_miss() {
        let store = MemoryStore::new(&MemoryLimits::default());
        store.insert(&key(1), String::from("x"));
        assert_eq!(store.get::<String>(&key(1)).as_deref(), Some("x"));
        assert_eq!(store.get::<u64>(&key(1)), None);
        assert_eq!(store.get::<String>(&key(2)), None);
        store.remove(&key(1));
        assert_eq!(store.get::<String>(&key(1)), None);
    }

    #[test]
    fn short_keys_spread_over_the_shards_and_the_table() {
        // The keys of `fn(u64)` calls 0..1024: a local id, the serde tag, a varint.
        let keys: Vec<Vec<u8>> = (0..1024u32)
            .map(|n| {
                let mut key = vec![1, 0, 0, 0, b's'];
                match n {
                    0..=250 => key.push(n as u8),
                    _ => key.extend([251, n as u8, (n >> 8) as u8]),
                }
                key
            })
            .collect();
        let mut shards = [0u32; 8];
        let mut low = std::collections::HashSet::new();
        for key in &keys {
            let hash = key_hash(key);
            shards[(hash.rotate_right(32) as usize) & 7] += 1;
            low.insert(hash & 0xfff);
        }
        assert!(shards.iter().all(|&n| (64..=192).contains(&n)), "shards {shards:?}");
        assert!(low.len() > 800, "{} distinct low 12 bits of 1024", low.len());
    }

    #[test]
    fn short_keys_compare_like_slices() {
        let bytes: Vec<u8> = (1..=40).collect();
        for len in 0..40 {
            let a = &bytes[..len];
            assert!(same_bytes(a, a));
            assert!(!same_bytes(a, &bytes[..len + 1]));
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x80;
                assert!(!same_bytes(a, &b), "{len} bytes, differing at {at}");
            }
        }
    }

    #[test]
    fn keys_are_compared_whole_inline_or_not() {
        let store = MemoryStore::new(&MemoryLimits::default());
        let long: Vec<u8> = (0..90).collect();
        let mut other = long.clone();
        other[89] = 0;
        store.insert(&long, 1u32);
        store.insert(&other, 2u32);
        store.insert(&long[..6], 3u32);
        assert_eq!(store.get::<u32>(&long), Some(1));
        assert_eq!(store.get::<u32>(&other), Some(2));
        assert_eq!(store.get::<u32>(&long[..6]), Some(3));
        assert_eq!(store.get::<u32>(&long[..7]), None);
    }

    #[test]
    fn entries_live_until_their_ttl() {
        let limits = |ttl| MemoryLimits {
            ttl: Some(ttl),
            ..MemoryLimits::default()
        };
        let lasting = MemoryStore::new(&limits(Duration::from_secs(3600)));
        let brief = MemoryStore::new(&limits(Duration::from_millis(1)));
        lasting.insert(&key(1), 1u8);
        brief.insert(&key(1), 1u8);
        // Well past 1 ms plus one coarse clock tick.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(lasting.get::<u8>(&key(1)), Some(1));
        assert_eq!(brief.get::<u8>(&key(1)), None);
        assert_eq!(brief.entry_count(), 0, "an expired entry is removed when read");
    }

    #[test]
    fn entries_are_stale_after_their_ttl_then_expired_after_the_window() {
        let store = MemoryStore::new(&MemoryLimits {
            ttl: Some(Duration::from_millis(1)),
            stale: Duration::from_secs(3600),
            ..MemoryLimits::default()
        });
        store.insert(&key(1), 1u8);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            matches!(store.fetch::<u8>(&key(1)), Found::Stale(Stale { value: 1, past }) if past >= Duration::from_millis(30))
        );
        assert_eq!(store.get::<u8>(&key(1)), None, "a stale entry is not fresh");
        assert!(matches!(store.fetch::<u16>(&key(1)), Found::Miss), "of another type");
        let brief = MemoryStore::new(&MemoryLimits {
            ttl: Some(Duration::from_millis(1)),
            stale: Duration::from_millis(1),
            ..MemoryLimits::default()
        });
        brief.insert(&key(1), 1u8);
        std::thread::sleep(Duration::from_millis(50));
        assert!(matches!(brief.fetch::<u8>(&key(1)), Found::Miss));
        assert_eq!(brief.entry_count(), 0);
    }

    /// A value whose drop records whether any shard of its store was locked then.
    struct DropProbe {
        store: &'static MemoryStore,
        drops: &'static AtomicUsize,
        under_lock: &'static AtomicUsize,
    }

    impl serde::Serialize for DropProbe {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_unit()
        }
    }

    impl Drop for DropProbe {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
            if self.store.shards.iter().any(|shard| shard.try_write().is_err()) {
                self.under_lock.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn replaced_evicted_and_removed_values_are_dropped_after_the_lock() {
        let store: &'static MemoryStore = Box::leak(Box::new(MemoryStore::new(&MemoryLimits {
            max_entries: Some(1),
            ..MemoryLimits::default()
        })));
        let (drops, under_lock) = (
            Box::leak(Box::new(AtomicUsize::new(0))),
            Box::leak(Box::new(AtomicUsize::new(0))),
        );
        let probe = || DropProbe {
            store,
            drops,
            under_lock,
        };
        store.insert(&key(1), probe());
        store.insert(&key(1), probe()); // replaces
        store.remove(&key(1));
        store.insert(&key(1), probe());
        store.insert(&key(2), probe()); // a store of one entry evicts
        assert!(drops.load(Ordering::SeqCst) >= 3, "{drops:?} drops");
        assert_eq!(
            under_lock.load(Ordering::SeqCst),
            0,
            "values dropped while a shard was locked"
        );
    }

    #[test]
    fn bytes_and_entries_both_bound() {
        let limits = MemoryLimits {
            max_entries: Some(10),
            max_bytes: Some(10_000),
            ..MemoryLimits::default()
        };
        let store = MemoryStore::new(&limits);
        for i in 0..200u8 {
            store.insert(&key(i), vec![0u8; 10]);
        }
        assert!(store.entry_count() <= 10, "{} entries", store.entry_count());
        let store = MemoryStore::new(&limits);
        for i in 0..200u8 {
            store.insert(&key(i), vec![0u8; 2_000]);
        }
        assert!(store.entry_count() <= 5, "{} entries of 2 KB", store.entry_count());
    }

    #[test]
    fn evictions_and_expirations_are_counted_and_replacements_are_not() {
        let store = MemoryStore::new(&MemoryLimits {
            max_entries: Some(4),
            ttl: Some(Duration::from_millis(1)),
            ..MemoryLimits::default()
        });
        for round in 0..3u8 {
            store.insert(&key(0), round); // replaced twice
        }
        assert_eq!(store.evictions(), 0);
        for i in 1..40u8 {
            store.insert(&key(i), i);
        }
        assert_eq!(
            store.evictions(),
            40 - store.entry_count(),
            "every insert is held or evicted"
        );
        std::thread::sleep(Duration::from_millis(50));
        let held = store.entry_count();
        for i in 0..40u8 {
            assert_eq!(store.get::<u8>(&key(i)), None);
        }
        assert_eq!(store.expirations(), held);
    }
}
