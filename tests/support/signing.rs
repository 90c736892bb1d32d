//! The signed-values drill every byte-storing backend runs: forged, unsigned and moved values
//! are misses; a value signed with a fallback key is a hit, never written back by the read;
//! the keys appear in no output.

use std::time::Duration;

use cachex::envelope::{self, SigningKeys, Verified};

/// The current signing key of the drill's caches.
pub const KEY: &str = "drill signing key: 32 bytes at least, not a real secret";
/// The key of the previous rotation: a fallback of the rotated cache.
pub const OLD_KEY: &str = "drill signing key of the previous rotation, retired";
/// A real key that none of the drill's caches accepts.
pub const FOREIGN_KEY: &str = "a real key of somebody else's deploy, never accepted";

/// Raw access to the store behind a cache, by cachex's storage key (`prefix:hex`).
pub trait RawStore {
    /// The bytes of an entry.
    fn get(&self, storage_key: &str) -> Option<Vec<u8>>;
    /// Replaces the bytes of an entry that exists.
    fn put(&self, storage_key: &str, bytes: &[u8]);
    /// Removes an entry, as another process would.
    fn remove(&self, storage_key: &str);
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub user: String,
    pub is_admin: bool,
}

fn session(is_admin: bool) -> Session {
    Session {
        user: "alice".into(),
        is_admin,
    }
}

/// The storage key of direct key `key` in cache `cache` (default prefix).
pub fn storage_key(cache: &str, key: &str) -> String {
    format!("cachex:{cache}:{}", cachex::Key::direct(cache, key).unwrap().to_hex())
}

fn keys(current: &str, fallbacks: &[&str]) -> SigningKeys {
    SigningKeys::new(current, fallbacks).unwrap()
}

/// An admin session encoded as this crate would, signed with `key` for `storage_key`.
fn forged(storage_key: &str, key: Option<&str>) -> Vec<u8> {
    let mut bytes = envelope::encode(&session(true), Some(Duration::from_secs(600))).unwrap();
    if let Some(key) = key {
        keys(key, &[]).sign(storage_key, &mut bytes);
    }
    bytes
}

/// Runs the drill on `signed` (signing key [`KEY`]) and `rotated` (signing key [`KEY`],
/// fallback [`OLD_KEY`]), two caches of one backend with their default prefixes.
pub fn drill(signed: &str, rotated: &str, raw: &dyn RawStore) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handle = cachex::cache(signed).unwrap();
    let errors = || handle.stats().errors;

    // Values written by this cache verify, on both sides.
    handle.set("user:1", &session(false)).unwrap();
    assert_eq!(handle.get::<_, Session>("user:1").unwrap(), Some(session(false)));
    assert_eq!(
        runtime.block_on(handle.get_async::<_, Session>("user:1")).unwrap(),
        Some(session(false))
    );
    let at = storage_key(signed, "user:1");
    let stored = raw.get(&at).expect("the entry is in the store");
    assert_eq!(keys(KEY, &[]).verify(&at, &stored), Ok(Verified::Current));

    // A well-formed value of the right type, signed with another real key: a miss.
    let before = errors();
    raw.put(&at, &forged(&at, Some(FOREIGN_KEY)));
    assert_eq!(handle.get::<_, Session>("user:1").unwrap(), None, "forged value served");
    assert_eq!(errors(), before + 1, "counted as an error");

    // The same value unsigned: a miss, on both sides.
    raw.put(&at, &forged(&at, None));
    assert_eq!(
        handle.get::<_, Session>("user:1").unwrap(),
        None,
        "unsigned value served"
    );
    assert_eq!(
        runtime.block_on(handle.get_async::<_, Session>("user:1")).unwrap(),
        None
    );
    assert_eq!(errors(), before + 3);

    // A value this cache signed, moved from another entry: a miss.
    handle.set("user:1", &session(false)).unwrap();
    handle.set("user:2", &session(true)).unwrap();
    let moved = raw.get(&storage_key(signed, "user:2")).expect("user:2 is stored");
    raw.put(&at, &moved);
    assert_eq!(handle.get::<_, Session>("user:1").unwrap(), None, "moved value served");
    assert_eq!(errors(), before + 4);

    // Rotation: a value signed with the fallback key is a hit, and is never written back by
    // the read (a write-back could land after another process removed or replaced the entry
    // and bring the old value back): the stored bytes stay as they were, and the next write
    // signs with the current key. Blocking side, then async side.
    let rotated_handle = cachex::cache(rotated).unwrap();
    for (key, asynchronous) in [("user:1", false), ("user:2", true)] {
        rotated_handle.set(key, &session(false)).unwrap();
        let at = storage_key(rotated, key);
        let old = forged(&at, Some(OLD_KEY));
        raw.put(&at, &old);
        let found = if asynchronous {
            runtime.block_on(rotated_handle.get_async::<_, Session>(key)).unwrap()
        } else {
            rotated_handle.get::<_, Session>(key).unwrap()
        };
        assert_eq!(found, Some(session(true)), "a fallback-signed value is a hit");
        assert_eq!(raw.get(&at).as_deref(), Some(&old[..]), "the read wrote nothing back");
        // Removed by another process after the read: nothing brings it back.
        raw.remove(&at);
        assert_eq!(
            rotated_handle.get::<_, Session>(key).unwrap(),
            None,
            "a removed value came back"
        );
        rotated_handle.set(key, &session(false)).unwrap();
        let again = raw.get(&at).expect("stored");
        assert_eq!(
            keys(KEY, &[]).verify(&at, &again),
            Ok(Verified::Current),
            "written with the current key"
        );
    }

    // The keys appear in no output.
    let outputs = [format!("{handle:?}"), format!("{rotated_handle:?}")];
    for output in outputs {
        for key in [KEY, OLD_KEY] {
            assert!(!output.contains(key), "a signing key in {output}");
        }
    }
}
