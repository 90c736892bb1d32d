//! The Memcached backend, written against two small client traits so users can bring their
//! own client ([`MemcachedClient`], [`AsyncMemcachedClient`]); adapters for the `memcache`
//! (blocking) and `async-memcached` (async) crates come behind their own features.
//!
//! - Keys: `prefix:generation:hexkey`, at most 250 bytes, no spaces or control characters.
//! - Clear without `flush_all`: each cache has a namespace generation stored in memcached under
//!   `prefix:gen` and folded into every key; clearing increments it, so entries of the old
//!   generation are never read again and age out. Other caches and other applications on the
//!   server are untouched. The generation is cached in-process for [`GENERATION_REFRESH`], so a
//!   clear made by another process is seen within that time (at once in the clearing process).
//! - TTLs above 30 days are sent as a Unix timestamp, as the protocol requires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::SettingProblem;
use crate::envelope::now_millis;
use crate::error::BoxError;
use crate::lease::{self, Lease};
use crate::storage::{AsyncStorage, BoxFuture, Storage, StorageKey};

#[cfg(feature = "async-memcached")]
mod async_adapter;
#[cfg(feature = "memcache")]
mod sync_adapter;

#[cfg(feature = "async-memcached")]
pub use async_adapter::AsyncMemcachedAdapter;
#[cfg(feature = "memcache")]
pub use sync_adapter::MemcacheAdapter;

/// The longest key memcached accepts.
pub const MAX_KEY_LEN: usize = 250;
/// The item size limit of a default memcached (`-I 1m`).
pub const DEFAULT_MAX_ITEM_BYTES: usize = 1024 * 1024;
/// How long a process trusts its copy of a cache's namespace generation.
pub const GENERATION_REFRESH: Duration = Duration::from_secs(1);
/// The longest relative expiry memcached accepts; longer ones must be absolute.
const THIRTY_DAYS: u64 = 30 * 24 * 3600;

/// A blocking memcached client: what the backend needs of one.
///
/// `exptime` follows the protocol: 0 = never, up to 30 days = seconds from now, above that = a
/// Unix timestamp (the backend converts TTLs, clients pass it through).
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use cachex_core::backend::memcached::MemcachedClient;
/// use cachex_core::BoxError;
///
/// /// A stand-in client over a map (a real one talks to a server).
/// #[derive(Default)]
/// struct MapClient(Mutex<HashMap<String, Vec<u8>>>);
///
/// impl MemcachedClient for MapClient {
///     fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BoxError> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     fn set(&self, key: &str, value: &[u8], _exptime: u32) -> Result<(), BoxError> {
///         self.0.lock().unwrap().insert(key.into(), value.to_vec());
///         Ok(())
///     }
///     fn add(&self, key: &str, value: &[u8], _exptime: u32) -> Result<bool, BoxError> {
///         let mut map = self.0.lock().unwrap();
///         if map.contains_key(key) { return Ok(false) }
///         map.insert(key.into(), value.to_vec());
///         Ok(true)
///     }
///     fn delete(&self, key: &str) -> Result<(), BoxError> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
///     fn increment(&self, key: &str, delta: u64) -> Result<Option<u64>, BoxError> {
///         let mut map = self.0.lock().unwrap();
///         let Some(old) = map.get(key) else { return Ok(None) };
///         let next = std::str::from_utf8(old)?.parse::<u64>()? + delta;
///         map.insert(key.into(), next.to_string().into_bytes());
///         Ok(Some(next))
///     }
/// }
/// cachex_core::backend::memcached::register("doc_sessions", MapClient::default());
/// ```
pub trait MemcachedClient: Send + Sync + 'static {
    /// The value under `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BoxError>;
    /// Stores `value` under `key` (`set`).
    fn set(&self, key: &str, value: &[u8], exptime: u32) -> Result<(), BoxError>;
    /// Stores `value` under `key` unless the key exists (`add`); whether it stored.
    fn add(&self, key: &str, value: &[u8], exptime: u32) -> Result<bool, BoxError>;
    /// Removes `key` (absent is not an error).
    fn delete(&self, key: &str) -> Result<(), BoxError>;
    /// Adds `delta` to the decimal number under `key` (`incr`); `None` when the key is absent.
    fn increment(&self, key: &str, delta: u64) -> Result<Option<u64>, BoxError>;

    /// Whether this client implements [`gets`](Self::gets) and [`cas`](Self::cas). Without
    /// them (the default, so clients written before them still compile) the backend keeps no
    /// [leases](crate::lease): a computation that an invalidation overtook may store its older
    /// value.
    fn supports_cas(&self) -> bool {
        false
    }
    /// The value under `key` with its CAS unique (`gets`).
    fn gets(&self, key: &str) -> Result<Option<WithCas>, BoxError> {
        let _ = key;
        Err(NO_CAS.into())
    }
    /// Stores `value` under `key` if its CAS unique is still `cas` (`cas`); whether it stored
    /// (`false` also when the key is gone).
    fn cas(&self, key: &str, value: &[u8], exptime: u32, cas: u64) -> Result<bool, BoxError> {
        let _ = (key, value, exptime, cas);
        Err(NO_CAS.into())
    }
}

