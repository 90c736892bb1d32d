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
    /// Lookups that found a fresh value.
    pub hits: u64,
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
    /// Refreshes that produced nothing to store (an `Err`, a `None`, a panic, a failed store).
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

/// Stripes of counters per cache: a power of two, enough that a few threads rarely share one.
const STRIPES: usize = 8;

/// One stripe, alone on its cache lines (128 bytes: adjacent-line prefetching pairs lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    stores: AtomicU64,
    stale_served: AtomicU64,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    refreshes_skipped: AtomicU64,
    loads: AtomicU64,
    load_failures: AtomicU64,
    backend_errors: [AtomicU64; 4],
}

/// The live counters of one cache, striped by thread: a hit on one thread never writes the
/// cache line that a hit on another thread writes (one shared counter made every hit at two
/// threads a cache-line transfer). A snapshot sums the stripes.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    stripes: [Stripe; STRIPES],
}

/// This thread's stripe index, given out round-robin as threads first count. A `const`
/// thread-local without a destructor is one load away (a lazily initialised one was a call
/// and a state check on every hit).
#[inline]
fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX
        .try_with(|index| match index.get() {
            usize::MAX => {
                let assigned = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
                index.set(assigned);
                assigned
            }
            assigned => assigned,
        })
        .unwrap_or(0)
}

impl Counters {
    #[inline]
    fn stripe(&self) -> &Stripe {
        &self.stripes[stripe_index()]
    }
    #[inline]
    pub(crate) fn hit(&self) {
        self.stripe().hits.fetch_add(1, Ordering::Relaxed);
    }
    #[inline]
    pub(crate) fn miss(&self) {
        self.stripe().misses.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn error(&self) {
        self.stripe().errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn store(&self) {
        self.stripe().stores.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn stale_served(&self) {
        self.stripe().stale_served.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn refresh(&self) {
        self.stripe().refreshes.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn refresh_failure(&self) {
        self.stripe().refresh_failures.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn refresh_skipped(&self) {
        self.stripe().refreshes_skipped.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn load(&self, success: bool) {
        let stripe = self.stripe();
        let counter = if success { &stripe.loads } else { &stripe.load_failures };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn backend_error(&self, operation: Operation) {
        self.stripe().backend_errors[operation as usize].fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn snapshot(&self) -> Stats {
        let sum = |counter: fn(&Stripe) -> &AtomicU64| {
            self.stripes
                .iter()
                .map(|stripe| counter(stripe).load(Ordering::Relaxed))
                .sum()
        };
        Stats {
            hits: sum(|s| &s.hits),
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
            for _ in 0..2 * STRIPES {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counters.hit();
                    }
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
                });
            }
        });
        let n = 2 * STRIPES as u64;
        assert_eq!(
            counters.snapshot(),
            Stats {
                hits: 1000 * n,
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
            }
        );
    }
}
