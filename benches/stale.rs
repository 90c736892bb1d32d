//! Latency across expiry, with and without `stale_while_revalidate`: a hot key is called in a
//! loop for several TTLs, with a 20 ms body, and every call is timed (`Instant` around it).
//! Without the window, the call that finds the entry expired waits for the body; with it, that
//! call gets the stale value and the refresh runs off the caller.
//!
//! `cargo bench --bench stale` prints p50, p99, p99.9 and the maximum of each run.

use std::time::{Duration, Instant};

use cachex::{cached, CacheConfig, Config};

const TTL: Duration = Duration::from_millis(200);
const BODY: Duration = Duration::from_millis(20);
const RUN: Duration = Duration::from_secs(3);
const PAUSE: Duration = Duration::from_micros(50);

#[cached(name = "plain")]
fn plain(key: u64) -> u64 {
    std::thread::sleep(BODY);
    key
}

#[cached(name = "swr")]
fn swr(key: u64) -> u64 {
    std::thread::sleep(BODY);
    key
}

#[cached(name = "plain_async")]
async fn plain_async(key: u64) -> u64 {
    tokio::time::sleep(BODY).await;
    key
}

#[cached(name = "swr_async")]
async fn swr_async(key: u64) -> u64 {
    tokio::time::sleep(BODY).await;
    key
}

fn report(name: &str, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let waited = latencies.iter().filter(|l| **l >= Duration::from_millis(5)).count();
    println!(
        "{name:<40} {:>7} calls  p50 {:>9.2?}  p99 {:>9.2?}  p99.9 {:>9.2?}  max {:>9.2?}  calls >= 5 ms: {waited}",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        latencies[latencies.len() - 1],
    );
}

/// The latencies of calls for `RUN`, after one call that fills the cache (a first call has
/// nothing to serve, with or without a window).
fn timed(mut call: impl FnMut()) -> Vec<Duration> {
    call();
    let mut latencies = Vec::with_capacity(100_000);
    let start = Instant::now();
    while start.elapsed() < RUN {
        let before = Instant::now();
        call();
        latencies.push(before.elapsed());
        std::thread::sleep(PAUSE);
    }
    latencies
}

async fn timed_async<F: std::future::Future<Output = u64>>(call: impl Fn() -> F) -> Vec<Duration> {
    call().await;
    let mut latencies = Vec::with_capacity(100_000);
    let start = Instant::now();
    while start.elapsed() < RUN {
        let before = Instant::now();
        std::hint::black_box(call().await);
        latencies.push(before.elapsed());
        tokio::time::sleep(PAUSE).await;
    }
    latencies
}

fn main() {
    let cache = || CacheConfig::memory().ttl(TTL);
    let window = Duration::from_secs(60);
    cachex::init_with(
        Config::new()
            .cache("plain", cache())
            .cache("swr", cache().stale_while_revalidate(window))
            .cache("plain_async", cache())
            .cache("swr_async", cache().stale_while_revalidate(window)),
    )
    .expect("valid configuration");
    println!("a hot key for {RUN:?}, ttl {TTL:?}, a {BODY:?} body, {PAUSE:?} between calls");
    report(
        "blocking, no stale_while_revalidate",
        timed(|| {
            std::hint::black_box(plain(1));
        }),
    );
    report(
        "blocking, stale_while_revalidate",
        timed(|| {
            std::hint::black_box(swr(1));
        }),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    report(
        "async, no stale_while_revalidate",
        runtime.block_on(timed_async(|| plain_async(1))),
    );
    report(
        "async, stale_while_revalidate",
        runtime.block_on(timed_async(|| swr_async(1))),
    );
    for name in ["plain", "swr", "plain_async", "swr_async"] {
        let stats = cachex::cache(name).expect("a cache").stats();
        println!(
            "{name:<12} refreshes {:>3}  stale served {:>4}  misses {:>4}",
            stats.refreshes, stats.stale_served, stats.misses
        );
    }
}
