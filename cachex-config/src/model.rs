//! The configuration model: what `cachex.toml` and the `CACHEX_*` environment describe, and a
//! builder for configurations made in code.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use cachex_core::redact::SecretUrl;
use cachex_core::OnError;
use serde::{Deserialize, Serialize};

/// A secret setting (a signing key): its text never appears in `Debug` output, errors or logs.
///
/// ```
/// use cachex_config::Secret;
/// let key = Secret::new("0123456789abcdef0123456789abcdef");
/// assert_eq!(format!("{key:?}"), "<redacted>");
/// assert_eq!(key.expose().len(), 32);
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself, for the code that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The storage engine of a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// In-process memory (the embedded default).
    Memory,
    /// One file per entry in a directory.
    File,
    /// Redis, standalone or cluster.
    Redis,
    /// MongoDB, one document per entry.
    Mongodb,
    /// Memcached, through a registered or built-in client.
    Memcached,
}

impl BackendKind {
    /// Every backend, in the order the docs list them.
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Memory,
        BackendKind::File,
        BackendKind::Redis,
        BackendKind::Mongodb,
        BackendKind::Memcached,
    ];

    /// The name used in configuration.
    ///
    /// ```
    /// assert_eq!(cachex_config::BackendKind::Mongodb.name(), "mongodb");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Memory => "memory",
            BackendKind::File => "file",
            BackendKind::Redis => "redis",
            BackendKind::Mongodb => "mongodb",
            BackendKind::Memcached => "memcached",
        }
    }
}

/// The whole configuration: defaults inherited by every cache, and the named caches.
///
/// ```
/// use std::time::Duration;
/// use cachex_config::{CacheConfig, Config};
///
/// let config = Config::new()
///     .defaults(CacheConfig::new().ttl(Duration::from_secs(300)))
///     .cache("fib", CacheConfig::memory().max_entries(100_000));
/// assert_eq!(config.effective("fib").unwrap().ttl, Some(Duration::from_secs(300)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Settings every cache inherits unless it sets its own.
    #[serde(default)]
    pub defaults: CacheConfig,
    /// The named caches.
    #[serde(default)]
    pub caches: BTreeMap<String, CacheConfig>,
}

impl Config {
    /// An empty configuration: with no caches, every bound name gets a memory cache.
    pub fn new() -> Self {
        Config::default()
    }

    /// Sets the defaults.
    pub fn defaults(mut self, defaults: CacheConfig) -> Self {
        self.defaults = defaults;
        self
    }

    /// Declares (or replaces) the cache `name`.
    pub fn cache(mut self, name: impl Into<String>, cache: CacheConfig) -> Self {
        self.caches.insert(name.into(), cache);
        self
    }

    /// The settings of cache `name` with the defaults filled in, if it is declared.
    pub fn effective(&self, name: &str) -> Option<CacheConfig> {
        self.caches.get(name).map(|cache| cache.over(&self.defaults))
    }
}

