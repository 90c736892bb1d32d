//! The local tier, side by side in one run: a hot 1 KiB hit of `fn(String, u32) -> Vec<u8>`
//! on a Redis cache with a local tier, the same cache without one, the same function on the
//! memory backend (with a TTL, like the tier's entries), and the raw redis-rs GET of a 1 KiB
//! value on one blocking connection. One thread; every variant reads the same 1024 keys, all
//! present, in the same order. Then what the tier adds to a write: a direct `set` with and
//! without it (the invalidation's PUBLISH).
//!
//! Needs `redis-server` (Debian package `redis-server`); the bench starts its own on a free port.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use cachex::{CacheConfig, Config, LocalConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use support::redis_server::RedisServer;

const KEYS: u32 = 1024;
const TTL: Duration = Duration::from_secs(3600);

fn kib(name: &str, n: u32) -> Vec<u8> {
    let mut value = vec![n as u8; 1024];
    value[..name.len()].copy_from_slice(name.as_bytes());
    value
}

#[cachex::cached(name = "bench_lt_memory")]
fn memory_kib(name: String, n: u32) -> Vec<u8> {
    kib(&name, n)
}

#[cachex::cached(name = "bench_lt_local")]
fn local_kib(name: String, n: u32) -> Vec<u8> {
    kib(&name, n)
}

#[cachex::cached(name = "bench_lt_redis")]
fn redis_kib(name: String, n: u32) -> Vec<u8> {
    kib(&name, n)
}

/// The 16-byte name of key `i`, as in the memory bench.
fn name(i: u32) -> String {
    format!("dataset-{i:08}")
}

/// Runs `op(i)` over the keys `iters` times in all; the wall time.
fn timed<T>(iters: u64, mut op: impl FnMut(u32) -> T) -> Duration {
    let began = Instant::now();
    for i in 0..iters {
        black_box(op((i % u64::from(KEYS)) as u32));
    }
    began.elapsed()
}

fn hits(c: &mut Criterion) {
    let server = RedisServer::start();
    let redis = || {
        CacheConfig::redis(&server.url())
            .ttl(TTL)
            .timeout(Duration::from_secs(5))
    };
    cachex::init_with(
        Config::new()
            .cache("bench_lt_memory", CacheConfig::memory().ttl(TTL))
            .cache(
                "bench_lt_local",
                redis().local(LocalConfig::new(TTL).max_entries(10_000)),
            )
            .cache("bench_lt_redis", redis()),
    )
    .unwrap();
    support::wait_until("the local tier's channel", Duration::from_secs(10), || {
        !cachex::cache("bench_lt_local").unwrap().stats().local_bypassed
    });
    let names: Vec<String> = (0..KEYS).map(name).collect();
    let mut raw = server.client();
    for (i, name) in names.iter().enumerate() {
        let value = memory_kib(name.clone(), i as u32);
        assert_eq!(local_kib(name.clone(), i as u32), value);
        assert_eq!(redis_kib(name.clone(), i as u32), value);
        redis::cmd("SET")
            .arg(format!("raw:{i}"))
            .arg(&value)
            .query::<()>(&mut raw)
            .unwrap();
    }
    let names = &names;
    let mut group = c.benchmark_group("hit fn(String, u32) -> Vec<u8> (1 KiB), 1 thread");
    group.throughput(Throughput::Elements(1));
    group.bench_function("cachex memory, ttl", |b| {
        b.iter_custom(|iters| timed(iters, |i| memory_kib(names[i as usize].clone(), i)))
    });
    group.bench_function("cachex redis + local tier", |b| {
        b.iter_custom(|iters| timed(iters, |i| local_kib(names[i as usize].clone(), i)))
    });
    group.bench_function("cachex redis, no local tier", |b| {
        b.iter_custom(|iters| timed(iters, |i| redis_kib(names[i as usize].clone(), i)))
    });
    group.bench_function("redis-rs GET", |b| {
        b.iter_custom(|iters| {
            timed(iters, |i| {
                redis::cmd("GET")
                    .arg(format!("raw:{i}"))
                    .query::<Vec<u8>>(&mut raw)
                    .unwrap()
            })
        })
    });
    group.finish();

    // What a write costs with the tier: SET, then PUBLISH of the invalidation.
    let mut group = c.benchmark_group("write 1 KiB (direct set), 1 thread");
    group.throughput(Throughput::Elements(1));
    let value = kib("write", 1);
    for (label, cache) in [
        ("cachex redis + local tier (SET + PUBLISH)", "bench_lt_local"),
        ("cachex redis, no local tier (SET)", "bench_lt_redis"),
    ] {
        let handle = cachex::cache(cache).unwrap();
        group.bench_function(label, |b| {
            b.iter_custom(|iters| timed(iters, |i| handle.set(&("write", i), &value).unwrap()))
        });
    }
    group.finish();
    let stats = cachex::cache("bench_lt_local").unwrap().stats();
    assert_eq!(stats.local_hits, stats.hits, "every measured hit was local: {stats:?}");
}

criterion_group!(benches, hits);
criterion_main!(benches);
