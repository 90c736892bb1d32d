//! The file backend: one file per entry in a directory, written atomically (temporary file in
//! the same directory, then rename), safe for several processes sharing the directory.
//!
//! An entry's file name is its storage key (`prefix:hex`) with every byte outside
//! `[A-Za-z0-9._-]` percent-encoded, so two caches can share one directory and each clears
//! only its own files. A temporary file is named `.tmp-<encoded prefix:>~<random>`, created
//! with `create_new` (never through a planted file or symlink), and never read as an entry;
//! `clear` and the size sweep remove only the cache's own temporary files, and only once they
//! are a minute old (a younger one may be another process's write in flight).
//!
//! On Unix, the directories the store creates are `0700` and its files `0600`, whatever the
//! umask; reads open entries with `O_NOFOLLOW` (a symlink at an entry's path is a miss, and
//! its target is never read), writes replace the path by `rename` (a symlink there is replaced,
//! its target never written), and an entry larger than [`MAX_ENTRY_BYTES`] (or the cache's
//! `max_bytes`, if smaller) is a miss, and so is an entry file another user owns.
//! [`FileStore::open`] refuses a directory that another user owns, and one that others may
//! write to (where a neighbour could plant an entry under its predictable name) unless the
//! cache signs its values.
//!
//! A read never removes a file: an expired entry is a miss, and its file goes at the next
//! sweep. A sweep runs once the writes since the last one reach the number of files that one
//! found (at least [`SWEEP_EVERY`]), so its cost is constant per write however large the
//! directory; with `max_bytes`, also as soon as the cache's files exceed it, and then it evicts
//! the oldest down to 90 % of `max_bytes`, so a full directory is scanned once per many
//! writes, not on every one. A sweep removes a file only if it is still the file it examined
//! (the path is renamed aside, checked, and a newer file that another process renamed into
//! place in between is put back), so it never deletes a fresh write.
//!
//! Every change of an entry (a write, a removal, a computation's lease and fill) runs under
//! the entry's lock file, `<entry>.lock`, created with `create_new` and removed after the
//! change (a few system calls); a lock file older than five seconds is a crashed process's and
//! is taken over. A lease stores a marker where the entry is absent (or expired) and names
//! what the entry holds by its BLAKE3 digest; a fill writes only while the entry still has it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::envelope::{header_expiry, now_millis, HEADER_LEN};
use crate::error::BoxError;
use crate::lease::{self, Lease};
use crate::storage::{AsyncStorage, BoxFuture, Storage, StorageKey};

const TEMP_PREFIX: &str = ".tmp-";
/// What an entry's lock file adds to the entry's name.
const LOCK_SUFFIX: &str = ".lock";
/// How long a change waits for an entry's lock before it fails.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// A lock file this old is a crashed process's (a change holds it for a file write).
const STALE_LOCK: Duration = Duration::from_secs(5);
/// Separates a temporary file's prefix from its random part; never in an encoded name.
const TEMP_SEPARATOR: char = '~';
/// The largest entry a file cache reads (a larger file at an entry's path is a miss).
pub const MAX_ENTRY_BYTES: u64 = 256 * 1024 * 1024;
/// Temporary files older than this are left over from a crash and are removed.
const STALE_TEMP: Duration = Duration::from_secs(60);
/// The fewest writes between two sweeps of expired entries.
pub const SWEEP_EVERY: u64 = 1024;
/// A sweep over `max_bytes` evicts down to this share of it (percent).
const LOW_WATER_PERCENT: u64 = 90;

/// One file cache: a directory, the cache's prefix, and an optional bound on its bytes.
///
/// ```
/// use cachex_core::backend::file::FileStore;
/// use cachex_core::{Key, Storage, StorageKey};
/// let dir = std::env::temp_dir().join(format!("cachex-doc-{}", std::process::id()));
/// let store = FileStore::new(&dir, "cachex:doc", None);
/// let key = StorageKey::new("cachex:doc", Key([0xab; 32]));
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
    /// The largest entry read.
    max_entry: u64,
    /// Bytes written by this process since the last sweep, added to the last measured total.
    estimate: AtomicU64,
    /// Writes by this process since the last sweep.
    writes: AtomicU64,
    /// How many writes make the next sweep: the files the last one found, at least
    /// [`SWEEP_EVERY`].
    sweep_after: AtomicU64,
    /// Whether a sweep is running (one at a time per store; the others write on).
    sweeping: AtomicBool,
}

