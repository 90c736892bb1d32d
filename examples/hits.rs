//! A million memory hits of `#[cached] fn(u64) -> u64`, for an instruction count of the hit
//! path: `scripts/bench-memory.sh --instructions` runs it under callgrind (twice, with 1 and
//! 1,000,001 calls, so the difference is the cost of a million hits).
//!
//! `cargo run --release --example hits -- [calls] [ttl]`: `ttl` gives the cache a TTL.

use std::hint::black_box;
use std::time::Duration;

#[cachex::cached(name = "hits")]
fn square(n: u64) -> u64 {
    n.wrapping_mul(n)
}

fn main() -> Result<(), cachex::Error> {
    let mut args = std::env::args().skip(1);
    let calls: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let mut cache = cachex::CacheConfig::memory();
    if args.next().as_deref() == Some("ttl") {
        cache = cache.ttl(Duration::from_secs(3600));
    }
    cachex::init_with(cachex::Config::new().cache("hits", cache))?;
    let mut sum = 0u64;
    for i in 0..calls {
        sum = sum.wrapping_add(square(black_box(i % 1024)));
    }
    let stats = cachex::cache("hits")?.stats();
    println!(
        "{calls} calls, {} hits, {} misses, checksum {sum}",
        stats.hits, stats.misses
    );
    Ok(())
}
