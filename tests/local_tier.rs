//! The local tier in front of Redis, against real `redis-server` processes (standalone and a
//! three-master cluster): coherence between two processes (this test binary runs again as the
//! second one), a killed invalidation connection, a killed and restarted server, single-flight
//! across the tiers, and the tier's bounds and TTL.
#![cfg(feature = "redis")]

mod support;

use std::io::BufRead;
use std::sync::{Arc, Barrier, LazyLock, Mutex};
use std::time::{Duration, Instant};

use cachex::{cached, CacheConfig, CacheHandle, Config, LocalConfig, Stats};
use support::peer::{Peer, ANSWER};
use support::proxy::Proxy;
use support::redis_server::{RedisCluster, RedisServer};
use support::{wait_until, Counter};

/// The second process: set to `<test name>|<cache>|<url>|<local or shared>`.
const PEER_ENV: &str = "CACHEX_TEST_LOCAL_TIER_PEER";
/// How long a peer may take to see a change (generous: the latency is the harness's job).
const SEEN_WITHIN: Duration = Duration::from_secs(10);
/// Long enough that no test here waits for a local entry to expire, but where one says so.
const LOCAL_TTL: Duration = Duration::from_secs(3600);
/// The caches' per-operation timeout (the invalidation channel pings after half of it).
const TIMEOUT: Duration = Duration::from_secs(2);

struct Servers {
    main: RedisServer,
    cluster: RedisCluster,
    /// Its pub/sub clients are killed by one test.
    killable: RedisServer,
    /// Killed and restarted by one test.
    fault: Mutex<RedisServer>,
    /// Only single-flight's reads: its GET count is the test's.
    reads: RedisServer,
    /// Paused (`CLIENT PAUSE`) by one test.
    paused: RedisServer,
    /// In front of `main` for one cache of this process (never the peer's): delays replies.
    proxy: Proxy,
}

/// Every cache this binary binds or uses, so a peer's configuration declares them all.
const NAMES: [&str; 13] = [
    "lt_proxied",
    "lt_cluster_moves",
    "lt_calls",
    "lt_pause",
    "lt_stale",
    "lt_file",
    "lt_shared",
    "lt_cluster",
    "lt_kill",
    "lt_restart",
    "lt_reads",
    "lt_bounds",
    "lt_expiry",
];

fn redis(url: &str) -> CacheConfig {
    CacheConfig::redis(url).ttl(Duration::from_secs(600)).timeout(TIMEOUT)
}

fn tiered(url: &str) -> CacheConfig {
    redis(url).local(LocalConfig::new(LOCAL_TTL).max_entries(1000))
}

static SERVERS: LazyLock<Servers> = LazyLock::new(|| {
    let main_server = RedisServer::start();
    let servers = Servers {
        cluster: RedisCluster::start(),
        killable: RedisServer::start(),
        fault: Mutex::new(RedisServer::start()),
        reads: RedisServer::start(),
        paused: RedisServer::start(),
        proxy: Proxy::start(main_server.port),
        main: main_server,
    };
    let main = servers.main.url();
    let fault = servers.fault.lock().unwrap().url();
    cachex::init_with(
        Config::new()
            .cache("lt_shared", tiered(&main))
            .cache(
                "lt_proxied",
                tiered(&format!("redis://127.0.0.1:{}", servers.proxy.port())).timeout(PROXIED_TIMEOUT),
            )
            .cache("lt_calls", tiered(&main))
            .cache("lt_cluster", tiered(&servers.cluster.url()))
            .cache("lt_cluster_moves", tiered(&servers.cluster.url()))
            .cache("lt_kill", tiered(&servers.killable.url()))
            .cache("lt_restart", tiered(&fault))
            .cache("lt_reads", tiered(&servers.reads.url()))
            .cache(
                "lt_bounds",
                redis(&main).local(LocalConfig::new(LOCAL_TTL).max_entries(50)),
            )
            .cache("lt_expiry", redis(&main).local(LocalConfig::new(EXPIRY_LOCAL_TTL)))
            .cache("lt_pause", tiered(&servers.paused.url()).timeout(PAUSE_TIMEOUT))
            .cache(
                "lt_stale",
                tiered(&main)
                    .ttl(STALE_TTL)
                    .stale_while_revalidate(Duration::from_secs(60)),
            )
            .cache(
                "lt_file",
                CacheConfig::file(support::scratch_dir("local-tier-file-")).local(LocalConfig::new(LOCAL_TTL)),
            ),
    )
    .unwrap();
    servers
});

