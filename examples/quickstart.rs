//! The quickstart: a cached function on the embedded default (a memory cache, no server and
//! no configuration file needed). Run it with `cargo run --example quickstart`.

use std::time::{Duration, Instant};

use cachex::cached;

/// A slow computation: the nth Fibonacci number, the slow way, plus a pause.
#[cached(name = "fib")]
fn slow_fib(n: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(200));
    (1..n.max(1)).fold((0u64, 1u64), |(a, b), _| (b, a.wrapping_add(b))).1 * u64::from(n > 0)
}

fn main() -> Result<(), cachex::Error> {
    cachex::init()?;
    for n in [30, 40, 30, 40, 50] {
        let started = Instant::now();
        let value = slow_fib(n);
        println!("slow_fib({n}) = {value:<14} in {:>9.3?}", started.elapsed());
    }
    let stats = cachex::cache("fib")?.stats();
    println!(
        "cache `fib` ({}): {} computed, {} from the cache",
        cachex::cache("fib")?.backend(),
        stats.misses,
        stats.hits
    );
    Ok(())
}
