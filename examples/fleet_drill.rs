//! The fleet drill's long form: four worker processes (this binary again) on one tiered cache
//! in front of a truth server, random operations under injected faults, and a checker over the
//! merged history (`tests/support/drill.rs`; the short forms run in the test suite).
//!
//! ```text
//! cargo run --release --features redis --example fleet_drill -- --seconds 600 [--cluster | --file] [--seed N]
//! ```
//!
//! Needs `redis-server` (Debian package `redis-server`); exits with 1 on any violation.

#[path = "../tests/support/drill.rs"]
mod drill;
#[path = "../tests/support/mod.rs"]
mod support;

use drill::{Plan, Topology};

fn main() {
    if drill::as_worker() {
        return;
    }
    let mut topology = Topology::Standalone;
    let mut seconds = 600;
    let mut seed = std::process::id().into();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> u64 {
            args.next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{name} takes a number"))
        };
        match arg.as_str() {
            "--seconds" => seconds = number("--seconds"),
            "--seed" => seed = number("--seed"),
            "--cluster" => topology = Topology::Cluster,
            "--file" => topology = Topology::File,
            other => panic!("unknown argument {other}: --seconds N, --seed N, --cluster, --file"),
        }
    }
    let report = drill::run(&Plan::new(topology, seconds, seed), || {
        std::process::Command::new(std::env::current_exe().unwrap())
    });
    println!("{report}");
    if !report.violations.is_empty() {
        std::process::exit(1);
    }
}
