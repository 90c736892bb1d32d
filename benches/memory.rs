//! The memory-cache hit, cachex next to its peers in one run on one machine:
//! - `fn(u64) -> u64` and `fn(String, u32) -> Vec<u8>` (1 KiB), on 1 and 2 threads: cachex's
//!   `#[cached]`; the `cached` crate's `#[cached]`, both its default (an unbounded map, never
//!   evicting) and `max_size = 10000` (its bounded LRU, the bound cachex has by default); and
//!   `moka` and `quick_cache` used by hand with the same key; like for like with a TTL,
//!   cachex with `ttl = "300s"` next to `cached`'s `max_size = 10000, ttl_secs = 300`;
//! - the async hit, cachex's `#[cached] async fn` next to `moka::future`.
//!
//! Every variant reads the same 1024 keys, all present, in the same order; on 2 threads each
//! thread starts at another key. The `String` argument is cloned for every call of every
//! variant (a caller of `fn(String, u32)` passes an owned `String`; a hand-written lookup
//! builds an owned `(String, u32)` key), so all of them pay that allocation.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

const KEYS: u64 = 1024;
const CAPACITY: u64 = 10_000;

#[cachex::cached(name = "bench_u64")]
fn cachex_u64(n: u64) -> u64 {
    n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cached::proc_macro::cached]
fn cached_u64(n: u64) -> u64 {
    n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cached::proc_macro::cached(max_size = 10000)]
fn cached_lru_u64(n: u64) -> u64 {
    n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cachex::cached(name = "bench_u64_ttl")]
fn cachex_ttl_u64(n: u64) -> u64 {
    n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cached::proc_macro::cached(max_size = 10000, ttl_secs = 300)]
fn cached_ttl_u64(n: u64) -> u64 {
    n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn kib(name: &str, n: u32) -> Vec<u8> {
    let mut value = vec![n as u8; 1024];
    value[..name.len()].copy_from_slice(name.as_bytes());
    value
}

#[cachex::cached(name = "bench_kib")]
fn cachex_kib(name: String, n: u32) -> Vec<u8> {
    kib(&name, n)
}

#[cached::proc_macro::cached]
fn cached_kib(name: String, n: u32) -> Vec<u8> {
    kib(&name, n)
}

#[cached::proc_macro::cached(max_size = 10000)]
fn cached_lru_kib(name: String, n: u32) -> Vec<u8> {
    kib(&name, n)
}

#[cachex::cached(name = "bench_kib_ttl")]
fn cachex_ttl_kib(name: String, n: u32) -> Vec<u8> {
    kib(&name, n)
}

#[cached::proc_macro::cached(max_size = 10000, ttl_secs = 300)]
fn cached_ttl_kib(name: String, n: u32) -> Vec<u8> {
    kib(&name, n)
}

#[cachex::cached(name = "bench_async")]
async fn cachex_async(n: u64) -> u64 {
    n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The 16-byte name of key `i` of the `(String, u32)` shape.
fn name(i: u64) -> String {
    format!("dataset-{i:08}")
}

/// Runs `op(i)` for `iters` keys on each of `threads` threads, started together; the wall time
/// until the last one finishes.
fn on_threads<T>(threads: u64, iters: u64, op: &(impl Fn(u64) -> T + Sync)) -> Duration {
    let start = Barrier::new(threads as usize);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    let began = Instant::now();
                    for i in 0..iters {
                        black_box(op((i + t * KEYS / threads) % KEYS));
                    }
                    began.elapsed()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).max().unwrap()
    })
}

fn group<'a>(c: &'a mut Criterion, name: &str, threads: u64) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(format!(
        "{name}, {threads} thread{}",
        if threads > 1 { "s" } else { "" }
    ));
    group.throughput(Throughput::Elements(threads));
    group
}

fn u64_hits(c: &mut Criterion) {
    let moka: moka::sync::Cache<u64, u64> = moka::sync::Cache::new(CAPACITY);
    let quick: quick_cache::sync::Cache<u64, u64> = quick_cache::sync::Cache::new(CAPACITY as usize);
    for n in 0..KEYS {
        let value = cachex_u64(n);
        assert_eq!(cached_u64(n), value);
        assert_eq!(cached_lru_u64(n), value);
        assert_eq!(cachex_ttl_u64(n), value);
        assert_eq!(cached_ttl_u64(n), value);
        moka.insert(n, value);
        quick.insert(n, value);
    }
    for threads in [1, 2] {
        let mut group = group(c, "memory hit fn(u64) -> u64", threads);
        group.bench_function("cachex #[cached]", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &|n| cachex_u64(black_box(n))));
        });
        group.bench_function("cached #[cached]", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &|n| cached_u64(black_box(n))));
        });
        group.bench_function("cached #[cached(max_size = 10000)]", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &|n| cached_lru_u64(black_box(n))));
        });
        group.bench_function("cachex #[cached], ttl", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &|n| cachex_ttl_u64(black_box(n))));
        });
        group.bench_function("cached #[cached(max_size = 10000, ttl_secs = 300)]", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &|n| cached_ttl_u64(black_box(n))));
        });
        group.bench_function("moka sync get", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &|n| moka.get(&black_box(n))));
        });
        group.bench_function("quick_cache get", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &|n| quick.get(&black_box(n))));
        });
        group.finish();
    }
}

