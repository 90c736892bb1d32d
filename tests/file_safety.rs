//! The file backend against neighbours on the machine: file and directory modes whatever the
//! umask, symlinks planted at an entry's path, oversized entry files, `clear` that touches
//! only its own prefix and no write in flight, a directory owned by another user or writable
//! by others, entry files of another user, expired files swept without removing fresh ones,
//! and eviction down to a low-water mark.
#![cfg(all(feature = "file", unix))]

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use cachex::{CacheConfig, Config};
use cachex_core::backend::file::FileStore;
use cachex_core::{Key, Storage, StorageKey};

const CHILD_ENV: &str = "CACHEX_TEST_FILE_MODES_CHILD";

fn key(prefix: &'static str, n: u8) -> StorageKey<'static> {
    StorageKey::new(prefix, Key([n; 32]))
}

/// The file of `key` in `dir` (the store's naming: `prefix:hex` percent-encoded).
fn entry_path(dir: &Path, key: &StorageKey<'_>) -> PathBuf {
    dir.join(key.text().replace(':', "%3A"))
}

fn scratch() -> PathBuf {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// In the child: one cache in `dir/a/b` (both created by cachex), one value written.
fn child(dir: &str) {
    let dir = Path::new(dir).join("a").join("b");
    cachex::init_with(Config::new().cache("modes", CacheConfig::file(&dir))).unwrap();
    cachex::cache("modes").unwrap().set(&1u32, &"value".to_owned()).unwrap();
}

#[test]
fn directories_are_0700_and_files_0600_under_umask_022_and_000() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return child(&dir);
    }
    let exe = std::env::current_exe().unwrap();
    for umask in ["022", "000"] {
        let root = scratch();
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(&exe)
            .args([
                "directories_are_0700_and_files_0600_under_umask_022_and_000",
                "--exact",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &root)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "the child under umask {umask} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let a = root.join("a");
        let b = a.join("b");
        assert_eq!(mode(&a), 0o700, "umask {umask}: {}", a.display());
        assert_eq!(mode(&b), 0o700, "umask {umask}: {}", b.display());
        let files: Vec<_> = std::fs::read_dir(&b).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "one entry, no temporary file left: {files:?}");
        for file in files {
            assert_eq!(mode(&file), 0o600, "umask {umask}: {}", file.display());
        }
    }
}

#[test]
fn a_symlink_at_an_entry_path_is_never_followed_on_read() {
    let dir = scratch();
    let store = FileStore::new(&dir, "s", None);
    let k = key("s", 1);
    store.set(&k, b"a value", None).unwrap();
    // The entry moves away and a symlink to it takes its place.
    let target = dir.join("target");
    std::fs::rename(entry_path(&dir, &k), &target).unwrap();
    symlink(&target, entry_path(&dir, &k)).unwrap();
    assert_eq!(store.get(&k).unwrap(), None, "a symlink is a miss");
    assert_eq!(std::fs::read(&target).unwrap(), b"a value", "the target is untouched");
}

#[test]
fn a_symlink_at_an_entry_path_is_never_followed_on_write() {
    let dir = scratch();
    let store = FileStore::new(&dir, "s", None);
    let k = key("s", 2);
    let target = scratch().join("victim");
    std::fs::write(&target, b"precious").unwrap();
    symlink(&target, entry_path(&dir, &k)).unwrap();
    store.set(&k, b"new value", None).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"precious", "the target is untouched");
    let at_path = std::fs::symlink_metadata(entry_path(&dir, &k)).unwrap();
    assert!(at_path.file_type().is_file(), "the link was replaced by the entry");
    assert_eq!(store.get(&k).unwrap().as_deref(), Some(&b"new value"[..]));
}

#[test]
fn an_oversized_entry_file_is_a_miss() {
    let dir = scratch();
    let store = FileStore::new(&dir, "s", Some(1024));
    let k = key("s", 3);
    store.set(&k, &[7u8; 1000], None).unwrap();
    assert_eq!(store.get(&k).unwrap().map(|v| v.len()), Some(1000));
    std::fs::write(entry_path(&dir, &k), vec![7u8; 4096]).unwrap();
    assert_eq!(store.get(&k).unwrap(), None, "larger than the bound: a miss");
}

