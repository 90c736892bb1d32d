//! The local tier: typed values in process memory in front of a byte-storing cache
//! (`local = { max_entries, max_bytes, ttl }`). A hit is a memory hit (the in-process key, no
//! digest, no decoding); a miss reads the shared backend and fills the tier.
//!
//! A local entry never outlives the tier's `ttl`, nor the shared entry's own boundaries (it is
//! fresh while the shared entry is, then stale for what is left of its windows). Where the
//! backend offers [invalidations](crate::coherence) (Redis), every write, removal and clear in
//! any process drops the entry from every other process's tier; while that channel is down the
//! tier is empty and bypassed, so a lost message never leaves a stale entry behind.
//!
//! A fill races with invalidations: a value read from the shared backend may be replaced there,
//! and its invalidation handled, before the fill lands. Each fill therefore notes a stamp of its
//! key's stripe before it reads; every invalidation (and this process's own writes, and a lost
//! channel) advances the stamps it concerns before it removes entries; a fill that finds its
//! stamp moved after inserting removes what it inserted.
//!
//! A channel that reports how far it has caught up ([`Invalidations::caught_up_within`]:
//! Redis's subscriber pings every half `timeout` and reports each answer) also bounds how far
//! behind the tier may serve: a copy is served only while every message published up to the
//! cache's `timeout` ago has been handled. A process that was stopped (`SIGSTOP`, a VM pause, a
//! long GC-like stall) holds its pending messages in its socket; until its subscriber has read
//! past them, its tier answers nothing and calls read the shared backend.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::backend::memory::{MemoryLimits, MemoryStore};
use crate::clock;
use crate::coherence::{Invalidation, InvalidationListener, Invalidations};
use crate::envelope::{self, Expiry};
use crate::key::{Key, LocalKey};
pub(crate) use crate::lease::Stamp;
use crate::lease::{self, Stripes};
use crate::stale::Found;

/// The bounds of a local tier.
///
/// ```
/// use std::time::Duration;
/// use cachex_core::local::LocalSettings;
/// let local = LocalSettings { max_entries: Some(10_000), max_bytes: None, ttl: Duration::from_secs(30) };
/// assert_eq!(local.ttl, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSettings {
    /// At most this many entries (10,000 when neither bound is set).
    pub max_entries: Option<u64>,
    /// At most this many bytes of values, measured as their bincode size.
    pub max_bytes: Option<u64>,
    /// The longest a local entry is served: the bound on staleness wherever invalidations do
    /// not reach.
    pub ttl: Duration,
}

/// Shards of the digest index.
const INDEX_SHARDS: usize = 16;

/// The local tier of one cache.
pub(crate) struct LocalTier {
    cache: String,
    store: MemoryStore,
    ttl: Duration,
    index: Box<[Mutex<IndexShard>]>,
    /// Bumped by every invalidation: a fill lands only if its stripe's count is the one its
    /// read began with.
    stamps: Stripes,
    /// Whether the tier answers lookups and takes fills (false while invalidations may be lost).
    serving: AtomicBool,
    /// How far behind its channel the tier may serve (`None`: the channel does not say).
    caught_up_within: Option<Duration>,
    /// The [`clock`] reading from which the tier is too far behind its channel to serve:
    /// `caught_up_within` after the latest point its channel caught up to.
    serve_before: AtomicU64,
    bypasses: AtomicU64,
    invalidations: AtomicU64,
}

/// Digest → in-process key, for the entries of the tier (and some it no longer holds: those
/// are swept out once the shard has doubled since its last sweep). A digest always names the
/// same in-process key, so an entry is never wrong, only perhaps no longer needed; only the
/// sweep removes entries, so an entry the store holds is always found.
#[derive(Default)]
struct IndexShard {
    keys: HashMap<Key, LocalKey>,
    swept_at: usize,
}

/// What the tier's counters and state say, for [`Stats`](crate::Stats).
pub(crate) struct LocalState {
    pub(crate) entries: u64,
    pub(crate) bypassed: bool,
    pub(crate) bypasses: u64,
    pub(crate) invalidations: u64,
}

