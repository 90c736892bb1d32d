//! Per-cache counters: hits, misses, errors, stores.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of one cache's counters, from [`CacheHandle::stats`](crate::CacheHandle::stats).
///
/// ```
/// let stats = cachex_core::Stats::default();
/// assert_eq!(stats.hits + stats.misses, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing usable (absent, expired, corrupt, or of another type).
    pub misses: u64,
    /// Backend failures and undecodable entries.
    pub errors: u64,
    /// Values written to the backend.
    pub stores: u64,
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
                stores: n
            }
        );
    }
}