fn age(path: &Path, by: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

#[test]
fn clear_removes_only_its_own_entries_and_stale_temporary_files() {
    let dir = scratch();
    let a = FileStore::new(&dir, "a", None);
    let b = FileStore::new(&dir, "b-a", None);
    for n in 0..3 {
        a.set(&key("a", n), b"from a", None).unwrap();
        b.set(&key("b-a", n), b"from b-a", None).unwrap();
    }
    let fresh_foreign = dir.join(".tmp-b-a%3A~inflight1");
    let stale_foreign = dir.join(".tmp-b-a%3A~crashed01");
    let fresh_own = dir.join(".tmp-a%3A~inflight2");
    let stale_own = dir.join(".tmp-a%3A~crashed02");
    for temp in [&fresh_foreign, &stale_foreign, &fresh_own, &stale_own] {
        std::fs::write(temp, b"partial").unwrap();
    }
    age(&stale_foreign, Duration::from_secs(600));
    age(&stale_own, Duration::from_secs(600));

    a.clear().unwrap();
    for n in 0..3 {
        assert_eq!(a.get(&key("a", n)).unwrap(), None);
        assert_eq!(b.get(&key("b-a", n)).unwrap().as_deref(), Some(&b"from b-a"[..]));
    }
    assert!(fresh_foreign.exists(), "another prefix's write in flight is left alone");
    assert!(
        stale_foreign.exists(),
        "another prefix's temporary files are its own business"
    );
    assert!(
        fresh_own.exists(),
        "a temporary file younger than a minute is left alone"
    );
    assert!(!stale_own.exists(), "a stale temporary file of this cache is removed");
}

#[test]
fn a_directory_owned_by_another_user_is_an_init_error_naming_it() {
    // As root, a directory given to `nobody`; as anyone else, `/` belongs to another user.
    let dir = if effective_uid() == 0 {
        let dir = scratch().join("theirs");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        dir
    } else {
        PathBuf::from("/")
    };
    assert_ne!(std::fs::metadata(&dir).unwrap().uid(), effective_uid());
    let error = cachex::init_with(Config::new().cache("theirs", CacheConfig::file(&dir)))
        .expect_err("another user's directory is refused");
    let text = error.to_string();
    assert!(text.contains("cache `theirs`, key `path`"), "{text}");
    assert!(text.contains(&dir.display().to_string()), "{text}");
    assert!(text.contains("belongs to another user"), "{text}");
}

fn effective_uid() -> u32 {
    // The owner of a file this process just created is its effective uid.
    let probe = tempfile::NamedTempFile::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    probe.as_file().metadata().unwrap().uid()
}

/// An envelope of `value` whose entry expires after `ttl`.
fn envelope(value: &str, ttl: Option<Duration>) -> Vec<u8> {
    cachex::envelope::encode(&value.to_owned(), ttl).unwrap()
}

fn entry_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".tmp-"))
        .count()
}

#[test]
fn an_expired_read_removes_nothing_and_a_fresh_write_in_its_place_is_read() {
    let dir = scratch();
    let store = FileStore::new(&dir, "s", None);
    let k = key("s", 4);
    store
        .set(&k, &envelope("old", Some(Duration::from_millis(1))), None)
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(store.get(&k).unwrap(), None, "expired: a miss");
    // The read unlinked nothing: had another process renamed a fresh value into place
    // between the read and an unlink, that value would be gone.
    assert!(entry_path(&dir, &k).exists(), "the read removed the file");
    let fresh = envelope("fresh", None);
    std::fs::write(entry_path(&dir, &k), &fresh).unwrap();
    assert_eq!(store.get(&k).unwrap(), Some(fresh));
}

