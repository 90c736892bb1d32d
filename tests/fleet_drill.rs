//! The fleet drill's short forms (see `tests/support/drill.rs`): four processes of this binary
//! on one tiered cache in front of a truth server, random operations under every fault kind,
//! and a checker over the merged history. The long form is `examples/fleet_drill.rs`.
#![cfg(all(feature = "redis", feature = "file"))]

#[path = "support/drill.rs"]
mod drill;
mod support;

use std::process::Command;
use std::sync::Mutex;

use drill::{Plan, Report, Topology};

/// One drill at a time: each starts four workers and its own servers.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn drill(plan: &Plan, test: &'static str) -> Report {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let report = drill::run(plan, worker(test));
    println!("{report}");
    report
}

/// This binary again, running `test` alone (as a drill worker: the harness sets its spec).
fn worker(test: &'static str) -> impl Fn() -> Command {
    move || {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.args([test, "--exact", "--nocapture", "--test-threads=1"]);
        command
    }
}

#[test]
fn standalone_redis_under_every_fault() {
    if drill::as_worker() {
        return;
    }
    // Seed 28 is the run that found a stopped worker serving invalidated copies.
    let plan = Plan::new(Topology::Standalone, 20, 28);
    let report = drill(&plan, "standalone_redis_under_every_fault");
    assert!(report.violations.is_empty(), "{report}");
    assert_eq!(report.faults.len(), 6, "every fault kind at least once: {report}");
    assert!(report.reads > 1000 && report.updates > 100, "{report}");
}

#[test]
fn file_under_stopped_workers() {
    if drill::as_worker() {
        return;
    }
    // Seed 28 is the run that found a late fill kept for the whole tier ttl.
    let plan = Plan::new(Topology::File, 10, 28);
    let report = drill(&plan, "file_under_stopped_workers");
    assert!(report.violations.is_empty(), "{report}");
    assert!(report.faults.contains_key("StopWorker"), "{report}");
}

/// The checker can fail: a tier that keeps its copies for an hour, with no channel to drop
/// them, serves versions long replaced, and the drill says so.
#[test]
fn the_checker_catches_a_tier_that_never_drops_copies() {
    if drill::as_worker() {
        return;
    }
    let plan = Plan {
        faults: false,
        local_ttl: std::time::Duration::from_secs(3600),
        ..Plan::new(Topology::File, 6, 28)
    };
    let report = drill(&plan, "the_checker_catches_a_tier_that_never_drops_copies");
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("after a newer version's acknowledgement")),
        "{report}"
    );
}