/// Creates `dir` and its missing parents, `0700` on Unix.
fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Fails when `dir` exists and belongs to another user (who could read or replace entries),
/// or, unless the cache signs its values (`signed`), when others may write to it.
fn check_dir(dir: &Path, signed: bool) -> Result<(), BoxError> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(metadata) = fs::metadata(dir) {
            let me = rustix::process::geteuid().as_raw();
            if metadata.uid() != me {
                return Err(format!(
                    "the cache directory {} belongs to another user (uid {}, this process runs as uid {me}): \
                     that user could read or replace its entries; use a directory of your own",
                    dir.display(),
                    metadata.uid()
                )
                .into());
            }
            let mode = metadata.mode() & 0o7777;
            if mode & 0o022 != 0 && !signed {
                return Err(format!(
                    "the cache directory {} is writable by {} (mode {mode:o}): anyone who can write there \
                     could plant an entry under its predictable name, and this cache would serve it; \
                     `chmod go-w` it (cachex creates its directories 0700), or set `signing_key`",
                    dir.display(),
                    if mode & 0o002 != 0 { "every user" } else { "its group" },
                )
                .into());
            }
        }
    }
    let _ = (dir, signed);
    Ok(())
}

/// Whether a file belongs to this process's user (another user's file at an entry's path was
/// planted: a miss).
fn owned_by_me(metadata: &fs::Metadata) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::fs::MetadataExt;
        metadata.uid() == rustix::process::geteuid().as_raw()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = metadata;
        true
    }
}

/// The identity of a file (device and inode on Unix), to tell whether a path still names the
/// file a sweep examined.
fn identity(metadata: &fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (metadata.dev(), metadata.ino())
    }
    #[cfg(not(unix))]
    {
        let modified = metadata
            .modified()
            .ok()
            .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok());
        (metadata.len(), modified.map_or(0, |m| m.as_nanos() as u64))
    }
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

/// An entry's lock, held while it is changed; the lock file goes when this drops.
struct EntryLock(PathBuf);

impl Drop for EntryLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// What names an entry's bytes in a lease: their BLAKE3 digest.
fn digest(bytes: &[u8]) -> Vec<u8> {
    blake3::hash(bytes).as_bytes().to_vec()
}

/// Whether the file at `path` was last modified longer ago than `age`.
fn older_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|modified| SystemTime::now().duration_since(modified).unwrap_or_default() > age)
}

impl FileStore {
    /// A store in `dir` for the cache whose prefix is `prefix`. The directory is created now
    /// if possible, else at the first write (whose error then names the path).
    pub fn new(dir: &Path, prefix: &str, max_bytes: Option<u64>) -> Self {
        if let Err(error) = create_dir(dir) {
            tracing::warn!(path = %dir.display(), %error, "cachex file cache directory cannot be created yet");
        }
        FileStore(Arc::new(Inner {
            dir: dir.to_owned(),
            stem: encode_name(&format!("{prefix}:")),
            max_bytes,
            max_entry: max_bytes.unwrap_or(MAX_ENTRY_BYTES).clamp(1, MAX_ENTRY_BYTES),
            estimate: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            sweep_after: AtomicU64::new(SWEEP_EVERY),
            sweeping: AtomicBool::new(false),
        }))
    }

