//! The file backend: one file per entry in a directory, written atomically (temporary file in
//! the same directory, then rename), safe for several processes sharing the directory.
//!
//! An entry's file name is its storage key (`prefix:hex`) with every byte outside
//! `[A-Za-z0-9._-]` percent-encoded, so two caches can share one directory and each clears
//! only its own files. Temporary files start with `.tmp-`, are never read as entries, and are
//! removed by `clear` and by the size sweep once they are a minute old.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::envelope::{header_expiry, now_millis};
use crate::error::BoxError;
use crate::storage::{AsyncStorage, BoxFuture, Storage};

const TEMP_PREFIX: &str = ".tmp-";
/// Temporary files older than this are left over from a crash and are removed.
const STALE_TEMP: Duration = Duration::from_secs(60);

/// One file cache: a directory, the cache's prefix, and an optional bound on its bytes.
///
/// ```
/// use cachex_core::{FileStore, Storage};
/// let dir = std::env::temp_dir().join(format!("cachex-doc-{}", std::process::id()));
/// let store = FileStore::new(&dir, "cachex:doc", None);
/// let key = format!("cachex:doc:{}", "ab".repeat(32)); // prefix, ':', 64 hex digits
/// store.set(&key, b"bytes", None).unwrap();
/// assert_eq!(store.get(&key).unwrap().as_deref(), Some(&b"bytes"[..]));
/// store.clear().unwrap();
/// assert_eq!(store.get(&key).unwrap(), None);
/// # std::fs::remove_dir_all(&dir).ok();
/// ```
#[derive(Clone)]
pub struct FileStore(Arc<Inner>);

struct Inner {
    dir: PathBuf,
    /// The encoded `prefix:` that starts every file name of this cache.
    stem: String,
    max_bytes: Option<u64>,
    /// Bytes written by this process since the last sweep, added to the last measured total.
    estimate: AtomicU64,
    temp_counter: AtomicU64,
}

/// Percent-encodes every byte outside `[A-Za-z0-9._-]`.
fn encode_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn io_error(action: &str, path: &Path, error: io::Error) -> BoxError {
    format!("cannot {action} {}: {error}", path.display()).into()
}

impl FileStore {
    /// A store in `dir` for the cache whose prefix is `prefix`. The directory is created now
    /// if possible, else at the first write (whose error then names the path).
    pub fn new(dir: &Path, prefix: &str, max_bytes: Option<u64>) -> Self {
        if let Err(error) = fs::create_dir_all(dir) {
            tracing::warn!(path = %dir.display(), %error, "cachex file cache directory cannot be created yet");
        }
        FileStore(Arc::new(Inner {
            dir: dir.to_owned(),
            stem: encode_name(&format!("{prefix}:")),
            max_bytes,
            estimate: AtomicU64::new(0),
            temp_counter: AtomicU64::new(0),
        }))
    }