fn servers() -> &'static Servers {
    &SERVERS
}

static COMPUTED: LazyLock<Counter> = LazyLock::new(Counter::default);

#[cached(name = "lt_calls")]
fn labelled(id: u32) -> String {
    COMPUTED.bump(format!("labelled:{id}"));
    format!("{}:{id}", std::process::id())
}

#[cached(name = "lt_stale")]
fn revalidated(id: u32) -> usize {
    COMPUTED.bump(format!("revalidated:{id}"));
    COMPUTED.get(&format!("revalidated:{id}"))
}

#[cached(name = "lt_restart")]
fn restarted(id: u32) -> u32 {
    COMPUTED.bump(format!("restarted:{id}"));
    id * 3
}

#[cached(name = "lt_reads")]
fn slow_read(id: u32) -> Vec<u8> {
    COMPUTED.bump(format!("slow_read:{id}"));
    vec![id as u8; 1024]
}

#[cached(name = "lt_reads")]
async fn slow_read_async(id: u32) -> Vec<u8> {
    COMPUTED.bump(format!("slow_read_async:{id}"));
    vec![id as u8; 1024]
}

fn handle(name: &str) -> CacheHandle {
    cachex::cache(name).unwrap()
}

/// Starts the servers (and initialises cachex), then waits until the tier of `cache` in this
/// process is serving (its channel is up).
fn serving(cache: &str) {
    servers();
    channel_up(cache);
}

/// Waits until the tier of `cache` in this process is serving.
fn channel_up(cache: &str) {
    wait_until(&format!("the local tier of {cache}"), SEEN_WITHIN, || {
        !handle(cache).stats().local_bypassed
    });
}

// ---------------------------------------------------------------------------------------------
// The second process.

/// This test binary running one test again as a second process that shares one cache with
/// this one: `test` with `cache` on `url`, with a local tier or without one.
fn spawn_peer(test: &str, cache: &str, url: &str, local: bool) -> Peer {
    let mode = if local { "local" } else { "shared" };
    let mut peer = Peer::spawn(test, &[(PEER_ENV, format!("{test}|{cache}|{url}|{mode}"))]);
    assert_eq!(peer.ask("ready"), "ready");
    peer
}

impl Peer {
    /// The peer's stats: `local_hits invalidations local_bypasses`.
    fn stats(&mut self) -> (u64, u64, u64) {
        let answer = self.ask("stats");
        let numbers: Vec<u64> = answer.split(' ').map(|n| n.parse().unwrap()).collect();
        (numbers[0], numbers[1], numbers[2])
    }

