//! Leases, against real servers and several processes: a computation that an invalidation
//! overtook never stores its older value. A second process (this test binary run again)
//! computes a key whose body has read version 1 of a "database" (a file per key) and then
//! waits; meanwhile this process writes version 2 and invalidates the key; the second process
//! is let go, returns the 1 it read, and stores nothing: afterwards both read 2. On Redis
//! (standalone, cluster, with a local tier), memcached, MongoDB and the file backend, blocking
//! and async; and within one process on the memory backend.
#![cfg(all(
    feature = "redis",
    feature = "mongodb",
    feature = "memcache",
    feature = "async-memcached"
))]

mod support;

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use cachex::{cached, CacheConfig, Config, LocalConfig};
use support::memcached_server::MemcachedServer;
use support::mongo_server::MongoServer;
use support::peer::{Peer, ANSWER};
use support::redis_server::{RedisCluster, RedisServer};
use support::{wait_until, Counter};

/// The second process: `<test>|<function>|<key>`, and where everything is.
const PEER_ENV: &str = "CACHEX_TEST_LEASE_PEER";
const PLACES_ENV: &str = "CACHEX_TEST_LEASE_PLACES";
const PATIENCE: Duration = Duration::from_secs(20);

/// The servers and directories both processes use.
struct Places {
    redis: String,
    cluster: String,
    memcached: String,
    mongodb: String,
    database: String,
    files: PathBuf,
    /// The "database": one file per key holding its version.
    truth: PathBuf,
}

struct Servers {
    _redis: RedisServer,
    _cluster: RedisCluster,
    _memcached: MemcachedServer,
    _mongodb: MongoServer,
    places: Places,
}

static SERVERS: LazyLock<Servers> = LazyLock::new(|| {
    let (redis, cluster, memcached, mongodb) = (
        RedisServer::start(),
        RedisCluster::start(),
        MemcachedServer::start(),
        MongoServer::for_tests(),
    );
    let places = Places {
        redis: redis.url(),
        cluster: cluster.url(),
        memcached: memcached.url(),
        mongodb: mongodb.url.clone(),
        database: format!("cachex_leases_{}", std::process::id()),
        files: support::scratch_dir("leases-files-"),
        truth: support::scratch_dir("leases-truth-"),
    };
    init(&places);
    Servers {
        _redis: redis,
        _cluster: cluster,
        _memcached: memcached,
        _mongodb: mongodb,
        places,
    }
});

/// Where everything is: the second process is told; this one starts the servers.
fn places() -> &'static Places {
    PEER_PLACES.get().unwrap_or_else(|| &SERVERS.places)
}

fn init(places: &Places) {
    let shared = |config: CacheConfig| config.ttl(Duration::from_secs(600)).timeout(Duration::from_secs(2));
    let mut mongodb = shared(
        CacheConfig::new()
            .backend(cachex::BackendKind::Mongodb)
            .url(&places.mongodb),
    );
    mongodb.database = Some(places.database.clone());
    let memcached = shared(
        CacheConfig::new()
            .backend(cachex::BackendKind::Memcached)
            .url(&places.memcached),
    );
    cachex::init_with(
        Config::new()
            .cache("ls_redis", shared(CacheConfig::redis(&places.redis)))
            .cache("ls_cluster", shared(CacheConfig::redis(&places.cluster)))
            .cache(
                "ls_tiered",
                shared(CacheConfig::redis(&places.redis)).local(LocalConfig::new(Duration::from_secs(3600))),
            )
            .cache("ls_memcached", memcached)
            .cache("ls_mongodb", mongodb)
            .cache(
                "ls_file",
                CacheConfig::file(&places.files).ttl(Duration::from_secs(600)),
            )
            .cache("ls_memory", CacheConfig::memory())
            .cache("ls_failing", shared(CacheConfig::redis(&places.redis)))
            .cache(
                "ls_slow",
                shared(CacheConfig::redis(&places.redis)).lock_timeout(Duration::from_secs(1)),
            ),
    )
    .unwrap();
}

static COMPUTED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// One test at a time: a clear reaches every key of its cache.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn truth_path(function: &str, key: u32) -> PathBuf {
    places().truth.join(format!("{function}-{key}"))
}

fn gate_path(function: &str, key: u32, stage: &str) -> PathBuf {
    places().truth.join(format!("{function}-{key}.{stage}"))
}

