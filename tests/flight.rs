//! Single-flight never waits forever: a call that re-enters its own key computes, and a
//! waiter whose leader is alive but stuck computes by itself after `lock_timeout`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, LazyLock, Mutex};
use std::time::Duration;

use cachex::{cached, CacheConfig, Config};
use futures_util::FutureExt;

const LOCK_TIMEOUT: Duration = Duration::from_millis(200);
/// Ten times the bound: the deadline of a call that must return.
const DEADLINE: Duration = Duration::from_secs(2);

static INIT: LazyLock<()> = LazyLock::new(|| {
    cachex::init_with(
        Config::new()
            // Re-entry must not rely on the lock timeout: make it the longest accepted.
            .cache("reenter", CacheConfig::memory().lock_timeout(Duration::from_secs(3600)))
            .cache("stuck", CacheConfig::memory().lock_timeout(LOCK_TIMEOUT)),
    )
    .expect("valid test configuration");
});

/// Runs `call` on its own thread and fails if it has not returned within `limit`.
fn returns_within<T: Send + 'static>(limit: Duration, call: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(call());
    });
    rx.recv_timeout(limit).expect("the call returned")
}

static REENTERED: AtomicUsize = AtomicUsize::new(0);

/// `_depth` is left out of the key: the inner call has the outer call's key.
#[cached(name = "reenter")]
fn recursive(n: u32, _depth: u32) -> u32 {
    REENTERED.fetch_add(1, Ordering::SeqCst);
    if _depth == 0 {
        recursive(n, 1) + 1
    } else {
        n
    }
}

#[test]
fn a_blocking_call_that_re_enters_its_key_returns() {
    *INIT;
    assert_eq!(returns_within(Duration::from_secs(60), || recursive(4, 0)), 5);
    assert_eq!(REENTERED.load(Ordering::SeqCst), 2, "the inner call computed");
    assert_eq!(recursive(4, 0), 5, "the outer value is cached");
    assert_eq!(REENTERED.load(Ordering::SeqCst), 2);
}

#[cached(name = "reenter")]
async fn recursive_async(n: u32, _depth: u32) -> u32 {
    if _depth == 0 {
        Box::pin(recursive_async(n, 1)).await + 1
    } else {
        n
    }
}

#[tokio::test]
async fn an_async_call_that_re_enters_its_key_returns() {
    *INIT;
    let value = tokio::time::timeout(Duration::from_secs(60), recursive_async(7, 0)).await;
    assert_eq!(value.expect("the call returned"), 8);
}

static STUCK_ONCE: AtomicBool = AtomicBool::new(false);

/// The first call never finishes (its future is polled once, then never again).
#[cached(name = "stuck")]
async fn stuck_async(n: u32) -> u32 {
    if !STUCK_ONCE.swap(true, Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    n * 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_async_leader_does_not_block_a_waiter_past_lock_timeout() {
    *INIT;
    let mut leader = Box::pin(stuck_async(1));
    assert!((&mut leader).now_or_never().is_none(), "the leader is stuck, and alive");
    let waited = tokio::time::timeout(DEADLINE, stuck_async(1)).await;
    assert_eq!(waited.expect("the waiter returned"), 10);
    drop(leader);
}

static RELEASE: Mutex<Option<mpsc::Sender<()>>> = Mutex::new(None);
static BLOCKING_CALLS: AtomicUsize = AtomicUsize::new(0);

/// The first call blocks until the test releases it.
#[cached(name = "stuck")]
fn stuck_blocking(n: u32) -> u32 {
    if BLOCKING_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        let (tx, rx) = mpsc::channel();
        *RELEASE.lock().unwrap() = Some(tx);
        let _ = rx.recv();
    }
    n + 100
}

#[test]
fn a_stuck_blocking_leader_does_not_block_a_waiter_past_lock_timeout() {
    *INIT;
    let leader = std::thread::spawn(|| stuck_blocking(2));
    while RELEASE.lock().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(returns_within(DEADLINE, || stuck_blocking(2)), 102);
    assert_eq!(
        BLOCKING_CALLS.load(Ordering::SeqCst),
        2,
        "the waiter computed by itself"
    );
    RELEASE.lock().unwrap().take().unwrap().send(()).unwrap();
    assert_eq!(leader.join().unwrap(), 102);
}
