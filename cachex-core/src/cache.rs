//! One named cache: its settings, its backend, its counters and its in-flight computations,
//! and [`CacheHandle`], the public handle for direct get/set, invalidation and statistics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::memory::MemoryStore;
use crate::backend::Backend;
use crate::coherence::{announced, announced_async, Invalidation, InvalidationListener, Invalidations};
use crate::envelope::{self, DecodeError, Expiry, SigningKeys, Verified};
use crate::error::{BoxError, Error};
use crate::flight::{Flights, Joined, Leader, Waited};
use crate::key::{CallKey, Key, Seed};
use crate::lease::{self, Lease, Stamp, Stripes};
use crate::local::{LocalSettings, LocalTier};
use crate::stale::{Found, Stale, StaleWindows};
use crate::stats::{Counters, Operation, Stats};
use crate::storage::{AsyncStorage, Storage, StorageKey};

/// What a cached call does when its backend fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Log the failure, compute the value and return it (the default).
    #[default]
    Bypass,
    /// Return the error to the caller (through `E: From<cachex::Error>`).
    Fail,
}

/// A value that a cache can keep: what `#[cached]` requires of a return value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached",
    label = "a cached value must be Serialize + DeserializeOwned + Clone + Send + Sync + 'static",
    note = "derive serde's Serialize and Deserialize and Clone for it, or return a type that has them"
)]
pub trait CacheValue: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> CacheValue for T {}

/// The settings of one cache that the runtime needs (the rest went into building its backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// The cache's name.
    pub name: String,
    /// The namespace of its entries in a shared store.
    pub prefix: String,
    /// How long an entry is fresh (`None` = forever).
    pub ttl: Option<Duration>,
    /// How long after `ttl` a stale entry is still served (needs a `ttl`).
    pub stale: StaleWindows,
    /// What a backend failure does.
    pub on_error: OnError,
    /// Argument type name → encoder name.
    pub encoders: BTreeMap<String, String>,
    /// The keys that sign and verify stored values (byte-storing backends; `None` = unsigned).
    pub signing: Option<SigningKeys>,
    /// How long a call waits for another call computing the same key before it computes by
    /// itself ([`DEFAULT_LOCK_TIMEOUT`] unless configured).
    pub lock_timeout: Duration,
    /// A local tier in front of a byte-storing backend (`None` = none; the memory backend
    /// ignores it).
    pub local: Option<LocalSettings>,
}

/// How long a call waits for a concurrent computation of its key when `lock_timeout` is not
/// configured.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

impl CacheSettings {
    /// Settings with the defaults: prefix `cachex:<name>`, no TTL, `bypass`, no encoders, a
    /// lock timeout of [`DEFAULT_LOCK_TIMEOUT`].
    ///
    /// ```
    /// let settings = cachex_core::CacheSettings::new("fib");
    /// assert_eq!(settings.prefix, "cachex:fib");
    /// assert_eq!(settings.lock_timeout, cachex_core::DEFAULT_LOCK_TIMEOUT);
    /// ```
    pub fn new(name: &str) -> Self {
        CacheSettings {
            name: name.to_owned(),
            prefix: format!("cachex:{name}"),
            ttl: None,
            stale: StaleWindows::default(),
            on_error: OnError::Bypass,
            encoders: BTreeMap::new(),
            signing: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            local: None,
        }
    }
}

/// One named cache.
pub struct Cache {
    pub(crate) settings: CacheSettings,
    /// The seed of direct-access keys (through a [`CacheHandle`]).
    direct: Seed,
    backend: Backend,
    pub(crate) counters: Counters,
    pub(crate) flights: Flights,
    /// The local tier in front of a byte-storing backend, if configured.
    local: Option<Arc<LocalTier>>,
    /// Whether a call's key needs its digest at once (see [`Cache::digests_eagerly`]).
    eager_digest: bool,
    /// The shared reads of a tiered cache in flight: concurrent local misses of one key make
    /// one read of the shared backend.
    reads: Flights,
    /// Whether a value that failed verification was logged at `warn` already (once a cache).
    unverified_logged: AtomicBool,
    /// The memory backend's leases: bumped by every write, removal and clear.
    changes: Stripes,
}

/// The lease of one computation of a key's value, taken before it began (see
/// [`crate::lease`]).
pub(crate) struct Leased {
    /// The stripe's count when it began: of the memory backend, or of the local tier in front
    /// of a shared one (`None` while the tier is bypassed).
    stamp: Option<Stamp>,
    /// The shared backend's lease, or why none could be taken (memory: unguarded).
    shared: Result<Lease, Error>,
    taken: Instant,
}

/// What became of a computed value's fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filled {
    /// It was stored.
    Landed,
    /// The entry changed since the computation began (removed, cleared, written, or leased by
    /// a later computation): the value is this call's alone.
    Overtaken,
    /// Another computation holds the entry's lease and stores its own value.
    HeldElsewhere,
}

/// What a read of stored bytes gave.
enum Read<V> {
    Found(Found<V>),
    Corrupt(DecodeError),
}

/// A value read from a byte-storing backend.
struct Opened<V> {
    found: Found<V>,
    /// The envelope's boundaries, when it was read.
    expiry: Option<Expiry>,
}

impl Cache {
    /// A cache with these settings over this backend. With a local tier in front of a backend
    /// that offers invalidations (Redis), the tier subscribes to them now (on a thread of its
    /// own) and is bypassed until that channel is up.
    pub fn new(settings: CacheSettings, backend: Backend) -> Self {
        let local = match (&settings.local, &backend) {
            (Some(local), Backend::Bytes { invalidations, .. }) => {
                let tier = Arc::new(LocalTier::new(&settings.name, local, invalidations.as_deref()));
                if let Some(invalidations) = invalidations {
                    let listener: Arc<dyn InvalidationListener> = tier.clone();
                    invalidations.subscribe(Arc::downgrade(&listener));
                }
                Some(tier)
            }
            _ => None,
        };
        Cache {
            direct: Seed::direct(&settings.name),
            eager_digest: matches!(backend, Backend::Bytes { .. }) && local.is_none(),
            settings,
            backend,
            counters: Counters::default(),
            flights: Flights::default(),
            local,
            reads: Flights::default(),
            unverified_logged: AtomicBool::new(false),
            changes: Stripes::new(),
        }
    }

