//! `#[cached]` on the memory backend: hits and misses counted by real computations, methods,
//! skipped arguments, versions, Result/Option, TTL, eviction, single-flight, invalidation.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, LazyLock};
use std::time::Duration;

use cachex::{cached, CacheConfig, Config};
use support::Counter;

static SETUP: LazyLock<()> = LazyLock::new(|| {
    cachex::init_with(
        Config::new()
            .defaults(CacheConfig::new().ttl(Duration::from_secs(600)))
            .cache("plain", CacheConfig::memory())
            .cache("methods", CacheConfig::memory())
            .cache("results", CacheConfig::memory())
            .cache("short", CacheConfig::memory().ttl(Duration::from_millis(300)))
            .cache("small", CacheConfig::memory().max_entries(20))
            .cache("flight", CacheConfig::memory()),
    )
    .expect("the test configuration is valid");
});

fn setup() {
    LazyLock::force(&SETUP);
}

static COMPUTED: LazyLock<Counter> = LazyLock::new(Counter::default);

#[cached(name = "plain")]
fn square(n: u64) -> u64 {
    COMPUTED.bump(format!("square:{n}"));
    n * n
}

#[test]
fn sync_hit_after_one_computation() {
    setup();
    assert_eq!(square(7), 49);
    assert_eq!(square(7), 49);
    assert_eq!(square(7), 49);
    assert_eq!(COMPUTED.get("square:7"), 1);
    assert_eq!(square(8), 64);
    assert_eq!(COMPUTED.get("square:8"), 1);
}

#[cached(name = "plain")]
async fn greet(name: String, times: u32) -> String {
    COMPUTED.bump(format!("greet:{name}:{times}"));
    tokio::task::yield_now().await;
    name.repeat(times as usize)
}

#[tokio::test]
async fn async_hit_after_one_computation() {
    setup();
    assert_eq!(greet("ab".into(), 2).await, "abab");
    assert_eq!(greet("ab".into(), 2).await, "abab");
    assert_eq!(greet("ab".into(), 3).await, "ababab");
    assert_eq!(COMPUTED.get("greet:ab:2"), 1);
    assert_eq!(COMPUTED.get("greet:ab:3"), 1);
}

struct Repo {
    label: &'static str,
}

impl Repo {
    #[cached(name = "methods")]
    fn lookup(&self, id: u32) -> String {
        COMPUTED.bump(format!("lookup:{}:{id}", self.label));
        format!("item-{id}")
    }

    #[cached(name = "methods")]
    async fn lookup_async(&self, id: u32) -> Vec<u32> {
        COMPUTED.bump(format!("lookup_async:{}:{id}", self.label));
        vec![id; 3]
    }
}

#[tokio::test]
async fn methods_leave_self_out_of_the_key() {
    setup();
    let a = Repo { label: "a" };
    let b = Repo { label: "b" };
    assert_eq!(a.lookup(1), "item-1");
    assert_eq!(b.lookup(1), "item-1");
    assert_eq!(COMPUTED.get("lookup:a:1") + COMPUTED.get("lookup:b:1"), 1);
    assert_eq!(a.lookup_async(5).await, vec![5, 5, 5]);
    assert_eq!(b.lookup_async(5).await, vec![5, 5, 5]);
    assert_eq!(COMPUTED.get("lookup_async:a:5") + COMPUTED.get("lookup_async:b:5"), 1);
}

#[allow(dead_code)]
struct Client(u32);

#[cached(name = "plain", skip = "trace")]
fn fetch(path: &str, _client: &Client, trace: u64, #[skip] attempt: u8) -> String {
    COMPUTED.bump(format!("fetch:{path}"));
    let _ = (trace, attempt);
    format!("body of {path}")
}

#[test]
fn underscore_skip_attribute_and_skip_list_leave_arguments_out() {
    setup();
    assert_eq!(fetch("/a", &Client(1), 10, 1), "body of /a");
    assert_eq!(fetch("/a", &Client(2), 20, 2), "body of /a");
    assert_eq!(COMPUTED.get("fetch:/a"), 1);
    assert_eq!(fetch("/b", &Client(1), 10, 1), "body of /b");
    assert_eq!(COMPUTED.get("fetch:/b"), 1);
}

