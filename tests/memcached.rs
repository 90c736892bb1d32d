//! The Memcached backend against real `memcached` processes started on free ports: through the
//! `memcache` (blocking) and `async-memcached` adapters and through a hand-written client.
#![cfg(all(feature = "memcache", feature = "async-memcached"))]

mod support;

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use cachex::{cached, CacheConfig, Config, OnError};
use support::memcached_server::{MemcachedServer, TextClient};
use support::{signing, Counter};

struct Servers {
    main: MemcachedServer,
    fault: Mutex<MemcachedServer>,
}

static SERVERS: LazyLock<Servers> = LazyLock::new(|| {
    let servers = Servers {
        main: MemcachedServer::start(),
        fault: Mutex::new(MemcachedServer::start()),
    };
    let memcached = |url: &str| {
        CacheConfig::new()
            .backend(cachex::BackendKind::Memcached)
            .url(url)
            .timeout(Duration::from_millis(250))
    };
    let main = servers.main.url();
    // The hand-written client serves `m_hand`, which has no URL.
    cachex::memcached::register("m_hand", TextClient::connect(servers.main.port).unwrap());
    cachex::init_with(
        Config::new()
            .defaults(CacheConfig::new().ttl(Duration::from_secs(600)))
            .cache("m", memcached(&main))
            .cache("m_hand", CacheConfig::new().backend(cachex::BackendKind::Memcached))
            .cache("m_short", memcached(&main).ttl(Duration::from_secs(1)))
            .cache("m_long", memcached(&main).ttl(Duration::from_secs(40 * 24 * 3600)))
            .cache("m_a", memcached(&main))
            .cache("m_b", memcached(&main))
            .cache("m_big", memcached(&main))
            .cache("m_big_server", {
                let mut cache = memcached(&main);
                cache.max_item_bytes = Some(4 * 1024 * 1024);
                cache
            })
            .cache("m_corrupt", memcached(&main))
            .cache("m_signed", memcached(&main).signing_key(signing::KEY, &[]))
            .cache(
                "m_rotated",
                memcached(&main).signing_key(signing::KEY, &[signing::OLD_KEY]),
            )
            .cache("m_fault", memcached(&servers.fault.lock().unwrap().url()))
            .cache("m_fail", memcached(&main).on_error(OnError::Fail)),
    )
    .expect("valid test configuration");
    servers
});

fn servers() -> &'static Servers {
    &SERVERS
}

static COMPUTED: LazyLock<Counter> = LazyLock::new(Counter::default);

fn raw() -> TextClient {
    TextClient::connect(servers().main.port).unwrap()
}

#[cached(name = "m")]
fn sync_value(id: u32) -> String {
    COMPUTED.bump(format!("sync:{id}"));
    format!("sync {id}")
}

#[cached(name = "m")]
async fn async_value(id: u32) -> Vec<u32> {
    COMPUTED.bump(format!("async:{id}"));
    vec![id; 4]
}

#[tokio::test]
async fn round_trips_through_both_adapters() {
    servers();
    assert_eq!(tokio::task::spawn_blocking(|| sync_value(1)).await.unwrap(), "sync 1");
    assert_eq!(tokio::task::spawn_blocking(|| sync_value(1)).await.unwrap(), "sync 1");
    assert_eq!(COMPUTED.get("sync:1"), 1, "the memcache adapter (blocking side)");
    assert_eq!(async_value(2).await, vec![2; 4]);
    assert_eq!(async_value(2).await, vec![2; 4]);
    assert_eq!(COMPUTED.get("async:2"), 1, "the async-memcached adapter");
    // One side writes, the other reads: the same keys and generation.
    let handle = cachex::cache("m").unwrap();
    handle.set_async(&"shared", &5u64).await.unwrap();
    let read = tokio::task::spawn_blocking(move || handle.get::<_, u64>(&"shared").unwrap())
        .await
        .unwrap();
    assert_eq!(read, Some(5));
    let keys = raw().keys().unwrap();
    assert!(
        keys.iter().any(|k| k.starts_with("cachex:m:") && k.len() <= 250),
        "{keys:?}"
    );
}

#[cached(name = "m_hand")]
fn hand(id: u32) -> u32 {
    COMPUTED.bump(format!("hand:{id}"));
    id * 3
}

