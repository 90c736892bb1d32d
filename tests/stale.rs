//! Stale serving (`stale_while_revalidate`, `stale_if_error`) on the memory, file and Redis
//! backends (a real `redis-server`), for blocking and async functions.
//!
//! Proof that no caller waited for a refresh is a gate, not a clock: the refresh's body is
//! held at a gate the test opens only after every caller in the stale window has returned.
#![cfg(all(feature = "file", feature = "redis"))]

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use cachex::{cached, CacheConfig, Config};
use support::redis_server::RedisServer;

const TTL: Duration = Duration::from_secs(1);
/// Past the TTL (a lower bound only: any later moment within the windows gives the same).
const PAST_TTL: Duration = Duration::from_millis(1300);
const WINDOW: Duration = Duration::from_secs(30);
/// How long a test waits for a background refresh to be seen (never reached when it works).
const PATIENCE: Duration = Duration::from_secs(20);

/// A gate a body waits at until the test opens it (or a watchdog does, after `PATIENCE`, so
/// a broken implementation fails an assertion instead of hanging).
struct Gate(AtomicBool);

impl Gate {
    const fn new() -> Gate {
        Gate(AtomicBool::new(false))
    }

    fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn wait(&self) {
        let start = Instant::now();
        while !self.0.load(Ordering::SeqCst) && start.elapsed() < PATIENCE {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    async fn wait_async(&self) {
        let start = Instant::now();
        while !self.0.load(Ordering::SeqCst) && start.elapsed() < PATIENCE {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Polls `check` until it holds, failing after `PATIENCE`.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < PATIENCE, "not seen within {PATIENCE:?}: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

async fn eventually_async<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < PATIENCE, "not seen within {PATIENCE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Backends {
    redis: RedisServer,
    files: std::path::PathBuf,
}

static BACKENDS: LazyLock<Backends> = LazyLock::new(|| {
    let backends = Backends {
        redis: RedisServer::start(),
        files: support::scratch_dir("stale"),
    };
    let mut config = Config::new()
        .cache(
            "not_send_memory",
            CacheConfig::memory().ttl(TTL).stale_while_revalidate(WINDOW),
        )
        .cache(
            "inline_async_memory",
            CacheConfig::memory().ttl(TTL).stale_while_revalidate(WINDOW),
        )
        .cache(
            "inline_fails_memory",
            CacheConfig::memory().ttl(TTL).stale_while_revalidate(WINDOW),
        )
        .cache("waiters_memory", CacheConfig::memory().ttl(TTL).stale_if_error(WINDOW))
        .cache("removed_memory", CacheConfig::memory().ttl(TTL).stale_if_error(WINDOW));
    for backend in ["memory", "file", "redis"] {
        for test in [
            "swr",
            "swr_async",
            "swr_inline",
            "sie",
            "sie_async",
            "gone",
            "gone_async",
            "panics",
        ] {
            let name = format!("{test}_{backend}");
            let base = match backend {
                "memory" => CacheConfig::memory(),
                "file" => CacheConfig::file(backends.files.join(&name)),
                _ => CacheConfig::redis(&backends.redis.url()).timeout(Duration::from_secs(2)),
            };
            let cache = match test {
                "swr" | "swr_async" | "swr_inline" | "panics" => base.ttl(TTL).stale_while_revalidate(WINDOW),
                "sie" | "sie_async" => base.ttl(TTL).stale_if_error(WINDOW),
                // Both windows short: after both, the error comes through.
                _ => base
                    .ttl(TTL)
                    .stale_while_revalidate(Duration::from_millis(200))
                    .stale_if_error(Duration::from_millis(500)),
            };
            config = config.cache(name, cache);
        }
    }
    cachex::init_with(config).expect("valid test configuration");
    backends
});

fn stats(cache: &str) -> cachex::Stats {
    cachex::cache(cache).unwrap().stats()
}

/// One backend's tests: each function binds its own cache (`<test>_<backend>`).
macro_rules! stale_suite {
    ($backend:ident, $swr:literal, $swr_async:literal, $swr_inline:literal, $sie:literal, $sie_async:literal, $gone:literal, $gone_async:literal, $panics:literal) => {
        mod $backend {
            use super::*;

            static RUNS: AtomicU64 = AtomicU64::new(0);
            static GATE: Gate = Gate::new();

            /// The generation of the value: from the second run on, held at the gate.
            #[cached(name = $swr)]
            fn generation(key: u32) -> u64 {
                let run = RUNS.fetch_add(1, Ordering::SeqCst) + 1;
                if run >= 2 {
                    GATE.wait();
                }
                run * 1000 + u64::from(key)
            }

            #[test]
            fn serves_stale_while_one_refresh_runs_in_the_background() {
                LazyLock::force(&BACKENDS);
                assert_eq!(generation(1), 1001);
                std::thread::sleep(PAST_TTL);
                let served: Vec<u64> = std::thread::scope(|scope| {
                    let callers: Vec<_> = (0..20).map(|_| scope.spawn(|| generation(1))).collect();
                    callers.into_iter().map(|caller| caller.join().unwrap()).collect()
                });
                assert_eq!(
                    served,
                    vec![1001; 20],
                    "every caller in the window got the stale value at once"
                );
                eventually("the refresh started", || RUNS.load(Ordering::SeqCst) == 2);
                GATE.open();
                eventually("the refreshed value", || generation(1) == 2001);
                assert_eq!(RUNS.load(Ordering::SeqCst), 2, "the body ran twice");
                let stats = stats($swr);
                assert_eq!(stats.refreshes, 1);
                assert_eq!(stats.refresh_failures, 0);
                assert!(stats.stale_served >= 20, "{stats:?}");
            }

            static ASYNC_RUNS: AtomicU64 = AtomicU64::new(0);
            static ASYNC_GATE: Gate = Gate::new();

            #[cached(name = $swr_async)]
            async fn generation_async(key: u32) -> u64 {
                let run = ASYNC_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
                if run >= 2 {
                    ASYNC_GATE.wait_async().await;
                }
                run * 1000 + u64::from(key)
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn serves_stale_while_one_refresh_runs_on_the_runtime() {
                LazyLock::force(&BACKENDS);
                assert_eq!(generation_async(1).await, 1001);
                tokio::time::sleep(PAST_TTL).await;
                let callers: Vec<_> = (0..20).map(|_| tokio::spawn(generation_async(1))).collect();
                let mut served = Vec::new();
                for caller in callers {
                    served.push(caller.await.unwrap());
                }
                assert_eq!(
                    served,
                    vec![1001; 20],
                    "every caller in the window got the stale value at once"
                );
                eventually_async("the refresh started", || async {
                    ASYNC_RUNS.load(Ordering::SeqCst) == 2
                })
                .await;
                ASYNC_GATE.open();
                eventually_async("the refreshed value", || async {
                    generation_async(1).await == 2001
                })
                .await;
                assert_eq!(ASYNC_RUNS.load(Ordering::SeqCst), 2, "the body ran twice");
                let stats = stats($swr_async);
                assert_eq!(stats.refreshes, 1);
                assert!(stats.stale_served >= 20, "{stats:?}");
            }

            static INLINE_RUNS: AtomicU64 = AtomicU64::new(0);
            static INLINE_GATE: Gate = Gate::new();

            /// A borrowed argument: the refresh cannot leave the caller, who runs it.
            #[cached(name = $swr_inline)]
            fn generation_of(key: &str) -> u64 {
                let run = INLINE_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
                if run >= 2 {
                    INLINE_GATE.wait();
                }
                run * 1000 + key.len() as u64
            }

            #[test]
            fn a_borrowing_function_refreshes_in_one_caller_while_the_others_get_stale() {
                LazyLock::force(&BACKENDS);
                assert_eq!(generation_of("k"), 1001);
                std::thread::sleep(PAST_TTL);
                std::thread::scope(|scope| {
                    let refresher = scope.spawn(|| generation_of("k"));
                    eventually("the inline refresh started", || {
                        INLINE_RUNS.load(Ordering::SeqCst) == 2
                    });
                    let others: Vec<_> = (0..19).map(|_| scope.spawn(|| generation_of("k"))).collect();
                    let served: Vec<u64> = others.into_iter().map(|other| other.join().unwrap()).collect();
                    assert_eq!(served, vec![1001; 19], "the others got the stale value at once");
                    INLINE_GATE.open();
                    assert_eq!(
                        refresher.join().unwrap(),
                        2001,
                        "the refreshing caller gets its new value"
                    );
                });
                assert_eq!(generation_of("k"), 2001);
                assert_eq!(INLINE_RUNS.load(Ordering::SeqCst), 2);
            }

            static FLAKY_RUNS: AtomicU64 = AtomicU64::new(0);

            /// Succeeds once, then fails.
            #[cached(name = $sie)]
            fn flaky(key: u32) -> Result<u64, String> {
                match FLAKY_RUNS.fetch_add(1, Ordering::SeqCst) {
                    0 => Ok(u64::from(key)),
                    run => Err(format!("upstream down (run {run})")),
                }
            }

            #[test]
            fn a_failing_computation_gets_the_stale_value() {
                LazyLock::force(&BACKENDS);
                assert_eq!(flaky(7), Ok(7));
                std::thread::sleep(PAST_TTL);
                assert_eq!(flaky(7), Ok(7), "the stale value, not the error");
                assert_eq!(flaky(7), Ok(7));
                assert_eq!(
                    FLAKY_RUNS.load(Ordering::SeqCst),
                    3,
                    "each call past the TTL computed"
                );
                let stats = stats($sie);
                assert_eq!(
                    (stats.stale_served, stats.refreshes, stats.refresh_failures),
                    (2, 2, 2)
                );
            }

            static FLAKY_ASYNC_RUNS: AtomicU64 = AtomicU64::new(0);

            #[cached(name = $sie_async)]
            async fn flaky_async(key: u32) -> Option<u64> {
                tokio::task::yield_now().await;
                match FLAKY_ASYNC_RUNS.fetch_add(1, Ordering::SeqCst) {
                    0 => Some(u64::from(key)),
                    1 => None,
                    _ => panic!("upstream panicked"),
                }
            }

            #[tokio::test]
            async fn a_failing_or_panicking_async_computation_gets_the_stale_value() {
                LazyLock::force(&BACKENDS);
                assert_eq!(flaky_async(7).await, Some(7));
                tokio::time::sleep(PAST_TTL).await;
                assert_eq!(flaky_async(7).await, Some(7), "the stale value, not the None");
                assert_eq!(flaky_async(7).await, Some(7), "the stale value, not the panic");
                let stats = stats($sie_async);
                assert_eq!(
                    (stats.stale_served, stats.refreshes, stats.refresh_failures),
                    (2, 2, 2)
                );
            }

            static GONE_RUNS: AtomicU64 = AtomicU64::new(0);

            #[cached(name = $gone)]
            fn gone(key: u32) -> Result<u64, String> {
                match GONE_RUNS.fetch_add(1, Ordering::SeqCst) {
                    0 => Ok(u64::from(key)),
                    _ => Err("upstream down".into()),
                }
            }

            #[test]
            fn after_both_windows_the_error_comes_through() {
                LazyLock::force(&BACKENDS);
                assert_eq!(gone(3), Ok(3));
                // Past the TTL and both windows (1 s + 500 ms), with margin.
                std::thread::sleep(Duration::from_millis(2500));
                assert_eq!(gone(3), Err("upstream down".to_owned()));
                assert_eq!(stats($gone).stale_served, 0);
            }

            static GONE_ASYNC_RUNS: AtomicU64 = AtomicU64::new(0);

            #[cached(name = $gone_async)]
            async fn gone_async(key: u32) -> Result<u64, String> {
                match GONE_ASYNC_RUNS.fetch_add(1, Ordering::SeqCst) {
                    0 => Ok(u64::from(key)),
                    _ => Err("upstream down".into()),
                }
            }

            #[tokio::test]
            async fn after_both_windows_the_async_error_comes_through() {
                LazyLock::force(&BACKENDS);
                assert_eq!(gone_async(3).await, Ok(3));
                tokio::time::sleep(Duration::from_millis(2500)).await;
                assert_eq!(gone_async(3).await, Err("upstream down".to_owned()));
            }

            static PANIC_RUNS: AtomicU64 = AtomicU64::new(0);

            /// The second run (the first refresh) panics; the others succeed.
            #[cached(name = $panics)]
            fn panics_once(key: u32) -> u64 {
                let run = PANIC_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
                assert_ne!(run, 2, "a refresh that panics");
                run * 1000 + u64::from(key)
            }

            #[test]
            fn a_refresh_that_panics_poisons_nothing_and_the_next_call_refreshes_again() {
                LazyLock::force(&BACKENDS);
                assert_eq!(panics_once(1), 1001);
                std::thread::sleep(PAST_TTL);
                assert_eq!(
                    panics_once(1),
                    1001,
                    "stale, while the refresh panics in the background"
                );
                eventually("the failed refresh", || stats($panics).refresh_failures == 1);
                eventually("a second refresh's value", || panics_once(1) == 3001);
                assert_eq!(PANIC_RUNS.load(Ordering::SeqCst), 3);
                let stats = stats($panics);
                assert_eq!((stats.refreshes, stats.refresh_failures), (2, 1));
            }
        }
    };
}

stale_suite!(
    memory,
    "swr_memory",
    "swr_async_memory",
    "swr_inline_memory",
    "sie_memory",
    "sie_async_memory",
    "gone_memory",
    "gone_async_memory",
    "panics_memory"
);
stale_suite!(
    file,
    "swr_file",
    "swr_async_file",
    "swr_inline_file",
    "sie_file",
    "sie_async_file",
    "gone_file",
    "gone_async_file",
    "panics_file"
);
stale_suite!(
    redis,
    "swr_redis",
    "swr_async_redis",
    "swr_inline_redis",
    "sie_redis",
    "sie_async_redis",
    "gone_redis",
    "gone_async_redis",
    "panics_redis"
);

/// Entries are stored for `ttl` plus the longer window: Redis holds the key that long.
#[test]
fn redis_keeps_entries_for_the_ttl_and_the_longer_window() {
    let backends = LazyLock::force(&BACKENDS);
    let handle = cachex::cache("sie_redis").unwrap();
    handle.set(&"kept", &5u32).unwrap();
    let mut redis = backends.redis.client();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("cachex:sie_redis:*")
        .query(&mut redis)
        .unwrap();
    let ttls: Vec<i64> = keys
        .iter()
        .map(|key| ::redis::cmd("PTTL").arg(key).query(&mut redis).unwrap())
        .collect();
    assert!(
        ttls.iter().any(|&ttl| ttl > 30_000 && ttl <= 31_000),
        "PTTLs {ttls:?}: 1 s of ttl and 30 s of stale_if_error"
    );
}

/// A direct `get` returns fresh values only: the stale one is kept for `#[cached]` calls.
#[test]
fn a_direct_get_does_not_return_a_stale_value() {
    LazyLock::force(&BACKENDS);
    for backend in ["memory", "file", "redis"] {
        let handle = cachex::cache(&format!("swr_inline_{backend}")).unwrap();
        handle.set(&"direct", &9u32).unwrap();
        assert_eq!(handle.get::<_, u32>(&"direct").unwrap(), Some(9));
        std::thread::sleep(PAST_TTL);
        assert_eq!(handle.get::<_, u32>(&"direct").unwrap(), None, "{backend}");
    }
}

static NOT_SEND_RUNS: AtomicU64 = AtomicU64::new(0);
static NOT_SEND_GATE: Gate = Gate::new();

/// Owned arguments, and a future that is not `Send` (an `Rc` held across an await).
#[cached(name = "not_send_memory")]
async fn not_send(key: u32) -> u64 {
    let run = std::rc::Rc::new(NOT_SEND_RUNS.fetch_add(1, Ordering::SeqCst) + 1);
    if *run >= 2 {
        NOT_SEND_GATE.wait_async().await;
    }
    *run * 1000 + u64::from(key)
}

#[tokio::test]
async fn an_async_body_whose_future_is_not_send_refreshes_in_the_background() {
    LazyLock::force(&BACKENDS);
    assert_eq!(not_send(1).await, 1001);
    tokio::time::sleep(PAST_TTL).await;
    assert_eq!(
        not_send(1).await,
        1001,
        "stale at once: the refresh is held at the gate elsewhere"
    );
    eventually_async("the refresh started", || async {
        NOT_SEND_RUNS.load(Ordering::SeqCst) == 2
    })
    .await;
    assert_eq!(not_send(1).await, 1001, "still stale while the refresh is held");
    NOT_SEND_GATE.open();
    eventually_async("the refreshed value", || async { not_send(1).await == 2001 }).await;
    assert_eq!(NOT_SEND_RUNS.load(Ordering::SeqCst), 2);
}

static INLINE_ASYNC_RUNS: AtomicU64 = AtomicU64::new(0);
static INLINE_ASYNC_GATE: Gate = Gate::new();

/// A borrowed argument: the async caller refreshes inline; the others get the stale value.
#[cached(name = "inline_async_memory")]
async fn inline_async(key: &str) -> u64 {
    let run = INLINE_ASYNC_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    if run >= 2 {
        INLINE_ASYNC_GATE.wait_async().await;
    }
    run * 1000 + key.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_borrowing_async_function_refreshes_in_one_caller_while_the_others_get_stale() {
    LazyLock::force(&BACKENDS);
    assert_eq!(inline_async("k").await, 1001);
    tokio::time::sleep(PAST_TTL).await;
    let refresher = tokio::spawn(async { inline_async("k").await });
    eventually_async("the inline refresh started", || async {
        INLINE_ASYNC_RUNS.load(Ordering::SeqCst) == 2
    })
    .await;
    for _ in 0..19 {
        assert_eq!(inline_async("k").await, 1001, "the others get the stale value at once");
    }
    INLINE_ASYNC_GATE.open();
    assert_eq!(
        refresher.await.unwrap(),
        2001,
        "the refreshing caller gets its new value"
    );
    assert_eq!(INLINE_ASYNC_RUNS.load(Ordering::SeqCst), 2);
}

static INLINE_FAILS_RUNS: AtomicU64 = AtomicU64::new(0);

/// A borrowed argument (refreshed inline), and a refresh that fails.
#[cached(name = "inline_fails_memory")]
fn inline_fails(key: &str) -> Result<u64, String> {
    match INLINE_FAILS_RUNS.fetch_add(1, Ordering::SeqCst) {
        0 => Ok(key.len() as u64),
        _ => Err("upstream down".into()),
    }
}

#[test]
fn an_inline_refresh_that_fails_gets_the_stale_value_like_a_background_one() {
    LazyLock::force(&BACKENDS);
    assert_eq!(inline_fails("abc"), Ok(3));
    std::thread::sleep(PAST_TTL);
    assert_eq!(
        inline_fails("abc"),
        Ok(3),
        "stale_while_revalidate alone: the stale value, not the error"
    );
    let stats = stats("inline_fails_memory");
    assert_eq!((stats.refreshes, stats.refresh_failures, stats.stale_served), (1, 1, 1));
}

static WAITERS_RUNS: AtomicU64 = AtomicU64::new(0);

/// Succeeds once; then fails, slowly.
#[cached(name = "waiters_memory")]
fn slow_failure(key: u32) -> Result<u64, String> {
    match WAITERS_RUNS.fetch_add(1, Ordering::SeqCst) {
        0 => Ok(u64::from(key)),
        _ => {
            std::thread::sleep(Duration::from_millis(300));
            Err("upstream down".into())
        }
    }
}

#[test]
fn callers_waiting_on_a_failing_computation_get_the_stale_value_without_computing_again() {
    LazyLock::force(&BACKENDS);
    assert_eq!(slow_failure(4), Ok(4));
    std::thread::sleep(PAST_TTL);
    let served: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..10).map(|_| scope.spawn(|| slow_failure(4))).collect();
        callers.into_iter().map(|caller| caller.join().unwrap()).collect()
    });
    assert_eq!(served, vec![Ok(4); 10]);
    assert_eq!(
        WAITERS_RUNS.load(Ordering::SeqCst),
        2,
        "one failing computation for the concurrent callers (the waiters did not retry in turn)"
    );
}

static REMOVED_RUNS: AtomicU64 = AtomicU64::new(0);

/// Succeeds once; then fails slowly, the first failing run after removing its own entry (the
/// way another process's invalidation would, while the callers wait).
#[cached(name = "removed_memory")]
fn removed_while_failing(key: u32) -> Result<u64, String> {
    match REMOVED_RUNS.fetch_add(1, Ordering::SeqCst) {
        0 => Ok(u64::from(key)),
        1 => {
            std::thread::sleep(Duration::from_millis(300));
            removed_while_failing_invalidate(key).unwrap();
            Err("upstream down".into())
        }
        _ => Err("upstream down".into()),
    }
}

#[test]
fn a_waiter_does_not_serve_a_stale_value_removed_while_it_waited() {
    LazyLock::force(&BACKENDS);
    assert_eq!(removed_while_failing(4), Ok(4));
    std::thread::sleep(PAST_TTL);
    let leader = std::thread::spawn(|| removed_while_failing(4));
    while REMOVED_RUNS.load(Ordering::SeqCst) < 2 {
        std::thread::yield_now();
    }
    // These callers find the stale value and wait for the leader, whose computation fails
    // after the entry was removed: the value they found is gone, so none of them serves it.
    let served: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..8).map(|_| scope.spawn(|| removed_while_failing(4))).collect();
        callers.into_iter().map(|caller| caller.join().unwrap()).collect()
    });
    assert_eq!(served, vec![Err("upstream down".to_string()); 8]);
    // The leader held the stale value itself when its computation failed.
    assert_eq!(leader.join().unwrap(), Ok(4));
}

/// Owned arguments and a boxed error: refreshed in the background like any other (the return
/// type does not decide). It compiles and serves its value.
#[cached(name = "not_send_memory")]
fn boxed_error(key: u32) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    Ok(u64::from(key))
}

#[test]
fn a_function_returning_a_boxed_error_is_cached() {
    LazyLock::force(&BACKENDS);
    assert_eq!(boxed_error(6).unwrap(), 6);
    assert_eq!(boxed_error(6).unwrap(), 6);
}
