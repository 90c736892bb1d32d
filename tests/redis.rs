//! The Redis backend against real `redis-server` processes started on free ports: standalone,
//! ACL, unix socket, TLS, a three-master cluster, faults and corrupt data.
#![cfg(feature = "redis")]

mod support;

use std::process::{Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use cachex::{cached, CacheConfig, Config, OnError};
use support::redis_server::{RedisCluster, RedisServer, TlsRedisServer};
use support::{signing, Counter};

struct Servers {
    main: RedisServer,
    tls: TlsRedisServer,
    cluster: RedisCluster,
    fault: Mutex<RedisServer>,
    pause: RedisServer,
    dead_port: u16,
}

const TIMEOUT: Duration = Duration::from_millis(250);

static SERVERS: LazyLock<Servers> = LazyLock::new(|| {
    let main = RedisServer::start();
    redis::cmd("ACL")
        .arg(&["SETUSER", "cachex_app", "on", ">s3cret-pw", "~*", "&*", "+@all"][..])
        .query::<()>(&mut main.client())
        .unwrap();
    let servers = Servers {
        tls: TlsRedisServer::start(),
        cluster: RedisCluster::start(),
        fault: Mutex::new(RedisServer::start()),
        pause: RedisServer::start(),
        dead_port: support::free_port(),
        main,
    };
    let redis = |url: &str| CacheConfig::redis(url).timeout(TIMEOUT);
    let main_url = servers.main.url();
    let fault_url = servers.fault.lock().unwrap().url();
    let mut tls = redis(&servers.tls.url());
    tls.tls_ca_file = Some(servers.tls.ca_file.clone());
    cachex::init_with(
        Config::new()
            .defaults(CacheConfig::new().ttl(Duration::from_secs(600)))
            .cache("r", redis(&main_url))
            .cache("r_short", redis(&main_url).ttl(Duration::from_millis(300)))
            .cache("r_forever", redis(&main_url).ttl(Duration::ZERO))
            .cache(
                "r_acl",
                redis(&format!(
                    "redis://cachex_app:s3cret-pw@127.0.0.1:{}/0",
                    servers.main.port
                )),
            )
            .cache("r_unix", redis(&servers.main.unix_url()))
            .cache("r_tls", tls)
            .cache("r_cluster", redis(&servers.cluster.url()))
            .cache("r_glob", redis(&main_url).prefix("glob:a*"))
            .cache("r_glob_other", redis(&main_url).prefix("glob:ab"))
            .cache("r_fault", redis(&fault_url))
            .cache("r_pause", redis(&servers.pause.url()))
            .cache("r_corrupt", redis(&main_url))
            .cache("r_big", redis(&main_url).timeout(Duration::from_secs(5)))
            .cache("r_shared", redis(&main_url))
            .cache("r_signed", redis(&main_url).signing_key(signing::KEY, &[]))
            .cache(
                "r_rotated",
                redis(&main_url).signing_key(signing::KEY, &[signing::OLD_KEY]),
            )
            .cache(
                "r_fail",
                redis(&format!("redis://app:hunter2@127.0.0.1:{}/0", servers.dead_port)).on_error(OnError::Fail),
            ),
    )
    .expect("valid test configuration");
    servers
});

fn servers() -> &'static Servers {
    &SERVERS
}

static COMPUTED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// The storage keys of a cache on a server.
fn keys_of(conn: &mut redis::Connection, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query(conn).unwrap();
    keys.sort();
    keys
}

#[cached(name = "r")]
fn user(id: u32) -> (u32, String) {
    COMPUTED.bump(format!("user:{id}"));
    (id, format!("user {id}"))
}

#[test]
fn sync_round_trip() {
    servers();
    assert_eq!(user(1), (1, "user 1".into()));
    assert_eq!(user(1), (1, "user 1".into()));
    assert_eq!(COMPUTED.get("user:1"), 1);
    let keys = keys_of(&mut servers().main.client(), "cachex:r");
    assert!(keys.iter().all(|k| k.len() == "cachex:r:".len() + 64), "{keys:?}");
}

#[cached(name = "r")]
async fn user_async(id: u32) -> Vec<String> {
    COMPUTED.bump(format!("user_async:{id}"));
    vec![format!("u{id}"); 2]
}

