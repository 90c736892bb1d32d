//! The storage engines, one module each: its options, its defaults, its build and its docs.
//! The memory backend keeps typed values; every other backend stores the
//! [envelope](crate::envelope) through the [`Storage`] and [`AsyncStorage`] traits.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::coherence::Invalidations;
use crate::stale::StaleWindows;
use crate::storage::{AsyncStorage, Storage};
use memory::MemoryStore;

#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub mod file;
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub mod memcached;
pub mod memory;
#[cfg(feature = "mongodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub mod mongodb;
#[cfg(any(feature = "redis", feature = "async-memcached"))]
mod per_runtime;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

/// The storage behind one cache.
pub enum Backend {
    /// Typed values in process memory.
    Memory(MemoryStore),
    /// Enveloped bytes in an engine with a blocking and an async side.
    Bytes {
        /// The backend kind, for messages and stats (`file`, `redis`, ...).
        kind: &'static str,
        /// The blocking side.
        blocking: Arc<dyn Storage>,
        /// The async side.
        nonblocking: Arc<dyn AsyncStorage>,
        /// The channel that keeps local tiers coherent across processes, if the engine has one.
        invalidations: Option<Arc<dyn Invalidations>>,
    },
}

impl Backend {
    /// A byte-storing backend over one store that has both sides.
    pub fn bytes<S: Storage + AsyncStorage + Clone>(kind: &'static str, store: S) -> Backend {
        Backend::Bytes {
            kind,
            blocking: Arc::new(store.clone()),
            nonblocking: Arc::new(store),
            invalidations: None,
        }
    }

    /// This backend with `channel` for the invalidations that keep local tiers coherent (a
    /// memory backend is returned as it is: it has no local tier).
    ///
    /// ```
    /// use std::sync::Weak;
    /// use cachex_core::coherence::{InvalidationListener, Invalidations};
    /// use cachex_core::{Backend, BoxError, BoxFuture};
    /// # #[derive(Clone)]
    /// # struct Nothing;
    /// # impl cachex_core::Storage for Nothing {
    /// #     fn get(&self, _: &cachex_core::StorageKey<'_>) -> Result<Option<Vec<u8>>, BoxError> { Ok(None) }
    /// #     fn set(&self, _: &cachex_core::StorageKey<'_>, _: &[u8], _: Option<std::time::Duration>) -> Result<(), BoxError> { Ok(()) }
    /// #     fn delete(&self, _: &cachex_core::StorageKey<'_>) -> Result<(), BoxError> { Ok(()) }
    /// #     fn clear(&self) -> Result<(), BoxError> { Ok(()) }
    /// # }
    /// # impl cachex_core::AsyncStorage for Nothing {
    /// #     fn get<'a>(&'a self, _: &'a cachex_core::StorageKey<'a>) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>> { Box::pin(async { Ok(None) }) }
    /// #     fn set<'a>(&'a self, _: &'a cachex_core::StorageKey<'a>, _: &'a [u8], _: Option<std::time::Duration>) -> BoxFuture<'a, Result<(), BoxError>> { Box::pin(async { Ok(()) }) }
    /// #     fn delete<'a>(&'a self, _: &'a cachex_core::StorageKey<'a>) -> BoxFuture<'a, Result<(), BoxError>> { Box::pin(async { Ok(()) }) }
    /// #     fn clear(&self) -> BoxFuture<'_, Result<(), BoxError>> { Box::pin(async { Ok(()) }) }
    /// # }
    ///
    /// /// A channel that reaches no other process.
    /// struct Alone;
    ///
    /// impl Invalidations for Alone {
    ///     fn publish(&self, _message: &[u8]) -> Result<(), BoxError> {
    ///         Ok(())
    ///     }
    ///     fn publish_async<'a>(&'a self, _message: &'a [u8]) -> BoxFuture<'a, Result<(), BoxError>> {
    ///         Box::pin(async { Ok(()) })
    ///     }
    ///     fn subscribe(&self, listener: Weak<dyn InvalidationListener>) {
    ///         if let Some(listener) = listener.upgrade() {
    ///             listener.connected();
    ///         }
    ///     }
    /// }
    ///
    /// let backend = Backend::bytes("mine", Nothing).with_invalidations(Alone);
    /// assert!(matches!(backend, Backend::Bytes { invalidations: Some(_), .. }));
    /// ```
    pub fn with_invalidations(self, channel: impl Invalidations) -> Backend {
        match self {
            Backend::Bytes {
                kind,
                blocking,
                nonblocking,
                ..
            } => Backend::Bytes {
                kind,
                blocking,
                nonblocking,
                invalidations: Some(Arc::new(channel)),
            },
            memory => memory,
        }
    }

    /// The backend kind: `memory`, `file`, `redis`, `mongodb` or `memcached`.
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Memory(_) => "memory",
            Backend::Bytes { kind, .. } => kind,
        }
    }
}