#[test]
fn a_hand_written_client_registered_in_code() {
    servers();
    assert_eq!(hand(3), 9);
    assert_eq!(hand(3), 9);
    assert_eq!(COMPUTED.get("hand:3"), 1);
    let handle = cachex::cache("m_hand").unwrap();
    assert_eq!(handle.stats().hits, 1);
    handle.clear().unwrap();
    assert_eq!(hand(3), 9);
    assert_eq!(COMPUTED.get("hand:3"), 2);
}

#[cached(name = "m_short")]
async fn short(id: u32) -> u32 {
    COMPUTED.bump(format!("short:{id}"));
    id
}

#[tokio::test]
async fn entries_expire_after_the_ttl() {
    servers();
    short(1).await;
    short(1).await;
    assert_eq!(COMPUTED.get("short:1"), 1);
    // memcached counts expiry in whole seconds: well past the 1 s TTL.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    short(1).await;
    assert_eq!(COMPUTED.get("short:1"), 2);
}

#[cached(name = "m_long")]
fn long_lived(id: u32) -> u32 {
    COMPUTED.bump(format!("long:{id}"));
    id
}

#[test]
fn a_ttl_over_thirty_days_is_stored_and_readable() {
    servers();
    // Sent as seconds, 40 days would be read as a timestamp in 1970: expired at once.
    long_lived(1);
    long_lived(1);
    assert_eq!(COMPUTED.get("long:1"), 1);
}

#[cached(name = "m_a")]
fn in_a(id: u32) -> u32 {
    COMPUTED.bump(format!("a:{id}"));
    id
}

#[cached(name = "m_b")]
async fn in_b(id: u32) -> u32 {
    COMPUTED.bump(format!("b:{id}"));
    id
}

#[tokio::test]
async fn clearing_one_cache_leaves_other_caches_and_applications_intact() {
    servers();
    let other_app = raw();
    use cachex::memcached::MemcachedClient;
    other_app.set("another:application:key", b"theirs", 0).unwrap();
    for id in 0..3 {
        tokio::task::spawn_blocking(move || in_a(id)).await.unwrap();
        in_b(id).await;
    }
    cachex::cache("m_a").unwrap().clear_async().await.unwrap();
    for id in 0..3 {
        tokio::task::spawn_blocking(move || in_a(id)).await.unwrap();
        in_b(id).await;
    }
    assert!((0..3).all(|id| COMPUTED.get(&format!("a:{id}")) == 2), "a was cleared");
    assert!((0..3).all(|id| COMPUTED.get(&format!("b:{id}")) == 1), "b was not");
    assert_eq!(
        other_app.get("another:application:key").unwrap().as_deref(),
        Some(&b"theirs"[..])
    );
}

#[cached(name = "m_big")]
async fn oversized(id: u32) -> Vec<u8> {
    COMPUTED.bump(format!("oversized:{id}"));
    vec![id as u8; 2 * 1024 * 1024]
}

#[cached(name = "m_big_server")]
async fn refused_by_server(id: u32) -> Vec<u8> {
    COMPUTED.bump(format!("refused:{id}"));
    vec![id as u8; 2 * 1024 * 1024]
}

#[tokio::test]
async fn an_oversized_value_is_computed_returned_and_not_stored() {
    servers();
    assert_eq!(oversized(1).await.len(), 2 * 1024 * 1024);
    assert_eq!(oversized(1).await.len(), 2 * 1024 * 1024);
    assert_eq!(COMPUTED.get("oversized:1"), 2);
    let stats = cachex::cache("m_big").unwrap().stats();
    assert_eq!((stats.stores, stats.errors), (0, 2), "refused before the write");
    // With a limit above the server's, the server refuses it: the same outcome.
    assert_eq!(refused_by_server(1).await.len(), 2 * 1024 * 1024);
    assert_eq!(refused_by_server(1).await.len(), 2 * 1024 * 1024);
    assert_eq!(COMPUTED.get("refused:1"), 2);
    assert_eq!(cachex::cache("m_big_server").unwrap().stats().stores, 0);
}

#[test]
fn an_over_long_prefix_is_rejected_at_init() {
    let config = Config::new().cache(
        "sessions",
        CacheConfig::new()
            .backend(cachex::BackendKind::Memcached)
            .url("memcached://127.0.0.1:1")
            .prefix(&"p".repeat(200)),
    );
    let error = cachex::config::build_runtime(&cachex::config::Loaded::from_code(config))
        .err()
        .unwrap();
    let message = error.to_string();
    assert!(message.contains("cache `sessions`, key `prefix`"), "{message}");
    assert!(message.contains("at most 250 bytes"), "{message}");
}