    /// Waits until the peer has applied `count` invalidations.
    fn invalidated(&mut self, count: u64) {
        let started = Instant::now();
        while self.stats().1 < count {
            assert!(started.elapsed() < SEEN_WITHIN, "the peer got no invalidation");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Asks `command` until the answer is `expected`, failing after [`SEEN_WITHIN`].
    fn until(&mut self, command: &str, expected: &str) {
        let started = Instant::now();
        loop {
            let answer = self.ask(command);
            if answer == expected {
                return;
            }
            assert!(
                started.elapsed() < SEEN_WITHIN,
                "the peer still answers `{answer}` to `{command}`, not `{expected}`"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The peer's side: serves commands until `quit`. Returns whether this process is a peer.
fn peer_mode(test: &str) -> bool {
    let Ok(spec) = std::env::var(PEER_ENV) else {
        return false;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [for_test, cache, url, mode] = parts[..] else {
        panic!("bad peer spec {spec}");
    };
    if for_test != test {
        return true;
    }
    let mut config = Config::new();
    for name in NAMES {
        config = config.cache(name, CacheConfig::memory());
    }
    let cache_config = if mode == "local" { tiered(url) } else { redis(url) };
    cachex::init_with(config.cache(cache, cache_config)).unwrap();
    let shared = handle(cache);
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        let (command, argument) = line.split_once(' ').unwrap_or((&line, ""));
        let answer = match command {
            "ready" => {
                if mode == "local" {
                    channel_up(cache);
                }
                "ready".to_owned()
            }
            "get" => match shared.get::<_, u32>(argument) {
                Ok(Some(value)) => value.to_string(),
                Ok(None) => "none".to_owned(),
                Err(error) => format!("error {error}"),
            },
            "set" => {
                let (key, value) = argument.split_once('=').unwrap();
                shared.set(key, &value.parse::<u32>().unwrap()).unwrap();
                "ok".to_owned()
            }
            "labelled" => {
                let id = argument.parse().unwrap();
                format!("{} {}", labelled(id), COMPUTED.get(&format!("labelled:{id}")))
            }
            "stats" => {
                let stats = shared.stats();
                format!("{} {} {}", stats.local_hits, stats.invalidations, stats.local_bypasses)
            }
            "quit" => break,
            other => panic!("unknown peer command {other}"),
        };
        println!("{ANSWER}{answer}");
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Coherence between two processes.

/// What one process writes, removes and clears is seen by the other, whose copies were local.
fn two_processes_see_each_others_changes(test: &str, cache: &str, url: &str) {
    serving(cache);
    let here = handle(cache);
    let mut peer = spawn_peer(test, cache, url, true);

    here.set("k", &1u32).unwrap();
    // The write's own message may arrive after the peer's read and drop its copy: once it
    // has arrived, the peer's copy stays.
    peer.invalidated(1);
    assert_eq!(peer.ask("get k"), "1");
    let (hits_before, _, _) = peer.stats();
    assert_eq!(peer.ask("get k"), "1");
    assert_eq!(peer.stats().0, hits_before + 1, "the peer's second read is local");

    here.set("k", &2u32).unwrap();
    peer.until("get k", "2");
    here.remove("k").unwrap();
    peer.until("get k", "none");

    // The async side publishes the same way.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(here.set_async("k", &3u32)).unwrap();
    peer.until("get k", "3");
    runtime.block_on(here.remove_async("k")).unwrap();
    peer.until("get k", "none");
    runtime.block_on(here.set_async("k", &4u32)).unwrap();
    peer.until("get k", "4");
    runtime.block_on(here.clear_async()).unwrap();
    peer.until("get k", "none");
    here.set("k", &5u32).unwrap();
    peer.until("get k", "5");
    here.clear().unwrap();
    peer.until("get k", "none");

    // The other way round: the peer writes over what this process holds locally.
    let invalidations = here.stats().invalidations;
    peer.ask("set j=10");
    wait_until("the peer's message", SEEN_WITHIN, || {
        here.stats().invalidations > invalidations
    });
    assert_eq!(here.get::<_, u32>("j").unwrap(), Some(10));
    let local_hits = here.stats().local_hits;
    assert_eq!(here.get::<_, u32>("j").unwrap(), Some(10));
    assert_eq!(here.stats().local_hits, local_hits + 1);
    peer.ask("set j=11");
    wait_until("this process to see the peer's write", SEEN_WITHIN, || {
        here.get::<_, u32>("j").unwrap() == Some(11)
    });

    let (_, invalidations, bypasses) = peer.stats();
    assert!(invalidations >= 4, "the peer applied {invalidations} invalidations");
    assert_eq!(
        bypasses, 0,
        "the changes came through invalidations, not a lost channel"
    );
    assert_eq!(here.stats().local_bypasses, 0);
}

#[test]
fn two_processes_see_each_others_changes_standalone() {
    if peer_mode("two_processes_see_each_others_changes_standalone") {
        return;
    }
    let url = servers().main.url();
    two_processes_see_each_others_changes("two_processes_see_each_others_changes_standalone", "lt_shared", &url);
}

#[test]
fn two_processes_see_each_others_changes_on_a_cluster() {
    if peer_mode("two_processes_see_each_others_changes_on_a_cluster") {
        return;
    }
    let url = servers().cluster.url();
    two_processes_see_each_others_changes("two_processes_see_each_others_changes_on_a_cluster", "lt_cluster", &url);
}

/// The timeout of the cache behind the proxy; its replies are delayed six times as long.
const PROXIED_TIMEOUT: Duration = Duration::from_millis(50);

#[test]
fn a_removal_that_times_out_still_reaches_the_other_process() {
    let test = "a_removal_that_times_out_still_reaches_the_other_process";
    if peer_mode(test) {
        return;
    }
    serving("lt_proxied");
    let here = handle("lt_proxied");
    // The peer shares the entries, straight to the server; this process goes through the proxy.
    let mut peer = spawn_peer(test, "lt_proxied", &servers().main.url(), true);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (round, asynchronous) in [(1u32, false), (2, true)] {
        servers().proxy.delay_replies(Duration::ZERO);
        serving("lt_proxied");
        let value = round.to_string();
        let before = peer.stats().1;
        // Each side writes first, so its connection is up before replies are delayed.
        if asynchronous {
            runtime.block_on(here.set_async("k", &round)).unwrap();
        } else {
            here.set("k", &round).unwrap();
        }
        peer.invalidated(before + 1);
        assert_eq!(peer.ask("get k"), value);
        let (hits, _, _) = peer.stats();
        assert_eq!(peer.ask("get k"), value);
        assert_eq!(peer.stats().0, hits + 1, "the peer holds the value locally");

        // The server runs the removal, its reply comes after the client gave up: the caller
        // gets an error, and the other process has been told all the same.
        servers().proxy.delay_replies(PROXIED_TIMEOUT * 6);
        let unannounced = here.stats().unannounced;
        let removed = if asynchronous {
            runtime.block_on(here.remove_async("k"))
        } else {
            here.remove("k")
        };
        assert!(removed.is_err(), "the reply came after the timeout: {removed:?}");
        assert_eq!(
            here.stats().unannounced,
            unannounced + 1,
            "counted as maybe unannounced"
        );
        peer.until("get k", "none");
        assert_eq!(
            peer.stats().2,
            0,
            "the peer's channel was never lost: its copy went by the message"
        );
    }
    servers().proxy.delay_replies(Duration::ZERO);
}

#[test]
fn invalidating_a_call_drops_it_from_the_other_process() {
    if peer_mode("invalidating_a_call_drops_it_from_the_other_process") {
        return;
    }
    serving("lt_calls");
    let url = servers().main.url();
    let mut peer = spawn_peer(
        "invalidating_a_call_drops_it_from_the_other_process",
        "lt_calls",
        &url,
        true,
    );
    // The peer computes and holds the value; a second call is a local hit.
    let first = peer.ask("labelled 7");
    assert!(first.ends_with(" 1"), "computed once: {first}");
    assert_eq!(peer.ask("labelled 7"), first);
    labelled_invalidate(7).unwrap();
    let recomputed = first.replace(" 1", " 2");
    peer.until("labelled 7", &recomputed);
    assert_eq!(peer.stats().2, 0, "no lost channel");
}

// ---------------------------------------------------------------------------------------------
// A lost channel.

#[test]
fn a_killed_invalidation_connection_empties_and_bypasses_the_tier_until_it_is_back() {
    if peer_mode("a_killed_invalidation_connection_empties_and_bypasses_the_tier_until_it_is_back") {
        return;
    }
    serving("lt_kill");
    let here = handle("lt_kill");
    here.set("k", &1u32).unwrap();
    assert_eq!(here.get::<_, u32>("k").unwrap(), Some(1));

    // A write whose message this process never gets: a process without a local tier
    // publishes none. The local copy stays, as a lost message would leave it.
    let mut writer = spawn_peer(
        "a_killed_invalidation_connection_empties_and_bypasses_the_tier_until_it_is_back",
        "lt_kill",
        &servers().killable.url(),
        false,
    );
    assert_eq!(writer.ask("set k=2"), "ok");
    let before = here.stats();
    assert_eq!(here.get::<_, u32>("k").unwrap(), Some(1), "the local copy: {before:?}");

    let killed: u64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"])
        .query(&mut servers().killable.client())
        .unwrap();
    assert_eq!(killed, 1, "this process's subscriber");
    wait_until("the tier to be bypassed, then back", SEEN_WITHIN, || {
        let stats = here.stats();
        stats.local_bypasses == before.local_bypasses + 1 && !stats.local_bypassed
    });
    // Emptied: what Redis holds now, then from the tier again.
    assert_eq!(here.get::<_, u32>("k").unwrap(), Some(2));
    let local_hits = here.stats().local_hits;
    assert_eq!(here.get::<_, u32>("k").unwrap(), Some(2));
    assert_eq!(here.stats().local_hits, local_hits + 1, "the tier fills again");
}

/// The cluster node whose connection subscribes to `cache`'s channel, and that connection's id.
fn subscriber_on_the_cluster(cache: &str) -> (u16, u64) {
    let name = format!("name=cachex:{cache}:invalidations ");
    let found: Vec<(u16, u64)> = servers()
        .cluster
        .ports
        .iter()
        .flat_map(|port| {
            let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .unwrap()
                .get_connection()
                .unwrap();
            let clients: String = redis::cmd("CLIENT")
                .arg(&["LIST", "TYPE", "pubsub"])
                .query(&mut conn)
                .unwrap();
            clients
                .lines()
                .filter(|line| line.contains(&name))
                .map(|line| {
                    let id = line.strip_prefix("id=").unwrap().split(' ').next().unwrap();
                    (*port, id.parse().unwrap())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(found.len(), 1, "one subscriber of {cache}: {found:?}");
    found[0]
}

#[test]
fn a_cluster_subscriber_that_loses_its_node_moves_to_another() {
    serving("lt_cluster_moves");
    let cache = handle("lt_cluster_moves");
    let before = cache.stats().local_bypasses;
    let (port, id) = subscriber_on_the_cluster("lt_cluster_moves");
    let mut node = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_connection()
        .unwrap();
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut node)
        .unwrap();
    assert_eq!(killed, 1);
    wait_until("the tier to be bypassed, then back", SEEN_WITHIN, || {
        let stats = cache.stats();
        stats.local_bypasses > before && !stats.local_bypassed
    });
    let (moved_to, _) = subscriber_on_the_cluster("lt_cluster_moves");
    assert_ne!(moved_to, port, "subscribed through another node");
    cache.set("k", &1u32).unwrap();
    let hits = cache.stats().local_hits;
    assert_eq!(cache.get::<_, u32>("k").unwrap(), Some(1));
    assert_eq!(cache.stats().local_hits, hits + 1, "serving from the tier again");
}

#[test]
fn a_restarted_server_gives_no_wrong_values_and_the_tier_fills_again() {
    serving("lt_restart");
    let here = handle("lt_restart");
    assert_eq!(restarted(1), 3);
    assert_eq!(restarted(1), 3);
    assert_eq!(COMPUTED.get("restarted:1"), 1);
    here.set("k", &1u32).unwrap();

    servers().fault.lock().unwrap().kill();
    wait_until("the tier to be bypassed", SEEN_WITHIN, || here.stats().local_bypassed);
    // Bypassed: nothing local is served; calls compute (on_error = bypass), reads fail.
    assert_eq!(restarted(1), 3);
    assert_eq!(COMPUTED.get("restarted:1"), 2);
    assert!(
        here.get::<_, u32>("k").is_err(),
        "the server is down: no local copy answers"
    );

    servers().fault.lock().unwrap().restart();
    serving("lt_restart");
    // The restarted server is empty: no value survives anywhere.
    assert_eq!(here.get::<_, u32>("k").unwrap(), None);
    assert_eq!(restarted(1), 3);
    assert_eq!(COMPUTED.get("restarted:1"), 3);
    let local_hits = here.stats().local_hits;
    assert_eq!(restarted(1), 3);
    assert_eq!(COMPUTED.get("restarted:1"), 3);
    assert_eq!(here.stats().local_hits, local_hits + 1, "the tier fills again");
    assert!(here.stats().local_bypasses >= 1);
}

/// The timeout of the cache whose server is paused: its channel pings after 500 ms of
/// silence and gives the ping 500 ms.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(1);

#[test]
fn a_silent_server_is_noticed_by_the_ping_and_the_tier_is_bypassed() {
    serving("lt_pause");
    let cache = handle("lt_pause");
    cache.set("k", &1u32).unwrap();
    let before = cache.stats().local_bypasses;
    // The connection stays open but nothing answers: only the channel's ping can tell. The
    // pause outlasts the wait below five times over the second the ping needs.
    let pause = Duration::from_secs(6);
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(pause.as_millis() as u64)
        .arg("ALL")
        .query(&mut servers().paused.client())
        .unwrap();
    wait_until("the tier to be bypassed", pause - Duration::from_secs(1), || {
        cache.stats().local_bypassed
    });
    assert!(cache.stats().local_bypasses > before);
    // Back after the pause: subscribed again, and serving.
    wait_until("the tier to serve again", pause + SEEN_WITHIN, || {
        !cache.stats().local_bypassed
    });
    assert_eq!(cache.get::<_, u32>("k").unwrap(), Some(1));
}

// ---------------------------------------------------------------------------------------------
// Single-flight across the tiers.

/// The GETs the `reads` server has answered.
fn gets() -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut servers().reads.client())
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

const CALLERS: usize = 16;

/// Empties the tier of `lt_reads` (the shared entries stay): a message on its channel that
/// is not cachex's reads as "clear everything".
fn empty_the_tier() {
    let cache = handle("lt_reads");
    let invalidations = cache.stats().invalidations;
    let _: u64 = redis::cmd("PUBLISH")
        .arg("cachex:lt_reads:invalidations")
        .arg("not a cachex message")
        .query(&mut servers().reads.client())
        .unwrap();
    wait_until("the tier to be emptied", SEEN_WITHIN, || {
        cache.stats().invalidations > invalidations
    });
    assert_eq!(cache.stats().local_entries, 0);
}

/// The two single-flight tests count the same server's GETs: one at a time.
static READS: Mutex<()> = Mutex::new(());

#[test]
fn concurrent_local_misses_make_one_shared_read() {
    let _alone = READS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    serving("lt_reads");
    assert_eq!(slow_read(1), vec![1; 1024]);
    empty_the_tier();
    let before = gets();
    let barrier = Arc::new(Barrier::new(CALLERS));
    std::thread::scope(|scope| {
        for _ in 0..CALLERS {
            let barrier = Arc::clone(&barrier);
            scope.spawn(move || {
                barrier.wait();
                assert_eq!(slow_read(1), vec![1; 1024]);
            });
        }
    });
    assert_eq!(gets() - before, 1, "one read of the shared backend");
    assert_eq!(COMPUTED.get("slow_read:1"), 1);
}

#[test]
fn concurrent_async_local_misses_make_one_shared_read() {
    let _alone = READS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    serving("lt_reads");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(slow_read_async(2).await, vec![2; 1024]);
        tokio::task::spawn_blocking(empty_the_tier).await.unwrap();
        let before = tokio::task::spawn_blocking(gets).await.unwrap();
        let calls: Vec<_> = (0..CALLERS).map(|_| tokio::spawn(slow_read_async(2))).collect();
        for call in calls {
            assert_eq!(call.await.unwrap(), vec![2; 1024]);
        }
        let after = tokio::task::spawn_blocking(gets).await.unwrap();
        assert_eq!(after - before, 1, "one read of the shared backend");
    });
    assert_eq!(COMPUTED.get("slow_read_async:2"), 1);
}

// ---------------------------------------------------------------------------------------------
// Bounds and TTL.

#[test]
fn the_tier_holds_at_most_max_entries() {
    serving("lt_bounds");
    let bounded = handle("lt_bounds");
    for n in 0..500u32 {
        bounded.set(&n, &n).unwrap();
    }
    for n in 0..500u32 {
        assert_eq!(
            bounded.get::<_, u32>(&n).unwrap(),
            Some(n),
            "every value is still in Redis"
        );
    }
    let stats: Stats = bounded.stats();
    assert!(stats.local_entries <= 50, "{} local entries", stats.local_entries);
    assert!(stats.local_hits < 500, "most reads went to Redis: {stats:?}");
}

/// The local ttl of the cache whose copies expire in a test (its steps before take
/// milliseconds).
const EXPIRY_LOCAL_TTL: Duration = Duration::from_secs(3);

#[test]
fn a_local_copy_never_outlives_the_tier_ttl() {
    if peer_mode("a_local_copy_never_outlives_the_tier_ttl") {
        return;
    }
    serving("lt_expiry");
    // A writer that is never heard from: without a local tier it publishes nothing.
    let mut writer = spawn_peer(
        "a_local_copy_never_outlives_the_tier_ttl",
        "lt_expiry",
        &servers().main.url(),
        false,
    );
    assert_eq!(writer.ask("set warm=0"), "ok", "the writer's connection is up");
    let tiered = handle("lt_expiry");
    tiered.set("k", &1u32).unwrap();
    let written = Instant::now();
    let hits = tiered.stats().local_hits;
    assert_eq!(tiered.get::<_, u32>("k").unwrap(), Some(1));
    assert_eq!(writer.ask("set k=2"), "ok");
    // The copy answers, unaware of the write...
    assert_eq!(tiered.get::<_, u32>("k").unwrap(), Some(1));
    assert_eq!(tiered.stats().local_hits, hits + 2, "both reads were local");
    assert!(
        written.elapsed() < EXPIRY_LOCAL_TTL,
        "the steps above took over the local ttl"
    );
    // ...until the tier's ttl has passed: then Redis answers.
    std::thread::sleep(EXPIRY_LOCAL_TTL.saturating_sub(written.elapsed()) + Duration::from_millis(100));
    assert_eq!(tiered.get::<_, u32>("k").unwrap(), Some(2));
}

// ---------------------------------------------------------------------------------------------
// The shared entry's boundaries, and backends without invalidations.

/// The ttl of the stale-serving cache: the steps before it passes take milliseconds.
const STALE_TTL: Duration = Duration::from_secs(3);

#[test]
fn a_local_copy_goes_stale_with_the_shared_entry_and_is_revalidated() {
    serving("lt_stale");
    let cache = handle("lt_stale");
    cache.set("k", &1u32).unwrap();
    assert_eq!(cache.get::<_, u32>("k").unwrap(), Some(1));
    assert_eq!(revalidated(1), 1);
    let before = cache.stats();
    assert_eq!(revalidated(1), 1);
    assert_eq!(cache.stats().local_hits, before.local_hits + 1);

    // Past the cache's ttl, though the tier's is an hour: no copy is fresh any more.
    std::thread::sleep(STALE_TTL + Duration::from_millis(300));
    assert_eq!(cache.get::<_, u32>("k").unwrap(), None, "a stale copy is not a hit");
    // Within stale_while_revalidate: the stale value at once, one refresh in the background.
    assert_eq!(revalidated(1), 1);
    assert!(cache.stats().stale_served > before.stale_served);
    wait_until("the refreshed value", SEEN_WITHIN, || revalidated(1) == 2);
    assert_eq!(COMPUTED.get("revalidated:1"), 2);
    let hits = cache.stats().local_hits;
    assert_eq!(revalidated(1), 2);
    assert_eq!(cache.stats().local_hits, hits + 1, "the refreshed value is local");
}

#[test]
fn a_tier_without_invalidations_serves_from_the_start() {
    servers();
    let cache = handle("lt_file");
    let stats = cache.stats();
    assert!(!stats.local_bypassed, "no channel to wait for: {stats:?}");
    cache.set("k", &5u32).unwrap();
    assert_eq!(cache.get::<_, u32>("k").unwrap(), Some(5));
    assert_eq!(cache.stats().local_hits, stats.local_hits + 1);
    cache.remove("k").unwrap();
    assert_eq!(cache.get::<_, u32>("k").unwrap(), None);
}
