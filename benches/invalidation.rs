//! Invalidation latency between two processes sharing a Redis cache with a local tier: this
//! process writes one key 1,000 times; a second process (this bench again, in peer mode) holds
//! the key in its tier and notes when each write's invalidation has dropped it. Reported: p50,
//! p99 and the maximum of write-to-drop (from just before `set`, whose SET and PUBLISH are two
//! round trips, to the drop in the other process), on loopback. Target: p99 <= 10 ms.
//!
//! `cargo bench --bench invalidation --features redis`. Needs `redis-server` (Debian package
//! `redis-server`); the bench starts its own on a free port.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cachex::{CacheConfig, Config, LocalConfig};
use support::redis_server::RedisServer;

const PEER_ENV: &str = "CACHEX_BENCH_INVALIDATION_PEER";
const WRITES: usize = 1000;
const CACHE: &str = "bench_invalidation";

fn config(url: &str) -> Config {
    Config::new().cache(
        CACHE,
        CacheConfig::redis(url)
            .ttl(Duration::from_secs(3600))
            .local(LocalConfig::new(Duration::from_secs(3600))),
    )
}

/// Nanoseconds since the epoch: one clock for both processes of this machine.
fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// The peer: says `ready` once its tier serves, then for each write reads the key into its
/// tier, waits for the invalidation that drops it, and prints when it came.
fn peer(url: &str) {
    cachex::init_with(config(url)).unwrap();
    let cache = cachex::cache(CACHE).unwrap();
    support::wait_until("the peer's channel", Duration::from_secs(10), || {
        !cache.stats().local_bypassed
    });
    let mut input = BufReader::new(std::io::stdin()).lines();
    println!("ready");
    while let Some(Ok(line)) = input.next() {
        if line == "quit" {
            return;
        }
        // `hold`: the key is in the tier (a local hit), and the next write's message is awaited.
        let expected: u64 = line.strip_prefix("hold ").unwrap().parse().unwrap();
        assert_eq!(cache.get::<_, u64>("k").unwrap(), Some(expected));
        let seen = cache.stats().invalidations;
        println!("held");
        while cache.stats().invalidations == seen {
            std::thread::sleep(Duration::from_micros(20));
        }
        println!("{}", now_nanos());
    }
}

fn main() {
    if let Ok(url) = std::env::var(PEER_ENV) {
        return peer(&url);
    }
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo bench -- --list`: nothing to list but this harness
    }
    let server = RedisServer::start();
    cachex::init_with(config(&server.url())).unwrap();
    let cache = cachex::cache(CACHE).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(PEER_ENV, server.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_peer = child.stdin.take().unwrap();
    let mut from_peer = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut read = || from_peer.next().unwrap().unwrap();
    assert_eq!(read(), "ready");
    let mut latencies = Vec::with_capacity(WRITES);
    cache.set("k", &0u64).unwrap();
    for write in 1..=WRITES as u64 {
        writeln!(to_peer, "hold {}", write - 1).unwrap();
        assert_eq!(read(), "held");
        let sent = now_nanos();
        cache.set("k", &write).unwrap();
        let dropped: u128 = read().parse().unwrap();
        latencies.push(Duration::from_nanos(dropped.saturating_sub(sent) as u64));
    }
    writeln!(to_peer, "quit").unwrap();
    child.wait().unwrap();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "invalidation latency, write to drop in another process ({WRITES} writes, loopback): \
         p50 {:?}, p99 {:?}, max {:?}",
        at(0.50),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}