    /// The cache's settings.
    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    /// A snapshot of the cache's counters, with the memory store's evictions.
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = self.counters.snapshot();
        if let Backend::Memory(store) = &self.backend {
            stats.evictions = store.evictions();
            stats.expirations = store.expirations();
        }
        if let Some(tier) = &self.local {
            let state = tier.state();
            stats.local_entries = state.entries;
            stats.local_bypassed = state.bypassed;
            stats.local_bypasses = state.bypasses;
            stats.invalidations = state.invalidations;
        }
        stats
    }

    /// The backend kind: `memory`, `file`, `redis`, `mongodb` or `memcached`.
    pub(crate) fn kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// Starts one computation whose value is to be cached: [`Load::finish`] counts it (and
    /// times it, feature `metrics`); a load dropped unfinished (a panic, a cancelled future)
    /// counts as a failure.
    pub(crate) fn load(&self) -> Load<'_> {
        Load {
            cache: self,
            started: crate::metrics::start(),
            finished: false,
        }
    }

    /// Whether a call's key needs its digest at once: the backend stores bytes under it (every
    /// backend but memory) and no local tier answers hits by the in-process key first.
    #[inline]
    pub(crate) fn digests_eagerly(&self) -> bool {
        self.eager_digest
    }

    fn storage_key(&self, key: &CallKey<'_>) -> StorageKey<'_> {
        StorageKey::new(&self.settings.prefix, key.digest())
    }

    /// Runs one operation on the byte-storing backend: timed (feature `metrics`), its failure
    /// counted and logged.
    fn op<T>(&self, operation: Operation, run: impl FnOnce() -> Result<T, BoxError>) -> Result<T, Error> {
        let started = crate::metrics::start();
        let result = run();
        crate::metrics::backend_duration(self, operation, started);
        result.map_err(|e| self.backend_error(operation, e))
    }

    /// [`Cache::op`], awaiting the backend.
    async fn op_async<T>(
        &self,
        operation: Operation,
        run: impl std::future::Future<Output = Result<T, BoxError>>,
    ) -> Result<T, Error> {
        let started = crate::metrics::start();
        let result = run.await;
        crate::metrics::backend_duration(self, operation, started);
        result.map_err(|e| self.backend_error(operation, e))
    }

    fn backend_error(&self, operation: Operation, source: BoxError) -> Error {
        self.counters.error();
        self.counters.backend_error(operation);
        let error = Error::Backend {
            cache: self.settings.name.clone(),
            backend: self.kind(),
            source,
        };
        tracing::warn!(cache = %self.settings.name, error = %error, "cachex backend error");
        error
    }

    /// Verifies (when the cache signs its values) and decodes the bytes read under
    /// `storage_key`; `counted` = the read counts as a hit or a miss.
    fn open<V: CacheValue>(
        &self,
        key: &CallKey<'_>,
        storage_key: &StorageKey<'_>,
        bytes: Option<Vec<u8>>,
        started: Option<Instant>,
        counted: bool,
    ) -> Opened<V> {
        let mut expiry = None;
        let read = match bytes {
            None => Read::Found(Found::Miss),
            // Another computation's lease: nothing there yet.
            Some(bytes) if lease::is_marker(&bytes) => Read::Found(Found::Miss),
            Some(bytes) => match self.verify(storage_key, bytes) {
                Err(e) => Read::Corrupt(e),
                Ok(bytes) => {
                    expiry = envelope::read_expiry(&bytes);
                    let fresh_until = expiry.map_or(0, |expiry| expiry.fresh_until);
                    match envelope::decode_owned::<V>(bytes) {
                        Ok(value) => Read::Found(freshness(value, fresh_until)),
                        Err(DecodeError::Expired) => Read::Found(Found::Miss),
                        Err(e) => Read::Corrupt(e),
                    }
                }
            },
        };
        let found = self.count(key, read, started, counted);
        Opened { expiry, found }
    }

    /// The bytes, if they verify with the cache's keys (or it signs nothing). An entry signed
    /// with a fallback key is served as it is and never written back re-signed: a write on
    /// the read path could land after a removal or a newer write of the entry by another
    /// process and bring the old value back; the entry is signed with the current key at its
    /// next write, and keeps verifying while its fallback key is listed.
    fn verify(&self, storage_key: &StorageKey<'_>, bytes: Vec<u8>) -> Result<Vec<u8>, DecodeError> {
        let Some(keys) = &self.settings.signing else {
            return Ok(bytes);
        };
        match keys.verify(&storage_key.text(), &bytes) {
            Ok(Verified::Current | Verified::Fallback) => Ok(bytes),
            Err(reason) => Err(reason),
        }
    }

    fn count<V>(&self, key: &CallKey<'_>, read: Read<V>, started: Option<Instant>, counted: bool) -> Found<V> {
        let latency_us = started.map_or(0, |started| started.elapsed().as_micros() as u64);
        if !counted {
            return match read {
                Read::Found(found) => found,
                Read::Corrupt(_) => Found::Miss,
            };
        }
        match read {
            Read::Found(found) => {
                self.count_found(key, &found, latency_us);
                found
            }
            Read::Corrupt(reason @ (DecodeError::Unsigned | DecodeError::BadSignature)) => {
                self.counters.miss();
                self.counters.error();
                // A forger can write many: one warning a cache, the rest at debug level.
                if self.unverified_logged.swap(true, Ordering::Relaxed) {
                    tracing::debug!(cache = %self.settings.name, key = %short(key), %reason, "cachex stored value does not verify, recomputing");
                } else {
                    tracing::warn!(cache = %self.settings.name, key = %short(key), %reason, "cachex stored value does not verify (forged, unsigned, signed with another key or moved from another entry), recomputing; later ones are logged at debug level");
                }
                Found::Miss
            }
            Read::Corrupt(reason) => {
                self.counters.miss();
                self.counters.error();
                tracing::warn!(cache = %self.settings.name, key = %short(key), %reason, "cachex stored value unusable, recomputing");
                Found::Miss
            }
        }
    }

    /// Counts a lookup: a hit when it found a fresh value, a miss otherwise.
    #[inline]
    fn count_found<V>(&self, key: &CallKey<'_>, found: &Found<V>, latency_us: u64) {
        match found {
            Found::Fresh(_) => {
                self.counters.hit();
                tracing::trace!(cache = %self.settings.name, key = %short(key), latency_us, "cachex hit");
            }
            Found::Stale(stale) => {
                self.counters.miss();
                tracing::trace!(cache = %self.settings.name, key = %short(key), latency_us, past_ttl = ?stale.past, "cachex stale");
            }
            Found::Miss => {
                self.counters.miss();
                tracing::trace!(cache = %self.settings.name, key = %short(key), latency_us, "cachex miss");
            }
        }
    }

    #[inline]
    fn memory_lookup<V: CacheValue>(&self, store: &MemoryStore, key: &CallKey<'_>, counted: bool) -> Found<V> {
        let found = store.fetch::<V>(key.local());
        if counted {
            self.count_found(key, &found, 0);
        }
        found
    }

    /// What the local tier answers for `key`: a fresh or a stale value; `None` when it holds
    /// nothing (or is bypassed), and the shared backend is to be read.
    #[inline]
    fn local_lookup<V: CacheValue>(&self, tier: &LocalTier, key: &CallKey<'_>, counted: bool) -> Option<Found<V>> {
        let found = tier.fetch::<V>(key.local())?;
        match &found {
            Found::Miss => return None,
            Found::Fresh(_) if counted => {
                self.counters.local_hit();
                tracing::trace!(cache = %self.settings.name, key = %short(key), "cachex local hit");
            }
            _ if counted => self.count_found(key, &found, 0),
            _ => {}
        }
        Some(found)
    }

    /// Reads `key` from the blocking side of the shared backend.
    fn read_shared<V: CacheValue>(
        &self,
        blocking: &dyn Storage,
        key: &CallKey<'_>,
        digest: Key,
        counted: bool,
    ) -> Result<Opened<V>, Error> {
        let started = tracing::enabled!(tracing::Level::TRACE).then(Instant::now);
        let storage_key = StorageKey::new(&self.settings.prefix, digest);
        let bytes = self.op(Operation::Get, || blocking.get(&storage_key))?;
        Ok(self.open(key, &storage_key, bytes, started, counted))
    }

    /// Reads `key` from the async side of the shared backend.
    async fn read_shared_async<V: CacheValue>(
        &self,
        nonblocking: &dyn AsyncStorage,
        key: &CallKey<'_>,
        digest: Key,
        counted: bool,
    ) -> Result<Opened<V>, Error> {
        let started = tracing::enabled!(tracing::Level::TRACE).then(Instant::now);
        let storage_key = StorageKey::new(&self.settings.prefix, digest);
        let bytes = self.op_async(Operation::Get, nonblocking.get(&storage_key)).await?;
        Ok(self.open(key, &storage_key, bytes, started, counted))
    }

    /// Copies a fresh value read from the shared backend into the local tier; returns whether
    /// what was read is still current: no invalidation of its key came in during the read
    /// (`read` = the stamp taken before it; `None` while the tier is bypassed, when nothing is
    /// known either way).
    fn copy_read<V: CacheValue>(
        &self,
        tier: &LocalTier,
        key: &CallKey<'_>,
        digest: &Key,
        read: Option<Stamp>,
        opened: &Opened<V>,
    ) -> bool {
        let Some(stamp) = read else {
            return true;
        };
        // Only fresh values: a stale copy would restart its `past` from now.
        match (opened.expiry, &opened.found) {
            (Some(expiry), Found::Fresh(value)) => tier.fill(key.local(), digest, value.clone(), expiry, stamp),
            _ => tier.unchanged(digest, stamp),
        }
    }

    /// What a caller that did not read the shared backend itself got from the reader of its
    /// key, counted as its own lookup; when the reader shared nothing, what the tier holds now
    /// (it may have found the tier filled). `None`: read it here.
    fn joined_read<V: CacheValue>(
        &self,
        tier: &LocalTier,
        key: &CallKey<'_>,
        waited: Waited<Found<V>>,
        counted: bool,
    ) -> Option<Found<V>> {
        match waited {
            Waited::Value(found) => {
                if counted {
                    self.count_found(key, &found, 0);
                }
                Some(found)
            }
            Waited::Nothing { .. } | Waited::TimedOut => self.local_lookup(tier, key, counted),
        }
    }

    /// After the shared read of a local miss (`stamp` taken before it): fills the tier, and
    /// when this call leads the read, hands what it read to the callers that joined it, unless
    /// an invalidation overtook the read (then that value is this call's alone).
    fn hand_over<V: CacheValue>(
        &self,
        tier: &LocalTier,
        key: &CallKey<'_>,
        digest: &Key,
        stamp: Option<Stamp>,
        opened: Opened<V>,
        leader: Option<Leader<'_>>,
    ) -> Found<V> {
        // Callers from now on may come after an invalidation that the check below does not
        // see: they read for themselves.
        if let Some(leader) = &leader {
            leader.close();
        }
        let current = self.copy_read(tier, key, digest, stamp, &opened);
        if let Some(mut leader) = leader {
            leader.share_or_fail(current.then_some(&opened.found));
        }
        opened.found
    }

    /// A local miss: one caller per key reads the shared backend and fills the tier; the
    /// concurrent ones take what it read.
    fn read_through<V: CacheValue>(
        &self,
        tier: &LocalTier,
        blocking: &dyn Storage,
        key: &CallKey<'_>,
        counted: bool,
    ) -> Result<Found<V>, Error> {
        let leader = match self.reads.join_blocking(key.local()) {
            Joined::Leader(leader) => {
                // A reader that finished between this call's local miss and its join has
                // filled the tier (its waiters look there too: nothing is shared).
                if let Some(found) = self.local_lookup(tier, key, counted) {
                    return Ok(found);
                }
                Some(leader)
            }
            Joined::Waiter(waiter) => {
                let waited = waiter.wait::<Found<V>>(self.settings.lock_timeout);
                if let Some(found) = self.joined_read(tier, key, waited, counted) {
                    return Ok(found);
                }
                None
            }
            Joined::Reentered => None,
        };
        let digest = key.digest();
        let stamp = tier.stamp(&digest);
        let opened = self.read_shared::<V>(blocking, key, digest, counted)?;
        Ok(self.hand_over(tier, key, &digest, stamp, opened, leader))
    }

    /// [`Cache::read_through`], awaiting the backend.
    async fn read_through_async<V: CacheValue>(
        &self,
        tier: &LocalTier,
        nonblocking: &dyn AsyncStorage,
        key: &CallKey<'_>,
        counted: bool,
    ) -> Result<Found<V>, Error> {
        let leader = match self.reads.join_async(key.local()) {
            Joined::Leader(leader) => {
                if let Some(found) = self.local_lookup(tier, key, counted) {
                    return Ok(found);
                }
                Some(leader)
            }
            Joined::Waiter(waiter) => {
                let waited = waiter.wait_async::<Found<V>>(self.settings.lock_timeout).await;
                if let Some(found) = self.joined_read(tier, key, waited, counted) {
                    return Ok(found);
                }
                None
            }
            Joined::Reentered => None,
        };
        let digest = key.digest();
        let stamp = tier.stamp(&digest);
        let opened = self.read_shared_async::<V>(nonblocking, key, digest, counted).await?;
        Ok(self.hand_over(tier, key, &digest, stamp, opened, leader))
    }

    /// The value under `key`, blocking on the backend; `counted` = it counts as a hit or miss
    /// (the second look of a single-flight leader does not).
    #[inline]
    pub(crate) fn lookup<V: CacheValue>(&self, key: &CallKey<'_>, counted: bool) -> Result<Found<V>, Error> {
        match self.lookup_in_memory(key, counted) {
            Some(found) => Ok(found),
            None => self.lookup_shared(key, counted),
        }
    }

    /// The value under `key` when it is in memory (the memory backend, or a local tier's fresh
    /// or stale value): `Some(found)`, with no future to await; `None` when the backend is to
    /// be read ([`Cache::lookup_shared`]). `counted` as for [`Cache::lookup`].
    #[inline]
    pub(crate) fn lookup_in_memory<V: CacheValue>(&self, key: &CallKey<'_>, counted: bool) -> Option<Found<V>> {
        match (&self.backend, &self.local) {
            (Backend::Memory(store), _) => Some(self.memory_lookup(store, key, counted)),
            (Backend::Bytes { .. }, Some(tier)) => self.local_lookup(tier, key, counted),
            (Backend::Bytes { .. }, None) => None,
        }
    }

    /// The value under `key` read from the byte-storing backend, blocking, once
    /// [`Cache::lookup_in_memory`] had none (through the local tier's read flight, when there
    /// is a tier). Out of line: with this inside the memory hit's path, a hit took about 60 ns
    /// instead of 40.
    #[inline(never)]
    pub(crate) fn lookup_shared<V: CacheValue>(&self, key: &CallKey<'_>, counted: bool) -> Result<Found<V>, Error> {
        match (&self.backend, &self.local) {
            (Backend::Memory(store), _) => Ok(self.memory_lookup(store, key, counted)),
            (Backend::Bytes { blocking, .. }, Some(tier)) => self.read_through(tier, &**blocking, key, counted),
            (Backend::Bytes { blocking, .. }, None) => {
                Ok(self.read_shared(&**blocking, key, key.digest(), counted)?.found)
            }
        }
    }

    /// The value under `key`, awaiting the backend; `counted` as for [`Cache::lookup`].
    pub(crate) async fn lookup_async<V: CacheValue>(
        &self,
        key: &CallKey<'_>,
        counted: bool,
    ) -> Result<Found<V>, Error> {
        match self.lookup_in_memory(key, counted) {
            Some(found) => Ok(found),
            None => self.lookup_shared_async(key, counted).await,
        }
    }

    /// [`Cache::lookup_shared`], awaiting the backend.
    pub(crate) async fn lookup_shared_async<V: CacheValue>(
        &self,
        key: &CallKey<'_>,
        counted: bool,
    ) -> Result<Found<V>, Error> {
        match (&self.backend, &self.local) {
            (Backend::Memory(store), _) => Ok(self.memory_lookup(store, key, counted)),
            (Backend::Bytes { nonblocking, .. }, Some(tier)) => {
                self.read_through_async(tier, &**nonblocking, key, counted).await
            }
            (Backend::Bytes { nonblocking, .. }, None) => Ok(self
                .read_shared_async(&**nonblocking, key, key.digest(), counted)
                .await?
                .found),
        }
    }

    /// The second look of a single-flight leader (uncounted): a leader that finished between
    /// this call's lookup and its join has stored its value. With a serving local tier only the
    /// tier is read: a leader stores there before it lets the key go, unless its copy was
    /// dropped (an invalidation of its stripe during its write, or an entry already past its
    /// boundaries), and then this call computes once more rather than read the backend again
    /// on every computation.
    pub(crate) fn recheck<V: CacheValue>(&self, key: &CallKey<'_>) -> Option<V> {
        match &self.local {
            Some(tier) if tier.serving() => tier.fetch::<V>(key.local()).and_then(Found::fresh),
            _ => self.lookup::<V>(key, false).ok().and_then(Found::fresh),
        }
    }

    /// [`Cache::recheck`], awaiting the backend.
    pub(crate) async fn recheck_async<V: CacheValue>(&self, key: &CallKey<'_>) -> Option<V> {
        match &self.local {
            Some(tier) if tier.serving() => tier.fetch::<V>(key.local()).and_then(Found::fresh),
            _ => self.lookup_async::<V>(key, false).await.ok().and_then(Found::fresh),
        }
    }

    /// The envelope of `value` to store under `storage_key` until `expiry`, signed when the
    /// cache signs.
    fn encode<V: CacheValue>(&self, storage_key: &StorageKey<'_>, value: &V, expiry: Expiry) -> Result<Vec<u8>, Error> {
        let mut bytes = envelope::encode_until(value, expiry).map_err(|e| {
            self.counters.error();
            Error::Encode {
                cache: self.settings.name.clone(),
                message: e.to_string(),
            }
        })?;
        if let Some(keys) = &self.settings.signing {
            keys.sign(&storage_key.text(), &mut bytes);
        }
        Ok(bytes)
    }

    /// The boundaries of an entry written now.
    fn expiry(&self) -> Expiry {
        Expiry::after(self.settings.ttl, self.settings.stale.kept())
    }

    /// How long a backend keeps an entry: its `ttl` and the stale window after it.
    fn kept_for(&self) -> Option<Duration> {
        self.settings
            .ttl
            .map(|ttl| ttl.saturating_add(self.settings.stale.kept()))
    }

    /// Counts and logs a call answered with a stale value, under `window`.
    pub(crate) fn served_stale<V>(&self, key: &CallKey<'_>, value: V, window: &'static str) -> V {
        self.counters.stale_served();
        tracing::debug!(cache = %self.settings.name, key = %short(key), window, "cachex served a stale value");
        value
    }

    /// Counts and logs a refresh that left the stale value in place.
    pub(crate) fn refresh_failed(&self, key: &CallKey<'_>, why: &'static str) {
        self.counters.refresh_failure();
        tracing::warn!(cache = %self.settings.name, key = %short(key), "cachex refresh {why}; the stale value stays until its windows pass");
    }

    /// Counts and logs a background refresh not started: the refresh pool was full.
    pub(crate) fn refresh_skipped(&self, key: &CallKey<'_>) {
        self.counters.refresh_skipped();
        tracing::debug!(cache = %self.settings.name, key = %short(key), "cachex refresh pool full; refresh skipped");
    }

    fn stored(&self, key: &CallKey<'_>) {
        self.counters.store();
        tracing::debug!(cache = %self.settings.name, key = %short(key), "cachex store");
    }

    /// The channel that tells other processes' local tiers what changed, when this cache has
    /// a tier that it keeps coherent.
    fn invalidations(&self) -> Option<&Arc<dyn Invalidations>> {
        match (&self.backend, &self.local) {
            (
                Backend::Bytes {
                    invalidations: Some(channel),
                    ..
                },
                Some(_),
            ) => Some(channel),
            _ => None,
        }
    }

    /// The outcome of a change that was to be announced on the channel: a failure may have
    /// left the other processes untold (counted as `unannounced`).
    fn announced<T>(&self, outcome: Result<T, Error>) -> Result<T, Error> {
        if outcome.is_err() {
            self.counters.unannounced();
        }
        outcome
    }

    /// The local tier's stamp of `digest`, taken before a write to the shared backend.
    fn write_stamp(&self, digest: &Key) -> Option<Stamp> {
        self.local.as_ref().and_then(|tier| tier.stamp(digest))
    }

    /// After a write of `value` to the shared backend (and the publication of its
    /// invalidation): the local tier takes the value (unless the entry changed since `stamp`,
    /// taken before the write), or drops its copy when the write or the publication failed.
    fn after_write<V: CacheValue>(
        &self,
        key: &CallKey<'_>,
        digest: &Key,
        value: &V,
        expiry: Expiry,
        stamp: Option<Stamp>,
        written: Result<(), Error>,
    ) -> Result<(), Error> {
        if let Some(tier) = &self.local {
            match &written {
                Ok(()) => tier.written(key.local(), digest, value.clone(), expiry, stamp),
                Err(_) => tier.removed(key.local(), digest),
            }
        }
        written
    }

    /// Stores `value` under `key`, blocking on the backend.
    pub(crate) fn store<V: CacheValue>(&self, key: &CallKey<'_>, value: &V) -> Result<(), Error> {
        match &self.backend {
            Backend::Memory(store) => self.memory_write(store, key, value),
            Backend::Bytes { blocking, .. } => {
                let storage_key = self.storage_key(key);
                let expiry = self.expiry();
                let bytes = self.encode(&storage_key, value, expiry)?;
                let stamp = self.write_stamp(&storage_key.digest);
                let ttl = self.kept_for();
                let written = match self.invalidations() {
                    Some(channel) => {
                        let message = Invalidation::Keys(vec![storage_key.digest]).encode();
                        self.announced(self.op(Operation::Set, || {
                            channel.set_and_publish(&**blocking, &storage_key, &bytes, ttl, &message)
                        }))
                    }
                    None => self.op(Operation::Set, || blocking.set(&storage_key, &bytes, ttl)),
                };
                self.after_write(key, &storage_key.digest, value, expiry, stamp, written)?;
            }
        }
        self.stored(key);
        Ok(())
    }

    /// Stores `value` under `key`, awaiting the backend.
    pub(crate) async fn store_async<V: CacheValue>(&self, key: &CallKey<'_>, value: &V) -> Result<(), Error> {
        match &self.backend {
            Backend::Memory(store) => self.memory_write(store, key, value),
            Backend::Bytes { nonblocking, .. } => {
                let storage_key = self.storage_key(key);
                let expiry = self.expiry();
                let bytes = self.encode(&storage_key, value, expiry)?;
                let stamp = self.write_stamp(&storage_key.digest);
                let ttl = self.kept_for();
                let message = Invalidation::Keys(vec![storage_key.digest]).encode();
                let unsettled = self.unsettled(Some((key.local(), storage_key.digest)), &message);
                let written = match self.invalidations() {
                    Some(channel) => {
                        let both = channel.set_and_publish_async(&**nonblocking, &storage_key, &bytes, ttl, &message);
                        self.announced(self.op_async(Operation::Set, both).await)
                    }
                    None => {
                        self.op_async(Operation::Set, nonblocking.set(&storage_key, &bytes, ttl))
                            .await
                    }
                };
                unsettled.settled();
                self.after_write(key, &storage_key.digest, value, expiry, stamp, written)?;
            }
        }
        self.stored(key);
        Ok(())
    }

    /// A write to the memory backend: a change that concurrent fills of its stripe see.
    fn memory_write<V: CacheValue>(&self, store: &MemoryStore, key: &CallKey<'_>, value: &V) {
        lease::bump(self.changes.of_key(key.local()));
        store.insert(key.local(), value.clone());
    }

    /// How long a lease of this cache lasts (see [`lease::lease_for`]).
    fn lease_for(&self) -> Duration {
        lease::lease_for(self.settings.lock_timeout)
    }

    /// The lease of a memory cache's computation: its stripe's count now.
    fn memory_lease(&self, key: &CallKey<'_>) -> Leased {
        Leased {
            stamp: Some(lease::stamp(self.changes.of_key(key.local()))),
            shared: Ok(Lease::Unguarded),
            taken: Instant::now(),
        }
    }

    /// Takes the lease of a computation of `key`'s value about to begin, blocking on the
    /// backend: the fill of its value lands only if nothing changed the entry meanwhile.
    pub(crate) fn lease(&self, key: &CallKey<'_>) -> Leased {
        let Backend::Bytes { blocking, .. } = &self.backend else {
            return self.memory_lease(key);
        };
        let storage_key = self.storage_key(key);
        // The tier's stamp first: an invalidation that comes in after the shared lease is
        // then seen by the fill of the tier's copy.
        let stamp = self.write_stamp(&storage_key.digest);
        let taken = Instant::now();
        let shared = self.op(Operation::Get, || blocking.lease(&storage_key, self.lease_for()));
        Leased { stamp, shared, taken }
    }

    /// [`Cache::lease`], awaiting the backend.
    pub(crate) async fn lease_async(&self, key: &CallKey<'_>) -> Leased {
        let Backend::Bytes { nonblocking, .. } = &self.backend else {
            return self.memory_lease(key);
        };
        let storage_key = self.storage_key(key);
        let stamp = self.write_stamp(&storage_key.digest);
        let taken = Instant::now();
        let shared = self
            .op_async(Operation::Get, nonblocking.lease(&storage_key, self.lease_for()))
            .await;
        Leased { stamp, shared, taken }
    }

    /// The fill of the memory backend: lands while no change of its stripe came in since the
    /// lease (checked again once inserted: a change in between removes it).
    fn memory_fill<V: CacheValue>(
        &self,
        store: &MemoryStore,
        key: &CallKey<'_>,
        stamp: Option<Stamp>,
        value: &V,
    ) -> Filled {
        let stripe = self.changes.of_key(key.local());
        let current = || stamp.is_some_and(|stamp| stamp.current(stripe));
        if !current() {
            return Filled::Overtaken;
        }
        store.insert(key.local(), value.clone());
        if !current() {
            store.remove(key.local());
            return Filled::Overtaken;
        }
        Filled::Landed
    }

    /// What a fill under `lease` writes, when it writes: the entry, its envelope's boundaries
    /// and bytes, and how long the backend keeps it. `Ok(None)`: another computation holds
    /// the lease.
    #[allow(clippy::type_complexity)]
    fn fill_bytes<V: CacheValue>(
        &self,
        key: &CallKey<'_>,
        lease: &Lease,
        value: &V,
    ) -> Result<Option<(StorageKey<'_>, Expiry, Vec<u8>, Option<Duration>)>, Error> {
        if *lease == Lease::HeldElsewhere {
            return Ok(None);
        }
        let storage_key = self.storage_key(key);
        let expiry = self.expiry();
        let bytes = self.encode(&storage_key, value, expiry)?;
        Ok(Some((storage_key, expiry, bytes, self.kept_for())))
    }

    /// After a fill's write to the shared backend: the local tier takes the value when it
    /// landed (unless an invalidation came in since `stamp`, taken with the lease), and drops
    /// its copy when the write failed.
    fn after_fill<V: CacheValue>(
        &self,
        key: &CallKey<'_>,
        digest: &Key,
        value: &V,
        expiry: Expiry,
        stamp: Option<Stamp>,
        landed: Result<bool, Error>,
    ) -> Result<Filled, Error> {
        match landed {
            Ok(true) => self
                .after_write(key, digest, value, expiry, stamp, Ok(()))
                .map(|()| Filled::Landed),
            Ok(false) => Ok(Filled::Overtaken),
            Err(error) => {
                self.removed_locally(key, digest);
                Err(error)
            }
        }
    }

    /// Counts and logs what became of a fill whose lease was taken at `taken`.
    fn filled(&self, key: &CallKey<'_>, taken: Instant, filled: Filled) -> Filled {
        match filled {
            Filled::Landed => self.stored(key),
            Filled::Overtaken => {
                self.counters.fill_refused();
                if taken.elapsed() >= self.lease_for() {
                    tracing::warn!(cache = %self.settings.name, key = %short(key), lock_timeout = ?self.settings.lock_timeout,
                        "cachex computation outlived its lease (lock_timeout); its value was returned but not stored");
                } else {
                    tracing::debug!(cache = %self.settings.name, key = %short(key),
                        "cachex fill refused: the entry changed while its value was computed; the value was returned but not stored");
                }
            }
            Filled::HeldElsewhere => {
                tracing::debug!(cache = %self.settings.name, key = %short(key),
                    "cachex another computation holds the entry's lease; the value was returned, that one stores");
            }
        }
        filled
    }

    /// Stores a computed value under its lease, blocking on the backend: only if nothing
    /// changed the entry since the computation began. A lease that could not be taken is the
    /// fill's error; a fill that fails gives its lease up.
    pub(crate) fn fill<V: CacheValue>(&self, key: &CallKey<'_>, leased: Leased, value: &V) -> Result<Filled, Error> {
        let Leased { stamp, shared, taken } = leased;
        let lease = shared?;
        let filled = match &self.backend {
            Backend::Memory(store) => Ok(self.memory_fill(store, key, stamp, value)),
            Backend::Bytes { blocking, .. } => self.fill_shared(&**blocking, key, stamp, &lease, value),
        };
        match filled {
            Ok(filled) => Ok(self.filled(key, taken, filled)),
            Err(error) => {
                // Not stored: the marker goes, so the next computation may store.
                self.release_lease(key, &lease);
                Err(error)
            }
        }
    }

    fn fill_shared<V: CacheValue>(
        &self,
        blocking: &dyn Storage,
        key: &CallKey<'_>,
        stamp: Option<Stamp>,
        lease: &Lease,
        value: &V,
    ) -> Result<Filled, Error> {
        let Some((storage_key, expiry, bytes, ttl)) = self.fill_bytes(key, lease, value)? else {
            return Ok(Filled::HeldElsewhere);
        };
        let landed = match self.invalidations() {
            Some(channel) => {
                let message = Invalidation::Keys(vec![storage_key.digest]).encode();
                self.announced(self.op(Operation::Set, || {
                    channel.fill_and_publish(blocking, &storage_key, lease, &bytes, ttl, &message)
                }))
            }
            None => self.op(Operation::Set, || blocking.fill(&storage_key, lease, &bytes, ttl)),
        };
        self.after_fill(key, &storage_key.digest, value, expiry, stamp, landed)
    }

    /// [`Cache::fill`], awaiting the backend.
    pub(crate) async fn fill_async<V: CacheValue>(
        &self,
        key: &CallKey<'_>,
        leased: Leased,
        value: &V,
    ) -> Result<Filled, Error> {
        let Leased { stamp, shared, taken } = leased;
        let lease = shared?;
        let filled = match &self.backend {
            Backend::Memory(store) => Ok(self.memory_fill(store, key, stamp, value)),
            Backend::Bytes { nonblocking, .. } => {
                self.fill_shared_async(&**nonblocking, key, stamp, &lease, value).await
            }
        };
        match filled {
            Ok(filled) => Ok(self.filled(key, taken, filled)),
            Err(error) => {
                self.release_lease_async(key, &lease).await;
                Err(error)
            }
        }
    }

    async fn fill_shared_async<V: CacheValue>(
        &self,
        nonblocking: &dyn AsyncStorage,
        key: &CallKey<'_>,
        stamp: Option<Stamp>,
        lease: &Lease,
        value: &V,
    ) -> Result<Filled, Error> {
        let Some((storage_key, expiry, bytes, ttl)) = self.fill_bytes(key, lease, value)? else {
            return Ok(Filled::HeldElsewhere);
        };
        let message = Invalidation::Keys(vec![storage_key.digest]).encode();
        let unsettled = self.unsettled(Some((key.local(), storage_key.digest)), &message);
        let landed = match self.invalidations() {
            Some(channel) => {
                let both = channel.fill_and_publish_async(nonblocking, &storage_key, lease, &bytes, ttl, &message);
                self.announced(self.op_async(Operation::Set, both).await)
            }
            None => {
                self.op_async(Operation::Set, nonblocking.fill(&storage_key, lease, &bytes, ttl))
                    .await
            }
        };
        unsettled.settled();
        self.after_fill(key, &storage_key.digest, value, expiry, stamp, landed)
    }

    /// Gives up the lease of a computation that stored nothing (it failed), blocking on the
    /// backend, so another may fill the entry before the lease would have lapsed.
    pub(crate) fn release(&self, key: &CallKey<'_>, leased: &Leased) {
        if let Ok(lease) = &leased.shared {
            self.release_lease(key, lease);
        }
    }

    fn release_lease(&self, key: &CallKey<'_>, lease: &Lease) {
        if let (Backend::Bytes { blocking, .. }, Lease::Held(_)) = (&self.backend, lease) {
            let storage_key = self.storage_key(key);
            // A failure is logged by `op`; the marker lapses by itself.
            let _ = self.op(Operation::Delete, || blocking.release(&storage_key, lease));
        }
    }

    /// [`Cache::release`], awaiting the backend.
    pub(crate) async fn release_async(&self, key: &CallKey<'_>, leased: &Leased) {
        if let Ok(lease) = &leased.shared {
            self.release_lease_async(key, lease).await;
        }
    }

    async fn release_lease_async(&self, key: &CallKey<'_>, lease: &Lease) {
        if let (Backend::Bytes { nonblocking, .. }, Lease::Held(_)) = (&self.backend, lease) {
            let storage_key = self.storage_key(key);
            let _ = self
                .op_async(Operation::Delete, nonblocking.release(&storage_key, lease))
                .await;
        }
    }

    /// Drops `key` from the local tier, if any.
    fn removed_locally(&self, key: &CallKey<'_>, digest: &Key) {
        if let Some(tier) = &self.local {
            tier.removed(key.local(), digest);
        }
    }

    /// Removes the entry under `key`, blocking on the backend.
    pub(crate) fn remove(&self, key: &CallKey<'_>) -> Result<(), Error> {
        match &self.backend {
            Backend::Memory(store) => {
                lease::bump(self.changes.of_key(key.local()));
                store.remove(key.local());
                Ok(())
            }
            Backend::Bytes { blocking, .. } => {
                let storage_key = self.storage_key(key);
                // Announced whatever the removal's outcome: one that failed may have run.
                let removed = match self.invalidations() {
                    Some(channel) => {
                        let message = Invalidation::Keys(vec![storage_key.digest]).encode();
                        self.announced(self.op(Operation::Delete, || {
                            channel.delete_and_publish(&**blocking, &storage_key, &message)
                        }))
                    }
                    None => self.op(Operation::Delete, || blocking.delete(&storage_key)),
                };
                self.removed_locally(key, &storage_key.digest);
                removed
            }
        }
    }

    /// Removes the entry under `key`, awaiting the backend.
    pub(crate) async fn remove_async(&self, key: &CallKey<'_>) -> Result<(), Error> {
        match &self.backend {
            Backend::Memory(store) => {
                lease::bump(self.changes.of_key(key.local()));
                store.remove(key.local());
                Ok(())
            }
            Backend::Bytes { nonblocking, .. } => {
                let storage_key = self.storage_key(key);
                let message = Invalidation::Keys(vec![storage_key.digest]).encode();
                let unsettled = self.unsettled(Some((key.local(), storage_key.digest)), &message);
                let removed = match self.invalidations() {
                    Some(channel) => {
                        let both = channel.delete_and_publish_async(&**nonblocking, &storage_key, &message);
                        self.announced(self.op_async(Operation::Delete, both).await)
                    }
                    None => self.op_async(Operation::Delete, nonblocking.delete(&storage_key)).await,
                };
                unsettled.settled();
                self.removed_locally(key, &storage_key.digest);
                removed
            }
        }
    }

    fn clear_blocking(&self) -> Result<(), Error> {
        match &self.backend {
            Backend::Memory(store) => {
                self.changes.bump_all();
                store.clear();
                Ok(())
            }
            Backend::Bytes { blocking, .. } => {
                let cleared = match self.invalidations() {
                    Some(channel) => {
                        let message = Invalidation::Clear.encode();
                        // Announced whatever the outcome: a clear that failed may have removed some.
                        self.announced(self.op(Operation::Clear, || {
                            announced(blocking.clear(), || channel.publish(&message))
                        }))
                    }
                    None => self.op(Operation::Clear, || blocking.clear()),
                };
                if let Some(tier) = &self.local {
                    tier.clear();
                }
                cleared
            }
        }
    }

    async fn clear_nonblocking(&self) -> Result<(), Error> {
        match &self.backend {
            Backend::Memory(store) => {
                self.changes.bump_all();
                store.clear();
                Ok(())
            }
            Backend::Bytes { nonblocking, .. } => {
                let message = Invalidation::Clear.encode();
                let unsettled = self.unsettled(None, &message);
                let cleared = match self.invalidations() {
                    Some(channel) => {
                        let both =
                            async { announced_async(nonblocking.clear().await, channel.publish_async(&message)).await };
                        self.announced(self.op_async(Operation::Clear, both).await)
                    }
                    None => self.op_async(Operation::Clear, nonblocking.clear()).await,
                };
                unsettled.settled();
                if let Some(tier) = &self.local {
                    tier.clear();
                }
                cleared
            }
        }
    }
}

