//! The file backend against the real file system: round trips, TTL, size bound, corruption,
//! unusable directories, and caches sharing one directory.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use cachex::{cached, CacheConfig, Config, OnError};
use support::{signing, Counter};

struct Dirs {
    main: PathBuf,
    bounded: PathBuf,
    shared: PathBuf,
    corrupt: PathBuf,
    keys: PathBuf,
    in_the_way: PathBuf,
}

static DIRS: LazyLock<Dirs> = LazyLock::new(|| {
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
    let in_the_way = root.join("a-file");
    std::fs::write(&in_the_way, b"not a directory").unwrap();
    let dirs = Dirs {
        main: root.join("main"),
        bounded: root.join("bounded"),
        shared: root.join("shared"),
        corrupt: root.join("corrupt"),
        keys: root.join("keys"),
        in_the_way,
    };
    let file = |dir: &Path| CacheConfig::file(dir);
    cachex::init_with(
        Config::new()
            .defaults(CacheConfig::new().ttl(Duration::from_secs(600)))
            .cache("files", file(&dirs.main))
            .cache("files_short", file(&dirs.main).ttl(Duration::from_millis(300)))
            .cache("files_bounded", file(&dirs.bounded).max_bytes(64 * 1024))
            .cache("files_a", file(&dirs.shared))
            .cache("files_b", file(&dirs.shared))
            .cache("files_corrupt", file(&dirs.corrupt))
            .cache("keyvec", file(&dirs.keys).ttl(Duration::ZERO))
            .cache("files_signed", file(&dirs.main).signing_key(signing::KEY, &[]))
            .cache(
                "files_rotated",
                file(&dirs.main).signing_key(signing::KEY, &[signing::OLD_KEY]),
            )
            .cache("blocked", file(&dirs.in_the_way.join("sub")))
            .cache("blocked_fail", file(&dirs.in_the_way).on_error(OnError::Fail)),
    )
    .expect("valid test configuration");
    dirs
});

fn dirs() -> &'static Dirs {
    &DIRS
}