/// A value and its CAS unique, as `gets` answers.
pub type WithCas = (Vec<u8>, u64);

/// What the default `gets` and `cas` of a client answer.
const NO_CAS: &str = "this memcached client does not implement gets and cas";

/// The async counterpart of [`MemcachedClient`], with the same contract.
pub trait AsyncMemcachedClient: Send + Sync + 'static {
    /// The value under `key`.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>>;
    /// Stores `value` under `key` (`set`).
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], exptime: u32) -> BoxFuture<'a, Result<(), BoxError>>;
    /// Stores `value` under `key` unless the key exists (`add`); whether it stored.
    fn add<'a>(&'a self, key: &'a str, value: &'a [u8], exptime: u32) -> BoxFuture<'a, Result<bool, BoxError>>;
    /// Removes `key` (absent is not an error).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BoxError>>;
    /// Adds `delta` to the decimal number under `key` (`incr`); `None` when the key is absent.
    fn increment<'a>(&'a self, key: &'a str, delta: u64) -> BoxFuture<'a, Result<Option<u64>, BoxError>>;

    /// [`MemcachedClient::supports_cas`].
    fn supports_cas(&self) -> bool {
        false
    }
    /// [`MemcachedClient::gets`].
    fn gets<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<WithCas>, BoxError>> {
        let _ = key;
        Box::pin(async { Err(NO_CAS.into()) })
    }
    /// [`MemcachedClient::cas`].
    fn cas<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        exptime: u32,
        cas: u64,
    ) -> BoxFuture<'a, Result<bool, BoxError>> {
        let _ = (key, value, exptime, cas);
        Box::pin(async { Err(NO_CAS.into()) })
    }
}

/// The clients registered in code, by cache name.
#[derive(Default, Clone)]
pub struct Registered {
    /// The blocking client.
    pub blocking: Option<Arc<dyn MemcachedClient>>,
    /// The async client.
    pub nonblocking: Option<Arc<dyn AsyncMemcachedClient>>,
}

static REGISTERED: Mutex<Option<HashMap<String, Registered>>> = Mutex::new(None);

fn with_registry<T>(f: impl FnOnce(&mut HashMap<String, Registered>) -> T) -> T {
    let mut guard = REGISTERED.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.get_or_insert_with(HashMap::new))
}

/// Registers a blocking client for the memcached cache `cache`; call it before `init()`.
pub fn register(cache: &str, client: impl MemcachedClient) {
    with_registry(|r| r.entry(cache.to_owned()).or_default().blocking = Some(Arc::new(client)));
}

/// Registers an async client for the memcached cache `cache`; call it before `init()`.
pub fn register_async(cache: &str, client: impl AsyncMemcachedClient) {
    with_registry(|r| r.entry(cache.to_owned()).or_default().nonblocking = Some(Arc::new(client)));
}

/// The clients registered for `cache`.
pub fn registered(cache: &str) -> Registered {
    with_registry(|r| r.get(cache).cloned().unwrap_or_default())
}