    /// Like [`FileStore::new`], and fails when the directory belongs to another user, or when
    /// others may write to it and the cache does not sign its values (`signed` = it has a
    /// `signing_key`, so a planted entry does not verify).
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use std::os::unix::fs::PermissionsExt;
    /// use cachex_core::backend::file::FileStore;
    /// let dir = std::env::temp_dir().join(format!("cachex-doc-open-{}", std::process::id()));
    /// assert!(FileStore::open(&dir, "cachex:doc", None, false).is_ok());
    /// std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    /// assert!(FileStore::open(&dir, "cachex:doc", None, false).is_err(), "others may plant entries");
    /// assert!(FileStore::open(&dir, "cachex:doc", None, true).is_ok(), "planted entries do not verify");
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn open(dir: &Path, prefix: &str, max_bytes: Option<u64>, signed: bool) -> Result<Self, BoxError> {
        let store = FileStore::new(dir, prefix, max_bytes);
        check_dir(dir, signed)?;
        Ok(store)
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

    /// Whether a directory entry is the lock file of one of this cache's entries.
    fn is_own_lock(&self, name: &str) -> bool {
        name.strip_suffix(LOCK_SUFFIX).is_some_and(|entry| self.is_own(entry))
    }

    /// Whether a directory entry is one of this cache's temporary files.
    fn is_own_temp(&self, name: &str) -> bool {
        name.strip_prefix(TEMP_PREFIX)
            .and_then(|rest| rest.split_once(TEMP_SEPARATOR))
            .is_some_and(|(stem, _)| stem == self.0.stem)
    }

    /// The bytes of the entry file at `path`, without following a symlink there, and `None`
    /// for anything but a regular file of at most `max_entry` bytes.
    fn read_entry(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let mut options = fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW | libc::O_NONBLOCK);
        let file = match options.open(path) {
            Ok(file) => file,
            #[cfg(unix)]
            Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
                tracing::warn!(path = %path.display(), "cachex file cache: a symlink at an entry's path is not followed (a miss)");
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let metadata = file.metadata()?;
        if !owned_by_me(&metadata) {
            tracing::warn!(path = %path.display(), "cachex file cache: an entry file another user owns is not read (a miss)");
            return Ok(None);
        }
        if !metadata.is_file() || metadata.len() > self.0.max_entry {
            tracing::warn!(path = %path.display(), len = metadata.len(), max = self.0.max_entry,
                "cachex file cache: not a regular file of a bounded size (a miss)");
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(metadata.len() as usize);
        file.take(self.0.max_entry + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > self.0.max_entry {
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, BoxError> {
        let path = self.path(key);
        match self.read_entry(&path) {
            Ok(None) => Ok(None),
            // Expired: a miss; the file is left to the sweep (unlinking it here could delete
            // a fresh value another process renamed into place since it was read).
            Ok(Some(bytes)) if expired(&bytes, now_millis()) => Ok(None),
            Ok(Some(bytes)) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("read", &path, error)),
        }
    }

    /// A new temporary file of this cache in its directory: a random name, `create_new`,
    /// mode `0600`.
    fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        let prefix = format!("{TEMP_PREFIX}{}{TEMP_SEPARATOR}", self.0.stem);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).rand_bytes(16);
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
        let temp = builder.tempfile_in(&self.0.dir)?;
        // The mode asked at creation passes through the umask; set it exactly.
        #[cfg(unix)]
        temp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        Ok(temp)
    }

    /// Takes the lock of the entry at `path`: waits while another change holds it (at most
    /// [`LOCK_WAIT`]), and takes over a lock file a crashed process left.
    fn lock(&self, path: &Path) -> Result<EntryLock, BoxError> {
        let mut name = path.as_os_str().to_owned();
        name.push(LOCK_SUFFIX);
        let lock = PathBuf::from(name);
        let started = std::time::Instant::now();
        let mut pause = Duration::from_micros(50);
        loop {
            match fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
                Ok(_) => return Ok(EntryLock(lock)),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    create_dir(&self.0.dir).map_err(|e| io_error("create the directory", &self.0.dir, e))?;
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    if older_than(&lock, STALE_LOCK) {
                        let _ = fs::remove_file(&lock);
                        continue;
                    }
                    if started.elapsed() > LOCK_WAIT {
                        return Err(
                            format!("{} is held by another change for over {LOCK_WAIT:?}", lock.display()).into(),
                        );
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                Err(error) => return Err(io_error("create the lock file", &lock, error)),
            }
        }
    }

    /// Writes `value` as the entry `key` under its lock; sweeps after the lock is gone.
    fn write(&self, key: &str, value: &[u8]) -> Result<(), BoxError> {
        let path = self.path(key);
        {
            let _lock = self.lock(&path)?;
            self.write_file(&path, value)?;
        }
        self.written(value.len() as u64)
    }

    /// Takes the lease of the entry `key` (see [`crate::lease`]): what a live entry holds
    /// (another computation's marker: held elsewhere), or a new marker where there is none.
    fn take_lease(&self, key: &str, lease_for: Duration) -> Result<Lease, BoxError> {
        let path = self.path(key);
        let marker = {
            let _lock = self.lock(&path)?;
            match self.read(key)? {
                Some(bytes) if lease::is_marker(&bytes) => return Ok(Lease::HeldElsewhere),
                Some(bytes) => return Ok(Lease::Held(digest(&bytes))),
                None => {
                    let marker = lease::marker(lease_for);
                    self.write_file(&path, &marker)?;
                    marker
                }
            }
        };
        self.written(marker.len() as u64)?;
        Ok(Lease::Held(digest(&marker)))
    }

    /// Writes `value` as the entry `key` if it still holds what `lease` names.
    fn fill_leased(&self, key: &str, lease: &Lease, value: &[u8]) -> Result<bool, BoxError> {
        let Lease::Held(leased) = lease else {
            return Ok(false);
        };
        let path = self.path(key);
        {
            let _lock = self.lock(&path)?;
            if self.read(key)?.is_none_or(|bytes| digest(&bytes) != *leased) {
                return Ok(false);
            }
            self.write_file(&path, value)?;
        }
        self.written(value.len() as u64)?;
        Ok(true)
    }

    /// Removes the entry `key` if it is still the marker `lease` names.
    fn release_leased(&self, key: &str, lease: &Lease) -> Result<(), BoxError> {
        let Lease::Held(leased) = lease else {
            return Ok(());
        };
        let path = self.path(key);
        let _lock = self.lock(&path)?;
        if self
            .read(key)?
            .is_some_and(|bytes| lease::is_marker(&bytes) && digest(&bytes) == *leased)
        {
            self.remove_file(&path)?;
        }
        Ok(())
    }

    /// Writes `value` at `path` (a temporary file renamed into place), its lock held.
    fn write_file(&self, path: &Path, value: &[u8]) -> Result<(), BoxError> {
        let mut temp = match self.temp_file() {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                create_dir(&self.0.dir).map_err(|e| io_error("create the directory", &self.0.dir, e))?;
                self.temp_file()
            }
            other => other,
        }
        .map_err(|e| io_error("create a temporary file in", &self.0.dir, e))?;
        temp.write_all(value).map_err(|e| io_error("write", temp.path(), e))?;
        // `rename` replaces whatever is at `path` (a planted symlink included), never writing
        // through it; on failure the temporary file is removed when `temp` drops.
        temp.persist(path).map_err(|e| io_error("rename into", path, e.error))?;
        Ok(())
    }

    /// Counts a write, and sweeps when it is time: every [`FileStore::sweep_after`] writes,
    /// or as soon as the cache's files exceed `max_bytes`.
    fn written(&self, len: u64) -> Result<(), BoxError> {
        let estimate = self.0.estimate.fetch_add(len, Ordering::Relaxed) + len;
        let writes = self.0.writes.fetch_add(1, Ordering::Relaxed) + 1;
        let over = self.0.max_bytes.is_some_and(|max_bytes| estimate > max_bytes);
        if !over && writes < self.0.sweep_after.load(Ordering::Relaxed) {
            return Ok(());
        }
        if self.0.sweeping.swap(true, Ordering::Acquire) {
            return Ok(());
        }
        let swept = self.sweep();
        self.0.sweeping.store(false, Ordering::Release);
        swept
    }

    /// One pass over the directory: removes this cache's expired entries and stale temporary
    /// files, then, over `max_bytes`, the oldest entries down to its low-water mark; measures
    /// what stays.
    pub fn sweep(&self) -> Result<(), BoxError> {
        let mut entries = Vec::new();
        let mut total = 0u64;
        let now = SystemTime::now();
        let now_ms = now_millis();
        let listing = match fs::read_dir(&self.0.dir) {
            Ok(listing) => listing,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io_error("list", &self.0.dir, error)),
        };
        self.0.writes.store(0, Ordering::Relaxed);
        for entry in listing {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(metadata) = entry.metadata() else { continue };
            let modified = metadata.modified().unwrap_or(now);
            if self.is_own_temp(name) {
                if now.duration_since(modified).unwrap_or_default() > STALE_TEMP {
                    let _ = fs::remove_file(entry.path());
                }
            } else if self.is_own(name) {
                let path = entry.path();
                if expired_file(&path, now_ms) && self.remove_examined(&path, &metadata) {
                    continue;
                }
                total += metadata.len();
                entries.push((modified, metadata, path));
            }
        }
        let files = entries.len() as u64;
        if let Some(max_bytes) = self.0.max_bytes.filter(|max_bytes| total > *max_bytes) {
            let low_water = max_bytes.saturating_mul(LOW_WATER_PERCENT) / 100;
            entries.sort_by_key(|(modified, _, _)| *modified);
            for (_, metadata, path) in &entries {
                if total <= low_water {
                    break;
                }
                if self.remove_examined(path, metadata) {
                    total -= metadata.len();
                }
            }
        }
        self.0.estimate.store(total, Ordering::Relaxed);
        self.0.sweep_after.store(files.max(SWEEP_EVERY), Ordering::Relaxed);
        Ok(())
    }