/// Whether the caller runs inside a tokio runtime, which the async sides of the network
/// backends need (their timeouts are tokio timers; without a runtime they would panic).
///
/// `Handle::try_current` answers, but it clones the runtime's handle, an atomic count that
/// every worker thread writes: asked on every Redis hit, its decrement was the hottest
/// instruction of cachex's own Redis code in a profile. So inside a task it is asked once per
/// task: a small table per thread keeps the ids of the tasks it said yes for. (A task id alone proves nothing: a `LocalSet` can be
/// driven by another executor, outside any runtime.)
#[cfg(any(feature = "redis", feature = "mongodb", feature = "async-memcached"))]
pub(crate) fn in_tokio_runtime() -> bool {
    use std::cell::Cell;
    use std::hash::BuildHasher;

    const SLOTS: usize = 64;
    thread_local! {
        static VERIFIED: [Cell<Option<tokio::task::Id>>; SLOTS] = const { [const { Cell::new(None) }; SLOTS] };
    }
    let in_runtime = || tokio::runtime::Handle::try_current().is_ok();
    let Some(task) = tokio::task::try_id() else {
        return in_runtime();
    };
    let slot = crate::passthrough::PassThrough.hash_one(task) as usize % SLOTS;
    VERIFIED
        .try_with(|verified| {
            if verified[slot].get() == Some(task) {
                return true;
            }
            let yes = in_runtime();
            if yes {
                verified[slot].set(Some(task));
            }
            yes
        })
        .unwrap_or_else(|_| in_runtime())
}

/// What building one cache's backend reads: the cache, and the settings backends read (each
/// backend reads the ones in its [`Kind::keys`]; the configuration checked the rest away).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Spec<'a> {
    /// The cache's name.
    pub name: &'a str,
    /// The namespace of its entries.
    pub prefix: &'a str,
    /// How long its entries are fresh (`None` = forever).
    pub ttl: Option<Duration>,
    /// Its stale windows: entries are kept [`StaleWindows::kept`] longer than `ttl`.
    pub stale: StaleWindows,
    /// The server URL (password included: for the client only).
    pub url: Option<&'a str>,
    /// The per-operation timeout.
    pub timeout: Option<Duration>,
    /// At most this many entries.
    pub max_entries: Option<u64>,
    /// At most this many bytes of values.
    pub max_bytes: Option<u64>,
    /// The directory of a file cache.
    pub path: Option<&'a Path>,
    /// A PEM file of the root certificate to trust for TLS.
    pub tls_ca_file: Option<&'a Path>,
    /// The largest value the server stores.
    pub max_item_bytes: Option<u64>,
    /// The database.
    pub database: Option<&'a str>,
    /// The collection.
    pub collection: Option<&'a str>,
    /// Whether the cache signs its values (`signing_key`): a forged entry is then a miss.
    pub signed: bool,
}

impl<'a> Spec<'a> {
    /// A spec for cache `name` whose entries live under `prefix`, with nothing else set.
    ///
    /// ```
    /// let spec = cachex_core::backend::Spec::new("fib", "cachex:fib");
    /// assert_eq!(spec.ttl, None);
    /// ```
    pub fn new(name: &'a str, prefix: &'a str) -> Spec<'a> {
        Spec {
            name,
            prefix,
            ttl: None,
            stale: StaleWindows::default(),
            url: None,
            timeout: None,
            max_entries: None,
            max_bytes: None,
            path: None,
            tls_ca_file: None,
            max_item_bytes: None,
            database: None,
            collection: None,
            signed: false,
        }
    }

    /// The URL, which the backend's kind requires (its `url` problem otherwise).
    #[cfg(any(feature = "redis", feature = "mongodb"))]
    pub(crate) fn required_url(&self, backend: &str) -> Result<&'a str, SettingProblem> {
        self.url
            .ok_or_else(|| SettingProblem::new("url", format!("a {backend} cache needs `url`, the server to use")))
    }
}

/// A problem with one setting of a backend: the key, and what is wrong in the user's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    /// The setting (`url`, `path`, `prefix`, ...).
    pub key: &'static str,
    /// What is wrong, and how to fix it.
    pub message: String,
}

impl SettingProblem {
    /// A problem with `key`.
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        SettingProblem {
            key,
            message: message.into(),
        }
    }
}

/// One backend: its name in configuration, the settings it reads, the URL schemes it accepts,
/// and how it is built. [`KINDS`] lists those compiled in.
#[derive(Clone, Copy)]
pub struct Kind {
    /// The name in configuration (`backend = "redis"`).
    pub name: &'static str,
    /// The settings it reads besides every cache's own (`ttl`, `prefix`, ...).
    pub keys: &'static [&'static str],
    /// The URL schemes it accepts (none: it reads no URL).
    pub url_schemes: &'static [&'static str],
    /// Whether it stores the envelope's bytes (so signing applies), rather than typed values.
    pub stores_bytes: bool,
    /// Builds the backend of one cache; a problem names the setting at fault.
    pub build: fn(&Spec<'_>) -> Result<Backend, SettingProblem>,
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kind")
            .field("name", &self.name)
            .field("keys", &self.keys)
            .finish()
    }
}

/// Every backend compiled into this build (a backend is one module and one line here).
pub const KINDS: &[Kind] = &[
    memory::KIND,
    #[cfg(feature = "file")]
    file::KIND,
    #[cfg(feature = "redis")]
    redis::KIND,
    #[cfg(feature = "mongodb")]
    mongodb::KIND,
    #[cfg(feature = "memcached")]
    memcached::KIND,
];

/// The backend named `name`, if it is compiled in.
///
/// ```
/// let memory = cachex_core::backend::kind("memory").unwrap();
/// assert!(memory.keys.contains(&"max_entries"));
/// assert!(cachex_core::backend::kind("sqlite").is_none());
/// ```
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|kind| kind.name == name)
}
