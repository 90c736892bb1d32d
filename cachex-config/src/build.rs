//! Checking a loaded configuration and building the caches it describes.

use cachex_core::{
    check_cache_name, Backend, Cache, CacheSettings, Error, MemoryLimits, MemoryStore, OnError, Problem, Problems,
    Runtime,
};

use cachex_core::envelope::{SigningKeys, MIN_SIGNING_KEY_BYTES};

use crate::load::{subject, Loaded};
use crate::model::{BackendKind, CacheConfig, Secret};

const BYTE_STORING: &[BackendKind] = &[
    BackendKind::File,
    BackendKind::Redis,
    BackendKind::Mongodb,
    BackendKind::Memcached,
];

/// Keys that only some backends read; any other backend rejects them.
const BACKEND_KEYS: [(&str, &[BackendKind]); 11] = [
    (
        "url",
        &[BackendKind::Redis, BackendKind::Mongodb, BackendKind::Memcached],
    ),
    ("max_entries", &[BackendKind::Memory]),
    ("max_bytes", &[BackendKind::Memory, BackendKind::File]),
    ("path", &[BackendKind::File]),
    (
        "timeout",
        &[BackendKind::Redis, BackendKind::Mongodb, BackendKind::Memcached],
    ),
    ("tls_ca_file", &[BackendKind::Redis]),
    ("max_item_bytes", &[BackendKind::Memcached]),
    ("database", &[BackendKind::Mongodb]),
    ("collection", &[BackendKind::Mongodb]),
    ("signing_key", BYTE_STORING),
    ("signing_key_fallbacks", BYTE_STORING),
];

fn is_set(cache: &CacheConfig, key: &str) -> bool {
    match key {
        "url" => cache.url.is_some(),
        "max_entries" => cache.max_entries.is_some(),
        "max_bytes" => cache.max_bytes.is_some(),
        "path" => cache.path.is_some(),
        "timeout" => cache.timeout.is_some(),
        "tls_ca_file" => cache.tls_ca_file.is_some(),
        "max_item_bytes" => cache.max_item_bytes.is_some(),
        "database" => cache.database.is_some(),
        "collection" => cache.collection.is_some(),
        "signing_key" => cache.signing_key.is_some(),
        "signing_key_fallbacks" => cache.signing_key_fallbacks.is_some(),
        _ => false,
    }
}