#[cached(name = "plain")]
fn versioned_v0(n: u32) -> u32 {
    COMPUTED.bump("versioned");
    n
}

mod renamed {
    use super::*;

    // Same identity as `versioned_v0` but another version: its keys differ.
    #[cached(name = "plain", id = "shared_identity", version = 2)]
    pub fn with_version(n: u32) -> u32 {
        COMPUTED.bump("with_version2");
        n + 1000
    }

    #[cached(name = "plain", id = "shared_identity", version = 3)]
    pub fn with_version3(n: u32) -> u32 {
        COMPUTED.bump("with_version3");
        n + 2000
    }
}

#[test]
fn version_changes_the_key() {
    setup();
    assert_eq!(versioned_v0(1), 1);
    assert_eq!(renamed::with_version(1), 1001);
    assert_eq!(renamed::with_version3(1), 2001);
    assert_eq!(renamed::with_version(1), 1001);
    assert_eq!(renamed::with_version3(1), 2001);
    assert_eq!(COMPUTED.get("with_version2"), 1);
    assert_eq!(COMPUTED.get("with_version3"), 1);
}

#[derive(Debug, PartialEq)]
struct AppError(String);

#[cached(name = "results")]
fn parse(text: String) -> Result<u64, AppError> {
    COMPUTED.bump(format!("parse:{text}"));
    text.parse().map_err(|_| AppError(format!("not a number: {text}")))
}

#[cached(name = "results")]
fn find(id: u32) -> Option<String> {
    COMPUTED.bump(format!("find:{id}"));
    (id % 2 == 0).then(|| format!("even {id}"))
}

#[cached(name = "results", cache_none)]
fn find_cached_none(id: u32) -> Option<String> {
    COMPUTED.bump(format!("find_none:{id}"));
    (id % 2 == 0).then(|| format!("even {id}"))
}

#[test]
fn result_caches_ok_only_and_option_some_only() {
    setup();
    assert_eq!(parse("12".into()), Ok(12));
    assert_eq!(parse("12".into()), Ok(12));
    assert_eq!(COMPUTED.get("parse:12"), 1);
    assert!(parse("x".into()).is_err());
    assert!(parse("x".into()).is_err());
    assert_eq!(COMPUTED.get("parse:x"), 2, "errors are not cached");

    assert_eq!(find(2).as_deref(), Some("even 2"));
    assert_eq!(find(2).as_deref(), Some("even 2"));
    assert_eq!(COMPUTED.get("find:2"), 1);
    assert_eq!(find(3), None);
    assert_eq!(find(3), None);
    assert_eq!(COMPUTED.get("find:3"), 2, "None is not cached");

    assert_eq!(find_cached_none(3), None);
    assert_eq!(find_cached_none(3), None);
    assert_eq!(COMPUTED.get("find_none:3"), 1, "cache_none caches None");
}

#[cached(name = "short")]
fn short_lived(n: u32) -> u32 {
    COMPUTED.bump(format!("short:{n}"));
    n
}

#[test]
fn entries_expire_after_the_ttl() {
    setup();
    short_lived(1);
    // Well past the 300 ms TTL: the entry is gone whatever the machine's load.
    std::thread::sleep(Duration::from_millis(1200));
    short_lived(1);
    assert_eq!(COMPUTED.get("short:1"), 2);
}

#[cached(name = "small")]
fn bounded(n: u32) -> u32 {
    COMPUTED.bump("bounded");
    n
}

#[test]
fn max_entries_bounds_the_cache() {
    setup();
    for n in 0..500 {
        bounded(n);
    }
    let handle = cachex::cache("small").unwrap();
    let stats = handle.stats();
    assert_eq!(stats.stores, 500);
    let before = COMPUTED.get("bounded");
    for n in 0..500 {
        bounded(n);
    }
    let recomputed = COMPUTED.get("bounded") - before;
    assert!(
        recomputed >= 480,
        "at most 20 of 500 entries can be kept, yet only {recomputed} were recomputed"
    );
}