#[tokio::test]
async fn async_round_trip() {
    servers();
    assert_eq!(user_async(2).await, vec!["u2", "u2"]);
    assert_eq!(user_async(2).await, vec!["u2", "u2"]);
    assert_eq!(COMPUTED.get("user_async:2"), 1);
    let handle = cachex::cache("r").unwrap();
    handle.set_async(&"direct", &7u64).await.unwrap();
    assert_eq!(handle.get_async::<_, u64>(&"direct").await.unwrap(), Some(7));
    handle.remove_async(&"direct").await.unwrap();
    assert_eq!(handle.get_async::<_, u64>(&"direct").await.unwrap(), None);
}

/// The check that the async side runs on tokio answers inside tasks from a thread-local; this
/// is the other way, a plain thread: an error at once, never a panic from a tokio timer.
#[test]
fn the_async_side_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    servers();
    let handle = cachex::cache("r").unwrap();
    let mut lookup = std::pin::pin!(handle.get_async::<_, u64>(&"outside a runtime"));
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match std::future::Future::poll(lookup.as_mut(), &mut context) {
        std::task::Poll::Ready(Err(error)) => {
            assert!(error.to_string().contains("needs a tokio runtime"), "{error}")
        }
        other => panic!("expected an error at once, got {other:?}"),
    }
}

#[cached(name = "r_short")]
fn short(id: u32) -> u32 {
    COMPUTED.bump(format!("short:{id}"));
    id
}

#[cached(name = "r_forever")]
fn forever(id: u32) -> u32 {
    id
}

#[test]
fn ttl_is_px_and_an_entry_without_ttl_has_none() {
    servers();
    let mut conn = servers().main.client();
    short(1);
    let key = keys_of(&mut conn, "cachex:r_short").pop().unwrap();
    let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert!(pttl > 0 && pttl <= 300, "PTTL {pttl}");
    std::thread::sleep(Duration::from_millis(1200));
    short(1);
    assert_eq!(COMPUTED.get("short:1"), 2, "expired after the TTL");

    forever(1);
    let key = keys_of(&mut conn, "cachex:r_forever").pop().unwrap();
    let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert_eq!(pttl, -1, "no expiry");
}

#[cached(name = "r_acl")]
fn acl(id: u32) -> u32 {
    COMPUTED.bump(format!("acl:{id}"));
    id
}

#[test]
fn acl_user_and_password() {
    servers();
    acl(1);
    acl(1);
    assert_eq!(COMPUTED.get("acl:1"), 1);
    assert_eq!(cachex::cache("r_acl").unwrap().stats().errors, 0);
}

#[cached(name = "r_unix")]
async fn over_unix(id: u32) -> u32 {
    COMPUTED.bump(format!("unix:{id}"));
    id
}

#[tokio::test]
async fn unix_socket() {
    servers();
    assert!(servers().main.unix_pings());
    over_unix(1).await;
    over_unix(1).await;
    assert_eq!(COMPUTED.get("unix:1"), 1);
    assert_eq!(cachex::cache("r_unix").unwrap().stats().hits, 1);
}

#[cached(name = "r_tls")]
async fn over_tls(id: u32) -> String {
    COMPUTED.bump(format!("tls:{id}"));
    format!("secret {id}")
}

#[tokio::test]
async fn tls_with_a_generated_certificate() {
    servers();
    assert_eq!(over_tls(1).await, "secret 1");
    assert_eq!(over_tls(1).await, "secret 1");
    assert_eq!(COMPUTED.get("tls:1"), 1);
    let handle = cachex::cache("r_tls").unwrap();
    assert_eq!((handle.stats().hits, handle.stats().errors), (1, 0));
    // The blocking side speaks TLS too.
    handle.set(&"sync", &1u8).unwrap();
    assert_eq!(handle.get::<_, u8>(&"sync").unwrap(), Some(1));
}