    /// Removes the file at `path` if it is still the one `examined` describes: the path is
    /// renamed aside first (atomically taking whatever is there now), and a different file
    /// found there (a write another process renamed into place since) is linked back, unless
    /// a newer one took the path meanwhile. Returns whether the examined file was removed.
    fn remove_examined(&self, path: &Path, examined: &fs::Metadata) -> bool {
        static ASIDE: AtomicU64 = AtomicU64::new(0);
        let aside = self.0.dir.join(format!(
            "{TEMP_PREFIX}{}{TEMP_SEPARATOR}sweep-{}-{}",
            self.0.stem,
            std::process::id(),
            ASIDE.fetch_add(1, Ordering::Relaxed)
        ));
        if fs::rename(path, &aside).is_err() {
            return false;
        }
        let same = fs::symlink_metadata(&aside).is_ok_and(|now| identity(&now) == identity(examined));
        if !same {
            // A fresh write: back in place, unless an even newer one is there (it wins).
            let _ = fs::hard_link(&aside, path);
        }
        let _ = fs::remove_file(&aside);
        same
    }

    /// How many writes make the next sweep (the files the last sweep found, at least
    /// [`SWEEP_EVERY`]).
    pub fn sweep_after(&self) -> u64 {
        self.0.sweep_after.load(Ordering::Relaxed)
    }

