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

static UNTIMED_CALLS: AtomicUsize = AtomicUsize::new(0);

/// The first call never finishes.
#[cached(name = "stuck")]
async fn stuck_untimed(n: u32) -> u32 {
    if UNTIMED_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        std::future::pending::<()>().await;
    }
    n * 3
}

#[test]
fn an_async_waiter_on_a_runtime_without_timers_waits_lock_timeout_and_computes() {
    *INIT;
    let value = returns_within(DEADLINE, || {
        // No `enable_time`: tokio's timer is not there, and must not be needed.
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let mut leader = Box::pin(stuck_untimed(5));
            assert!((&mut leader).now_or_never().is_none(), "the leader is stuck, and alive");
            stuck_untimed(5).await
        })
    });
    assert_eq!(value, 15);
    assert_eq!(UNTIMED_CALLS.load(Ordering::SeqCst), 2, "the waiter computed by itself");
}

static SPAWNED_CALLS: AtomicUsize = AtomicUsize::new(0);

/// The first call computes its own key again on a thread it spawns and joins.
#[cached(name = "stuck")]
fn through_a_thread(n: u32) -> u32 {
    if SPAWNED_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        return std::thread::spawn(move || through_a_thread(n)).join().unwrap() + 1;
    }
    n
}

#[test]
fn re_entry_through_a_spawned_thread_waits_lock_timeout_then_computes() {
    *INIT;
    // The inner call is another thread's: it waits for the outer one (the README says so),
    // at most `lock_timeout`, then computes by itself; both return.
    assert_eq!(returns_within(DEADLINE, || through_a_thread(9)), 10);
    assert_eq!(SPAWNED_CALLS.load(Ordering::SeqCst), 2);
    assert_eq!(through_a_thread(9), 10, "the outer value is cached");
    assert_eq!(SPAWNED_CALLS.load(Ordering::SeqCst), 2);
}
