//! Two deploys of one program share a file cache. The second build keeps the type names of
//! the first and changes their definitions (fields swapped, variants reordered, an integer's
//! signedness and width, a field added): it never returns a value its own body would not
//! have returned, and neither does a rollback to the first build.
//!
//! The program is the fixture crate in `tests/deploy`, built twice with cargo (the feature
//! `v2` switches the definitions) into `target/deploys`, so only the first build is slow.
//! It has a directory of its own, so its builds never contend with the workspace's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const FUNCTIONS: [&str; 5] = ["person", "access", "balance", "counter", "profile"];

/// Builds the fixture, with `--features v2` for the second deploy; the binary's path.
///
/// The fixture is copied next to its target directory with the workspace's `Cargo.lock`, so
/// it builds the same dependency versions as the workspace, whatever changed since.
fn build(v2: bool) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("deploys");
    let fixture = target.join("fixture");
    std::fs::create_dir_all(fixture.join("src")).unwrap();
    let manifest = std::fs::read_to_string(root.join("tests/deploy/Cargo.toml"))
        .unwrap()
        .replace("path = \"../..\"", &format!("path = {:?}", root.display().to_string()));
    std::fs::write(fixture.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(root.join("tests/deploy/src/main.rs"), fixture.join("src/main.rs")).unwrap();
    std::fs::copy(root.join("Cargo.lock"), fixture.join("Cargo.lock")).unwrap();
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--quiet", "--manifest-path"])
        .arg(fixture.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target);
    if v2 {
        cargo.args(["--features", "v2"]);
    }
    let status = cargo.status().expect("cargo runs");
    assert!(status.success(), "the deploy fixture builds (v2: {v2})");
    let built = target.join("debug/cachex-deploy-fixture");
    let kept = target.join(if v2 { "deploy-v2" } else { "deploy-v1" });
    std::fs::copy(&built, &kept).unwrap();
    kept
}

/// What one run of a deploy printed, by function: (body ran, the value is its body's).
fn run(binary: &Path, dir: &Path) -> BTreeMap<String, (bool, bool)> {
    let output = Command::new(binary).arg(dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let report: BTreeMap<String, (bool, bool)> = stdout
        .lines()
        .map(|line| {
            let mut words = line.split(' ');
            let name = words.next().unwrap().to_owned();
            let ran = words.next() == Some("ran=true");
            let own = words.next() == Some("own=true");
            (name, (ran, own))
        })
        .collect();
    assert_eq!(report.keys().map(String::as_str).collect::<Vec<_>>(), {
        let mut names = FUNCTIONS.to_vec();
        names.sort();
        names
    });
    for (name, (_, own)) in &report {
        assert!(
            own,
            "{name} returned a value its own body would not have returned:\n{stdout}"
        );
    }
    report
}

fn all(report: &BTreeMap<String, (bool, bool)>, ran: bool) -> bool {
    report.values().all(|(r, _)| *r == ran)
}

#[test]
fn a_changed_type_is_a_miss_in_both_directions() {
    let v1 = build(false);
    let v2 = build(true);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();

    assert!(all(&run(&v1, dir.path()), true), "the first deploy computes");
    assert!(all(&run(&v1, dir.path()), false), "and then hits: the cache works");
    // Every changed type is a miss: recomputed, correct, then stored for this deploy.
    assert!(all(&run(&v2, dir.path()), true), "the second deploy recomputes");
    assert!(all(&run(&v2, dir.path()), false), "and then hits its own entries");
    // A rollback reads what the second deploy wrote: misses again, never wrong values.
    assert!(all(&run(&v1, dir.path()), true), "the rollback recomputes");
    assert!(all(&run(&v1, dir.path()), false));
}