/// The protocol's `exptime` for a TTL: seconds up to 30 days, a Unix timestamp beyond.
///
/// ```
/// use std::time::Duration;
/// use cachex_core::backend::memcached::exptime as memcached_exptime;
/// assert_eq!(memcached_exptime(None), 0);
/// assert_eq!(memcached_exptime(Some(Duration::from_secs(60))), 60);
/// assert!(memcached_exptime(Some(Duration::from_secs(40 * 86_400))) > 1_700_000_000);
/// ```
pub fn exptime(ttl: Option<Duration>) -> u32 {
    match ttl.filter(|t| !t.is_zero()) {
        None => 0,
        Some(ttl) => {
            // Round up: a TTL below a second must not become "never".
            let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
            if secs <= THIRTY_DAYS {
                secs as u32
            } else {
                (now_millis() / 1000 + secs).min(u64::from(u32::MAX)) as u32
            }
        }
    }
}

/// Checks a prefix against memcached's key rules; the error says why.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    // prefix ':' generation (at most 20 digits) ':' 64 hex digits
    let longest = prefix.len() + 1 + 20 + 1 + 64;
    if longest > MAX_KEY_LEN {
        return Err(format!(
            "memcached keys are at most {MAX_KEY_LEN} bytes; with this prefix ({} bytes) keys reach {longest}: \
             use a prefix of at most {} bytes",
            prefix.len(),
            MAX_KEY_LEN - 86
        ));
    }
    if prefix.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("memcached keys cannot contain spaces or control characters".into());
    }
    Ok(())
}

/// The per-operation timeout of the built-in adapters when the configuration sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// The memcached backend: the clients registered for the cache in code, and for a side
/// without one the built-in adapter for `url` (features `memcache`, `async-memcached`);
/// `timeout` and `max_item_bytes`.
pub const KIND: super::Kind = super::Kind {
    name: "memcached",
    keys: &["url", "timeout", "max_item_bytes"],
    url_schemes: &["memcached", "memcache"],
    stores_bytes: true,
    build,
};

fn build(spec: &super::Spec<'_>) -> Result<super::Backend, SettingProblem> {
    #[allow(unused_mut)]
    let mut clients = registered(spec.name);
    #[cfg(any(feature = "memcache", feature = "async-memcached"))]
    if let Some(url) = spec.url {
        let timeout = spec.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let unusable = |e: BoxError| SettingProblem::new("url", format!("not a usable memcached URL: {e}"));
        #[cfg(feature = "memcache")]
        if clients.blocking.is_none() {
            clients.blocking = Some(Arc::new(MemcacheAdapter::new(url, timeout).map_err(unusable)?));
        }
        #[cfg(feature = "async-memcached")]
        if clients.nonblocking.is_none() {
            clients.nonblocking = Some(Arc::new(AsyncMemcachedAdapter::new(url, timeout).map_err(unusable)?));
        }
    }
    let max_item_bytes = spec.max_item_bytes.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let store = MemcachedStore::new(spec.name, spec.prefix, clients, max_item_bytes)?;
    Ok(super::Backend::bytes("memcached", store))
}

/// The `host:port` of a `memcached://host:port` (or `memcache://`) URL, for the adapters.
#[cfg(any(feature = "memcache", feature = "async-memcached"))]
fn server_address(url: &str) -> Result<&str, BoxError> {
    let address = url
        .strip_prefix("memcached://")
        .or_else(|| url.strip_prefix("memcache://"))
        .ok_or("a memcached URL starts with memcached://")?;
    Ok(address.split(['/', '?']).next().unwrap_or(address))
}

/// Where a cache's namespace generation comes from.
struct Generation {
    key: String,
    current: RwLock<Option<(u64, Instant)>>,
}

impl Generation {
    fn cached(&self) -> Option<u64> {
        let current = *self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .filter(|(_, at)| at.elapsed() < GENERATION_REFRESH)
            .map(|(g, _)| g)
    }

    fn remember(&self, generation: u64) -> u64 {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some((generation, Instant::now()));
        generation
    }

    /// A fresh generation never used before: the current time in milliseconds, so a
    /// generation key that was evicted never brings back entries of an earlier one.
    fn seed() -> String {
        now_millis().to_string()
    }
}

fn parse_generation(bytes: &[u8]) -> Result<u64, BoxError> {
    Ok(std::str::from_utf8(bytes)?.trim().parse::<u64>()?)
}

