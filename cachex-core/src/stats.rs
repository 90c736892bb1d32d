//! Per-cache counters: lookups, stores, computations, errors by operation, and what stale
//! serving did.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of one cache's counters, from [`CacheHandle::stats`](crate::CacheHandle::stats).
///
/// ```
/// let stats = cachex_core::Stats::default();
/// assert_eq!(stats.hits + stats.misses, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Lookups that found a fresh value (`local_hits + shared_hits`).
    pub hits: u64,
    /// Hits answered by the local tier, from process memory.
    pub local_hits: u64,
    /// Hits answered by the backend (every hit of a cache without a local tier).
    pub shared_hits: u64,
    /// Lookups that found no fresh value (absent, expired, stale, corrupt, or of another type).
    pub misses: u64,
    /// Backend failures and undecodable entries.
    pub errors: u64,
    /// Values written to the backend.
    pub stores: u64,
    /// Calls answered with a value past its `ttl` (`stale_while_revalidate`, `stale_if_error`).
    pub stale_served: u64,
    /// Computations of a key that held a stale value: background and inline refreshes, and
    /// the computations that `stale_if_error` stands behind.
    pub refreshes: u64,
    /// Refreshes that left the stale value in place: an `Err`, a `None`, a panic (and, in
    /// the background, a store that failed).
    pub refresh_failures: u64,
    /// Background refreshes not started because the refresh pool was full (the stale value was
    /// served; a later call starts the refresh).
    pub refreshes_skipped: u64,
    /// Computations to cache (on a miss, or refreshing a stale value) that produced a value.
    pub loads: u64,
    /// Computations to cache that produced none (an `Err`, a `None`, a panic, a cancelled
    /// future).
    pub load_failures: u64,
    /// Entries the memory backend evicted to stay within its bounds (other backends do not
    /// report theirs).
    pub evictions: u64,
    /// Entries the memory backend dropped when a lookup found them expired.
    pub expirations: u64,
    /// Backend failures by operation (part of `errors`).
    pub backend_errors: Operations,
    /// Entries held by the local tier (expired ones included until read or evicted).
    pub local_entries: u64,
    /// Whether the local tier is bypassed now: its invalidation channel is down (or not yet
    /// up), so calls read the backend.
    pub local_bypassed: bool,
    /// How many times the invalidation channel was lost (each emptied and bypassed the tier).
    pub local_bypasses: u64,
    /// Invalidation messages from other processes applied to the local tier.
    pub invalidations: u64,
    /// Writes, removals and clears of a tiered cache that failed or were dropped, so that
    /// the other processes may not have been told (their tiers keep their copies up to the
    /// local `ttl`). Each is also an error of its operation.
    pub unannounced: u64,
    /// Computed values not stored because their entry changed while they were computed (it
    /// was removed, cleared or written, here or in another process; or their lease lapsed):
    /// each was returned to its caller (see [leases](crate::lease)).
    pub fills_refused: u64,
}

/// A count per backend operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Operations {
    /// Reads.
    pub get: u64,
    /// Writes.
    pub set: u64,
    /// Removals of one entry.
    pub delete: u64,
    /// Removals of every entry.
    pub clear: u64,
}

/// One operation on a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A read.
    Get,
    /// A write.
    Set,
    /// A removal of one entry.
    Delete,
    /// A removal of every entry.
    Clear,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 4] = [Operation::Get, Operation::Set, Operation::Delete, Operation::Clear];

    /// Its name in metrics and events: `get`, `set`, `delete`, `clear`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Set => "set",
            Operation::Delete => "delete",
            Operation::Clear => "clear",
        }
    }
}

impl Operations {
    /// The count of `operation`.
    ///
    /// ```
    /// use cachex_core::stats::{Operation, Operations};
    /// let counts = Operations { set: 2, ..Operations::default() };
    /// assert_eq!(counts.of(Operation::Set), 2);
    /// ```
    pub fn of(&self, operation: Operation) -> u64 {
        match operation {
            Operation::Get => self.get,
            Operation::Set => self.set,
            Operation::Delete => self.delete,
            Operation::Clear => self.clear,
        }
    }
}

/// Counter slots a thread can have to itself: plain loads and stores count there (no atomic
/// read-modify-write on a hit), and no other thread writes them.
const OWN_SLOTS: usize = 32;
/// Stripes shared by the threads beyond `OWN_SLOTS` (atomic adds).
const SHARED_STRIPES: usize = 8;

/// One set of counters, alone on its cache lines (128 bytes: adjacent-line prefetching pairs
/// lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe {
    hits: AtomicU64,
    local_hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    stores: AtomicU64,
    stale_served: AtomicU64,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    refreshes_skipped: AtomicU64,
    loads: AtomicU64,
    load_failures: AtomicU64,
    unannounced: AtomicU64,
    fills_refused: AtomicU64,
    backend_errors: [AtomicU64; 4],
}

/// The live counters of one cache, one set per thread: a hit on one thread never writes the
/// cache line that a hit on another thread writes (one shared counter made every hit at two
/// threads a cache-line transfer), and a thread with a slot of its own counts without an
/// atomic read-modify-write. A snapshot sums every set.
#[derive(Debug)]
pub(crate) struct Counters {
    own: Box<[Stripe]>,
    shared: [Stripe; SHARED_STRIPES],
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            own: (0..OWN_SLOTS).map(|_| Stripe::default()).collect(),
            shared: Default::default(),
        }
    }
}

/// Where a thread counts.
#[derive(Clone, Copy)]
enum Slot {
    /// A slot no other thread writes while this one lives.
    Own(usize),
    /// A stripe other threads may write too.
    Shared(usize),
}