/// Starts a run on `function(key)`: version 1 in the database, no entry, the gate closed.
fn begin(function: &str, key: u32) {
    for stage in ["read", "go"] {
        let _ = std::fs::remove_file(gate_path(function, key, stage));
    }
    write_truth(function, key, 1);
    invalidate(function, key);
    std::fs::write(gate_path(function, key, "gate"), "").unwrap();
}

fn write_truth(function: &str, key: u32, version: u64) {
    std::fs::write(truth_path(function, key), version.to_string()).unwrap();
}

/// The body of every cached function here: reads the key's version; when the key is gated,
/// says so and waits to be let go before returning what it read.
fn load(function: &str, key: u32) -> u64 {
    COMPUTED.bump(format!("{function}:{key}"));
    let version = std::fs::read_to_string(truth_path(function, key))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if gate_path(function, key, "gate").exists() {
        std::fs::write(gate_path(function, key, "read"), "").unwrap();
        wait_until("the gate to open", PATIENCE, || gate_path(function, key, "go").exists());
    }
    version
}

/// The cached functions, a blocking and an async one per cache, and by name what calls them,
/// what invalidates their entries, and their cache.
macro_rules! versioned {
    ($($cache:tt => $blocking:ident, $blocking_invalidate:ident, $nonblocking:ident, $nonblocking_invalidate:ident;)*) => {
        $(
            #[cached(name = $cache)]
            fn $blocking(key: u32) -> u64 {
                load(stringify!($blocking), key)
            }

            #[cached(name = $cache)]
            async fn $nonblocking(key: u32) -> u64 {
                let function = stringify!($nonblocking);
                tokio::task::spawn_blocking(move || load(function, key)).await.unwrap()
            }
        )*

        /// Calls `function` (by name) on `key`, on a runtime for the async ones.
        fn call(function: &str, key: u32) -> u64 {
            $(
                if function == stringify!($blocking) {
                    return $blocking(key);
                }
                if function == stringify!($nonblocking) {
                    return runtime().block_on($nonblocking(key));
                }
            )*
            panic!("no function {function}")
        }

        /// Removes `function`'s entry for `key` (its `_invalidate` companion).
        fn invalidate(function: &str, key: u32) {
            $(
                if function == stringify!($blocking) {
                    return $blocking_invalidate(key).unwrap();
                }
                if function == stringify!($nonblocking) {
                    return runtime().block_on($nonblocking_invalidate(key)).unwrap();
                }
            )*
            panic!("no function {function}")
        }

        /// The cache `function` is bound to.
        fn cache_of(function: &str) -> cachex::CacheHandle {
            $(
                if function == stringify!($blocking) || function == stringify!($nonblocking) {
                    return cachex::cache($cache).unwrap();
                }
            )*
            panic!("no function {function}")
        }
    };
}