    fn remove(&self, key: &str) -> Result<(), BoxError> {
        let path = self.path(key);
        let _lock = self.lock(&path)?;
        self.remove_file(&path)
    }

    fn remove_file(&self, path: &Path) -> Result<(), BoxError> {
        match fs::remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(io_error("remove", path, error)),
            _ => Ok(()),
        }
    }

    fn remove_all(&self) -> Result<(), BoxError> {
        let listing = match fs::read_dir(&self.0.dir) {
            Ok(listing) => listing,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io_error("list", &self.0.dir, error)),
        };
        let now = SystemTime::now();
        for entry in listing {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // A temporary file younger than a minute may be a write in flight: left alone.
            let stale_temp = || {
                self.is_own_temp(name)
                    && entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|modified| now.duration_since(modified).unwrap_or_default() > STALE_TEMP)
            };
            if self.is_own(name) {
                // Under its lock, as every change: a fill checking the entry sees it go.
                let _lock = self.lock(&entry.path())?;
                self.remove_file(&entry.path())?;
            } else if stale_temp() || (self.is_own_lock(name) && older_than(&entry.path(), STALE_LOCK)) {
                self.remove_file(&entry.path())?;
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
    fn get(&self, key: &StorageKey<'_>) -> Result<Option<Vec<u8>>, BoxError> {
        let key = &key.text();
        self.read(key)
    }
    fn set(&self, key: &StorageKey<'_>, value: &[u8], _ttl: Option<Duration>) -> Result<(), BoxError> {
        let key = &key.text();
        // The expiry travels in the envelope's header, which `get` checks.
        self.write(key, value)
    }
    fn delete(&self, key: &StorageKey<'_>) -> Result<(), BoxError> {
        let key = &key.text();
        self.remove(key)
    }
    fn clear(&self) -> Result<(), BoxError> {
        self.remove_all()
    }
    fn lease(&self, key: &StorageKey<'_>, lease_for: Duration) -> Result<Lease, BoxError> {
        self.take_lease(&key.text(), lease_for)
    }
    fn fill(
        &self,
        key: &StorageKey<'_>,
        lease: &Lease,
        value: &[u8],
        _ttl: Option<Duration>,
    ) -> Result<bool, BoxError> {
        self.fill_leased(&key.text(), lease, value)
    }
    fn release(&self, key: &StorageKey<'_>, lease: &Lease) -> Result<(), BoxError> {
        self.release_leased(&key.text(), lease)
    }
}