impl LocalTier {
    /// A tier with these bounds, fed by `channel` when there is one (it is bypassed until that
    /// channel says it is connected).
    pub(crate) fn new(cache: &str, settings: &LocalSettings, channel: Option<&dyn Invalidations>) -> Self {
        LocalTier {
            cache: cache.to_owned(),
            store: MemoryStore::new(&MemoryLimits {
                max_entries: settings.max_entries,
                max_bytes: settings.max_bytes,
                ttl: None,
                stale: Duration::ZERO,
            }),
            ttl: settings.ttl,
            index: (0..INDEX_SHARDS).map(|_| Mutex::default()).collect(),
            stamps: Stripes::new(),
            serving: AtomicBool::new(channel.is_none()),
            caught_up_within: channel.and_then(|channel| channel.caught_up_within()),
            serve_before: AtomicU64::new(u64::MAX),
            bypasses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        }
    }

    /// Whether the tier answers lookups now: its channel is up and has caught up recently
    /// enough.
    #[inline]
    pub(crate) fn serving(&self) -> bool {
        self.serving.load(Ordering::Acquire) && clock::now_nanos() < self.serve_before.load(Ordering::Acquire)
    }

    /// The channel has delivered every message published before `as_of`.
    fn caught_up_to(&self, as_of: Instant) {
        if let Some(within) = self.caught_up_within {
            self.serve_before
                .fetch_max(clock::deadline(as_of, within), Ordering::AcqRel);
        }
    }

    /// What the tier holds under `key`, when it is serving.
    #[inline]
    pub(crate) fn fetch<V: Clone + 'static>(&self, key: &[u8]) -> Option<Found<V>> {
        if !self.serving() {
            return None;
        }
        Some(self.store.fetch(key))
    }

    fn stripe(&self, digest: &Key) -> &AtomicU64 {
        self.stamps.of(usize::from(digest.0[0]))
    }

    fn index_shard(&self, digest: &Key) -> &Mutex<IndexShard> {
        &self.index[usize::from(digest.0[1]) % INDEX_SHARDS]
    }

    /// The stamp to fill `digest` with after a shared read, or `None` when the tier is not
    /// serving (nothing is filled then).
    pub(crate) fn stamp(&self, digest: &Key) -> Option<Stamp> {
        let stamp = lease::stamp(self.stripe(digest));
        self.serving().then_some(stamp)
    }

    /// Whether no invalidation of `digest`'s stripe (nor a loss of the channel) came in since
    /// `stamp`: what was read since is still the latest this process knows of.
    pub(crate) fn unchanged(&self, digest: &Key, stamp: Stamp) -> bool {
        stamp.current(self.stripe(digest)) && self.serving()
    }

    /// Fills the tier with a value read from the shared backend (whose envelope said
    /// `expiry`), unless an invalidation of its stripe came in since `stamp`; returns whether
    /// none did (the value read is still the latest this process knows of).
    pub(crate) fn fill<V: serde::Serialize + Send + Sync + 'static>(
        &self,
        key: &[u8],
        digest: &Key,
        value: V,
        expiry: Expiry,
        stamp: Stamp,
    ) -> bool {
        if let Some((fresh_for, kept_for)) = self.bounds(expiry, stamp) {
            // The store first, then the index: an index entry always names an entry inserted
            // before it (the sweep keeps it while the entry is there).
            self.store.insert_for(key, value, fresh_for, kept_for);
            self.index_insert(key, digest);
        }
        let unchanged = self.unchanged(digest, stamp);
        if !unchanged {
            self.store.remove(key);
        }
        unchanged
    }

    /// This process wrote `value` to the shared backend: the tier takes it too, unless the
    /// entry changed since `stamp` (taken before the write): another write or invalidation
    /// that came in between may be the later one, so the copy is dropped instead.
    pub(crate) fn written<V: serde::Serialize + Send + Sync + 'static>(
        &self,
        key: &[u8],
        digest: &Key,
        value: V,
        expiry: Expiry,
        stamp: Option<Stamp>,
    ) {
        let stripe = self.stripe(digest);
        let before = stripe.fetch_add(1, Ordering::SeqCst);
        let bounds = stamp.and_then(|stamp| self.bounds(expiry, stamp));
        match (stamp, bounds) {
            (Some(stamp), Some((fresh_for, kept_for))) if stamp.count == before && self.serving() => {
                self.store.insert_for(key, value, fresh_for, kept_for);
                self.index_insert(key, digest);
                if stripe.load(Ordering::SeqCst) != before + 1 || !self.serving() {
                    self.store.remove(key);
                }
            }
            _ => self.store.remove(key),
        }
    }

    /// This process removed the entry from the shared backend: the tier drops it too.
    pub(crate) fn removed(&self, key: &[u8], digest: &Key) {
        self.stripe(digest).fetch_add(1, Ordering::SeqCst);
        self.store.remove(key);
    }

    /// Drops every entry (this process cleared the cache, or the channel went down or up).
    pub(crate) fn clear(&self) {
        self.stamps.bump_all();
        // The index stays: its entries name keys by their digest (the same pairs whatever
        // was stored), and the sweep drops those no longer held.
        self.store.clear();
    }

    /// How long a copy of a shared entry with `expiry` stays fresh, then kept: within the
    /// tier's `ttl` counted from when the read (or write) it copies began (`stamp`: a copy
    /// that lands late, its process stopped in between, is kept no longer), and within the
    /// entry's own boundaries; `None` when it is already past them.
    fn bounds(&self, expiry: Expiry, stamp: Stamp) -> Option<(Duration, Duration)> {
        let now = envelope::now_millis();
        let ttl = self.ttl.saturating_sub(clock::elapsed_since(stamp.taken));
        let left = |until: u64| match until {
            0 => ttl,
            until => Duration::from_millis(until.saturating_sub(now)).min(ttl),
        };
        let kept_for = left(expiry.stored_until);
        (!kept_for.is_zero()).then(|| (left(expiry.fresh_until).min(kept_for), kept_for))
    }

    fn index_insert(&self, key: &[u8], digest: &Key) {
        let mut shard = self.index_shard(digest).lock().unwrap_or_else(PoisonError::into_inner);
        shard.keys.insert(*digest, LocalKey::from_slice(key));
        if shard.keys.len() > 2 * shard.swept_at + 256 {
            shard.keys.retain(|_, key| self.store.contains(key));
            shard.swept_at = shard.keys.len();
        }
    }

    /// Drops the entries another process changed.
    fn invalidate(&self, invalidation: Invalidation) {
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        match invalidation {
            Invalidation::Clear => self.clear(),
            Invalidation::Keys(digests) => {
                for digest in &digests {
                    self.stripe(digest).fetch_add(1, Ordering::SeqCst);
                    let key = self
                        .index_shard(digest)
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .keys
                        .get(digest)
                        .cloned();
                    if let Some(key) = key {
                        self.store.remove(&key);
                    }
                }
            }
        }
    }

    pub(crate) fn state(&self) -> LocalState {
        LocalState {
            entries: self.store.entry_count(),
            // The channel is lost (a tier behind its channel for a moment is not counted).
            bypassed: !self.serving.load(Ordering::Acquire),
            bypasses: self.bypasses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
        }
    }
}