/// An async write to the shared backend under way: if its future is dropped at an await (a
/// timeout, a client gone), the write may still have reached the backend, while its
/// announcement may not have been sent: so the local copy (or, for a clear, every copy) is
/// dropped then, and the announcement is sent from a thread of its own (the other processes
/// drop their copies; this one ignores its own messages).
struct Unsettled<'a> {
    tier: Option<&'a LocalTier>,
    /// The entry's in-process key and digest; `None` = every entry.
    entry: Option<(&'a [u8], Key)>,
    /// The channel and the message that announce the write, when the cache has a channel.
    announce: Option<(Arc<dyn Invalidations>, &'a [u8])>,
    counters: &'a Counters,
    settled: bool,
}

impl Cache {
    /// The guard of an async write of `entry` (`None` = every entry) announced by `message`.
    fn unsettled<'a>(&'a self, entry: Option<(&'a [u8], Key)>, message: &'a [u8]) -> Unsettled<'a> {
        Unsettled {
            tier: self.local.as_deref(),
            entry,
            announce: self.invalidations().map(|channel| (Arc::clone(channel), message)),
            counters: &self.counters,
            settled: false,
        }
    }
}

impl Unsettled<'_> {
    /// The write finished (well or not): what follows it deals with the tier.
    fn settled(mut self) {
        self.settled = true;
    }
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        match (self.tier, self.entry) {
            (Some(tier), Some((key, digest))) => tier.removed(key, &digest),
            (Some(tier), None) => tier.clear(),
            (None, _) => {}
        }
        if let Some((channel, message)) = self.announce.take() {
            self.counters.unannounced();
            let message = message.to_vec();
            let sent = std::thread::Builder::new()
                .name("cachex-announce".into())
                .spawn(move || channel.publish(&message));
            if let Err(error) = sent {
                tracing::warn!(%error, "cachex: a dropped write could not be announced to the other processes");
            }
        }
    }
}

