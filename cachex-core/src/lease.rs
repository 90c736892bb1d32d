//! Leases: what makes the fill after a miss (or a stale refresh) land only when nothing
//! changed the entry since the computation began, so a computation that an invalidation or a
//! newer write overtook never stores its older value.
//!
//! Before a computation, the caller takes a [`Lease`] of the entry from the backend
//! ([`Storage::lease`](crate::Storage::lease)): where the entry is absent, the backend stores a
//! *marker* in its place (a few bytes that every reader takes for a miss, kept for the cache's
//! `lock_timeout`); where a value is there (a stale one being refreshed), the lease names those
//! bytes. The fill ([`Storage::fill`](crate::Storage::fill)) then writes only if the entry still
//! holds exactly what the lease names: a removal, a clear, another process's write or another
//! computation's marker in between makes it refuse. Where the entry holds another
//! computation's marker, the lease is [`Lease::HeldElsewhere`]: that computation stores, this
//! one only returns its value.
//!
//! A hit costs nothing: markers are only ever read where a miss would have been.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a fill of one entry is conditional on, taken before the computation whose value it
/// stores.
///
/// ```
/// use std::time::Duration;
/// use cachex_core::{Key, Lease, Storage, StorageKey};
/// # #[cfg(feature = "file")] {
/// let dir = std::env::temp_dir().join(format!("cachex-doc-lease-{}", std::process::id()));
/// let store = cachex_core::backend::file::FileStore::new(&dir, "doc", None);
/// let key = StorageKey::new("doc", Key([7; 32]));
/// let lease = store.lease(&key, Duration::from_secs(30)).unwrap();
/// assert!(matches!(lease, Lease::Held(_)), "the entry was absent: this computation holds it");
/// assert_eq!(store.lease(&key, Duration::from_secs(30)).unwrap(), Lease::HeldElsewhere);
/// store.delete(&key).unwrap(); // an invalidation while it computes
/// assert!(!store.fill(&key, &lease, b"old value", None).unwrap(), "the fill is refused");
/// # std::fs::remove_dir_all(&dir).ok();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// The backend keeps no leases: the fill is a plain write.
    Unguarded,
    /// Another computation of the entry holds its lease and will store; this one does not.
    HeldElsewhere,
    /// The fill lands only while the entry is as these bytes say (their meaning is the
    /// backend's: the marker it stored, a digest of the bytes it found, a CAS token).
    Held(Vec<u8>),
}

/// The first bytes of a marker: never those of an envelope (`CHX\x01`).
pub const MARKER_MAGIC: &[u8; 4] = b"CHXL";
/// A marker's length: the magic, this process's origin, a counter, and the instant (ms since
/// the Unix epoch) it lapses, for backends that keep no expiry of their own.
pub const MARKER_LEN: usize = 4 + 16 + 8 + 8;

/// A marker no other computation, in this process or another, has: for an entry leased for
/// `lease_for`.
///
/// ```
/// use std::time::Duration;
/// use cachex_core::lease::{marker, marker_until, MARKER_LEN};
/// let one = marker(Duration::from_secs(30));
/// assert_eq!(one.len(), MARKER_LEN);
/// assert_ne!(one, marker(Duration::from_secs(30)));
/// assert!(marker_until(&one).is_some());
/// ```
pub fn marker(lease_for: Duration) -> Vec<u8> {
    static DRAWN: AtomicU64 = AtomicU64::new(0);
    let until = crate::envelope::now_millis().saturating_add(lease_for.as_millis() as u64);
    let mut out = Vec::with_capacity(MARKER_LEN);
    out.extend_from_slice(MARKER_MAGIC);
    out.extend_from_slice(crate::coherence::origin());
    out.extend_from_slice(&DRAWN.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    out.extend_from_slice(&until.to_le_bytes());
    out
}

/// Whether `bytes` are a marker (a miss for every reader).
#[inline]
pub fn is_marker(bytes: &[u8]) -> bool {
    bytes.len() == MARKER_LEN && bytes.starts_with(MARKER_MAGIC)
}

/// When the marker `bytes` lapses (ms since the Unix epoch), or `None` when they are not one.
pub fn marker_until(bytes: &[u8]) -> Option<u64> {
    is_marker(bytes).then(|| {
        let mut until = [0; 8];
        until.copy_from_slice(&bytes[MARKER_LEN - 8..]);
        u64::from_le_bytes(until)
    })
}

/// How long a lease lasts for a cache whose `lock_timeout` is `lock_timeout`: that long, and
/// at least a second (a zero `lock_timeout` means "never wait", not "never store").
pub fn lease_for(lock_timeout: Duration) -> Duration {
    lock_timeout.max(Duration::from_secs(1))
}

/// The in-process side of leases: counters, each bumped by every change of the entries that
/// map to it (a write, a removal; a clear bumps them all). A computation notes its stripe's
/// count when it begins; its fill lands only if the count is still the same. For the memory
/// backend, whose entries no other process sees, and for a local tier's copies.
pub(crate) struct Stripes(Box<[AtomicU64]>);

/// A stripe's count, noted when a computation (or a shared read) began, and when that was
/// (a [`clock`](crate::clock) reading: a local tier counts its copy's `ttl` from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) count: u64,
    pub(crate) taken: u64,
}

impl Stamp {
    /// Whether no change of `stripe` came in since this stamp was taken of it.
    pub(crate) fn current(&self, stripe: &AtomicU64) -> bool {
        stripe.load(Ordering::SeqCst) == self.count
    }
}

/// How many stripes a cache keeps: a change to one entry makes a concurrent fill of another
/// in its stripe refuse, so enough that this is rare, few enough to bump them all on a clear.
const STRIPES: usize = 256;

impl Stripes {
    pub(crate) fn new() -> Self {
        Stripes((0..STRIPES).map(|_| AtomicU64::new(0)).collect())
    }

    /// The stripe of an entry whose key hashes to `hash`.
    pub(crate) fn of(&self, hash: usize) -> &AtomicU64 {
        &self.0[hash % STRIPES]
    }

    /// The stripe of the in-process key `key` (by the memory store's own hash of it).
    pub(crate) fn of_key(&self, key: &[u8]) -> &AtomicU64 {
        self.of(crate::backend::memory::key_hash(key) as usize)
    }

    /// Marks a change of every entry.
    pub(crate) fn bump_all(&self) {
        for stripe in self.0.iter() {
            stripe.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The stamp of `stripe` now.
pub(crate) fn stamp(stripe: &AtomicU64) -> Stamp {
    Stamp {
        count: stripe.load(Ordering::SeqCst),
        taken: crate::clock::now_nanos(),
    }
}

/// Marks a change of an entry of `stripe`.
pub(crate) fn bump(stripe: &AtomicU64) {
    stripe.fetch_add(1, Ordering::SeqCst);
}