/// The slots no living thread owns, for threads to come (a slot keeps its counts).
static FREE_SLOTS: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());
/// The first slot never given out.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// A thread's slot, given back when the thread exits.
struct ThreadSlot(Cell<Option<Slot>>);

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        if let Some(Slot::Own(slot)) = self.0.get() {
            FREE_SLOTS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(slot);
        }
    }
}

/// This thread's slot: its own while one is free, else a shared stripe.
#[inline]
fn slot() -> Slot {
    thread_local! {
        static SLOT: ThreadSlot = const { ThreadSlot(Cell::new(None)) };
    }
    SLOT.try_with(|slot| match slot.0.get() {
        Some(assigned) => assigned,
        None => {
            let assigned = assign();
            slot.0.set(Some(assigned));
            assigned
        }
    })
    .unwrap_or(Slot::Shared(0))
}

#[cold]
fn assign() -> Slot {
    if let Some(free) = FREE_SLOTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .pop()
    {
        return Slot::Own(free);
    }
    match NEXT_SLOT.fetch_add(1, Ordering::Relaxed) {
        next if next < OWN_SLOTS => Slot::Own(next),
        next => Slot::Shared(next % SHARED_STRIPES),
    }
}

impl Counters {
    /// Adds one to the counter `pick` chooses, in this thread's slot.
    #[inline]
    fn add(&self, pick: impl Fn(&Stripe) -> &AtomicU64) {
        match slot() {
            Slot::Own(slot) => {
                // Only this thread writes its slot: a plain load and store lose nothing.
                let counter = pick(&self.own[slot]);
                counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            Slot::Shared(stripe) => {
                pick(&self.shared[stripe]).fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    #[inline]
    pub(crate) fn hit(&self) {
        self.add(|s| &s.hits);
    }
    #[inline]
    pub(crate) fn local_hit(&self) {
        self.add(|s| &s.local_hits);
    }
    #[inline]
    pub(crate) fn miss(&self) {
        self.add(|s| &s.misses);
    }
    pub(crate) fn error(&self) {
        self.add(|s| &s.errors);
    }
    pub(crate) fn store(&self) {
        self.add(|s| &s.stores);
    }
    pub(crate) fn stale_served(&self) {
        self.add(|s| &s.stale_served);
    }
    pub(crate) fn refresh(&self) {
        self.add(|s| &s.refreshes);
    }
    pub(crate) fn refresh_failure(&self) {
        self.add(|s| &s.refresh_failures);
    }
    pub(crate) fn refresh_skipped(&self) {
        self.add(|s| &s.refreshes_skipped);
    }
    pub(crate) fn load(&self, success: bool) {
        if success {
            self.add(|s| &s.loads);
        } else {
            self.add(|s| &s.load_failures);
        }
    }
    pub(crate) fn unannounced(&self) {
        self.add(|s| &s.unannounced);
    }
    pub(crate) fn fill_refused(&self) {
        self.add(|s| &s.fills_refused);
    }
    pub(crate) fn backend_error(&self, operation: Operation) {
        self.add(|s| &s.backend_errors[operation as usize]);
    }
    pub(crate) fn snapshot(&self) -> Stats {
        let sum = |counter: fn(&Stripe) -> &AtomicU64| {
            self.own
                .iter()
                .chain(&self.shared)
                .map(|stripe| counter(stripe).load(Ordering::Relaxed))
                .sum()
        };
        let (shared_hits, local_hits) = (sum(|s| &s.hits), sum(|s| &s.local_hits));
        Stats {
            hits: shared_hits + local_hits,
            local_hits,
            shared_hits,
            misses: sum(|s| &s.misses),
            errors: sum(|s| &s.errors),
            stores: sum(|s| &s.stores),
            stale_served: sum(|s| &s.stale_served),
            refreshes: sum(|s| &s.refreshes),
            refresh_failures: sum(|s| &s.refresh_failures),
            refreshes_skipped: sum(|s| &s.refreshes_skipped),
            loads: sum(|s| &s.loads),
            load_failures: sum(|s| &s.load_failures),
            evictions: 0,
            expirations: 0,
            backend_errors: Operations {
                get: sum(|s| &s.backend_errors[0]),
                set: sum(|s| &s.backend_errors[1]),
                delete: sum(|s| &s.backend_errors[2]),
                clear: sum(|s| &s.backend_errors[3]),
            },
            local_entries: 0,
            local_bypassed: false,
            local_bypasses: 0,
            invalidations: 0,
            unannounced: sum(|s| &s.unannounced),
            fills_refused: sum(|s| &s.fills_refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sums_every_thread() {
        let counters = Counters::default();
        std::thread::scope(|scope| {
            for _ in 0..2 * OWN_SLOTS + SHARED_STRIPES {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counters.hit();
                    }
                    counters.local_hit();
                    counters.miss();
                    counters.store();
                    counters.error();
                    counters.stale_served();
                    counters.refresh();
                    counters.refresh_failure();
                    counters.refresh_skipped();
                    counters.load(true);
                    counters.load(false);
                    counters.backend_error(Operation::Delete);
                    counters.unannounced();
                    counters.fill_refused();
                });
            }
        });
        let n = (2 * OWN_SLOTS + SHARED_STRIPES) as u64;
        assert_eq!(
            counters.snapshot(),
            Stats {
                hits: 1001 * n,
                local_hits: n,
                shared_hits: 1000 * n,
                misses: n,
                errors: n,
                stores: n,
                stale_served: n,
                refreshes: n,
                refresh_failures: n,
                refreshes_skipped: n,
                loads: n,
                load_failures: n,
                evictions: 0,
                expirations: 0,
                backend_errors: Operations {
                    delete: n,
                    ..Operations::default()
                },
                unannounced: n,
                fills_refused: n,
                ..Stats::default()
            }
        );
    }
}