static FLIGHT_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(name = "flight")]
fn slow_threaded(n: u32) -> u32 {
    FLIGHT_CALLS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    n * 2
}

#[test]
fn thirty_two_threads_missing_one_key_compute_once() {
    setup();
    let barrier = Arc::new(Barrier::new(32));
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                slow_threaded(21)
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), 42);
    }
    assert_eq!(FLIGHT_CALLS.load(Ordering::SeqCst), 1);
}

static ASYNC_FLIGHT_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(name = "flight")]
async fn slow_task(n: u32) -> u32 {
    ASYNC_FLIGHT_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    n * 3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_tasks_missing_one_key_compute_once() {
    setup();
    let results = support::at_once(200, || slow_task(7)).await;
    assert!(results.iter().all(|&v| v == 21), "{results:?}");
    assert_eq!(ASYNC_FLIGHT_CALLS.load(Ordering::SeqCst), 1);
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

#[cached(name = "flight")]
fn first_call_panics(n: u32) -> u32 {
    let attempt = PANICS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    if attempt == 0 {
        panic!("the first computation fails");
    }
    n + 1
}

#[test]
fn a_panicking_computation_releases_its_waiters() {
    setup();
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                std::panic::catch_unwind(|| first_call_panics(1)).ok()
            })
        })
        .collect();
    let results: Vec<Option<u32>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let panicked = results.iter().filter(|r| r.is_none()).count();
    assert!(panicked >= 1, "the first computation panicked in its caller");
    assert!(results.iter().flatten().all(|&v| v == 2), "{results:?}");
    assert_eq!(results.iter().flatten().count(), 8 - panicked);
    // After the panic, one of the waiters computed and stored the value: later calls hit.
    let before = PANICS.load(Ordering::SeqCst);
    assert_eq!(first_call_panics(1), 2);
    assert_eq!(PANICS.load(Ordering::SeqCst), before);
}

#[cached(name = "methods")]
fn invalidated(n: u32) -> u32 {
    COMPUTED.bump(format!("invalidated:{n}"));
    n
}

#[test]
fn invalidate_one_call_and_clear_the_cache() {
    setup();
    invalidated(1);
    invalidated(2);
    invalidated_invalidate(1).unwrap();
    invalidated(1);
    invalidated(2);
    assert_eq!(COMPUTED.get("invalidated:1"), 2);
    assert_eq!(COMPUTED.get("invalidated:2"), 1);
    cachex::cache("methods").unwrap().clear().unwrap();
    invalidated(2);
    assert_eq!(COMPUTED.get("invalidated:2"), 2);
}

#[test]
fn direct_get_and_set_through_the_handle() {
    setup();
    let handle = cachex::cache("results").unwrap();
    assert_eq!(handle.backend(), "memory");
    assert_eq!(handle.get::<_, Vec<String>>(&("user", 7)).unwrap(), None);
    handle.set(&("user", 7), &vec!["a".to_string()]).unwrap();
    assert_eq!(
        handle.get::<_, Vec<String>>(&("user", 7)).unwrap(),
        Some(vec!["a".to_string()])
    );
    assert_eq!(
        handle.get::<_, u64>(&("user", 7)).unwrap(),
        None,
        "another type is a miss"
    );
    assert!(matches!(
        cachex::cache("undeclared"),
        Err(cachex::Error::UnknownCache(_))
    ));
}

#[test]
fn a_second_init_is_refused() {
    setup();
    assert!(matches!(
        cachex::init_with(Config::new().cache("plain", CacheConfig::memory())),
        Err(cachex::Error::AlreadyInitialized)
    ));
}

/// A key whose serialisation fails.
struct Unserializable;

impl serde::Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this key cannot be serialised"))
    }
}

#[test]
fn a_direct_key_that_does_not_serialize_is_an_error_not_a_shared_key() {
    setup();
    let handle = cachex::cache("results").unwrap();
    assert!(matches!(
        handle.set(&Unserializable, &1u8),
        Err(cachex::Error::Encode { .. })
    ));
    assert!(matches!(
        handle.get::<_, u8>(&Unserializable),
        Err(cachex::Error::Encode { .. })
    ));
}