#[cached(name = "r_cluster")]
async fn clustered(id: u32) -> u32 {
    COMPUTED.bump(format!("clustered:{id}"));
    id * 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_spreads_keys_over_every_master_and_clears_them_all() {
    servers();
    for id in 0..300 {
        assert_eq!(clustered(id).await, id * 10);
    }
    for id in 0..300 {
        assert_eq!(clustered(id).await, id * 10);
    }
    assert!((0..300).all(|id| COMPUTED.get(&format!("clustered:{id}")) == 1));
    let per_node = servers().cluster.keys_per_node();
    assert!(per_node.iter().all(|&n| n > 0), "keys on every master: {per_node:?}");
    assert_eq!(per_node.iter().sum::<usize>(), 300);

    let handle = cachex::cache("r_cluster").unwrap();
    handle.set(&"blocking side", &5u32).unwrap();
    assert_eq!(handle.get::<_, u32>(&"blocking side").unwrap(), Some(5));
    handle.clear_async().await.unwrap();
    assert_eq!(servers().cluster.keys_per_node().iter().sum::<usize>(), 0);
    clustered(1).await;
    handle.clear().unwrap();
    assert_eq!(servers().cluster.keys_per_node().iter().sum::<usize>(), 0);
}

#[cached(name = "r_glob")]
fn glob_a(id: u32) -> u32 {
    id
}

#[cached(name = "r_glob_other")]
fn glob_ab(id: u32) -> u32 {
    id
}

#[test]
fn clear_escapes_glob_characters_in_the_prefix() {
    servers();
    let mut conn = servers().main.client();
    // A key that matches the unescaped pattern `glob:a*:` + 64 chars but belongs to nobody.
    let bystander = format!("glob:aXYZ:{}", "0".repeat(64));
    redis::cmd("SET")
        .arg(&bystander)
        .arg("keep")
        .query::<()>(&mut conn)
        .unwrap();
    for id in 0..5 {
        glob_a(id);
        glob_ab(id);
    }
    assert_eq!(keys_of(&mut conn, "glob:a\\*").len(), 5);
    assert_eq!(keys_of(&mut conn, "glob:ab").len(), 5);
    cachex::cache("r_glob").unwrap().clear().unwrap();
    assert_eq!(keys_of(&mut conn, "glob:a\\*").len(), 0);
    assert_eq!(keys_of(&mut conn, "glob:ab").len(), 5, "`a*` never touches `ab`");
    let kept: Option<String> = redis::cmd("GET").arg(&bystander).query(&mut conn).unwrap();
    assert_eq!(kept.as_deref(), Some("keep"));
}

const CHILD_ENV: &str = "CACHEX_TEST_REDIS_CHILD";

#[test]
fn two_processes_share_one_server() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // The child: another process of the same service, configured from the environment
        // and initialised lazily, writing through cachex.
        cachex::cache("r_shared")
            .unwrap()
            .set(&"from the child", &vec![4u8, 2])
            .unwrap();
        return;
    }
    servers();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["two_processes_share_one_server", "--exact"])
        .env(CHILD_ENV, "1")
        .env("CACHEX_CACHES__R_SHARED__BACKEND", "redis")
        .env("CACHEX_CACHES__R_SHARED__URL", servers().main.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let handle = cachex::cache("r_shared").unwrap();
    assert_eq!(handle.get::<_, Vec<u8>>(&"from the child").unwrap(), Some(vec![4, 2]));
}

#[cached(name = "r_fault")]
async fn through_fault(id: u32) -> u32 {
    id + 1
}