static COMPUTED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// This cache's entry files in `dir` (its temporary files excluded).
fn entry_files(dir: &Path, cache: &str) -> Vec<PathBuf> {
    let stem = format!("cachex%3A{cache}%3A");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|listing| {
            listing
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(&stem))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[cached(name = "files")]
fn report(id: u32) -> Vec<String> {
    COMPUTED.bump(format!("report:{id}"));
    vec![format!("report {id}"); 3]
}

#[test]
fn sync_round_trip_through_a_file() {
    dirs();
    assert_eq!(report(1), vec!["report 1"; 3]);
    assert_eq!(report(1), vec!["report 1"; 3]);
    assert_eq!(COMPUTED.get("report:1"), 1);
    assert!(!entry_files(&dirs().main, "files").is_empty());
}

#[cached(name = "files")]
async fn report_async(id: u32) -> (u32, String) {
    COMPUTED.bump(format!("report_async:{id}"));
    (id, "async".into())
}

#[tokio::test]
async fn async_round_trip_through_a_file() {
    dirs();
    assert_eq!(report_async(2).await, (2, "async".into()));
    assert_eq!(report_async(2).await, (2, "async".into()));
    assert_eq!(COMPUTED.get("report_async:2"), 1);
    let handle = cachex::cache("files").unwrap();
    handle.set_async(&"direct", &vec![1u8, 2, 3]).await.unwrap();
    assert_eq!(
        handle.get_async::<_, Vec<u8>>(&"direct").await.unwrap(),
        Some(vec![1, 2, 3])
    );
    handle.remove_async(&"direct").await.unwrap();
    assert_eq!(handle.get_async::<_, Vec<u8>>(&"direct").await.unwrap(), None);
}

#[cached(name = "files_short")]
fn short(id: u32) -> u32 {
    COMPUTED.bump(format!("short:{id}"));
    id
}

#[test]
fn expired_entries_are_misses_and_are_removed() {
    dirs();
    short(1);
    assert_eq!(entry_files(&dirs().main, "files_short").len(), 1);
    std::thread::sleep(Duration::from_millis(1200));
    // The read finds the entry expired, removes its file, and the call recomputes and stores.
    let handle = cachex::cache("files_short").unwrap();
    assert_eq!(handle.get::<_, u32>(&"absent").unwrap(), None);
    short(1);
    assert_eq!(COMPUTED.get("short:1"), 2);
    assert_eq!(entry_files(&dirs().main, "files_short").len(), 1);
}

#[cached(name = "files_bounded")]
fn blob(id: u32) -> Vec<u8> {
    COMPUTED.bump(format!("blob:{id}"));
    vec![id as u8; 4096]
}

#[test]
fn max_bytes_evicts_the_oldest_entries() {
    dirs();
    for id in 0..64 {
        blob(id);
        // File times have a coarse granularity on some file systems: space the writes.
        std::thread::sleep(Duration::from_millis(5));
    }
    let files = entry_files(&dirs().bounded, "files_bounded");
    let total: u64 = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    assert!(total <= 64 * 1024, "{total} bytes in {} files", files.len());
    assert!(files.len() >= 8, "the bound keeps what fits, {} files", files.len());
    // The newest entry is still there; the oldest was evicted.
    blob(63);
    assert_eq!(COMPUTED.get("blob:63"), 1);
    blob(0);
    assert_eq!(COMPUTED.get("blob:0"), 2);
}

#[cached(name = "files_corrupt")]
fn fragile(case: &str) -> String {
    COMPUTED.bump(format!("fragile:{case}"));
    format!("value for {case}")
}

static CORRUPT_LOCK: Mutex<()> = Mutex::new(());

/// Stores `fragile(case)`, replaces its file with `corrupt(original bytes)`, and checks that the
/// next call recomputes, counts an error, and overwrites the file with a valid entry.
fn check_corruption(case: &str, corrupt: impl FnOnce(Vec<u8>) -> Vec<u8>) {
    dirs();
    let _serial = CORRUPT_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let handle = cachex::cache("files_corrupt").unwrap();
    handle.clear().unwrap();
    assert_eq!(fragile(case), format!("value for {case}"));
    let files = entry_files(&dirs().corrupt, "files_corrupt");
    assert_eq!(files.len(), 1);
    let original = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], corrupt(original)).unwrap();
    let errors = handle.stats().errors;
    assert_eq!(fragile(case), format!("value for {case}"), "{case}: the right value");
    assert_eq!(COMPUTED.get(&format!("fragile:{case}")), 2, "{case}: recomputed");
    assert_eq!(handle.stats().errors, errors + 1, "{case}: counted as an error");
    let rewritten = std::fs::read(&files[0]).unwrap();
    assert_eq!(
        cachex::envelope::decode::<String>(&rewritten),
        Ok(format!("value for {case}")),
        "{case}: overwritten with a valid entry"
    );
    assert_eq!(fragile(case), format!("value for {case}"));
    assert_eq!(COMPUTED.get(&format!("fragile:{case}")), 2, "{case}: a hit again");
}

#[test]
fn a_truncated_file_is_a_miss() {
    check_corruption("truncated", |bytes| bytes[..bytes.len() / 2].to_vec());
}

#[test]
fn random_bytes_are_a_miss() {
    check_corruption("random", |bytes| {
        (0..bytes.len()).map(|i| (i * 7919 % 251) as u8).collect()
    });
}