    /// The directory of the store.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.0.dir.join(encode_name(key))
    }

    /// Whether a directory entry is one of this cache's entries (prefix, then 64 hex digits).
    fn is_own(&self, name: &str) -> bool {
        name.strip_prefix(&self.0.stem)
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, BoxError> {
        let path = self.path(key);
        match fs::read(&path) {
            Ok(bytes) => {
                if header_expiry(&bytes).is_some_and(|at| at != 0 && at <= now_millis()) {
                    // Expired: a miss, and the file goes (unless a writer replaced it already).
                    let _ = fs::remove_file(&path);
                    return Ok(None);
                }
                Ok(Some(bytes))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("read", &path, error)),
        }
    }

    fn write(&self, key: &str, value: &[u8]) -> Result<(), BoxError> {
        let path = self.path(key);
        let temp = self.0.dir.join(format!(
            "{TEMP_PREFIX}{}-{}-{}",
            std::process::id(),
            self.0.temp_counter.fetch_add(1, Ordering::Relaxed),
            encode_name(key)
        ));
        let written = fs::File::create(&temp)
            .or_else(|error| {
                if error.kind() == io::ErrorKind::NotFound {
                    fs::create_dir_all(&self.0.dir).map_err(|e| io_error("create the directory", &self.0.dir, e))?;
                    fs::File::create(&temp).map_err(|e| io_error("create", &temp, e))
                } else {
                    Err(io_error("create", &temp, error))
                }
            })
            .and_then(|mut file| file.write_all(value).map_err(|e| io_error("write", &temp, e)))
            .and_then(|()| fs::rename(&temp, &path).map_err(|e| io_error("rename into", &path, e)));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written?;
        if let Some(max_bytes) = self.0.max_bytes {
            let estimate = self.0.estimate.fetch_add(value.len() as u64, Ordering::Relaxed) + value.len() as u64;
            if estimate > max_bytes {
                self.sweep(max_bytes)?;
            }
        }
        Ok(())
    }

    /// Measures this cache's files and removes the oldest until they fit in `max_bytes`;
    /// also removes stale temporary files.
    fn sweep(&self, max_bytes: u64) -> Result<(), BoxError> {
        let mut entries = Vec::new();
        let mut total = 0u64;
        let now = SystemTime::now();
        for entry in fs::read_dir(&self.0.dir).map_err(|e| io_error("list", &self.0.dir, e))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(metadata) = entry.metadata() else { continue };
            let modified = metadata.modified().unwrap_or(now);
            if name.starts_with(TEMP_PREFIX) {
                if now.duration_since(modified).unwrap_or_default() > STALE_TEMP {
                    let _ = fs::remove_file(entry.path());
                }
            } else if self.is_own(name) {
                total += metadata.len();
                entries.push((modified, metadata.len(), entry.path()));
            }
        }
        if total > max_bytes {
            entries.sort_by_key(|(modified, _, _)| *modified);
            for (_, len, path) in entries {
                if total <= max_bytes {
                    break;
                }
                if fs::remove_file(&path).is_ok() {
                    total -= len;
                }
            }
        }
        self.0.estimate.store(total, Ordering::Relaxed);
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), BoxError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(io_error("remove", &path, error)),
            _ => Ok(()),
        }
    }

    fn remove_all(&self) -> Result<(), BoxError> {
        let listing = match fs::read_dir(&self.0.dir) {
            Ok(listing) => listing,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io_error("list", &self.0.dir, error)),
        };
        let own_temp = format!("-{}", self.0.stem);
        for entry in listing {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let temp_of_own = name.starts_with(TEMP_PREFIX) && name.contains(&own_temp);
            if self.is_own(name) || temp_of_own {
                match fs::remove_file(entry.path()) {
                    Err(error) if error.kind() != io::ErrorKind::NotFound => {
                        return Err(io_error("remove", &entry.path(), error))
                    }
                    _ => {}
                }
            }
        }
        self.0.estimate.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Runs blocking file work off the async runtime's worker threads (inline when no tokio
    /// runtime is running).
    async fn off_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce(FileStore) -> Result<T, BoxError> + Send + 'static,
    ) -> Result<T, BoxError> {
        let store = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle.spawn_blocking(move || work(store)).await?,
            Err(_) => work(store),
        }
    }
}

impl Storage for FileStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BoxError> {
        self.read(key)
    }
    fn set(&self, key: &str, value: &[u8], _ttl: Option<Duration>) -> Result<(), BoxError> {
        // The expiry travels in the envelope's header, which `get` checks.
        self.write(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), BoxError> {
        self.remove(key)
    }
    fn clear(&self) -> Result<(), BoxError> {
        self.remove_all()
    }
}

impl AsyncStorage for FileStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>> {
        let key = key.to_owned();
        Box::pin(self.off_runtime(move |store| store.read(&key)))
    }
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], _ttl: Option<Duration>) -> BoxFuture<'a, Result<(), BoxError>> {
        let (key, value) = (key.to_owned(), value.to_vec());
        Box::pin(self.off_runtime(move |store| store.write(&key, &value)))
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BoxError>> {
        let key = key.to_owned();
        Box::pin(self.off_runtime(move |store| store.remove(&key)))
    }
    fn clear(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(self.off_runtime(|store| store.remove_all()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_and_prefixes_do_not_overlap() {
        assert_eq!(encode_name("cachex:a b/c"), "cachex%3Aa%20b%2Fc");
        let dir = std::env::temp_dir().join(format!("cachex-unit-{}", std::process::id()));
        let a = FileStore::new(&dir, "a", None);
        let hex = "0".repeat(64);
        assert!(a.is_own(&format!("a%3A{hex}")));
        assert!(!a.is_own(&format!("ab%3A{hex}")));
        assert!(!a.is_own(&format!("a%3Ab%3A{hex}")));
        fs::remove_dir_all(&dir).ok();
    }
}