versioned! {
    "ls_redis" => redis_blocking, redis_blocking_invalidate, redis_async, redis_async_invalidate;
    "ls_cluster" => cluster_blocking, cluster_blocking_invalidate, cluster_async, cluster_async_invalidate;
    "ls_tiered" => tiered_blocking, tiered_blocking_invalidate, tiered_async, tiered_async_invalidate;
    "ls_memcached" => memcached_blocking, memcached_blocking_invalidate, memcached_async, memcached_async_invalidate;
    "ls_mongodb" => mongodb_blocking, mongodb_blocking_invalidate, mongodb_async, mongodb_async_invalidate;
    "ls_file" => file_blocking, file_blocking_invalidate, file_async, file_async_invalidate;
    "ls_memory" => memory_blocking, memory_blocking_invalidate, memory_async, memory_async_invalidate;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The second process, computing `function(key)` behind the gate.
fn spawn_peer(test: &str, function: &str, key: u32) -> Peer {
    let p = places();
    let spec = [
        p.redis.as_str(),
        &p.cluster,
        &p.memcached,
        &p.mongodb,
        &p.database,
        p.files.to_str().unwrap(),
        p.truth.to_str().unwrap(),
    ]
    .join("|");
    Peer::spawn(
        test,
        &[(PEER_ENV, format!("{test}|{function}|{key}")), (PLACES_ENV, spec)],
    )
}

/// The peer's side: computes `function(key)` at once, answers `<value> <fills refused>`, then
/// calls it again for each `again`. Returns whether this process is a peer.
fn peer_mode(test: &str) -> bool {
    let Ok(spec) = std::env::var(PEER_ENV) else {
        return false;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [for_test, function, key] = parts[..] else {
        panic!("bad peer spec {spec}");
    };
    if for_test != test {
        return true;
    }
    let places_spec = std::env::var(PLACES_ENV).unwrap();
    let p: Vec<&str> = places_spec.split('|').collect();
    let places = Places {
        redis: p[0].into(),
        cluster: p[1].into(),
        memcached: p[2].into(),
        mongodb: p[3].into(),
        database: p[4].into(),
        files: p[5].into(),
        truth: p[6].into(),
    };
    init(&places);
    // The peer's own places: `places()` would start servers of its own.
    PEER_PLACES.set(places).ok().unwrap();
    let key: u32 = key.parse().unwrap();
    let value = call(function, key);
    println!("{ANSWER}{value} {}", cache_of(function).stats().fills_refused);
    for line in std::io::stdin().lock().lines() {
        match line.unwrap().as_str() {
            "again" => println!("{ANSWER}{}", call(function, key)),
            _ => break,
        }
    }
    true
}

static PEER_PLACES: std::sync::OnceLock<Places> = std::sync::OnceLock::new();

/// What the writer does while the peer computes.
#[derive(Clone, Copy)]
enum Change {
    Invalidate,
    Clear,
}

/// The overtaken computation, for `function` run by a second process.
fn an_overtaken_fill_never_lands(test: &str, function: &str, change: Change) {
    if peer_mode(test) {
        return;
    }
    let _one = one_at_a_time();
    let key = 7;
    begin(function, key);
    let mut peer = spawn_peer(test, function, key);
    wait_until("the peer to read version 1", PATIENCE, || {
        gate_path(function, key, "read").exists()
    });

    // The database changes, and the writer invalidates, while the peer still computes.
    write_truth(function, key, 2);
    match change {
        Change::Invalidate => invalidate(function, key),
        Change::Clear => cache_of(function).clear().unwrap(),
    }
    std::fs::remove_file(gate_path(function, key, "gate")).unwrap();
    std::fs::write(gate_path(function, key, "go"), "").unwrap();

    assert_eq!(
        peer.answer(),
        "1 1",
        "the peer returns what it read, and its fill is refused"
    );
    let before = COMPUTED.get(&format!("{function}:{key}"));
    assert_eq!(call(function, key), 2, "version 1 must not have been stored");
    assert_eq!(COMPUTED.get(&format!("{function}:{key}")), before + 1, "computed here");
    assert_eq!(peer.ask("again"), "2", "the peer reads version 2 too");
    assert_eq!(call(function, key), 2);
    assert_eq!(COMPUTED.get(&format!("{function}:{key}")), before + 1, "stored: a hit");
}

macro_rules! overtaken {
    ($($test:ident => $function:literal, $change:ident;)*) => {$(
        #[test]
        fn $test() {
            an_overtaken_fill_never_lands(stringify!($test), $function, Change::$change);
        }
    )*};
}

overtaken! {
    redis_blocking_fill_overtaken_by_an_invalidation => "redis_blocking", Invalidate;
    redis_async_fill_overtaken_by_an_invalidation => "redis_async", Invalidate;
    cluster_blocking_fill_overtaken_by_an_invalidation => "cluster_blocking", Invalidate;
    cluster_async_fill_overtaken_by_an_invalidation => "cluster_async", Invalidate;
    tiered_blocking_fill_overtaken_by_an_invalidation => "tiered_blocking", Invalidate;
    tiered_async_fill_overtaken_by_an_invalidation => "tiered_async", Invalidate;
    memcached_blocking_fill_overtaken_by_an_invalidation => "memcached_blocking", Invalidate;
    memcached_async_fill_overtaken_by_an_invalidation => "memcached_async", Invalidate;
    mongodb_blocking_fill_overtaken_by_an_invalidation => "mongodb_blocking", Invalidate;
    mongodb_async_fill_overtaken_by_an_invalidation => "mongodb_async", Invalidate;
    file_blocking_fill_overtaken_by_an_invalidation => "file_blocking", Invalidate;
    file_async_fill_overtaken_by_an_invalidation => "file_async", Invalidate;
    redis_blocking_fill_overtaken_by_a_clear => "redis_blocking", Clear;
    cluster_async_fill_overtaken_by_a_clear => "cluster_async", Clear;
    mongodb_blocking_fill_overtaken_by_a_clear => "mongodb_blocking", Clear;
    file_async_fill_overtaken_by_a_clear => "file_async", Clear;
}

/// While another process computes a key (and holds its lease), a miss here computes too but
/// does not store; the holder's value lands, and is then read here as a hit.
#[test]
fn a_miss_while_another_process_holds_the_lease_computes_without_storing() {
    let test = "a_miss_while_another_process_holds_the_lease_computes_without_storing";
    if peer_mode(test) {
        return;
    }
    let _one = one_at_a_time();
    let (function, key) = ("redis_blocking", 11);
    begin(function, key);
    let mut peer = spawn_peer(test, function, key);
    wait_until("the peer to read version 1", PATIENCE, || {
        gate_path(function, key, "read").exists()
    });
    std::fs::remove_file(gate_path(function, key, "gate")).unwrap();

    let stores = cache_of(function).stats().stores;
    assert_eq!(call(function, key), 1);
    assert_eq!(
        COMPUTED.get(&format!("{function}:{key}")),
        1,
        "computed here: a marker is a miss"
    );
    assert_eq!(
        cache_of(function).stats().stores,
        stores,
        "but not stored: the peer holds the lease"
    );
    assert_eq!(cache_of(function).stats().fills_refused, 0, "no change overtook it");

    std::fs::write(gate_path(function, key, "go"), "").unwrap();
    assert_eq!(peer.answer(), "1 0", "the peer's fill lands");
    assert_eq!(call(function, key), 1);
    assert_eq!(
        COMPUTED.get(&format!("{function}:{key}")),
        1,
        "the peer's value, read here"
    );
}

/// The memory backend within one process: a thread computes, another invalidates meanwhile.
fn an_overtaken_fill_never_lands_in_process(function: &'static str, change: Change) {
    let key = 3;
    begin(function, key);
    let computing = std::thread::spawn(move || call(function, key));
    wait_until("the thread to read version 1", PATIENCE, || {
        gate_path(function, key, "read").exists()
    });
    write_truth(function, key, 2);
    match change {
        Change::Invalidate => invalidate(function, key),
        Change::Clear => cache_of(function).clear().unwrap(),
    }
    std::fs::remove_file(gate_path(function, key, "gate")).unwrap();
    std::fs::write(gate_path(function, key, "go"), "").unwrap();
    assert_eq!(computing.join().unwrap(), 1, "the overtaken call returns what it read");
    let before = COMPUTED.get(&format!("{function}:{key}"));
    assert_eq!(call(function, key), 2, "version 1 must not have been stored");
    assert_eq!(call(function, key), 2);
    assert_eq!(COMPUTED.get(&format!("{function}:{key}")), before + 1);
}

#[test]
fn memory_fills_overtaken_by_an_invalidation_or_a_clear_never_land() {
    let _one = one_at_a_time();
    let refused = cache_of("memory_blocking").stats().fills_refused;
    an_overtaken_fill_never_lands_in_process("memory_blocking", Change::Invalidate);
    an_overtaken_fill_never_lands_in_process("memory_async", Change::Clear);
    assert_eq!(cache_of("memory_blocking").stats().fills_refused, refused + 2);
}

static FAILURES_LEFT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

#[cached(name = "ls_failing")]
fn fails_once(key: u32) -> Result<u32, String> {
    COMPUTED.bump(format!("fails_once:{key}"));
    if FAILURES_LEFT
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        )
        .is_ok()
    {
        return Err("the database is down".into());
    }
    Ok(key)
}

/// A computation that fails gives its lease up: the next one stores (its marker would
/// otherwise keep every later miss from storing until `lock_timeout` passed).
#[test]
fn a_failed_computation_gives_its_lease_up() {
    let _one = one_at_a_time();
    let _ = places();
    assert!(fails_once(5).is_err());
    assert_eq!(fails_once(5), Ok(5));
    assert_eq!(fails_once(5), Ok(5));
    assert_eq!(COMPUTED.get("fails_once:5"), 2, "the second call stored, the third hit");
    assert_eq!(cachex::cache("ls_failing").unwrap().stats().stores, 1);
}

#[cached(name = "ls_slow")]
fn slower_than_its_lease(key: u32) -> u32 {
    COMPUTED.bump(format!("slow:{key}"));
    std::thread::sleep(Duration::from_millis(1300));
    key
}

/// A computation that outlives its lease (`lock_timeout`, here 1 s) is returned, not stored,
/// and counted.
#[test]
fn a_computation_that_outlives_its_lease_is_returned_not_stored() {
    let _one = one_at_a_time();
    let _ = places();
    let cache = cachex::cache("ls_slow").unwrap();
    assert_eq!(slower_than_its_lease(9), 9);
    assert_eq!(cache.stats().fills_refused, 1);
    assert_eq!(cache.stats().stores, 0);
    assert_eq!(slower_than_its_lease(9), 9);
    assert_eq!(COMPUTED.get("slow:9"), 2, "nothing was stored: computed again");
}
