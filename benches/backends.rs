//! Throughput of the file, Memcached and MongoDB backends through a cache handle:
//! - file: entries per second written and read, 1 KiB and 1 MiB values;
//! - memcached: 1 KiB hits through the `memcache` (blocking) and `async-memcached` adapters;
//! - mongodb: 1 KiB hits against the test server (mongoeco, a Python server: not a figure for a
//!   real mongod).
//!
//! Needs `memcached` and the mongoeco venv (`scripts/mongo-venv.sh`); the bench starts both.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use cachex::{BackendKind, CacheConfig, Config};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use support::memcached_server::MemcachedServer;
use support::mongo_server::MongoServer;

fn backends(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let memcached = MemcachedServer::start();
    let mongo = MongoServer::launch(support::free_port());
    let remote = |backend: BackendKind, url: &str| {
        CacheConfig::new()
            .backend(backend)
            .url(url)
            .timeout(Duration::from_secs(5))
    };
    cachex::init_with(
        Config::new()
            .cache("bench_file", CacheConfig::file(dir.path()))
            .cache("bench_memcached", remote(BackendKind::Memcached, &memcached.url()))
            .cache("bench_mongodb", remote(BackendKind::Mongodb, &mongo.url)),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let file = cachex::cache("bench_file").unwrap();
    for (label, size) in [("1 KiB", 1024usize), ("1 MiB", 1024 * 1024)] {
        let value = vec![7u8; size];
        let mut group = c.benchmark_group(format!("file {label}"));
        group.throughput(Throughput::Elements(1));
        if size > 1024 {
            group.sample_size(20);
        }
        let mut n = 0u64;
        group.bench_function("write", |b| {
            b.iter(|| {
                n += 1;
                file.set(&(n % 64), &value).unwrap()
            })
        });
        file.set(&"read", &value).unwrap();
        group.bench_function("read", |b| {
            b.iter(|| assert_eq!(file.get::<_, Vec<u8>>(&"read").unwrap().map(|v| v.len()), Some(size)))
        });
        group.finish();
    }

    let value = vec![7u8; 1024];
    for name in ["bench_memcached", "bench_mongodb"] {
        let cache = cachex::cache(name).unwrap();
        cache.set(&"hit", &value).unwrap();
        let mut group = c.benchmark_group(format!("{} 1 KiB hit", name.trim_start_matches("bench_")));
        group.throughput(Throughput::Elements(1));
        group.bench_function("blocking side", |b| {
            b.iter(|| assert_eq!(cache.get::<_, Vec<u8>>(&"hit").unwrap().map(|v| v.len()), Some(1024)))
        });
        group.bench_function("async side", |b| {
            b.iter(|| {
                runtime.block_on(async {
                    assert_eq!(
                        cache.get_async::<_, Vec<u8>>(&"hit").await.unwrap().map(|v| v.len()),
                        Some(1024)
                    )
                })
            })
        });
        group.finish();
    }
}

criterion_group!(benches, backends);
criterion_main!(benches);