#[test]
fn expired_files_are_swept_by_later_writes_without_max_bytes() {
    let dir = scratch();
    let store = FileStore::new(&dir, "s", None);
    let expired = envelope("expired", Some(Duration::from_millis(1)));
    let lasting = envelope("lasting", None);
    let keys: Vec<StorageKey<'static>> = (0..1200u32)
        .map(|n| {
            let mut digest = [0u8; 32];
            digest[..4].copy_from_slice(&n.to_le_bytes());
            StorageKey::new("s", Key(digest))
        })
        .collect();
    for k in &keys[..600] {
        store.set(k, &expired, None).unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(entry_files(&dir), 600, "no sweep yet");
    // The 1024th write sweeps: the 600 expired files go, every lasting one stays.
    for k in &keys[600..] {
        store.set(k, &lasting, None).unwrap();
    }
    assert_eq!(entry_files(&dir), 600, "the expired files were swept");
    for k in &keys[600..] {
        assert_eq!(store.get(k).unwrap().as_deref(), Some(&lasting[..]));
    }
    assert_eq!(
        store.sweep_after(),
        1024,
        "the next sweep after the files it found, at least 1024 writes"
    );
}

#[test]
fn over_max_bytes_the_oldest_go_down_to_90_percent() {
    let dir = scratch();
    let store = FileStore::new(&dir, "s", Some(100_000));
    for n in 0..100u8 {
        store.set(&key("s", n), &[n; 1000], None).unwrap();
    }
    assert_eq!(entry_files(&dir), 100, "at the limit, nothing evicted");
    // Older by their modification time, the first written first.
    for n in 0..100u8 {
        let at = SystemTime::now() - Duration::from_secs(1000 - u64::from(n));
        std::fs::File::options()
            .write(true)
            .open(entry_path(&dir, &key("s", n)))
            .unwrap()
            .set_modified(at)
            .unwrap();
    }
    store.set(&key("s", 200), &[9; 1000], None).unwrap();
    // Down to 90 % of max_bytes, so the next writes do not each scan the directory again.
    assert_eq!(entry_files(&dir), 90);
    assert_eq!(store.get(&key("s", 0)).unwrap(), None, "the oldest went");
    assert_eq!(
        store.get(&key("s", 10)).unwrap(),
        None,
        "11 files went: 101 000 bytes down to 90 000"
    );
    assert!(store.get(&key("s", 11)).unwrap().is_some(), "the newer stayed");
    assert!(store.get(&key("s", 200)).unwrap().is_some(), "the write stayed");
}

#[test]
fn a_directory_others_may_write_to_is_refused_unless_the_cache_signs() {
    let dir = scratch().join("shared");
    std::fs::create_dir(&dir).unwrap();
    for (mode, who) in [(0o770, "its group"), (0o777, "every user")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let error = cachex::init_with(Config::new().cache("planted", CacheConfig::file(&dir)))
            .expect_err("a directory others may write to is refused");
        let text = error.to_string();
        assert!(text.contains("cache `planted`, key `path`"), "{text}");
        assert!(text.contains(&dir.display().to_string()), "{text}");
        assert!(text.contains(&format!("writable by {who} (mode {mode:o})")), "{text}");
        assert!(text.contains("signing_key"), "{text}");
        // A signing cache verifies what it reads: planted entries are misses.
        assert!(FileStore::open(&dir, "planted", None, true).is_ok());
    }
}

#[test]
fn an_entry_file_another_user_owns_is_a_miss() {
    let dir = scratch();
    let store = FileStore::new(&dir, "s", None);
    let k = key("s", 5);
    store.set(&k, b"mine", None).unwrap();
    assert_eq!(store.get(&k).unwrap().as_deref(), Some(&b"mine"[..]));
    // Planting a file as another user needs root (CI runs as root); as anyone else, only the
    // half above is checked.
    if effective_uid() == 0 {
        std::os::unix::fs::chown(entry_path(&dir, &k), Some(65534), Some(65534)).unwrap();
        assert_eq!(store.get(&k).unwrap(), None, "another user's file was served");
    }
}