impl AsyncStorage for FileStore {
    fn get<'a>(&'a self, key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>> {
        let key = key.text();
        Box::pin(self.off_runtime(move |store| store.read(&key)))
    }
    fn set<'a>(
        &'a self,
        key: &'a StorageKey<'a>,
        value: &'a [u8],
        _ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        let (key, value) = (key.text(), value.to_vec());
        Box::pin(self.off_runtime(move |store| store.write(&key, &value)))
    }
    fn delete<'a>(&'a self, key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<(), BoxError>> {
        let key = key.text();
        Box::pin(self.off_runtime(move |store| store.remove(&key)))
    }
    fn clear(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(self.off_runtime(|store| store.remove_all()))
    }
    fn lease<'a>(&'a self, key: &'a StorageKey<'a>, lease_for: Duration) -> BoxFuture<'a, Result<Lease, BoxError>> {
        let key = key.text();
        Box::pin(self.off_runtime(move |store| store.take_lease(&key, lease_for)))
    }
    fn fill<'a>(
        &'a self,
        key: &'a StorageKey<'a>,
        lease: &'a Lease,
        value: &'a [u8],
        _ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, BoxError>> {
        let (key, lease, value) = (key.text(), lease.clone(), value.to_vec());
        Box::pin(self.off_runtime(move |store| store.fill_leased(&key, &lease, &value)))
    }
    fn release<'a>(&'a self, key: &'a StorageKey<'a>, lease: &'a Lease) -> BoxFuture<'a, Result<(), BoxError>> {
        let (key, lease) = (key.text(), lease.clone());
        Box::pin(self.off_runtime(move |store| store.release_leased(&key, &lease)))
    }
}

/// Whether an envelope (or its header) says its entry is stored no longer at `now_ms`, or
/// the bytes are a lease's marker that has lapsed.
fn expired(bytes: &[u8], now_ms: u64) -> bool {
    header_expiry(bytes)
        .or_else(|| lease::marker_until(bytes))
        .is_some_and(|at| at != 0 && at <= now_ms)
}

/// Whether the entry file at `path` has expired at `now_ms`, by its header (a file that does
/// not read is left alone).
fn expired_file(path: &Path, now_ms: u64) -> bool {
    use std::io::Read;
    let mut header = Vec::with_capacity(HEADER_LEN);
    fs::File::open(path)
        .and_then(|file| file.take(HEADER_LEN as u64).read_to_end(&mut header))
        .is_ok_and(|_| expired(&header, now_ms))
}

/// The file backend: one file per entry under `path`, bounded by `max_bytes`.
pub const KIND: super::Kind = super::Kind {
    name: "file",
    keys: &["path", "max_bytes"],
    url_schemes: &[],
    stores_bytes: true,
    build: |spec| {
        let path = spec.path.ok_or_else(|| {
            super::SettingProblem::new(
                "path",
                "a file cache needs `path`, the directory of its entries (e.g. path = \"target/cachex/reports\")",
            )
        })?;
        let store = FileStore::open(path, spec.prefix, spec.max_bytes, spec.signed)
            .map_err(|e| super::SettingProblem::new("path", e.to_string()))?;
        Ok(super::Backend::bytes("file", store))
    },
};

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
        assert!(a.is_own_temp(".tmp-a%3A~x1y2"));
        assert!(!a.is_own_temp(".tmp-b-a%3A~x1y2"), "another prefix's temporary file");
        assert!(!a.is_own_temp(".tmp-a%3Ab%3A~x1y2"), "prefix `a:b` is not prefix `a`");
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_sweep_never_removes_a_file_written_after_it_looked() {
        let dir = std::env::temp_dir().join(format!("cachex-unit-sweep-{}", std::process::id()));
        let store = FileStore::new(&dir, "s", None);
        let key = StorageKey::new("s", crate::Key([1; 32]));
        Storage::set(&store, &key, b"old", None).unwrap();
        let path = store.path(&key.text());
        let examined = fs::symlink_metadata(&path).unwrap();
        // Another process renames a fresh value into place after the sweep examined the old.
        Storage::set(&store, &key, b"fresh", None).unwrap();
        assert!(!store.remove_examined(&path, &examined), "not the file it examined");
        assert_eq!(
            Storage::get(&store, &key).unwrap().as_deref(),
            Some(&b"fresh"[..]),
            "the fresh write stays"
        );
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "nothing left aside: {names:?}");
        // The file it examined is removed.
        let examined = fs::symlink_metadata(&path).unwrap();
        assert!(store.remove_examined(&path, &examined));
        assert_eq!(Storage::get(&store, &key).unwrap(), None);
        fs::remove_dir_all(&dir).ok();
    }
}