/// One computation whose value is to be cached.
pub(crate) struct Load<'a> {
    cache: &'a Cache,
    started: crate::metrics::Started,
    finished: bool,
}

impl Load<'_> {
    /// Counts the computation: `success` = it produced a value to cache.
    pub(crate) fn finish(mut self, success: bool) {
        self.count(success);
    }

    fn count(&mut self, success: bool) {
        self.finished = true;
        self.cache.counters.load(success);
        crate::metrics::load_duration(self.cache, self.started);
    }
}

impl Drop for Load<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.count(false);
        }
    }
}

/// A decoded value, fresh or stale as its envelope's fresh-until instant (ms since the epoch,
/// 0 = forever) says.
fn freshness<V>(value: V, fresh_until: u64) -> Found<V> {
    if fresh_until == 0 {
        return Found::Fresh(value);
    }
    let now = envelope::now_millis();
    if now < fresh_until {
        Found::Fresh(value)
    } else {
        Found::Stale(Stale {
            value,
            past: Duration::from_millis(now - fresh_until),
        })
    }
}

/// The first 8 hex digits of a key's digest, what events show.
fn short(key: &CallKey<'_>) -> String {
    key.digest().to_hex()[..8].to_owned()
}

/// A handle on one named cache: direct get/set, invalidation, statistics.
///
/// Obtained with [`cache`](crate::cache). Keys of direct access are any `Serialize` value,
/// hashed like arguments; they never collide with the entries of `#[cached]` functions.
///
/// ```
/// # fn main() -> Result<(), cachex_core::Error> {
/// let sessions = cachex_core::cache("doc_sessions")?;
/// sessions.set(&"user:42", &String::from("alice"))?;
/// assert_eq!(sessions.get::<_, String>(&"user:42")?.as_deref(), Some("alice"));
/// sessions.remove(&"user:42")?;
/// assert_eq!(sessions.get::<_, String>(&"user:42")?, None);
/// assert_eq!(sessions.stats().stores, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CacheHandle(pub(crate) Arc<Cache>);