/// The settings of one cache (or of `[defaults]`). Every field is optional; what a cache does
/// not set comes from `[defaults]`, then from the built-in defaults.
///
/// ```
/// use cachex_config::{BackendKind, CacheConfig};
/// let cache = CacheConfig::redis("redis://127.0.0.1:6379/0").prefix("myapp:datasets");
/// assert_eq!(cache.backend, Some(BackendKind::Redis));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// The storage engine (default `memory`).
    pub backend: Option<BackendKind>,
    /// The server URL (redis, mongodb, memcached).
    pub url: Option<SecretUrl>,
    /// How long entries live; `"0s"` or absent = no expiry.
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// How long after `ttl` a call still gets the entry at once while one refresh runs
    /// (RFC 5861's `stale-while-revalidate`; needs a `ttl`).
    #[serde(default, with = "humantime_serde")]
    pub stale_while_revalidate: Option<Duration>,
    /// How long after `ttl` a failed computation (an `Err`, a `None`, a panic) returns the
    /// entry instead (RFC 5861's `stale-if-error`; needs a `ttl`).
    #[serde(default, with = "humantime_serde")]
    pub stale_if_error: Option<Duration>,
    /// What a backend failure does (default `bypass`).
    pub on_error: Option<OnError>,
    /// The namespace of the cache's entries (default `cachex:<name>`).
    pub prefix: Option<String>,
    /// At most this many entries (memory).
    pub max_entries: Option<u64>,
    /// At most this many bytes of values (memory, file).
    pub max_bytes: Option<u64>,
    /// The directory of a file cache.
    pub path: Option<PathBuf>,
    /// Per-operation timeout of a remote backend.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// How long a call waits for another call computing the same key before it computes by
    /// itself (default 30 s; from 1 ms to 1 h).
    #[serde(default, with = "humantime_serde")]
    pub lock_timeout: Option<Duration>,
    /// A PEM file of the root certificate to trust for `rediss://` (default: the built-in roots).
    pub tls_ca_file: Option<PathBuf>,
    /// The largest value a memcached server stores (its `-I`, default 1 MiB).
    pub max_item_bytes: Option<u64>,
    /// MongoDB database (default `cachex`).
    pub database: Option<String>,
    /// MongoDB collection (default the cache's name).
    pub collection: Option<String>,
    /// Argument type name (`std::any::type_name`, or as written) → encoder name.
    #[serde(default)]
    pub encoders: BTreeMap<String, String>,
    /// Signs every stored value (byte-storing backends): at least 32 bytes, normally from
    /// `CACHEX_DEFAULTS__SIGNING_KEY`. Values that do not verify are misses.
    pub signing_key: Option<Secret>,
    /// Keys still accepted on reads during a rotation (entries are then re-signed with
    /// `signing_key`).
    pub signing_key_fallbacks: Option<Vec<Secret>>,
    /// A local tier: typed values in process memory in front of a byte-storing backend (set per
    /// cache, never inherited from `[defaults]`).
    pub local: Option<LocalConfig>,
}

/// The local tier of one cache: `local = { max_entries = 10000, ttl = "30s" }`. Hits are
/// answered from process memory; on Redis every write and invalidation in any process drops
/// the entry from every other process's tier; elsewhere `ttl` alone bounds how stale a local
/// copy can be.
///
/// ```
/// use std::time::Duration;
/// use cachex_config::{CacheConfig, LocalConfig};
/// let cache = CacheConfig::redis("redis://127.0.0.1:6379/0")
///     .local(LocalConfig::new(Duration::from_secs(30)).max_entries(10_000));
/// assert_eq!(cache.local.unwrap().max_entries, Some(10_000));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// At most this many entries (10,000 when neither bound is set).
    pub max_entries: Option<u64>,
    /// At most this many bytes of values (their bincode size).
    pub max_bytes: Option<u64>,
    /// The longest a process answers from its tier (required): the bound on staleness
    /// wherever invalidations do not reach.
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
}

impl LocalConfig {
    /// A tier whose entries live at most `ttl`.
    pub fn new(ttl: Duration) -> Self {
        LocalConfig {
            ttl: Some(ttl),
            ..LocalConfig::default()
        }
    }

    /// At most `max_entries` entries.
    ///
    /// ```
    /// let local = cachex_config::LocalConfig::new(std::time::Duration::from_secs(5)).max_entries(100);
    /// assert_eq!(local.max_entries, Some(100));
    /// ```
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = Some(max_entries);
        self
    }

    /// At most `max_bytes` bytes of values.
    ///
    /// ```
    /// let local = cachex_config::LocalConfig::new(std::time::Duration::from_secs(5)).max_bytes(1 << 20);
    /// assert_eq!(local.max_bytes, Some(1 << 20));
    /// ```
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }
}

impl CacheConfig {
    /// Settings with nothing set.
    pub fn new() -> Self {
        CacheConfig::default()
    }

    /// A memory cache.
    pub fn memory() -> Self {
        CacheConfig::new().backend(BackendKind::Memory)
    }

