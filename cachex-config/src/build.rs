//! Checking a loaded configuration and building the caches it describes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use cachex_core::{
    check_cache_name, Cache, CacheSettings, Error, OnError, Problem, Problems, Runtime, StaleWindows,
    DEFAULT_LOCK_TIMEOUT,
};

use cachex_core::backend::{Kind, Spec, KINDS};
use cachex_core::envelope::{SigningKeys, MIN_SIGNING_KEY_BYTES};
use cachex_core::local::LocalSettings;
use cachex_core::redact::{hostless_password_in, redact_url};

use crate::load::{subject, Loaded};
use crate::model::{BackendKind, CacheConfig, Config, LocalConfig, Secret};
use crate::prefixes::{location, Location};

/// The accepted range of `timeout`: 1 ms to 10 min.
pub const TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(600));
/// The accepted range of `lock_timeout`: 1 ms to 1 h.
pub const LOCK_TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(3600));
/// The longest accepted `ttl`: 100 years (`"0s"` means no expiry).
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn show(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// What is wrong with a duration `key` set to `value`, if anything.
fn duration_problem(key: &str, value: Duration) -> Option<String> {
    let (min, max) = match key {
        "timeout" => TIMEOUT_RANGE,
        "lock_timeout" => LOCK_TIMEOUT_RANGE,
        _ => (Duration::ZERO, MAX_TTL),
    };
    (value < min || value > max).then(|| {
        let accepted = if key == "ttl" {
            format!("from 0s (no expiry) to {}", show(max))
        } else if key.starts_with("stale_") {
            format!("from 0s (off) to {}", show(max))
        } else {
            format!("from {} to {}", show(min), show(max))
        };
        format!("`{}` is out of range; accepted: {accepted}", show(value))
    })
}

/// The URL schemes a backend reads (none when it is not compiled in or reads no URL).
fn schemes(backend: BackendKind) -> &'static [&'static str] {
    cachex_core::backend::kind(backend.name()).map_or(&[], |kind| kind.url_schemes)
}

/// What is wrong with `url` for `backend`, in the user's terms (never quoting a password):
/// the scheme, a missing host, a port that is not a number.
///
/// The message quotes only the URL redacted by its shape ([`redact_url`]), and says nothing
/// of a text after `scheme://user:` when there is no `@` (it may be a password whose `@host` is
/// missing).
fn url_problem(url: &str, backend: BackendKind) -> Option<String> {
    let accepted = schemes(backend);
    let list = || {
        accepted
            .iter()
            .map(|s| format!("{s}://"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some((scheme, _)) = url.split_once("://") else {
        return Some(format!(
            "not a URL (no `scheme://`); a {} URL starts with one of: {}",
            backend.name(),
            list()
        ));
    };
    if !accepted.contains(&scheme) {
        // A scheme is letters, digits, `+`, `-` and `.`; anything else before `://` is not
        // quoted (it may be a password typed in the wrong place).
        let is_scheme = !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        let shown = if is_scheme {
            format!("scheme `{scheme}://`")
        } else {
            "the text before `://` is not a scheme and".to_owned()
        };
        return Some(format!(
            "{shown} is not read by the {} backend; accepted: {}",
            backend.name(),
            list()
        ));
    }
    if hostless_password_in(url) {
        return Some(format!(
            "`{}` has no `@host`, and the text after the first `:` is not a port from 1 to 65535 \
             (not shown: it may be a password); a password goes between `user:` and `@host`",
            redact_url(url)
        ));
    }
    // From here on only the redacted URL is read, so whatever is quoted is safe to show.
    let shown = redact_url(url);
    let rest = shown.split_once("://").map_or("", |(_, rest)| rest);
    if matches!(scheme, "unix" | "redis+unix") {
        let path = rest.split(['?', '#']).next().unwrap_or_default();
        return path
            .is_empty()
            .then(|| "the socket path is missing (e.g. unix:///run/redis.sock)".to_owned());
    }
    // The userinfo ends at the last '@' (a password may hold any character); the hosts end at
    // the first '/' or '?' after it.
    let after_user = rest.rfind('@').map_or(rest, |at| &rest[at + 1..]);
    let hosts = after_user.split(['/', '?']).next().unwrap_or_default();
    if hosts.is_empty() {
        return Some("the host is missing (e.g. 127.0.0.1:6379)".to_owned());
    }
    for host in hosts.split(',') {
        let (name, port) = match host.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((name, tail)) => (name, tail.strip_prefix(':')),
                None => return Some(format!("host `{host}`: an IPv6 address needs a closing `]`")),
            },
            None => match host.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            },
        };
        if name.is_empty() {
            return Some(format!("host `{host}` has no name before its port"));
        }
        if let Some(port) = port {
            if scheme == "mongodb+srv" {
                return Some("a mongodb+srv:// URL names a DNS record and takes no port".to_owned());
            }
            match port.parse::<u32>() {
                Err(_) => return Some(format!("port `{port}` is not a number (accepted: 1 to 65535)")),
                Ok(0) | Ok(65536..) => return Some(format!("port `{port}` is out of range (accepted: 1 to 65535)")),
                Ok(_) => {}
            }
        }
    }
    None
}