/// One memcached cache: its clients, prefix, generation and item size limit.
#[derive(Clone)]
pub struct MemcachedStore {
    blocking: Option<Arc<dyn MemcachedClient>>,
    nonblocking: Option<Arc<dyn AsyncMemcachedClient>>,
    generation: Arc<Generation>,
    max_item_bytes: usize,
}

impl MemcachedStore {
    /// A store over these clients (a missing side answers with an error saying so); a problem
    /// names the setting at fault (`prefix`, or `url` when there is no client at all).
    pub fn new(
        cache: &str,
        prefix: &str,
        clients: Registered,
        max_item_bytes: Option<usize>,
    ) -> Result<Self, SettingProblem> {
        check_prefix(prefix).map_err(|message| SettingProblem::new("prefix", message))?;
        if clients.blocking.is_none() && clients.nonblocking.is_none() {
            return Err(SettingProblem::new(
                "url",
                format!(
                    "no memcached client for cache `{cache}`: register one with cachex::memcached::register(\"{cache}\", client) \
                     (or register_async) before init(), or set `url` to use a built-in adapter"
                ),
            ));
        }
        Ok(MemcachedStore {
            blocking: clients.blocking,
            nonblocking: clients.nonblocking,
            generation: Arc::new(Generation {
                key: format!("{prefix}:gen"),
                current: RwLock::new(None),
            }),
            max_item_bytes: max_item_bytes.unwrap_or(DEFAULT_MAX_ITEM_BYTES),
        })
    }

    fn blocking(&self) -> Result<&dyn MemcachedClient, BoxError> {
        self.blocking.as_deref().ok_or_else(|| {
            "no blocking memcached client: register one with cachex::memcached::register, or set `url`".into()
        })
    }

    fn nonblocking(&self) -> Result<&dyn AsyncMemcachedClient, BoxError> {
        self.nonblocking.as_deref().ok_or_else(|| {
            "no async memcached client: register one with cachex::memcached::register_async, or set `url`".into()
        })
    }

    /// The entry's key on the server: `prefix:generation:hex`.
    fn namespaced(&self, key: &StorageKey<'_>, generation: u64) -> String {
        let mut out = format!("{}:{generation}:", key.prefix);
        key.digest.push_hex(&mut out);
        out
    }

    fn check_size(&self, value: &[u8]) -> Result<(), BoxError> {
        if value.len() > self.max_item_bytes {
            return Err(format!(
                "a value of {} bytes exceeds the memcached item size limit of {} bytes (memcached -I, \
                 `max_item_bytes` in the configuration); it was not stored",
                value.len(),
                self.max_item_bytes
            )
            .into());
        }
        Ok(())
    }

    fn current_generation(&self) -> Result<u64, BoxError> {
        if let Some(generation) = self.generation.cached() {
            return Ok(generation);
        }
        let client = self.blocking()?;
        if let Some(bytes) = client.get(&self.generation.key)? {
            return Ok(self.generation.remember(parse_generation(&bytes)?));
        }
        client.add(&self.generation.key, Generation::seed().as_bytes(), 0)?;
        let bytes = client
            .get(&self.generation.key)?
            .ok_or("the namespace generation was evicted at once")?;
        Ok(self.generation.remember(parse_generation(&bytes)?))
    }

    async fn current_generation_async(&self) -> Result<u64, BoxError> {
        if let Some(generation) = self.generation.cached() {
            return Ok(generation);
        }
        let client = self.nonblocking()?;
        if let Some(bytes) = client.get(&self.generation.key).await? {
            return Ok(self.generation.remember(parse_generation(&bytes)?));
        }
        client
            .add(&self.generation.key, Generation::seed().as_bytes(), 0)
            .await?;
        let bytes = client
            .get(&self.generation.key)
            .await?
            .ok_or("the namespace generation was evicted at once")?;
        Ok(self.generation.remember(parse_generation(&bytes)?))
    }

    fn bump(&self, incremented: Option<u64>) -> Option<u64> {
        incremented.map(|generation| self.generation.remember(generation))
    }
}

/// A memcached lease's bytes: the generation of the namespace it was taken in (the fill writes
/// there, whatever a clear did since), then either the marker it added or the CAS unique of
/// the value it found.
enum Token<'a> {
    Marker(u64, &'a [u8]),
    Unique(u64, u64),
}