impl CacheHandle {
    /// The cache's name.
    pub fn name(&self) -> &str {
        &self.0.settings.name
    }

    /// The backend kind: `memory`, `file`, `redis`, `mongodb` or `memcached`.
    pub fn backend(&self) -> &'static str {
        self.0.kind()
    }

    /// A snapshot of the cache's counters.
    pub fn stats(&self) -> Stats {
        self.0.stats()
    }

    fn key<K: Serialize + ?Sized>(&self, key: &K) -> Result<CallKey<'_>, Error> {
        CallKey::direct(&self.0.direct, key).ok_or_else(|| Error::Encode {
            cache: self.0.settings.name.clone(),
            message: "the key does not serialize".into(),
        })
    }

    /// The value stored under `key`, if any and fresh (a value past the cache's `ttl` is kept
    /// for its stale windows but only `#[cached]` calls serve it), blocking on the backend.
    pub fn get<K: Serialize + ?Sized, V: CacheValue>(&self, key: &K) -> Result<Option<V>, Error> {
        self.0.lookup(&self.key(key)?, true).map(Found::fresh)
    }

    /// Stores `value` under `key` with the cache's TTL, blocking on the backend.
    pub fn set<K: Serialize + ?Sized, V: CacheValue>(&self, key: &K, value: &V) -> Result<(), Error> {
        self.0.store(&self.key(key)?, value)
    }

    /// Removes the entry under `key`, blocking on the backend.
    pub fn remove<K: Serialize + ?Sized>(&self, key: &K) -> Result<(), Error> {
        self.0.remove(&self.key(key)?)
    }

    /// Removes every entry of this cache (and of no other cache), blocking on the backend.
    pub fn clear(&self) -> Result<(), Error> {
        self.0.clear_blocking()
    }

    /// The value stored under `key`, if any and fresh, awaiting the backend.
    pub async fn get_async<K: Serialize + ?Sized, V: CacheValue>(&self, key: &K) -> Result<Option<V>, Error> {
        self.0.lookup_async(&self.key(key)?, true).await.map(Found::fresh)
    }

    /// Stores `value` under `key` with the cache's TTL, awaiting the backend.
    pub async fn set_async<K: Serialize + ?Sized, V: CacheValue>(&self, key: &K, value: &V) -> Result<(), Error> {
        self.0.store_async(&self.key(key)?, value).await
    }

    /// Removes the entry under `key`, awaiting the backend.
    pub async fn remove_async<K: Serialize + ?Sized>(&self, key: &K) -> Result<(), Error> {
        self.0.remove_async(&self.key(key)?).await
    }

    /// Removes every entry of this cache (and of no other cache), awaiting the backend.
    pub async fn clear_async(&self) -> Result<(), Error> {
        self.0.clear_nonblocking().await
    }
}