/// Keys that only some backends read (each backend lists its own); any other backend
/// rejects them.
const BACKEND_KEYS: [&str; 11] = [
    "url",
    "max_entries",
    "max_bytes",
    "path",
    "timeout",
    "tls_ca_file",
    "max_item_bytes",
    "database",
    "collection",
    "signing_key",
    "signing_key_fallbacks",
];

/// Whether backend `kind` reads `key` (the signing keys: every byte-storing backend).
fn reads(kind: &Kind, key: &str) -> bool {
    kind.keys.contains(&key) || (key.starts_with("signing_key") && kind.stores_bytes)
}

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
    /// Reports a problem at `path`, naming where the value came from: the key itself, else
    /// the same key in `[defaults]`, else the `backend` setting that requires the key.
    fn report(&mut self, path: &[&str], message: String) {
        let problem = Problem::new(subject(path), message);
        let (base, key) = path.split_at(path.len().saturating_sub(1));
        let sibling = |key: &'static str| -> Vec<&str> { base.iter().copied().chain([key]).collect() };
        let origin = self
            .loaded
            .origin(path)
            .or_else(|| key.first().and_then(|key| self.loaded.origin(&["defaults", key])))
            .or_else(|| self.loaded.origin(&sibling("backend")))
            .or_else(|| self.loaded.origin(&["defaults", "backend"]));
        self.problems.push(match origin {
            Some(origin) => problem.origin(origin),
            None => problem,
        });
    }

    /// Checks the values set in one section (`[defaults]` or a cache) against their ranges.
    fn ranges(&mut self, base: &[&str], own: &CacheConfig) {
        let at = |key: &'static str| -> Vec<&str> {
            let mut path = base.to_vec();
            path.push(key);
            path
        };
        let durations = [
            ("ttl", own.ttl),
            ("stale_while_revalidate", own.stale_while_revalidate),
            ("stale_if_error", own.stale_if_error),
            ("timeout", own.timeout),
            ("lock_timeout", own.lock_timeout),
        ];
        for (key, value) in durations {
            if let Some(message) = value.and_then(|value| duration_problem(key, value)) {
                self.report(&at(key), message);
            }
        }
        let sizes = [
            ("max_entries", own.max_entries, "leave it out for the default"),
            ("max_bytes", own.max_bytes, "leave it out for no byte bound"),
            (
                "max_item_bytes",
                own.max_item_bytes,
                "leave it out for memcached's default of 1 MiB",
            ),
        ];
        for (key, value, hint) in sizes {
            if value == Some(0) {
                self.report(&at(key), format!("`0` is out of range: must be at least 1 ({hint})"));
            }
        }
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

    /// Checks the `local` table of a cache whose backend is `backend`.
    fn local(&mut self, base: &[&str], backend: BackendKind, local: &LocalConfig) {
        let at = |key: &'static str| -> Vec<&str> {
            let mut path = base.to_vec();
            path.extend(["local", key]);
            path
        };
        if backend == BackendKind::Memory {
            let mut path = base.to_vec();
            path.push("local");
            self.report(
                &path,
                "a local tier puts process memory in front of a byte-storing backend (file, redis, mongodb, \
                 memcached); a memory cache is in process memory already: leave `local` out"
                    .into(),
            );
        }
        match local.ttl {
            None => self.report(
                &at("ttl"),
                "a local tier needs `ttl`, the longest a process answers from its memory (the bound on staleness \
                 where invalidations do not reach), e.g. local = { max_entries = 10000, ttl = \"30s\" }"
                    .into(),
            ),
            Some(ttl) if ttl.is_zero() => self.report(
                &at("ttl"),
                "`0s` is out of range for a local tier's `ttl`: from 1ms; leave `local` out for no local tier".into(),
            ),
            Some(ttl) => {
                if let Some(message) = duration_problem("ttl", ttl) {
                    self.report(&at("ttl"), message);
                }
            }
        }
        for (key, value) in [("max_entries", local.max_entries), ("max_bytes", local.max_bytes)] {
            if value == Some(0) {
                self.report(&at(key), "`0` is out of range: must be at least 1".into());
            }
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
        if let Some(kind) = cachex_core::backend::kind(backend.name()) {
            for key in BACKEND_KEYS {
                if is_set(own, key) && !reads(kind, key) {
                    let readers: Vec<&str> = KINDS.iter().filter(|k| reads(k, key)).map(|k| k.name).collect();
                    self.report(
                        &at(key),
                        format!(
                            "`{key}` does not apply to backend `{}`; it is read by: {}",
                            backend.name(),
                            readers.join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(url) = &effective.url {
            if let Some(message) = url_problem(url.expose(), backend).filter(|_| !schemes(backend).is_empty()) {
                // Where the URL was set: this section, else the defaults it inherits.
                let path = if own.url.is_some() {
                    at("url")
                } else {
                    vec!["defaults", "url"]
                };
                self.report(&path, message);
            }
        }
        if let Some(prefix) = &own.prefix {
            if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
                self.report(
                    &at("prefix"),
                    "a prefix must be non-empty and have no spaces or control characters".into(),
                );
            }
        }
        let no_ttl = effective.ttl.is_none_or(|ttl| ttl.is_zero());
        for (key, window) in [
            ("stale_while_revalidate", effective.stale_while_revalidate),
            ("stale_if_error", effective.stale_if_error),
        ] {
            if no_ttl && window.is_some_and(|window| !window.is_zero()) {
                // Where the window was set: this section, else the defaults it inherits.
                let own_window = if key == "stale_if_error" {
                    own.stale_if_error
                } else {
                    own.stale_while_revalidate
                };
                let path = if own_window.is_some() {
                    at(key)
                } else {
                    vec!["defaults", key]
                };
                self.report(
                    &path,
                    format!(
                        "`{key}` serves entries past their `ttl`, and this cache has no `ttl` (its entries never go stale): \
                         set `ttl`, or leave `{key}` out"
                    ),
                );
            }
        }
        if let Some(local) = &own.local {
            self.local(base, backend, local);
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

impl Checker<'_> {
    /// Reports every two caches whose effective prefixes are equal and whose backends store in
    /// one place (see [`location`]): they would read, overwrite and clear each other's entries.
    /// The problem is reported at a cache that sets `prefix` (the later one when both do), and
    /// names the other cache and where its prefix came from.
    fn prefix_conflicts(&mut self, config: &Config) {
        let caches: Vec<(&str, String, Option<Location>, bool)> = config
            .caches
            .iter()
            .map(|(name, own)| {
                let prefix = own.prefix.clone().unwrap_or_else(|| default_prefix(name));
                (
                    name.as_str(),
                    prefix,
                    location(name, &own.over(&config.defaults)),
                    own.prefix.is_some(),
                )
            })
            .collect();
        for (i, (a, prefix, at_a, set_a)) in caches.iter().enumerate() {
            let Some(at_a) = at_a else { continue };
            for (b, prefix_b, at_b, set_b) in &caches[i + 1..] {
                if prefix != prefix_b || !at_b.as_ref().is_some_and(|at_b| at_a.shared_with(at_b)) {
                    continue;
                }
                let (here, there, there_set) = if *set_b { (b, a, *set_a) } else { (a, b, *set_b) };
                let source = if there_set {
                    match self.loaded.origin(&["caches", there, "prefix"]) {
                        Some(origin) => format!("its `prefix`, from {origin}"),
                        None => "its `prefix`".to_owned(),
                    }
                } else {
                    "its default prefix, `cachex:<name>`".to_owned()
                };
                self.report(
                    &["caches", here, "prefix"],
                    format!(
                        "cache `{there}` has the same prefix `{prefix}` ({source}) on {}: the two caches would read, \
                         overwrite and clear each other's entries; give one of them another `prefix`",
                        at_a.describe()
                    ),
                );
            }
        }
    }
}

/// The prefix of cache `name` when it sets none.
fn default_prefix(name: &str) -> String {
    format!("cachex:{name}")
}

/// The backends compiled into this build.
pub fn available_backends() -> String {
    KINDS.iter().map(|kind| kind.name).collect::<Vec<_>>().join(", ")
}

fn compiled_in(kind: BackendKind) -> bool {
    cachex_core::backend::kind(kind.name()).is_some()
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
    if config.defaults.local.is_some() {
        checker.report(
            &["defaults", "local"],
            "a local tier is per cache (and only in front of a byte-storing backend); set it under [caches.<name>]"
                .into(),
        );
    }
    checker.signing_keys(&["defaults"], &config.defaults);
    checker.ranges(&["defaults"], &config.defaults);
    for (name, own) in &config.caches {
        checker.ranges(&["caches", name], own);
        checker.cache(name, own, &own.over(&config.defaults));
        checker.signing_keys(&["caches", name], own);
    }
    checker.prefix_conflicts(config);
    if config.caches.is_empty() {
        // With no cache declared, the defaults alone serve every bound name.
        checker.settings(&["defaults"], &config.defaults, &config.defaults);
    }
    let mut seen = std::collections::HashSet::new();
    checker.problems.retain(|problem| seen.insert(problem.to_string()));
    if checker.problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(Problems(checker.problems)))
    }
}

/// Where the values of cache `name` came from, for problems of the build stage: a key of the
/// cache's own section, else of `[defaults]`.
type Origins<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A problem with one key of cache `name`, as an error naming where the value came from.
fn key_problem(name: &str, key: &str, origins: Origins<'_>, message: String) -> Error {
    let problem = Problem::new(format!("cache `{name}`, key `{key}`"), message);
    // A key that is missing is required by the `backend` setting: that is where it came from.
    Error::Invalid(Problems(vec![match origins(key).or_else(|| origins("backend")) {
        Some(origin) => problem.origin(origin),
        None => problem,
    }]))
}

/// The signing keys of cache `name` (the memory backend keeps typed values: nothing to sign).
fn signing_keys(name: &str, effective: &CacheConfig, origins: Origins<'_>) -> Result<Option<SigningKeys>, Error> {
    let backend = effective.backend.unwrap_or(BackendKind::Memory);
    let stores_bytes = cachex_core::backend::kind(backend.name()).is_some_and(|kind| kind.stores_bytes);
    let Some(key) = effective.signing_key.as_ref().filter(|_| stores_bytes) else {
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
        key_problem(name, setting, origins, short.to_string())
    })
}

/// The text of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

/// Builds the cache `name` like [`build_cache`], with the build stage's problems naming where
/// each value came from, and a panic of a third-party builder caught and reported as a problem.
fn build_cache_from(name: &str, effective: &CacheConfig, origins: Origins<'_>) -> Result<Cache, Error> {
    match catch_unwind(AssertUnwindSafe(|| build_cache_in(name, effective, origins))) {
        Ok(built) => built,
        Err(panic) => {
            let backend = effective.backend.unwrap_or(BackendKind::Memory).name();
            let key = if effective.url.is_some() { "url" } else { "backend" };
            Err(key_problem(
                name,
                key,
                origins,
                format!(
                    "building the {backend} backend failed inside a client library ({}); \
                     the cache's functions run uncached until the configuration is fixed",
                    panic_text(&*panic)
                ),
            ))
        }
    }
}

/// Builds the cache `name` from its effective settings (a configuration made in code: problems
/// have no file or variable to name). A panic of a client library is reported as a problem.
///
/// ```
/// use cachex_config::CacheConfig;
/// let cache = cachex_config::build_cache("fib", &CacheConfig::memory())?;
/// assert_eq!(cache.settings().name, "fib");
/// # Ok::<(), cachex_core::Error>(())
/// ```
pub fn build_cache(name: &str, effective: &CacheConfig) -> Result<Cache, Error> {
    build_cache_from(name, effective, &|_| None)
}

fn build_cache_in(name: &str, effective: &CacheConfig, origins: Origins<'_>) -> Result<Cache, Error> {
    let settings = CacheSettings {
        name: name.to_owned(),
        prefix: effective.prefix.clone().unwrap_or_else(|| default_prefix(name)),
        ttl: effective.ttl.filter(|ttl| !ttl.is_zero()),
        stale: StaleWindows {
            while_revalidate: effective.stale_while_revalidate.unwrap_or_default(),
            if_error: effective.stale_if_error.unwrap_or_default(),
        },
        on_error: effective.on_error.unwrap_or(OnError::Bypass),
        encoders: effective.encoders.clone(),
        signing: signing_keys(name, effective, origins)?,
        lock_timeout: effective.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT),
        local: effective.local.and_then(|local| {
            Some(LocalSettings {
                max_entries: local.max_entries,
                max_bytes: local.max_bytes,
                ttl: local.ttl.filter(|ttl| !ttl.is_zero())?,
            })
        }),
    };
    let backend = effective.backend.unwrap_or(BackendKind::Memory);
    let Some(kind) = cachex_core::backend::kind(backend.name()) else {
        return Err(key_problem(
            name,
            "backend",
            origins,
            format!(
                "backend `{}` is not available in this build; available: {}",
                backend.name(),
                available_backends()
            ),
        ));
    };
    let mut spec = Spec::new(name, &settings.prefix);
    spec.ttl = settings.ttl;
    spec.stale = settings.stale;
    spec.url = effective.url.as_ref().map(|url| url.expose());
    spec.timeout = effective.timeout;
    spec.max_entries = effective.max_entries;
    spec.max_bytes = effective.max_bytes;
    spec.path = effective.path.as_deref();
    spec.tls_ca_file = effective.tls_ca_file.as_deref();
    spec.max_item_bytes = effective.max_item_bytes;
    spec.database = effective.database.as_deref();
    spec.collection = effective.collection.as_deref();
    spec.signed = settings.signing.is_some();
    // A URL whose password may have lost its `@host` never reaches a client library, whose
    // parse error could quote it.
    let hostless = effective
        .url
        .as_ref()
        .filter(|url| !schemes(backend).is_empty() && hostless_password_in(url.expose()));
    if let Some(message) = hostless.and_then(|url| url_problem(url.expose(), backend)) {
        return Err(key_problem(name, "url", origins, message));
    }
    let backend = (kind.build)(&spec).map_err(|problem| key_problem(name, problem.key, origins, problem.message))?;
    // A tier kept coherent through a channel that the server refuses would serve what other
    // processes removed: the user's rights are checked now.
    if let (
        Some(_),
        cachex_core::Backend::Bytes {
            invalidations: Some(channel),
            ..
        },
    ) = (&settings.local, &backend)
    {
        channel
            .check()
            .map_err(|message| key_problem(name, "local", origins, message))?;
    }
    Ok(Cache::new(settings, backend))
}

/// Checks a configuration and builds its runtime: the declared caches, or, when none is
/// declared, a factory that gives every name a cache with the defaults.
pub fn build_runtime(loaded: &Loaded) -> Result<Runtime, Error> {
    check(loaded)?;
    let config = &loaded.config;
    if config.caches.is_empty() {
        let defaults = config.defaults.clone();
        let loaded = loaded.clone();
        return Ok(Runtime::new(
            Vec::new(),
            Some(Box::new(move |name| {
                build_cache_from(name, &defaults, &|key| loaded.origin(&["defaults", key]))
            })),
        ));
    }
    let mut caches = Vec::with_capacity(config.caches.len());
    let mut problems = Vec::new();
    for (name, own) in &config.caches {
        let origins = |key: &str| {
            loaded
                .origin(&["caches", name, key])
                .or_else(|| loaded.origin(&["defaults", key]))
        };
        match build_cache_from(name, &own.over(&config.defaults), &origins) {
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