#[test]
fn a_foreign_file_is_a_miss() {
    check_corruption("foreign", |_| br#"{"written": "by another program"}"#.to_vec());
}

#[test]
fn a_value_of_another_type_is_a_miss() {
    // The same bytes a binary whose function returned u64 would have written.
    check_corruption("retyped", |_| cachex::envelope::encode(&42u64, None).unwrap());
}

#[test]
fn a_length_claiming_gigabytes_is_a_miss() {
    check_corruption("huge", |mut bytes| {
        // The payload is a bincode String: a varint length (253 = u64 follows), then bytes.
        let header = bytes.len() - ("value for huge".len() + 1);
        bytes.truncate(header);
        bytes.push(253);
        bytes.extend_from_slice(&(8u64 << 30).to_le_bytes());
        let payload_len = (bytes.len() - header) as u64;
        bytes[header - 8..header].copy_from_slice(&payload_len.to_le_bytes());
        bytes
    });
}

#[cached(name = "blocked")]
fn under_a_file(id: u32) -> u32 {
    COMPUTED.bump(format!("under_a_file:{id}"));
    id
}

#[test]
fn an_unusable_directory_under_bypass_computes_and_returns() {
    dirs();
    assert_eq!(under_a_file(1), 1);
    assert_eq!(under_a_file(1), 1);
    assert_eq!(COMPUTED.get("under_a_file:1"), 2, "nothing could be stored");
    assert!(cachex::cache("blocked").unwrap().stats().errors >= 2);
}

#[derive(Debug)]
enum ReportError {
    Cache(String),
}

impl From<cachex::Error> for ReportError {
    fn from(error: cachex::Error) -> Self {
        ReportError::Cache(error.to_string())
    }
}

#[cached(name = "blocked_fail")]
fn strict(id: u32) -> Result<u32, ReportError> {
    COMPUTED.bump(format!("strict:{id}"));
    Ok(id)
}

#[test]
fn an_unusable_directory_under_fail_names_the_cache_path_and_os_error() {
    dirs();
    let ReportError::Cache(message) = strict(1).unwrap_err();
    assert!(message.contains("cache `blocked_fail`"), "{message}");
    assert!(message.contains(dirs().in_the_way.to_str().unwrap()), "{message}");
    assert!(message.contains("os error"), "{message}");
}

#[cached(name = "files_a")]
fn in_a(id: u32) -> u32 {
    COMPUTED.bump(format!("in_a:{id}"));
    id
}

#[cached(name = "files_b")]
fn in_b(id: u32) -> u32 {
    COMPUTED.bump(format!("in_b:{id}"));
    id
}

#[test]
fn two_caches_in_one_directory_clear_independently() {
    dirs();
    for id in 0..3 {
        in_a(id);
        in_b(id);
    }
    assert_eq!(entry_files(&dirs().shared, "files_a").len(), 3);
    assert_eq!(entry_files(&dirs().shared, "files_b").len(), 3);
    cachex::cache("files_a").unwrap().clear().unwrap();
    assert_eq!(entry_files(&dirs().shared, "files_a").len(), 0);
    assert_eq!(entry_files(&dirs().shared, "files_b").len(), 3);
    in_b(0);
    assert_eq!(COMPUTED.get("in_b:0"), 1, "b's entries survived a's clear");
    in_a(0);
    assert_eq!(COMPUTED.get("in_a:0"), 2);
}

#[cached(name = "keyvec", id = "key_vector::fib")]
fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        (1..n).fold((0u64, 1u64), |(a, b), _| (b, a + b)).1
    }
}

/// The key of one known call, pinned: an accidental change of the key format (hash input,
/// framing, seed) fails here, before it silently orphans every entry in production.
///
/// The expected value was computed independently of this code (Python's `blake3`):
/// seed = blake3(u32le 2 ‖ u64le len ‖ "keyvec" ‖ u64le len ‖ "key_vector::fib" ‖ u32le 0),
/// key = blake3_keyed(seed, b"s" ‖ bincode varint 10).
#[test]
fn key_test_vector() {
    dirs();
    assert_eq!(fib(10), 55);
    let files = entry_files(&dirs().keys, "keyvec");
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert_eq!(
        name,
        "cachex%3Akeyvec%3Ac8025dd0eb407cbc660c23b30f0a9408149b8d1dccfa49a84031b4c1a75b610a"
    );
}

/// The entry files of the main directory, by storage key.
struct Files;

impl signing::RawStore for Files {
    fn get(&self, storage_key: &str) -> Option<Vec<u8>> {
        std::fs::read(dirs().main.join(storage_key.replace(':', "%3A"))).ok()
    }
    fn put(&self, storage_key: &str, bytes: &[u8]) {
        std::fs::write(dirs().main.join(storage_key.replace(':', "%3A")), bytes).unwrap();
    }
    fn remove(&self, storage_key: &str) {
        std::fs::remove_file(dirs().main.join(storage_key.replace(':', "%3A"))).unwrap();
    }
}

#[test]
fn signed_values_verify_or_are_misses() {
    dirs();
    signing::drill("files_signed", "files_rotated", &Files);
}