    /// A file cache in `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        CacheConfig {
            path: Some(path.into()),
            ..CacheConfig::new().backend(BackendKind::File)
        }
    }

    /// A Redis cache at `url`.
    pub fn redis(url: &str) -> Self {
        CacheConfig::new().backend(BackendKind::Redis).url(url)
    }

    /// Sets the backend.
    pub fn backend(mut self, backend: BackendKind) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Sets the server URL.
    pub fn url(mut self, url: &str) -> Self {
        self.url = Some(SecretUrl::new(url));
        self
    }

    /// Sets the TTL.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Serves entries up to `window` past their `ttl` while one refresh runs.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = cachex_config::CacheConfig::memory()
    ///     .ttl(Duration::from_secs(60))
    ///     .stale_while_revalidate(Duration::from_secs(30));
    /// assert_eq!(cache.stale_while_revalidate, Some(Duration::from_secs(30)));
    /// ```
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.stale_while_revalidate = Some(window);
        self
    }

    /// Puts a local tier in front of the cache's backend.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cachex_config::{CacheConfig, LocalConfig};
    /// let cache = CacheConfig::file("target/cachex/reports").local(LocalConfig::new(Duration::from_secs(10)));
    /// assert_eq!(cache.local.unwrap().ttl, Some(Duration::from_secs(10)));
    /// ```
    pub fn local(mut self, local: LocalConfig) -> Self {
        self.local = Some(local);
        self
    }

    /// Returns entries up to `window` past their `ttl` when their computation fails.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = cachex_config::CacheConfig::memory()
    ///     .ttl(Duration::from_secs(60))
    ///     .stale_if_error(Duration::from_secs(600));
    /// assert_eq!(cache.stale_if_error, Some(Duration::from_secs(600)));
    /// ```
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.stale_if_error = Some(window);
        self
    }

    /// Sets what a backend failure does.
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = Some(on_error);
        self
    }

    /// Sets the key prefix.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = Some(prefix.to_owned());
        self
    }

    /// Bounds the number of entries.
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = Some(max_entries);
        self
    }

    /// Bounds the bytes of values.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// Sets the per-operation timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Signs stored values with `key`, accepting `fallbacks` on reads during a rotation.
    pub fn signing_key(mut self, key: &str, fallbacks: &[&str]) -> Self {
        self.signing_key = Some(Secret::new(key));
        self.signing_key_fallbacks = Some(fallbacks.iter().map(|key| Secret::new(*key)).collect());
        self
    }

    /// Sets how long a call waits for another call computing the same key (see
    /// [`CacheConfig::lock_timeout`](CacheConfig#structfield.lock_timeout)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = cachex_config::CacheConfig::memory().lock_timeout(Duration::from_secs(5));
    /// assert_eq!(cache.lock_timeout, Some(Duration::from_secs(5)));
    /// ```
    pub fn lock_timeout(mut self, lock_timeout: Duration) -> Self {
        self.lock_timeout = Some(lock_timeout);
        self
    }

    /// Encodes arguments of type `type_name` with the encoder `encoder`.
    pub fn encoder(mut self, type_name: &str, encoder: &str) -> Self {
        self.encoders.insert(type_name.to_owned(), encoder.to_owned());
        self
    }

    /// These settings with what they leave unset taken from `defaults`.
    pub fn over(&self, defaults: &CacheConfig) -> CacheConfig {
        let mut encoders = defaults.encoders.clone();
        encoders.extend(self.encoders.clone());
        CacheConfig {
            backend: self.backend.or(defaults.backend),
            url: self.url.clone().or_else(|| defaults.url.clone()),
            ttl: self.ttl.or(defaults.ttl),
            stale_while_revalidate: self.stale_while_revalidate.or(defaults.stale_while_revalidate),
            stale_if_error: self.stale_if_error.or(defaults.stale_if_error),
            on_error: self.on_error.or(defaults.on_error),
            prefix: self.prefix.clone(),
            max_entries: self.max_entries.or(defaults.max_entries),
            max_bytes: self.max_bytes.or(defaults.max_bytes),
            path: self.path.clone().or_else(|| defaults.path.clone()),
            timeout: self.timeout.or(defaults.timeout),
            lock_timeout: self.lock_timeout.or(defaults.lock_timeout),
            tls_ca_file: self.tls_ca_file.clone().or_else(|| defaults.tls_ca_file.clone()),
            max_item_bytes: self.max_item_bytes.or(defaults.max_item_bytes),
            database: self.database.clone().or_else(|| defaults.database.clone()),
            collection: self.collection.clone(),
            encoders,
            signing_key: self.signing_key.clone().or_else(|| defaults.signing_key.clone()),
            signing_key_fallbacks: self
                .signing_key_fallbacks
                .clone()
                .or_else(|| defaults.signing_key_fallbacks.clone()),
            local: self.local,
        }
    }
}
