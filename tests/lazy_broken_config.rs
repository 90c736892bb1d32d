//! Without `init()`, the first call initialises from the same sources; when that fails, the
//! function still runs and returns, uncached.

use std::sync::atomic::{AtomicUsize, Ordering};

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[cachex::cached(name = "lazy")]
fn double(n: u32) -> u32 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    n * 2
}

#[test]
fn a_broken_configuration_leaves_functions_running_uncached() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cachex.toml");
    std::fs::write(&file, "[caches.lazy]\nbackend = \"memory\"\nttl = \"forever\"\n").unwrap();
    // The only test in this binary: no other thread reads the environment.
    std::env::set_var("CACHEX_CONFIG", &file);
    assert_eq!(double(4), 8);
    assert_eq!(double(4), 8);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2, "uncached: computed each time");
    match cachex::cache("lazy") {
        Err(cachex::Error::NotInitialized(reason)) => {
            assert!(reason.contains("cache `lazy`, key `ttl`"), "{reason}")
        }
        other => panic!("expected NotInitialized, got {other:?}"),
    }
}
