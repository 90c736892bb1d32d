//! The process-wide set of named caches, installed once by `init()` or, lazily, by the first
//! cached call.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use crate::backend::memory::{MemoryLimits, MemoryStore};
use crate::cache::{Cache, CacheHandle, CacheSettings};
use crate::error::{Error, Problem, Problems};
use crate::Backend;

/// Builds the cache for a name that the configuration does not declare (the embedded default:
/// with no configured caches, every name gets one).
pub type CacheFactory = Box<dyn Fn(&str) -> Result<Cache, Error> + Send + Sync>;

/// The named caches of one process.
///
/// ```
/// use cachex_core::backend::memory::{MemoryLimits, MemoryStore};
/// use cachex_core::{Backend, Cache, CacheSettings, Runtime};
/// let fib = Cache::new(CacheSettings::new("fib"), Backend::Memory(MemoryStore::new(&MemoryLimits::default())));
/// let runtime = Runtime::new(vec![fib], None);
/// assert!(runtime.cache("fib").is_ok());
/// assert!(runtime.cache("other").is_err());
/// ```
pub struct Runtime {
    caches: RwLock<HashMap<String, Arc<Cache>>>,
    factory: Option<CacheFactory>,
}

impl Runtime {
    /// A runtime with these caches; `factory` (if any) builds caches for other names on demand.
    pub fn new(caches: Vec<Cache>, factory: Option<CacheFactory>) -> Self {
        let caches = caches
            .into_iter()
            .map(|c| (c.settings.name.clone(), Arc::new(c)))
            .collect();
        Runtime {
            caches: RwLock::new(caches),
            factory,
        }
    }

    /// The embedded default with nothing configured: a memory cache with default settings for
    /// every name.
    pub fn embedded_default() -> Self {
        Runtime::new(
            Vec::new(),
            Some(Box::new(|name| {
                Ok(Cache::new(
                    CacheSettings::new(name),
                    Backend::Memory(MemoryStore::new(&MemoryLimits::default())),
                ))
            })),
        )
    }

    /// The cache named `name`, built on demand when the runtime has a factory.
    pub fn cache(&self, name: &str) -> Result<Arc<Cache>, Error> {
        if let Some(cache) = self.caches.read().unwrap_or_else(PoisonError::into_inner).get(name) {
            return Ok(Arc::clone(cache));
        }
        let Some(factory) = &self.factory else {
            return Err(Error::UnknownCache(name.to_owned()));
        };
        check_cache_name(name).map_err(|p| Error::Invalid(Problems(vec![p])))?;
        let mut caches = self.caches.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(cache) = caches.get(name) {
            return Ok(Arc::clone(cache));
        }
        let cache = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| factory(name)))
            .unwrap_or_else(|_| Err(Error::NotInitialized(format!("building cache `{name}` panicked"))))?;
        let cache = Arc::new(cache);
        caches.insert(name.to_owned(), Arc::clone(&cache));
        Ok(cache)
    }

    /// Every cache built so far.
    pub fn caches(&self) -> Vec<Arc<Cache>> {
        self.caches
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

/// Checks that a cache name is made of lowercase letters, digits and `_`.
///
/// ```
/// assert!(cachex_core::check_cache_name("user_sessions2").is_ok());
/// assert!(cachex_core::check_cache_name("User-Sessions").is_err());
/// ```
pub fn check_cache_name(name: &str) -> Result<(), Problem> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(())
    } else {
        Err(Problem::new(
            format!("cache name `{name}`"),
            "a cache name must be lowercase letters, digits and `_` (e.g. `user_sessions`), so that \
             every cache can be reached from the environment as CACHEX_CACHES__<NAME>__<KEY>",
        ))
    }
}

/// How the runtime is built when a cached function runs before `init()`; submitted by the
/// configuration crate through `inventory`.
pub struct Loader(pub fn() -> Result<Runtime, Error>);

inventory::collect!(Loader);

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Whether a runtime is installed (by `init` or by a cached call that ran first).
pub fn initialized() -> bool {
    RUNTIME.get().is_some()
}

/// Installs `runtime` as the process's runtime.
///
/// Fails with [`Error::AlreadyInitialized`] if a runtime is installed already (by an earlier
/// `init` or by a cached call that ran first).
pub fn install(runtime: Runtime) -> Result<(), Error> {
    let mut runtime = Some(runtime);
    RUNTIME.get_or_init(|| runtime.take().ok_or_else(String::new));
    match runtime {
        None => Ok(()),
        Some(_) => Err(Error::AlreadyInitialized),
    }
}

/// The process's runtime, built on first use by the registered [`Loader`] (or the embedded
/// default when none is linked). When loading failed, the error (logged once) is returned.
pub fn runtime() -> Result<&'static Runtime, &'static str> {
    RUNTIME
        .get_or_init(|| {
            let loaded = match inventory::iter::<Loader>.into_iter().next() {
                // A panic while loading (a bug; the loader reports problems as errors) must not
                // repeat on every call: it is kept like any other failure.
                Some(loader) => std::panic::catch_unwind(loader.0).unwrap_or_else(|_| {
                    Err(Error::NotInitialized(
                        "loading the configuration panicked; see the panic message above".to_owned(),
                    ))
                }),
                None => Ok(Runtime::embedded_default()),
            };
            loaded.map_err(|error| {
                tracing::error!(%error, "cachex could not initialise; cached functions run uncached");
                error.to_string()
            })
        })
        .as_ref()
        .map_err(String::as_str)
}

/// A handle on the cache named `name`, initialising cachex if needed.
///
/// ```
/// # fn main() -> Result<(), cachex_core::Error> {
/// let handle = cachex_core::cache("doc_cache")?;
/// assert_eq!(handle.name(), "doc_cache");
/// # Ok(()) }
/// ```
pub fn cache(name: &str) -> Result<CacheHandle, Error> {
    let runtime = runtime().map_err(|e| Error::NotInitialized(e.to_owned()))?;
    runtime.cache(name).map(CacheHandle)
}

/// Handles on every cache built so far (all declared caches, and on-demand ones), by name.
///
/// ```
/// # fn main() -> Result<(), cachex_core::Error> {
/// cachex_core::cache("doc_listed")?;
/// assert!(cachex_core::caches().iter().any(|c| c.name() == "doc_listed"));
/// # Ok(()) }
/// ```
pub fn caches() -> Vec<CacheHandle> {
    let mut handles: Vec<CacheHandle> = runtime()
        .map(|runtime| runtime.caches().into_iter().map(CacheHandle).collect())
        .unwrap_or_default();
    handles.sort_by(|a, b| a.name().cmp(b.name()));
    handles
}
