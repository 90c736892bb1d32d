//! The refresh pool of blocking functions is bounded: when every thread is busy and the queue
//! is full, a call in the `stale_while_revalidate` window gets the stale value, the refresh is
//! skipped and counted, and nothing blocks. (A test binary of its own: the pool is the
//! process's.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cachex::{cached, CacheConfig, Config};

/// Threads and queue of the pool (see the README's stale serving section).
const POOL: u64 = 4 + 32;

static RUNS: AtomicU64 = AtomicU64::new(0);
static OPEN: AtomicBool = AtomicBool::new(false);

#[cached(name = "pool")]
fn held(key: u64) -> u64 {
    // From the refreshes on, each waits until the test opens the gate (at most 20 s).
    if RUNS.fetch_add(1, Ordering::SeqCst) > POOL {
        let start = Instant::now();
        while !OPEN.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    key
}

#[test]
fn a_full_refresh_pool_skips_the_refresh_and_serves_stale() {
    let pool = CacheConfig::memory()
        .ttl(Duration::from_secs(1))
        .stale_while_revalidate(Duration::from_secs(60));
    cachex::init_with(Config::new().cache("pool", pool)).unwrap();
    for key in 0..=POOL {
        assert_eq!(held(key), key);
    }
    std::thread::sleep(Duration::from_millis(1300));
    let first_runs = POOL + 1;
    for key in 0..=POOL {
        assert_eq!(held(key), key, "stale, at once");
        if key < 4 {
            // Each thread has taken its refresh (and holds it at the gate) before the next.
            let start = Instant::now();
            while RUNS.load(Ordering::SeqCst) < first_runs + key + 1 {
                assert!(start.elapsed() < Duration::from_secs(20), "refresh {key} started");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let stats = cachex::cache("pool").unwrap().stats();
    assert_eq!(stats.stale_served, POOL + 1);
    assert_eq!(stats.refreshes_skipped, 1, "{stats:?}");
    OPEN.store(true, Ordering::SeqCst);
    let start = Instant::now();
    while cachex::cache("pool").unwrap().stats().refreshes < POOL {
        assert!(start.elapsed() < Duration::from_secs(20), "the accepted refreshes ran");
        std::thread::sleep(Duration::from_millis(5));
    }
}