impl Token<'_> {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + lease::MARKER_LEN);
        match self {
            Token::Marker(generation, marker) => {
                out.extend_from_slice(&generation.to_le_bytes());
                out.push(b'm');
                out.extend_from_slice(marker);
            }
            Token::Unique(generation, cas) => {
                out.extend_from_slice(&generation.to_le_bytes());
                out.push(b'c');
                out.extend_from_slice(&cas.to_le_bytes());
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Token<'_>> {
        let generation = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        match (bytes.get(8)?, &bytes[9..]) {
            (b'm', marker) => Some(Token::Marker(generation, marker)),
            (b'c', cas) => Some(Token::Unique(generation, u64::from_le_bytes(cas.try_into().ok()?))),
            _ => None,
        }
    }
}

/// The lease a `gets` after a failed `add` gives: another's marker, or the value's unique.
fn found_lease(generation: u64, found: Option<WithCas>) -> Lease {
    match found {
        Some((bytes, cas)) if !lease::is_marker(&bytes) => Lease::Held(Token::Unique(generation, cas).encode()),
        // Another computation's marker; or the entry went in between, and the next miss leases it.
        _ => Lease::HeldElsewhere,
    }
}

impl MemcachedStore {
    /// The key a fill under `lease` writes (in the lease's generation) and what the lease
    /// expects there; `None`: it does not write.
    fn fill_target<'l>(&self, key: &StorageKey<'_>, lease: &'l Lease) -> Option<(String, Token<'l>)> {
        let Lease::Held(bytes) = lease else {
            return None;
        };
        let token = Token::decode(bytes)?;
        let generation = match token {
            Token::Marker(generation, _) | Token::Unique(generation, _) => generation,
        };
        Some((self.namespaced(key, generation), token))
    }
}

impl Storage for MemcachedStore {
    fn get(&self, key: &StorageKey<'_>) -> Result<Option<Vec<u8>>, BoxError> {
        let generation = self.current_generation()?;
        self.blocking()?.get(&self.namespaced(key, generation))
    }
    fn set(&self, key: &StorageKey<'_>, value: &[u8], ttl: Option<Duration>) -> Result<(), BoxError> {
        self.check_size(value)?;
        let generation = self.current_generation()?;
        self.blocking()?
            .set(&self.namespaced(key, generation), value, exptime(ttl))
    }
    fn delete(&self, key: &StorageKey<'_>) -> Result<(), BoxError> {
        let generation = self.current_generation()?;
        self.blocking()?.delete(&self.namespaced(key, generation))
    }
    fn clear(&self) -> Result<(), BoxError> {
        let client = self.blocking()?;
        if self.bump(client.increment(&self.generation.key, 1)?).is_none() {
            // No generation stored: start a new one (entries of any earlier one stay unread).
            let _ = client.add(&self.generation.key, Generation::seed().as_bytes(), 0)?;
            *self.generation.current.write().unwrap_or_else(PoisonError::into_inner) = None;
        }
        Ok(())
    }
    fn lease(&self, key: &StorageKey<'_>, lease_for: Duration) -> Result<Lease, BoxError> {
        let client = self.blocking()?;
        if !client.supports_cas() {
            return Ok(Lease::Unguarded);
        }
        let generation = self.current_generation()?;
        let name = self.namespaced(key, generation);
        let marker = lease::marker(lease_for);
        if client.add(&name, &marker, exptime(Some(lease_for)))? {
            return Ok(Lease::Held(Token::Marker(generation, &marker).encode()));
        }
        Ok(found_lease(generation, client.gets(&name)?))
    }
    fn fill(&self, key: &StorageKey<'_>, lease: &Lease, value: &[u8], ttl: Option<Duration>) -> Result<bool, BoxError> {
        if matches!(lease, Lease::Unguarded) {
            return Storage::set(self, key, value, ttl).map(|()| true);
        }
        self.check_size(value)?;
        let client = self.blocking()?;
        let Some((name, token)) = self.fill_target(key, lease) else {
            return Ok(false);
        };
        let cas = match token {
            Token::Unique(_, cas) => cas,
            Token::Marker(_, marker) => match client.gets(&name)? {
                Some((bytes, cas)) if bytes == marker => cas,
                _ => return Ok(false),
            },
        };
        client.cas(&name, value, exptime(ttl), cas)
    }
    fn release(&self, key: &StorageKey<'_>, lease: &Lease) -> Result<(), BoxError> {
        let client = self.blocking()?;
        if let Some((name, Token::Marker(_, marker))) = self.fill_target(key, lease) {
            // Not atomic: at worst a newer entry goes too, a miss (never a wrong value).
            if client.gets(&name)?.is_some_and(|(bytes, _)| bytes == marker) {
                client.delete(&name)?;
            }
        }
        Ok(())
    }
}