impl std::fmt::Debug for CacheHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheHandle")
            .field("name", &self.0.settings.name)
            .field("backend", &self.backend())
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Mutex, Weak};

    use super::*;
    use crate::coherence::InvalidationListener;
    use crate::storage::BoxFuture;

    /// A store in a map whose async writes can be made to hang.
    #[derive(Clone, Default)]
    struct MapStore {
        entries: Arc<Mutex<HashMap<String, Vec<u8>>>>,
        hang: Arc<AtomicBool>,
    }

    impl Storage for MapStore {
        fn get(&self, key: &StorageKey<'_>) -> Result<Option<Vec<u8>>, BoxError> {
            Ok(self.entries.lock().unwrap().get(&key.text()).cloned())
        }
        fn set(&self, key: &StorageKey<'_>, value: &[u8], _ttl: Option<Duration>) -> Result<(), BoxError> {
            self.entries.lock().unwrap().insert(key.text(), value.to_vec());
            Ok(())
        }
        fn delete(&self, key: &StorageKey<'_>) -> Result<(), BoxError> {
            self.entries.lock().unwrap().remove(&key.text());
            Ok(())
        }
        fn clear(&self) -> Result<(), BoxError> {
            self.entries.lock().unwrap().clear();
            Ok(())
        }
    }

    impl AsyncStorage for MapStore {
        fn get<'a>(&'a self, key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>> {
            Box::pin(async move { Storage::get(self, key) })
        }
        fn set<'a>(
            &'a self,
            key: &'a StorageKey<'a>,
            value: &'a [u8],
            ttl: Option<Duration>,
        ) -> BoxFuture<'a, Result<(), BoxError>> {
            Box::pin(async move {
                if self.hang.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                Storage::set(self, key, value, ttl)
            })
        }
        fn delete<'a>(&'a self, key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<(), BoxError>> {
            Box::pin(async move { Storage::delete(self, key) })
        }
        fn clear(&self) -> BoxFuture<'_, Result<(), BoxError>> {
            Box::pin(async move { Storage::clear(self) })
        }
    }

    /// A channel that reaches no other process, up at once.
    struct Alone;

    impl Invalidations for Alone {
        fn publish(&self, _message: &[u8]) -> Result<(), BoxError> {
            Ok(())
        }
        fn publish_async<'a>(&'a self, _message: &'a [u8]) -> BoxFuture<'a, Result<(), BoxError>> {
            Box::pin(async { Ok(()) })
        }
        fn subscribe(&self, listener: Weak<dyn InvalidationListener>) {
            if let Some(listener) = listener.upgrade() {
                listener.connected();
            }
        }
    }

    #[test]
    fn a_cancelled_async_write_drops_the_local_copy() {
        let store = MapStore::default();
        let mut settings = CacheSettings::new("cancelled");
        settings.local = Some(LocalSettings {
            max_entries: None,
            max_bytes: None,
            ttl: Duration::from_secs(60),
        });
        let backend = Backend::bytes("map", store.clone()).with_invalidations(Alone);
        let handle = CacheHandle(Arc::new(Cache::new(settings, backend)));
        handle.set(&"k", &1u32).unwrap();
        assert_eq!(handle.get::<_, u32>(&"k").unwrap(), Some(1));
        assert_eq!(handle.stats().local_hits, 1);

        // A write whose future is dropped while the backend has not answered: it may have
        // reached the backend, so the copy cannot stay.
        store.hang.store(true, Ordering::SeqCst);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let write = runtime
            .block_on(async { tokio::time::timeout(Duration::from_millis(20), handle.set_async(&"k", &2u32)).await });
        assert!(write.is_err(), "the write hangs");
        assert_eq!(handle.get::<_, u32>(&"k").unwrap(), Some(1));
        assert_eq!(handle.stats().local_hits, 1, "read from the backend, not the tier");
        assert_eq!(handle.stats().shared_hits, 1);
    }
}
