//! Without `init()` and without configuration, the first call initialises the embedded
//! default: every bound name gets a memory cache.

use std::sync::atomic::{AtomicUsize, Ordering};

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[cachex::cached(name = "lazy")]
fn triple(n: u32) -> u32 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    n * 3
}

#[test]
fn the_first_call_initialises_the_embedded_default() {
    assert!(std::env::var_os("CACHEX_CONFIG").is_none());
    assert_eq!(triple(4), 12);
    assert_eq!(triple(4), 12);
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    let handle = cachex::cache("lazy").unwrap();
    assert_eq!(handle.backend(), "memory");
    assert_eq!(
        (handle.stats().hits, handle.stats().misses, handle.stats().stores),
        (1, 1, 1)
    );
}