impl AsyncStorage for MemcachedStore {
    fn get<'a>(&'a self, key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>> {
        Box::pin(async move {
            let generation = self.current_generation_async().await?;
            self.nonblocking()?.get(&self.namespaced(key, generation)).await
        })
    }
    fn set<'a>(
        &'a self,
        key: &'a StorageKey<'a>,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.check_size(value)?;
            let generation = self.current_generation_async().await?;
            self.nonblocking()?
                .set(&self.namespaced(key, generation), value, exptime(ttl))
                .await
        })
    }
    fn delete<'a>(&'a self, key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let generation = self.current_generation_async().await?;
            self.nonblocking()?.delete(&self.namespaced(key, generation)).await
        })
    }
    fn clear(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            let client = self.nonblocking()?;
            if self.bump(client.increment(&self.generation.key, 1).await?).is_none() {
                let _ = client
                    .add(&self.generation.key, Generation::seed().as_bytes(), 0)
                    .await?;
                *self.generation.current.write().unwrap_or_else(PoisonError::into_inner) = None;
            }
            Ok(())
        })
    }
    fn lease<'a>(&'a self, key: &'a StorageKey<'a>, lease_for: Duration) -> BoxFuture<'a, Result<Lease, BoxError>> {
        Box::pin(async move {
            let client = self.nonblocking()?;
            if !client.supports_cas() {
                return Ok(Lease::Unguarded);
            }
            let generation = self.current_generation_async().await?;
            let name = self.namespaced(key, generation);
            let marker = lease::marker(lease_for);
            if client.add(&name, &marker, exptime(Some(lease_for))).await? {
                return Ok(Lease::Held(Token::Marker(generation, &marker).encode()));
            }
            Ok(found_lease(generation, client.gets(&name).await?))
        })
    }
    fn fill<'a>(
        &'a self,
        key: &'a StorageKey<'a>,
        lease: &'a Lease,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, BoxError>> {
        Box::pin(async move {
            if matches!(lease, Lease::Unguarded) {
                return AsyncStorage::set(self, key, value, ttl).await.map(|()| true);
            }
            self.check_size(value)?;
            let client = self.nonblocking()?;
            let Some((name, token)) = self.fill_target(key, lease) else {
                return Ok(false);
            };
            let cas = match token {
                Token::Unique(_, cas) => cas,
                Token::Marker(_, marker) => match client.gets(&name).await? {
                    Some((bytes, cas)) if bytes == marker => cas,
                    _ => return Ok(false),
                },
            };
            client.cas(&name, value, exptime(ttl), cas).await
        })
    }
    fn release<'a>(&'a self, key: &'a StorageKey<'a>, lease: &'a Lease) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let client = self.nonblocking()?;
            if let Some((name, Token::Marker(_, marker))) = self.fill_target(key, lease) {
                if client.gets(&name).await?.is_some_and(|(bytes, _)| bytes == marker) {
                    client.delete(&name).await?;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ttls_become_timestamps() {
        assert_eq!(exptime(Some(Duration::from_millis(300))), 1);
        assert_eq!(exptime(Some(Duration::from_secs(THIRTY_DAYS))), THIRTY_DAYS as u32);
        let now = now_millis() / 1000;
        let far = u64::from(exptime(Some(Duration::from_secs(THIRTY_DAYS + 1))));
        assert!(far >= now + THIRTY_DAYS && far <= now + THIRTY_DAYS + 5, "{far}");
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("cachex:sessions").is_ok());
        assert!(check_prefix(&"p".repeat(164)).is_ok());
        assert!(check_prefix(&"p".repeat(165)).is_err());
        assert!(check_prefix("has space").is_err());
    }
}
