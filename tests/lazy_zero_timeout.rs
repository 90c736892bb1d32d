//! `timeout = "0s"` (r2d2 asserts a positive connection timeout) is an `init()` error naming
//! the key and its source, and under lazy initialisation a cached call runs uncached: no panic.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicUsize, Ordering};

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[cachex::cached(name = "zero")]
fn triple(n: u32) -> u32 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    n * 3
}

#[test]
fn a_zero_timeout_is_an_init_error_and_lazy_calls_run_uncached() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cachex.toml");
    std::fs::write(
        &file,
        "[caches.zero]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:1/0\"\ntimeout = \"0s\"\n",
    )
    .unwrap();
    // The only test in this binary: no other thread reads the environment.
    std::env::set_var("CACHEX_CONFIG", &file);
    let text = cachex::init().expect_err("a zero timeout is refused").to_string();
    assert!(text.contains("cache `zero`, key `timeout`"), "{text}");
    assert!(text.contains("cachex.toml, key `caches.zero.timeout`"), "{text}");
    assert!(text.contains("accepted: from 1ms to 10m"), "{text}");

    assert_eq!(triple(2), 6);
    assert_eq!(triple(2), 6);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2, "uncached: computed each time");
    match cachex::cache("zero") {
        Err(cachex::Error::NotInitialized(reason)) => assert!(reason.contains("key `timeout`"), "{reason}"),
        other => panic!("expected NotInitialized, got {other:?}"),
    }
}