impl InvalidationListener for LocalTier {
    fn connected(&self) {
        self.clear();
        // Caught up now: every message published from here on will be delivered.
        if let Some(within) = self.caught_up_within {
            self.serve_before
                .store(clock::deadline(Instant::now(), within), Ordering::Release);
        }
        if !self.serving.swap(true, Ordering::AcqRel) {
            tracing::info!(cache = %self.cache, "cachex local tier serving: the invalidation channel is up");
        }
    }

    fn lost(&self, reason: &str) {
        let was_serving = self.serving.swap(false, Ordering::AcqRel);
        self.clear();
        if was_serving {
            self.bypasses.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(cache = %self.cache, reason, "cachex local tier bypassed and emptied: the invalidation channel is lost; calls read the shared backend until it is back");
        }
    }

    fn message(&self, message: &[u8]) {
        if let Some(invalidation) = Invalidation::decode(message) {
            self.invalidate(invalidation);
        }
    }

    fn caught_up(&self, as_of: Instant) {
        self.caught_up_to(as_of);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A channel that reports catching up (as Redis's does) and delivers nothing by itself.
    struct Channel;

    impl Invalidations for Channel {
        fn publish(&self, _message: &[u8]) -> Result<(), crate::error::BoxError> {
            Ok(())
        }
        fn publish_async<'a>(
            &'a self,
            _message: &'a [u8],
        ) -> crate::storage::BoxFuture<'a, Result<(), crate::error::BoxError>> {
            Box::pin(async { Ok(()) })
        }
        fn subscribe(&self, _listener: std::sync::Weak<dyn InvalidationListener>) {}
        fn caught_up_within(&self) -> Option<Duration> {
            Some(Duration::from_secs(1))
        }
    }

