//! The memory-cache hit of `#[cached] fn fib(n: u64) -> u64`, next to the same lookup done by
//! hand on `quick_cache` (the store under it) and on `moka` (the store it replaced), to see
//! what the binding layer costs.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

#[cachex::cached(name = "bench_fib")]
fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        (1..n).fold((0u64, 1u64), |(a, b), _| (b, a + b)).1
    }
}

fn memory_hit(c: &mut Criterion) {
    cachex::init_with(cachex::Config::new().cache("bench_fib", cachex::CacheConfig::memory())).unwrap();
    fib(40);
    c.bench_function("cachex memory hit fn(u64) -> u64", |b| b.iter(|| fib(black_box(40))));

    let quick: quick_cache::sync::Cache<u64, u64> = quick_cache::sync::Cache::new(10_000);
    quick.insert(40, fib(40));
    c.bench_function("quick_cache sync get u64 -> u64", |b| {
        b.iter(|| quick.get(&black_box(40)))
    });

    let moka: moka::sync::Cache<u64, u64> = moka::sync::Cache::new(10_000);
    moka.insert(40, fib(40));
    c.bench_function("moka sync get u64 -> u64", |b| b.iter(|| moka.get(&black_box(40))));
}

criterion_group!(benches, memory_hit);
criterion_main!(benches);
