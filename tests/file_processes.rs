//! Several real processes write and read the same keys of one file cache at once: no reader
//! ever sees a torn value, and every value read is one that some process wrote.
//!
//! The test spawns this test binary again (the same test, in child mode, selected by an
//! environment variable), the way a service runs several worker processes on one machine.

use std::process::{Command, Stdio};

use cachex::{CacheConfig, Config};
use serde::{Deserialize, Serialize};

const CHILD_ENV: &str = "CACHEX_TEST_FILE_CHILD";
const PROCESSES: u32 = 4;
const ROUNDS: u32 = 200;
const KEYS: u32 = 6;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Written {
    writer: u32,
    round: u32,
    data: Vec<u8>,
    checksum: u64,
}

fn checksum(writer: u32, round: u32, data: &[u8]) -> u64 {
    data.iter().fold(u64::from(writer) << 32 | u64::from(round), |acc, &b| {
        acc.rotate_left(5) ^ u64::from(b).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    })
}

fn value(writer: u32, round: u32) -> Written {
    // Sizes from 1 KiB to 65 KiB, so some writes take several system calls.
    let len = 1024 + ((writer * 7919 + round * 104_729) % 65_536) as usize;
    let data: Vec<u8> = (0..len).map(|i| (i as u32 ^ writer ^ round) as u8).collect();
    Written {
        writer,
        round,
        checksum: checksum(writer, round, &data),
        data,
    }
}

fn check(read: &Written) {
    assert_eq!(
        read.checksum,
        checksum(read.writer, read.round, &read.data),
        "torn or mixed value"
    );
    assert_eq!(read, &value(read.writer, read.round), "not a value any process wrote");
}

fn child(dir: &str, writer: u32) {
    cachex::init_with(Config::new().cache("shared", CacheConfig::file(dir))).unwrap();
    let cache = cachex::cache("shared").unwrap();
    let mut seen = 0;
    for round in 0..ROUNDS {
        cache.set(&(round % KEYS), &value(writer, round)).unwrap();
        if let Some(read) = cache.get::<_, Written>(&((round + writer) % KEYS)).unwrap() {
            check(&read);
            seen += 1;
        }
    }
    let stats = cache.stats();
    assert_eq!(stats.errors, 0, "no read failed to decode: {stats:?}");
    assert!(seen > 0);
}

#[test]
fn several_processes_share_one_directory() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (dir, writer) = spec.rsplit_once('|').unwrap();
        return child(dir, writer.parse().unwrap());
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|writer| {
            Command::new(&exe)
                .args(["several_processes_share_one_directory", "--exact", "--test-threads=1"])
                .env(CHILD_ENV, format!("{}|{writer}", dir.path().display()))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "a child process failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    cachex::init_with(Config::new().cache("shared", CacheConfig::file(dir.path()))).unwrap();
    let cache = cachex::cache("shared").unwrap();
    for key in 0..KEYS {
        let read: Written = cache.get(&key).unwrap().expect("every key was written");
        check(&read);
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}