#[cached(name = "r_fault")]
fn through_fault_blocking(id: u32) -> u32 {
    id + 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_never_fails_a_call_and_hits_resume_after_restart() {
    servers();
    let handle = cachex::cache("r_fault").unwrap();
    let run = |round: u32| async move {
        let tasks: Vec<_> = (0..20u32)
            .map(|i| tokio::spawn(async move { (i, through_fault(i % 5).await) }))
            .collect();
        for task in tasks {
            let (i, value) = task.await.unwrap();
            assert_eq!(value, i % 5 + 1, "round {round}");
        }
        let blocking = tokio::task::spawn_blocking(move || through_fault_blocking(round))
            .await
            .unwrap();
        assert_eq!(blocking, round + 2);
    };
    support::survives_restart(
        &handle,
        3,
        Duration::from_secs(30),
        || servers().fault.lock().unwrap().kill(),
        || servers().fault.lock().unwrap().restart(),
        run,
    )
    .await;
}

#[cached(name = "r_pause")]
async fn through_pause(id: u32) -> u32 {
    id * 7
}

#[cached(name = "r_pause")]
fn through_pause_blocking(id: u32) -> u32 {
    id * 8
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_costs_a_timeout_not_a_hang() {
    servers();
    assert_eq!(through_pause(1).await, 7);
    assert_eq!(through_pause_blocking(1), 8);
    let mut admin = servers().pause.client();
    redis::cmd("CLIENT")
        .arg(&["PAUSE", "8000", "ALL"][..])
        .query::<()>(&mut admin)
        .unwrap();
    let started = Instant::now();
    assert_eq!(through_pause(1).await, 7);
    assert_eq!(through_pause(2).await, 14);
    assert_eq!(
        tokio::task::spawn_blocking(|| through_pause_blocking(3)).await.unwrap(),
        24
    );
    // A clear too, on both sides: each command bounded by the timeout (an unbounded one would
    // return Ok once the pause ends).
    let handle = cachex::cache("r_pause").unwrap();
    assert!(handle.clear_async().await.is_err(), "clear_async waited out the pause");
    let blocking = handle.clone();
    assert!(tokio::task::spawn_blocking(move || blocking.clear())
        .await
        .unwrap()
        .is_err());
    let elapsed = started.elapsed();
    // The server answers nothing for 8 s (not even an UNPAUSE); three calls bounded by the
    // 250 ms timeout (a lookup and a store each) and two clears return long before.
    assert!(
        elapsed < Duration::from_secs(6),
        "calls waited {elapsed:?} on a paused server"
    );
    assert!(cachex::cache("r_pause").unwrap().stats().errors >= 3);
}

#[cached(name = "r_corrupt")]
fn corruptible(id: u32) -> String {
    COMPUTED.bump(format!("corruptible:{id}"));
    format!("value {id}")
}

#[test]
fn corrupt_bytes_under_a_key_are_a_miss() {
    servers();
    let mut conn = servers().main.client();
    corruptible(1);
    let key = keys_of(&mut conn, "cachex:r_corrupt").pop().unwrap();
    redis::cmd("SET")
        .arg(&key)
        .arg(b"\x00\xffgarbage".as_slice())
        .query::<()>(&mut conn)
        .unwrap();
    let errors = cachex::cache("r_corrupt").unwrap().stats().errors;
    assert_eq!(corruptible(1), "value 1");
    assert_eq!(COMPUTED.get("corruptible:1"), 2);
    assert_eq!(cachex::cache("r_corrupt").unwrap().stats().errors, errors + 1);
    let stored: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
    assert_eq!(
        cachex::envelope::decode::<String>(&stored),
        Ok("value 1".to_string()),
        "overwritten"
    );
}

#[cached(name = "r_big")]
async fn big(seed: u8) -> Vec<u8> {
    COMPUTED.bump(format!("big:{seed}"));
    (0..8 * 1024 * 1024).map(|i| (i as u8).wrapping_mul(seed)).collect()
}

#[tokio::test]
async fn an_eight_mebibyte_value_round_trips() {
    servers();
    let first = big(3).await;
    let second = big(3).await;
    assert_eq!(first.len(), 8 * 1024 * 1024);
    assert_eq!(first, second);
    assert_eq!(COMPUTED.get("big:3"), 1);
}

#[derive(Debug)]
struct AppError(String);

impl From<cachex::Error> for AppError {
    fn from(error: cachex::Error) -> Self {
        AppError(format!("{error} / {error:?}"))
    }
}

#[cached(name = "r_fail")]
async fn strict(id: u32) -> Result<u32, AppError> {
    Ok(id)
}

#[tokio::test]
async fn fail_returns_a_clear_error_without_the_password() {
    servers();
    let AppError(message) = strict(1).await.unwrap_err();
    assert!(message.contains("cache `r_fail`"), "{message}");
    assert!(message.contains("redis backend"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

/// The main server's entries, by storage key.
struct Entries;

impl signing::RawStore for Entries {
    fn get(&self, storage_key: &str) -> Option<Vec<u8>> {
        redis::cmd("GET")
            .arg(storage_key)
            .query(&mut servers().main.client())
            .unwrap()
    }
    fn put(&self, storage_key: &str, bytes: &[u8]) {
        redis::cmd("SET")
            .arg(storage_key)
            .arg(bytes)
            .arg("KEEPTTL")
            .query::<()>(&mut servers().main.client())
            .unwrap();
    }
    fn remove(&self, storage_key: &str) {
        let removed: u32 = redis::cmd("DEL")
            .arg(storage_key)
            .query(&mut servers().main.client())
            .unwrap();
        assert_eq!(removed, 1, "{storage_key} was stored");
    }
}

#[test]
fn signed_values_verify_or_are_misses() {
    servers();
    signing::drill("r_signed", "r_rotated", &Entries);
}

#[cached(name = "r")]
async fn per_runtime(id: u32) -> u32 {
    COMPUTED.bump(format!("per_runtime:{id}"));
    id
}

/// The shared connection is made on the runtime of the first call; when that runtime is gone,
/// the next runtime's calls still reach Redis (no error, no recomputation).
#[test]
fn a_runtime_that_is_gone_leaves_no_broken_connection() {
    servers();
    support::across_runtimes("r", || per_runtime(7));
    assert_eq!(COMPUTED.get("per_runtime:7"), 1, "computed once, then hits");
}