fn kib_hits(c: &mut Criterion) {
    let moka: moka::sync::Cache<(String, u32), Vec<u8>> = moka::sync::Cache::new(CAPACITY);
    let quick: quick_cache::sync::Cache<(String, u32), Vec<u8>> = quick_cache::sync::Cache::new(CAPACITY as usize);
    let names: Vec<String> = (0..KEYS).map(name).collect();
    for (i, name) in names.iter().enumerate() {
        let value = cachex_kib(name.clone(), i as u32);
        assert_eq!(cached_kib(name.clone(), i as u32), value);
        assert_eq!(cached_lru_kib(name.clone(), i as u32), value);
        assert_eq!(cachex_ttl_kib(name.clone(), i as u32), value);
        assert_eq!(cached_ttl_kib(name.clone(), i as u32), value);
        moka.insert((name.clone(), i as u32), value.clone());
        quick.insert((name.clone(), i as u32), value);
    }
    let names = &names;
    for threads in [1, 2] {
        let mut group = group(c, "memory hit fn(String, u32) -> Vec<u8> (1 KiB)", threads);
        group.bench_function("cachex #[cached]", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &|i| cachex_kib(names[i as usize].clone(), i as u32)))
        });
        group.bench_function("cached #[cached]", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &|i| cached_kib(names[i as usize].clone(), i as u32)))
        });
        group.bench_function("cached #[cached(max_size = 10000)]", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &|i| cached_lru_kib(names[i as usize].clone(), i as u32)))
        });
        group.bench_function("cachex #[cached], ttl", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &|i| cachex_ttl_kib(names[i as usize].clone(), i as u32)))
        });
        group.bench_function("cached #[cached(max_size = 10000, ttl_secs = 300)]", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &|i| cached_ttl_kib(names[i as usize].clone(), i as u32)))
        });
        group.bench_function("moka sync get", |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &|i| {
                    black_box(moka.get(&(names[i as usize].clone(), i as u32)));
                })
            })
        });
        group.bench_function("quick_cache get", |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &|i| {
                    black_box(quick.get(&(names[i as usize].clone(), i as u32)));
                })
            })
        });
        group.finish();
    }
}

fn async_hits(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let moka: moka::future::Cache<u64, u64> = moka::future::Cache::new(CAPACITY);
    runtime.block_on(async {
        for n in 0..KEYS {
            moka.insert(n, cachex_async(n).await).await;
        }
    });
    let mut group = c.benchmark_group("async memory hit fn(u64) -> u64, 1 thread");
    group.throughput(Throughput::Elements(1));
    group.bench_function("cachex #[cached] async fn", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let began = Instant::now();
                for i in 0..iters {
                    black_box(cachex_async(black_box(i % KEYS)).await);
                }
                began.elapsed()
            })
        })
    });
    group.bench_function("moka future get", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let began = Instant::now();
                for i in 0..iters {
                    black_box(moka.get(&black_box(i % KEYS)).await);
                }
                began.elapsed()
            })
        })
    });
    group.finish();
}

/// The memory hit with the `metrics` feature on: no recorder, then a recorder installed (the
/// feature-off figure is the `cachex #[cached]` row of a run without `--features metrics`).
#[cfg(feature = "metrics")]
fn metrics_hits(c: &mut Criterion) {
    let mut group = group(c, "memory hit fn(u64) -> u64, feature metrics", 1);
    group.bench_function("cachex #[cached], no recorder", |b| {
        b.iter_custom(|iters| on_threads(1, iters, &|n| cachex_u64(black_box(n))));
    });
    metrics_util::debugging::DebuggingRecorder::new()
        .install()
        .expect("the bench's recorder is the first");
    cachex::metrics::publish();
    group.bench_function("cachex #[cached], recorder installed", |b| {
        b.iter_custom(|iters| on_threads(1, iters, &|n| cachex_u64(black_box(n))));
    });
    group.finish();
}

fn setup(c: &mut Criterion) {
    let memory = || cachex::CacheConfig::memory().max_entries(CAPACITY);
    cachex::init_with(
        cachex::Config::new()
            .cache("bench_u64", memory())
            .cache("bench_kib", memory())
            .cache("bench_u64_ttl", memory().ttl(Duration::from_secs(300)))
            .cache("bench_kib_ttl", memory().ttl(Duration::from_secs(300)))
            .cache("bench_async", memory()),
    )
    .unwrap();
    u64_hits(c);
    kib_hits(c);
    async_hits(c);
    #[cfg(feature = "metrics")]
    metrics_hits(c);
    for name in [
        "bench_u64",
        "bench_kib",
        "bench_u64_ttl",
        "bench_kib_ttl",
        "bench_async",
    ] {
        let stats = cachex::cache(name).unwrap().stats();
        assert_eq!(stats.stores, KEYS, "{name}: every measured call was a hit");
    }
}

criterion_group!(benches, setup);
criterion_main!(benches);
