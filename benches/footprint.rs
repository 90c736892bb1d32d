//! Resident memory per entry: one million `u64 -> u64` entries in a cachex memory cache (filled
//! through a `#[cached]` function) next to the same entries in `moka` alone, in `quick_cache`
//! alone and in the `cached` crate's `#[cached]`. Each store fills its own child process (this
//! binary run again), which reports how much its resident set (`VmRSS` in /proc/self/status)
//! grew; the parent prints the table.
//!
//! `cargo bench --bench footprint` (Linux: it reads /proc).

use std::process::Command;

const ENTRIES: u64 = 1_000_000;
const CONTENDERS: [&str; 4] = ["cachex", "moka", "quick_cache", "cached"];

#[cachex::cached(name = "footprint")]
fn cachex_entry(n: u64) -> u64 {
    n ^ 0x5555
}

#[cached::proc_macro::cached]
fn cached_entry(n: u64) -> u64 {
    n ^ 0x5555
}

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux only)");
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("a VmRSS line");
    kib * 1024
}

/// Fills one store with `ENTRIES` entries; returns how many it holds.
fn fill(contender: &str) -> u64 {
    let capacity = ENTRIES + ENTRIES / 10;
    match contender {
        "cachex" => {
            cachex::init_with(
                cachex::Config::new().cache("footprint", cachex::CacheConfig::memory().max_entries(capacity)),
            )
            .unwrap();
            for n in 0..ENTRIES {
                cachex_entry(n);
            }
            // What the cache holds: every entry answers a second call from the cache.
            for n in 0..ENTRIES {
                cachex_entry(n);
            }
            cachex::cache("footprint").unwrap().stats().hits
        }
        "moka" => {
            let cache = moka::sync::Cache::new(capacity);
            for n in 0..ENTRIES {
                cache.insert(n, n ^ 0x5555);
            }
            cache.run_pending_tasks();
            let held = cache.entry_count();
            std::mem::forget(cache);
            held
        }
        "quick_cache" => {
            let cache = quick_cache::sync::Cache::new(capacity as usize);
            for n in 0..ENTRIES {
                cache.insert(n, n ^ 0x5555);
            }
            let held = cache.len() as u64;
            std::mem::forget(cache);
            held
        }
        "cached" => {
            for n in 0..ENTRIES {
                cached_entry(n);
            }
            ENTRIES
        }
        other => panic!("unknown store {other}"),
    }
}

fn main() {
    let mut args = std::env::args().skip_while(|arg| arg != "--fill");
    if args.next().is_some() {
        let contender = args.next().expect("--fill STORE");
        let before = resident_bytes();
        let held = fill(&contender);
        let grown = resident_bytes().saturating_sub(before);
        println!("{held} {grown}");
        return;
    }
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo bench -- --list` asks harness-less benches for their names
    }
    let exe = std::env::current_exe().unwrap();
    println!("resident memory for {ENTRIES} u64 -> u64 entries");
    let mut per_entry = Vec::new();
    for contender in CONTENDERS {
        let output = Command::new(&exe).args(["--fill", contender]).output().unwrap();
        assert!(
            output.status.success(),
            "{contender}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line = String::from_utf8_lossy(&output.stdout);
        let mut fields = line.split_whitespace().map(|f| f.parse::<u64>().unwrap());
        let (held, grown) = (fields.next().unwrap(), fields.next().unwrap());
        assert!(
            held >= ENTRIES * 99 / 100,
            "{contender} kept only {held} of {ENTRIES} entries"
        );
        per_entry.push((contender, grown as f64 / held as f64));
    }
    let moka = per_entry.iter().find(|(c, _)| *c == "moka").map(|(_, b)| *b).unwrap();
    for (contender, bytes) in per_entry {
        println!(
            "{contender:>12}: {bytes:6.1} bytes per entry ({:.2}x moka)",
            bytes / moka
        );
    }
}
