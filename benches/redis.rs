//! Redis throughput with 50 concurrent tasks on one server: a cached 1 KiB hit through cachex
//! (unsigned, and with a `signing_key`) next to the same GET through raw redis-rs on one multiplexed connection (and through a
//! deadpool-redis checkout per GET, the alternative the backend did not pick), then 1 MiB
//! hits and the miss path (compute + SET).
//!
//! Needs `redis-server` (Debian package `redis-server`); the bench starts its own on a free port.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use support::redis_server::RedisServer;
use tokio::runtime::Runtime;

const TASKS: u64 = 50;

#[cachex::cached(name = "bench_redis")]
async fn kib(id: u32) -> Vec<u8> {
    vec![id as u8; 1024]
}

#[cachex::cached(name = "bench_redis_signed")]
async fn kib_signed(id: u32) -> Vec<u8> {
    vec![id as u8; 1024]
}

#[cachex::cached(name = "bench_redis")]
async fn mib(id: u32) -> Vec<u8> {
    vec![id as u8; 1024 * 1024]
}

#[cachex::cached(name = "bench_redis_miss")]
async fn miss(id: u64) -> Vec<u8> {
    vec![id as u8; 1024]
}

/// Runs `iters` operations spread over 50 tasks and returns the wall time.
fn concurrent<F, Fut>(runtime: &Runtime, iters: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    runtime.block_on(async move {
        let started = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let op = Arc::clone(&op);
                tokio::spawn(async move {
                    let mut i = task;
                    while i < iters {
                        op(i).await;
                        i += TASKS;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        started.elapsed()
    })
}

fn redis_hits(c: &mut Criterion) {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = cachex::Config::new()
        .cache(
            "bench_redis",
            cachex::CacheConfig::redis(&server.url()).timeout(Duration::from_secs(5)),
        )
        .cache(
            "bench_redis_signed",
            cachex::CacheConfig::redis(&server.url())
                .timeout(Duration::from_secs(5))
                .signing_key("a bench signing key of at least 32 bytes", &[]),
        )
        .cache(
            "bench_redis_miss",
            cachex::CacheConfig::redis(&server.url()).timeout(Duration::from_secs(5)),
        );
    cachex::init_with(config).unwrap();
    runtime.block_on(async {
        kib(1).await;
        kib_signed(1).await;
        mib(1).await;
    });
    let client = redis::Client::open(server.url()).unwrap();
    let raw = runtime.block_on(client.get_multiplexed_async_connection()).unwrap();
    let raw_key = "bench:raw:1k";
    runtime.block_on(async {
        let mut conn = raw.clone();
        redis::cmd("SET")
            .arg(raw_key)
            .arg(vec![1u8; 1024])
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    });
    let pool = deadpool_redis::Config::from_url(server.url())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();

    let mut group = c.benchmark_group("redis 1 KiB hit, 50 tasks");
    group.throughput(Throughput::Elements(1));
    group.bench_function("cachex #[cached] async hit", |b| {
        b.iter_custom(|iters| {
            concurrent(&runtime, iters, |_| async {
                assert_eq!(kib(1).await.len(), 1024);
            })
        })
    });
    group.bench_function("cachex #[cached] async hit, signed", |b| {
        b.iter_custom(|iters| {
            concurrent(&runtime, iters, |_| async {
                assert_eq!(kib_signed(1).await.len(), 1024);
            })
        })
    });
    group.bench_function("raw redis-rs GET, one multiplexed connection", |b| {
        b.iter_custom(|iters| {
            let raw = raw.clone();
            concurrent(&runtime, iters, move |_| {
                let mut conn = raw.clone();
                async move {
                    let value: Vec<u8> = redis::cmd("GET").arg(raw_key).query_async(&mut conn).await.unwrap();
                    assert_eq!(value.len(), 1024);
                }
            })
        })
    });
    let manager = runtime.block_on(client.get_connection_manager()).unwrap();
    group.bench_function("raw redis-rs GET, ConnectionManager", |b| {
        b.iter_custom(|iters| {
            let manager = manager.clone();
            concurrent(&runtime, iters, move |_| {
                let mut conn = manager.clone();
                async move {
                    let value: Vec<u8> = redis::cmd("GET").arg(raw_key).query_async(&mut conn).await.unwrap();
                    assert_eq!(value.len(), 1024);
                }
            })
        })
    });
    group.bench_function("deadpool-redis checkout + GET", |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            concurrent(&runtime, iters, move |_| {
                let pool = pool.clone();
                async move {
                    let mut conn = pool.get().await.unwrap();
                    let value: Vec<u8> = redis::cmd("GET").arg(raw_key).query_async(&mut conn).await.unwrap();
                    assert_eq!(value.len(), 1024);
                }
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("redis 1 MiB hit, 50 tasks");
    group.throughput(Throughput::Bytes(1024 * 1024));
    group.sample_size(20);
    group.bench_function("cachex #[cached] async hit", |b| {
        b.iter_custom(|iters| {
            concurrent(&runtime, iters, |_| async {
                assert_eq!(mib(1).await.len(), 1024 * 1024);
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("redis 1 KiB miss (compute + SET), 50 tasks");
    group.throughput(Throughput::Elements(1));
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    group.bench_function("cachex #[cached] async miss", |b| {
        b.iter_custom(|iters| {
            let next = Arc::clone(&next);
            concurrent(&runtime, iters, move |_| {
                let id = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move {
                    assert_eq!(miss(id).await.len(), 1024);
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, redis_hits);
criterion_main!(benches);
