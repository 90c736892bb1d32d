//! Per-cache counters: hits, misses, errors, stores, and what stale serving did.

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
}

/// The live counters of one cache, striped by thread: a hit on one thread never writes the
/// cache line that a hit on another thread writes (one shared counter made every hit at two
/// threads a cache-line transfer). A snapshot sums the stripes.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    stripes: [Stripe; STRIPES],
}

/// This thread's stripe index, given out round-robin as threads first count.
fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    INDEX.try_with(|index| *index).unwrap_or(0)
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
            }
        );
    }
}