#[test]
fn a_memcached_cache_without_client_or_url_is_reported() {
    let config = Config::new().cache("lonely", CacheConfig::new().backend(cachex::BackendKind::Memcached));
    let error = cachex::config::build_runtime(&cachex::config::Loaded::from_code(config))
        .err()
        .unwrap();
    assert!(
        error.to_string().contains("cachex::memcached::register(\"lonely\""),
        "{error}"
    );
}

#[cached(name = "m_fault")]
async fn through_fault(id: u32) -> u32 {
    id + 1
}

#[cached(name = "m_fault")]
fn through_fault_blocking(id: u32) -> u32 {
    id + 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_never_fails_a_call_and_hits_resume_after_restart() {
    servers();
    let handle = cachex::cache("m_fault").unwrap();
    let run = |round: u32| async move {
        for i in 0..5 {
            assert_eq!(through_fault(i).await, i + 1, "round {round}");
        }
        let blocking = tokio::task::spawn_blocking(move || through_fault_blocking(round))
            .await
            .unwrap();
        assert_eq!(blocking, round + 2);
    };
    support::survives_restart(
        &handle,
        2,
        Duration::from_secs(30),
        || servers().fault.lock().unwrap().kill(),
        || servers().fault.lock().unwrap().restart(),
        run,
    )
    .await;
}

#[cached(name = "m_corrupt")]
fn corruptible(id: u32) -> String {
    COMPUTED.bump(format!("corruptible:{id}"));
    format!("value {id}")
}

#[test]
fn corrupt_bytes_are_a_miss() {
    use cachex::memcached::MemcachedClient;
    servers();
    corruptible(1);
    let raw = raw();
    let key = raw
        .keys()
        .unwrap()
        .into_iter()
        .find(|k| k.starts_with("cachex:m_corrupt:") && !k.ends_with(":gen"))
        .expect("the entry is on the server");
    raw.set(&key, b"\x01\x02 not an envelope", 0).unwrap();
    let errors = cachex::cache("m_corrupt").unwrap().stats().errors;
    assert_eq!(corruptible(1), "value 1");
    assert_eq!(COMPUTED.get("corruptible:1"), 2);
    assert_eq!(cachex::cache("m_corrupt").unwrap().stats().errors, errors + 1);
    let stored = raw.get(&key).unwrap().unwrap();
    assert_eq!(cachex::envelope::decode::<String>(&stored), Ok("value 1".to_string()));
}

/// The main server's entries, by storage key (`prefix:hex`; on the server the key carries
/// the namespace generation between the two).
struct Entries;

impl Entries {
    fn server_key(storage_key: &str) -> String {
        let (prefix, hex) = storage_key.rsplit_once(':').unwrap();
        raw()
            .keys()
            .unwrap()
            .into_iter()
            .find(|k| k.starts_with(&format!("{prefix}:")) && k.ends_with(&format!(":{hex}")))
            .unwrap_or_else(|| panic!("{storage_key} is on the server"))
    }
}

impl signing::RawStore for Entries {
    fn get(&self, storage_key: &str) -> Option<Vec<u8>> {
        use cachex::memcached::MemcachedClient;
        raw().get(&Self::server_key(storage_key)).unwrap()
    }
    fn put(&self, storage_key: &str, bytes: &[u8]) {
        use cachex::memcached::MemcachedClient;
        raw().set(&Self::server_key(storage_key), bytes, 600).unwrap();
    }
    fn remove(&self, storage_key: &str) {
        use cachex::memcached::MemcachedClient;
        raw().delete(&Self::server_key(storage_key)).unwrap();
    }
}

#[test]
fn signed_values_verify_or_are_misses() {
    servers();
    signing::drill("m_signed", "m_rotated", &Entries);
}

#[cached(name = "m")]
async fn per_runtime(id: u32) -> u32 {
    COMPUTED.bump(format!("per_runtime:{id}"));
    id
}

/// The async client's connections are made on the runtime of the first call; when that
/// runtime is gone, the next runtime's calls still reach the server (no error, no
/// recomputation).
#[test]
fn a_runtime_that_is_gone_leaves_no_broken_connection() {
    servers();
    support::across_runtimes("m", || per_runtime(7));
    assert_eq!(COMPUTED.get("per_runtime:7"), 1, "computed once, then hits");
}