    fn tier(ttl: Duration) -> LocalTier {
        LocalTier::new(
            "t",
            &LocalSettings {
                max_entries: Some(100),
                max_bytes: None,
                ttl,
            },
            Some(&Channel),
        )
    }

    fn far() -> Expiry {
        Expiry::after(Some(Duration::from_secs(600)), Duration::ZERO)
    }

    fn other(invalidation: Invalidation) -> Vec<u8> {
        let mut message = invalidation.encode();
        message[4] ^= 0xff; // another process's origin
        message
    }

    #[test]
    fn a_tier_serves_only_while_its_channel_is_up() {
        let tier = tier(Duration::from_secs(60));
        assert!(tier.fetch::<u32>(b"k").is_none(), "bypassed before the channel is up");
        assert!(tier.stamp(&Key([1; 32])).is_none());
        tier.connected();
        let stamp = tier.stamp(&Key([1; 32])).unwrap();
        tier.fill(b"k", &Key([1; 32]), 7u32, far(), stamp);
        assert!(matches!(tier.fetch::<u32>(b"k"), Some(Found::Fresh(7))));
        tier.lost("test");
        assert!(tier.fetch::<u32>(b"k").is_none());
        tier.connected();
        assert!(
            matches!(tier.fetch::<u32>(b"k"), Some(Found::Miss)),
            "emptied by the loss"
        );
        assert_eq!(tier.state().bypasses, 1);
    }

    #[test]
    fn a_tier_serves_only_while_its_channel_has_caught_up_recently() {
        let tier = tier(Duration::from_secs(60));
        tier.connected();
        let digest = Key([2; 32]);
        tier.fill(b"k", &digest, 7u32, far(), tier.stamp(&digest).unwrap());
        assert!(matches!(tier.fetch::<u32>(b"k"), Some(Found::Fresh(7))));
        // The channel last caught up to a point 1.1 s ago (1 s allowed): a stopped process's
        // pending messages may not have been read yet.
        std::thread::sleep(Duration::from_millis(1100));
        assert!(tier.fetch::<u32>(b"k").is_none(), "served while behind its channel");
        assert!(tier.stamp(&digest).is_none(), "filled while behind its channel");
        // An answer to a ping sent before the stop says nothing about what came after it.
        tier.caught_up(Instant::now() - Duration::from_millis(1050));
        assert!(tier.fetch::<u32>(b"k").is_none());
        // Caught up again: the copy is served (nothing named it meanwhile).
        tier.caught_up(Instant::now());
        assert!(matches!(tier.fetch::<u32>(b"k"), Some(Found::Fresh(7))));
    }

    #[test]
    fn an_invalidation_during_a_read_cancels_the_fill() {
        let tier = tier(Duration::from_secs(60));
        tier.connected();
        let digest = Key([3; 32]);
        let stamp = tier.stamp(&digest).unwrap();
        tier.message(&other(Invalidation::Keys(vec![digest])));
        tier.fill(b"k", &digest, 1u32, far(), stamp);
        assert!(matches!(tier.fetch::<u32>(b"k"), Some(Found::Miss)));
    }

    #[test]
    fn a_write_overtaken_by_an_invalidation_keeps_no_copy() {
        let tier = tier(Duration::from_secs(60));
        tier.connected();
        let digest = Key([4; 32]);
        // This process's write, and before it lands in the tier another process's message
        // about the same entry (its write may be the later one in Redis).
        let stamp = tier.stamp(&digest);
        tier.message(&other(Invalidation::Keys(vec![digest])));
        tier.written(b"k", &digest, 1u32, far(), stamp);
        assert!(matches!(tier.fetch::<u32>(b"k"), Some(Found::Miss)));
        // Uncontested, the write is kept.
        let stamp = tier.stamp(&digest);
        tier.written(b"k", &digest, 2u32, far(), stamp);
        assert!(matches!(tier.fetch::<u32>(b"k"), Some(Found::Fresh(2))));
    }