struct Checker<'a> {
    loaded: &'a Loaded,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, path: &[&str], message: String) {
        let problem = Problem::new(subject(path), message);
        self.problems.push(match self.loaded.origin(path) {
            Some(origin) => problem.origin(origin),
            None => problem,
        });
    }

    fn cache(&mut self, name: &str, own: &CacheConfig, effective: &CacheConfig) {
        if let Err(problem) = check_cache_name(name) {
            let origin = self.loaded.origin(&["caches", name]);
            self.problems.push(match origin {
                Some(origin) => problem.origin(origin),
                None => problem,
            });
        }
        self.settings(&["caches", name], own, effective);
    }

    /// Checks the signing keys set at `base` (a cache, or the defaults every cache inherits).
    fn signing_keys(&mut self, base: &[&str], own: &CacheConfig) {
        let at = |key: &'static str| -> Vec<&str> {
            let mut path = base.to_vec();
            path.push(key);
            path
        };
        let fallbacks = own.signing_key_fallbacks.iter().flatten();
        let keys = own.signing_key.iter().map(|key| ("signing_key", key, String::new()));
        let keys = keys.chain(fallbacks.enumerate().map(|(i, key)| {
            (
                "signing_key_fallbacks",
                key,
                format!(" (fallback {} of the list)", i + 1),
            )
        }));
        for (setting, key, which) in keys {
            if key.expose().len() < MIN_SIGNING_KEY_BYTES {
                self.report(
                    &at(setting),
                    format!(
                        "a signing key must be at least {MIN_SIGNING_KEY_BYTES} bytes; this one{which} has {}: \
                         use a random string, e.g. the output of `head -c 32 /dev/urandom | base64`",
                        key.expose().len()
                    ),
                );
            }
        }
        if own.signing_key.is_none() && own.signing_key_fallbacks.as_ref().is_some_and(|f| !f.is_empty()) {
            self.report(
                &at("signing_key_fallbacks"),
                "fallback keys are only read next to a `signing_key`, which signs the writes: set one".into(),
            );
        }
    }

    /// Checks one cache's effective settings (or the defaults, at `base` = `["defaults"]`);
    /// `own` is what was set at `base` itself.
    fn settings(&mut self, base: &[&str], own: &CacheConfig, effective: &CacheConfig) {
        let at = |key: &'static str| -> Vec<&str> {
            let mut path = base.to_vec();
            path.push(key);
            path
        };
        let backend = effective.backend.unwrap_or(BackendKind::Memory);
        for (key, backends) in BACKEND_KEYS {
            if is_set(own, key) && !backends.contains(&backend) {
                self.report(
                    &at(key),
                    format!(
                        "`{key}` does not apply to backend `{}`; it is read by: {}",
                        backend.name(),
                        backends.iter().map(|b| b.name()).collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
        if effective.max_entries == Some(0) {
            self.report(
                &at("max_entries"),
                "must be at least 1 (leave it out for the default)".into(),
            );
        }
        if effective.max_bytes == Some(0) {
            self.report(
                &at("max_bytes"),
                "must be at least 1 (leave it out for no byte bound)".into(),
            );
        }
        if let Some(prefix) = &own.prefix {
            if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
                self.report(
                    &at("prefix"),
                    "a prefix must be non-empty and have no spaces or control characters".into(),
                );
            }
        }
        if backend == BackendKind::File && effective.path.is_none() {
            self.report(
                &at("path"),
                "a file cache needs `path`, the directory of its entries (e.g. path = \"target/cachex/reports\")"
                    .into(),
            );
        }
        let needs_url = matches!(backend, BackendKind::Redis | BackendKind::Mongodb);
        if needs_url && effective.url.is_none() {
            self.report(
                &at("url"),
                format!("a {} cache needs `url`, the server to use", backend.name()),
            );
        }
        match backend {
            kind if compiled_in(kind) => {}
            other => self.report(
                &at("backend"),
                format!(
                    "backend `{}` is not available in this build; available: {}",
                    other.name(),
                    available_backends()
                ),
            ),
        }
    }
}

/// The backends compiled into this build.
pub fn available_backends() -> String {
    BackendKind::ALL
        .iter()
        .filter(|kind| compiled_in(**kind))
        .map(|kind| kind.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn compiled_in(kind: BackendKind) -> bool {
    match kind {
        BackendKind::Memory => true,
        BackendKind::File => cfg!(feature = "file"),
        BackendKind::Redis => cfg!(feature = "redis"),
        BackendKind::Memcached => cfg!(feature = "memcached"),
        BackendKind::Mongodb => cfg!(feature = "mongodb"),
    }
}

/// Checks a configuration, reporting every problem at once.
pub fn check(loaded: &Loaded) -> Result<(), Error> {
    let mut checker = Checker {
        loaded,
        problems: Vec::new(),
    };
    let config = &loaded.config;
    if config.defaults.prefix.is_some() {
        checker.report(
            &["defaults", "prefix"],
            "a prefix is per cache (two caches with one prefix would read each other's entries); \
             set it under [caches.<name>]"
                .into(),
        );
    }
    if config.defaults.collection.is_some() {
        checker.report(
            &["defaults", "collection"],
            "a collection is per cache; set it under [caches.<name>]".into(),
        );
    }
    checker.signing_keys(&["defaults"], &config.defaults);
    for (name, own) in &config.caches {
        checker.cache(name, own, &own.over(&config.defaults));
        checker.signing_keys(&["caches", name], own);
    }
    if config.caches.is_empty() {
        // With no cache declared, the defaults alone serve every bound name.
        checker.settings(&["defaults"], &config.defaults, &config.defaults);
    }
    if checker.problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(Problems(checker.problems)))
    }
}

/// A problem with one key of cache `name`, as an error.
#[cfg(any(feature = "redis", feature = "mongodb", feature = "memcached"))]
fn key_problem(name: &str, key: &str, message: String) -> Error {
    Error::Invalid(Problems(vec![Problem::new(
        format!("cache `{name}`, key `{key}`"),
        message,
    )]))
}

/// The `url` a remote backend needs (checked before building, so missing is unlikely here).
#[cfg(any(feature = "redis", feature = "mongodb"))]
fn required_url(name: &str, backend: &str, effective: &CacheConfig) -> Result<String, Error> {
    effective
        .url
        .as_ref()
        .map(|url| url.expose().to_owned())
        .ok_or_else(|| key_problem(name, "url", format!("a {backend} cache needs `url`")))
}

/// The signing keys of cache `name` (the memory backend keeps typed values: nothing to sign).
fn signing_keys(name: &str, effective: &CacheConfig) -> Result<Option<SigningKeys>, Error> {
    let backend = effective.backend.unwrap_or(BackendKind::Memory);
    let Some(key) = effective
        .signing_key
        .as_ref()
        .filter(|_| BYTE_STORING.contains(&backend))
    else {
        return Ok(None);
    };
    let fallbacks: Vec<&str> = effective
        .signing_key_fallbacks
        .iter()
        .flatten()
        .map(Secret::expose)
        .collect();
    SigningKeys::new(key.expose(), &fallbacks).map(Some).map_err(|short| {
        let setting = if short.index == 0 {
            "signing_key"
        } else {
            "signing_key_fallbacks"
        };
        Error::Invalid(Problems(vec![Problem::new(
            format!("cache `{name}`, key `{setting}`"),
            short.to_string(),
        )]))
    })
}

/// Builds the cache `name` from its effective settings.
pub fn build_cache(name: &str, effective: &CacheConfig) -> Result<Cache, Error> {
    let settings = CacheSettings {
        name: name.to_owned(),
        prefix: effective.prefix.clone().unwrap_or_else(|| format!("cachex:{name}")),
        ttl: effective.ttl.filter(|ttl| !ttl.is_zero()),
        on_error: effective.on_error.unwrap_or(OnError::Bypass),
        encoders: effective.encoders.clone(),
        signing: signing_keys(name, effective)?,
    };
    let backend = match effective.backend.unwrap_or(BackendKind::Memory) {
        BackendKind::Memory => Backend::Memory(MemoryStore::new(&MemoryLimits {
            max_entries: effective.max_entries,
            max_bytes: effective.max_bytes,
            ttl: settings.ttl,
        })),
        #[cfg(feature = "file")]
        BackendKind::File => {
            let path = effective.path.clone().unwrap_or_default();
            Backend::bytes(
                "file",
                cachex_core::FileStore::new(&path, &settings.prefix, effective.max_bytes),
            )
        }
        #[cfg(feature = "redis")]
        BackendKind::Redis => {
            let tls_root_cert =
                match &effective.tls_ca_file {
                    Some(path) => Some(std::fs::read(path).map_err(|e| {
                        key_problem(name, "tls_ca_file", format!("cannot read {}: {e}", path.display()))
                    })?),
                    None => None,
                };
            let options = cachex_core::RedisOptions {
                url: required_url(name, "redis", effective)?,
                timeout: effective.timeout.unwrap_or(cachex_core::REDIS_DEFAULT_TIMEOUT),
                tls_root_cert,
            };
            let store = cachex_core::RedisStore::new(&options, &settings.prefix)
                .map_err(|e| key_problem(name, "url", format!("not a usable redis URL: {e}")))?;
            Backend::bytes("redis", store)
        }
        #[cfg(feature = "memcached")]
        BackendKind::Memcached => memcached_backend(name, &settings.prefix, effective)?,
        #[cfg(feature = "mongodb")]
        BackendKind::Mongodb => {
            let options = cachex_core::MongoOptions {
                url: required_url(name, "mongodb", effective)?,
                database: effective.database.clone().unwrap_or_else(|| "cachex".to_owned()),
                collection: effective.collection.clone().unwrap_or_else(|| name.to_owned()),
                timeout: effective.timeout.unwrap_or(cachex_core::MONGODB_DEFAULT_TIMEOUT),
            };
            let store = cachex_core::MongoStore::new(&options, &settings.prefix)
                .map_err(|e| key_problem(name, "url", format!("not a usable mongodb URL: {e}")))?;
            Backend::bytes("mongodb", store)
        }
        #[allow(unreachable_patterns)] // every backend is compiled in with all features
        other => {
            return Err(Error::Invalid(Problems(vec![Problem::new(
                format!("cache `{name}`, key `backend`"),
                format!(
                    "backend `{}` is not available in this build; available: {}",
                    other.name(),
                    available_backends()
                ),
            )])))
        }
    };
    Ok(Cache::new(settings, backend))
}

/// The memcached backend of cache `name`: the clients registered in code, and for a side
/// without one, the built-in adapter for `url` (when its feature is compiled in).
#[cfg(feature = "memcached")]
fn memcached_backend(name: &str, prefix: &str, effective: &CacheConfig) -> Result<Backend, Error> {
    #[allow(unused_mut)]
    let mut clients = cachex_core::memcached_registered(name);
    #[allow(unused_variables)]
    let timeout = effective.timeout.unwrap_or(std::time::Duration::from_millis(250));
    if let Some(url) = &effective.url {
        #[cfg(feature = "memcache")]
        if clients.blocking.is_none() {
            let adapter = cachex_core::MemcacheAdapter::new(url.expose(), timeout)
                .map_err(|e| key_problem(name, "url", format!("not a usable memcached URL: {e}")))?;
            clients.blocking = Some(std::sync::Arc::new(adapter));
        }
        #[cfg(feature = "async-memcached")]
        if clients.nonblocking.is_none() {
            let adapter = cachex_core::AsyncMemcachedAdapter::new(url.expose(), timeout)
                .map_err(|e| key_problem(name, "url", format!("not a usable memcached URL: {e}")))?;
            clients.nonblocking = Some(std::sync::Arc::new(adapter));
        }
        let _ = url;
    }
    let max_item_bytes = effective.max_item_bytes.map(|n| n as usize);
    let store = cachex_core::MemcachedStore::new(name, prefix, clients, max_item_bytes)
        .map_err(|message| key_problem(name, if message.contains("prefix") { "prefix" } else { "url" }, message))?;
    Ok(Backend::bytes("memcached", store))
}

/// Checks a configuration and builds its runtime: the declared caches, or, when none is
/// declared, a factory that gives every name a cache with the defaults.
pub fn build_runtime(loaded: &Loaded) -> Result<Runtime, Error> {
    check(loaded)?;
    let config = &loaded.config;
    if config.caches.is_empty() {
        let defaults = config.defaults.clone();
        return Ok(Runtime::new(
            Vec::new(),
            Some(Box::new(move |name| build_cache(name, &defaults))),
        ));
    }
    let mut caches = Vec::with_capacity(config.caches.len());
    let mut problems = Vec::new();
    for (name, own) in &config.caches {
        match build_cache(name, &own.over(&config.defaults)) {
            Ok(cache) => caches.push(cache),
            Err(Error::Invalid(Problems(found))) => problems.extend(found),
            Err(other) => problems.push(Problem::new(format!("cache `{name}`"), other.to_string())),
        }
    }
    if problems.is_empty() {
        Ok(Runtime::new(caches, None))
    } else {
        Err(Error::Invalid(Problems(problems)))
    }
}