    #[test]
    fn an_entry_filled_after_a_sweep_is_still_found_by_its_invalidation() {
        let tier = tier(Duration::from_secs(60));
        tier.connected();
        // Enough fills in one index shard to sweep it several times.
        for n in 0..2_000u32 {
            let mut digest = [0; 32];
            digest[1] = 5; // one index shard
            digest[2..6].copy_from_slice(&n.to_le_bytes());
            let digest = Key(digest);
            assert!(tier.fill(&n.to_le_bytes(), &digest, n, far(), tier.stamp(&digest).unwrap()));
            tier.message(&other(Invalidation::Keys(vec![digest])));
            assert!(
                matches!(tier.fetch::<u32>(&n.to_le_bytes()), Some(Found::Miss)),
                "fill {n} was not found by its invalidation"
            );
        }
    }

    #[test]
    fn an_invalidation_drops_the_entry_it_names_and_no_other() {
        let tier = tier(Duration::from_secs(60));
        tier.connected();
        for (key, byte) in [(b"a", 1u8), (b"b", 2u8)] {
            let digest = Key([byte; 32]);
            tier.fill(key, &digest, u32::from(byte), far(), tier.stamp(&digest).unwrap());
        }
        tier.message(&other(Invalidation::Keys(vec![Key([1; 32])])));
        assert!(matches!(tier.fetch::<u32>(b"a"), Some(Found::Miss)));
        assert!(matches!(tier.fetch::<u32>(b"b"), Some(Found::Fresh(2))));
        tier.message(&Invalidation::Clear.encode()); // its own echo: ignored
        assert!(matches!(tier.fetch::<u32>(b"b"), Some(Found::Fresh(2))));
        tier.message(&other(Invalidation::Clear));
        assert!(matches!(tier.fetch::<u32>(b"b"), Some(Found::Miss)));
    }

    #[test]
    fn a_copy_keeps_the_shared_boundaries_within_the_tier_ttl() {
        let tier = tier(Duration::from_secs(60));
        tier.connected();
        let now = envelope::now_millis();
        let stamp = tier.stamp(&Key([0; 32])).unwrap();
        let bounds = |fresh: u64, stored: u64, stamp: Stamp| {
            tier.bounds(
                Expiry {
                    fresh_until: fresh,
                    stored_until: stored,
                },
                stamp,
            )
        };
        let within =
            |bound: Duration, upper: u64| bound <= Duration::from_secs(upper) && bound > Duration::from_secs(upper - 1);
        let (fresh, kept) = bounds(now + 10_000, now + 20_000, stamp).unwrap();
        assert!(within(fresh, 10) && within(kept, 20), "{fresh:?} {kept:?}");
        let (fresh, kept) = bounds(0, 0, stamp).unwrap();
        assert!(within(fresh, 60) && within(kept, 60), "{fresh:?} {kept:?}");
        let (fresh, kept) = bounds(now + 600_000, now + 900_000, stamp).unwrap();
        assert!(within(fresh, 60) && within(kept, 60), "{fresh:?} {kept:?}");
        assert_eq!(bounds(now - 10, now - 5, stamp), None);
        // A read that began 50 s ago (its process stopped since) is copied for what is left.
        let early = Stamp {
            taken: stamp.taken.saturating_sub(50_000_000_000),
            ..stamp
        };
        let (fresh, kept) = bounds(0, 0, early).unwrap();
        assert!(within(fresh, 10) && within(kept, 10), "{fresh:?} {kept:?}");
        let older = Stamp {
            taken: stamp.taken.saturating_sub(61_000_000_000),
            ..stamp
        };
        assert_eq!(bounds(0, 0, older), None);
    }

    #[test]
    fn the_index_stays_bounded_by_what_the_tier_holds() {
        let tier = tier(Duration::from_secs(60));
        tier.connected();
        for n in 0..20_000u32 {
            let mut digest = [0; 32];
            digest[..4].copy_from_slice(&n.to_le_bytes());
            let digest = Key(digest);
            tier.fill(&n.to_le_bytes(), &digest, n, far(), tier.stamp(&digest).unwrap());
        }
        let indexed: usize = tier.index.iter().map(|shard| shard.lock().unwrap().keys.len()).sum();
        assert!(tier.store.entry_count() <= 100);
        assert!(indexed <= INDEX_SHARDS * (2 * 100 + 256), "{indexed} index entries");
    }
}
