//! A password in a URL that does not parse (no `@host`, several `@`, junk where the host and
//! port go, percent signs, spaces) never reaches an error's `Display` or `Debug`, nor anything
//! logged: random malformed URLs of every backend, from a `cachex.toml` and from `CACHEX_*`
//! variables, through loading, checking and building, and built in code.
//!
//! Everything logged in this test binary goes to one buffer (a global subscriber at `TRACE`),
//! which is searched for the password after every case. URLs that do parse point at hosts
//! where nothing listens, with a short timeout.
#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use cachex_config::{build_cache, build_runtime, from_toml_str, load, BackendKind, CacheConfig};
use cachex_core::Error;
use figment::Jail;
use proptest::prelude::*;

/// What every generated password starts with.
const MARKER: &str = "MARKERpw";

/// Everything logged by this test binary.
#[derive(Clone, Default)]
struct Logged(Arc<Mutex<Vec<u8>>>);

impl Write for Logged {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logged {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

/// The buffer of the global subscriber, installed on first use.
fn logged() -> Logged {
    static LOGGED: OnceLock<Logged> = OnceLock::new();
    LOGGED
        .get_or_init(|| {
            let logged = Logged::default();
            let writer = logged.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");
            logged
        })
        .clone()
}

/// Asserts that `what` shows no password (neither the marker nor the whole password).
fn assert_hidden(what: &str, shown: &str, password: &str, url: &str) {
    assert!(
        !shown.contains(MARKER) && !shown.contains(password),
        "{what} shows the password of {url:?}: {shown}"
    );
}

/// Asserts that neither the error nor the log shows the password.
fn assert_error_hidden<T>(what: &str, result: Result<T, Error>, password: &str, url: &str) {
    if let Err(error) = result {
        assert_hidden(&format!("{what} (Display)"), &error.to_string(), password, url);
        assert_hidden(&format!("{what} (Debug)"), &format!("{error:?}"), password, url);
    }
    assert_hidden(&format!("the log after {what}"), &logged().text(), password, url);
}

const SCHEMES: &[&str] = &["redis", "rediss", "mongodb", "memcache", "memcached", "unix"];

/// The backend that reads `scheme`.
fn backend_of(scheme: &str) -> BackendKind {
    match scheme {
        "mongodb" => BackendKind::Mongodb,
        "memcache" | "memcached" => BackendKind::Memcached,
        _ => BackendKind::Redis,
    }
}

/// Junk where hosts, ports and paths go: letters, digits, dots, colons, commas, brackets,
/// percent signs, spaces, slashes, `?`, `#`.
const JUNK: &str = "[a-z0-9.:,%\\[\\] /?#=]{0,12}";

/// A malformed URL holding a password that starts with [`MARKER`], and the password.
fn malformed_url() -> impl Strategy<Value = (String, String)> {
    let password = "[A-Za-z0-9%: _.-]{0,8}".prop_map(|tail| format!("{MARKER}{tail}"));
    (
        proptest::sample::select(SCHEMES),
        "[a-z0-9]{0,6}",
        password,
        0..4u8,
        JUNK,
        JUNK,
    )
        .prop_map(|(scheme, user, password, shape, junk, host)| {
            let url = match shape {
                // No `@host`: the password runs into whatever follows.
                0 => format!("{scheme}://{user}:{password}{junk}"),
                // A host (of junk, perhaps) after the one `@`.
                1 => format!("{scheme}://{user}:{password}@{host}"),
                // Several `@`: the userinfo ends at the last one.
                2 => format!("{scheme}://{user}:{password}@{junk}@{host}"),
                // Cut at the password's end, then a path.
                _ => format!("{scheme}://{user}:{password}/{junk}"),
            };
            (url, password)
        })
}

/// The TOML of one cache `c` with `url` for `backend`, with a short timeout.
fn document(backend: BackendKind, url: &str) -> String {
    format!(
        "[caches.c]\nbackend = \"{}\"\ntimeout = \"50ms\"\nurl = {}\n",
        backend.name(),
        toml::Value::String(url.to_owned())
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_password_in_a_malformed_url_is_never_shown(
        (url, password) in malformed_url(),
        other_backend in proptest::sample::select(&[BackendKind::Redis, BackendKind::Mongodb, BackendKind::Memcached][..]),
        matching in proptest::bool::weighted(0.8),
        from_env in any::<bool>(),
    ) {
        let scheme = url.split("://").next().unwrap_or_default();
        let backend = if matching { backend_of(scheme) } else { other_backend };

        // A `cachex.toml` document alone.
        let result = from_toml_str(&document(backend, &url)).and_then(|loaded| {
            assert_hidden("Debug of the loaded configuration", &format!("{loaded:?}"), &password, &url);
            build_runtime(&loaded)
        });
        assert_error_hidden("a cachex.toml string", result, &password, &url);

        // A file, or the environment, read by `load`.
        Jail::expect_with(|jail| {
            if from_env {
                jail.create_file("cachex.toml", "[caches.c]\ntimeout = \"50ms\"\n")?;
                jail.set_env("CACHEX_CACHES__C__BACKEND", backend.name());
                jail.set_env("CACHEX_CACHES__C__URL", &url);
            } else {
                jail.create_file("cachex.toml", &document(backend, &url))?;
            }
            let result = load().and_then(|loaded| build_runtime(&loaded));
            assert_error_hidden("load", result, &password, &url);
            Ok(())
        });

        // Built in code: no check before the backend is built.
        let config = CacheConfig::new()
            .backend(backend)
            .url(&url)
            .timeout(std::time::Duration::from_millis(50));
        assert_error_hidden("build_cache", build_cache("c", &config), &password, &url);
    }
}

#[test]
fn a_password_without_its_host_is_not_quoted_as_a_port() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            "[caches.fib]\nbackend = \"redis\"\nurl = \"redis://app:hunter2hunter2\"\n",
        )?;
        let Err(error) = load().and_then(|loaded| build_runtime(&loaded)) else {
            panic!("a URL with no host is an error");
        };
        let text = error.to_string();
        assert!(
            text.contains(
                "cache `fib`, key `url` (from file cachex.toml, key `caches.fib.url`): `redis://app:***` has no \
                 `@host`, and the text after the first `:` is not a port from 1 to 65535 (not shown: it may be a \
                 password); a password goes between `user:` and `@host`"
            ),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
        Ok(())
    });
}

#[test]
fn a_failed_lazy_initialisation_logs_no_password() {
    // The one test of this binary that builds the process's runtime: the first `cache()`
    // without `init()` loads the configuration, fails, and logs the error once.
    let logged = logged();
    Jail::expect_with(|jail| {
        jail.set_env("CACHEX_CACHES__FIB__BACKEND", "redis");
        jail.set_env("CACHEX_CACHES__FIB__URL", "redis://app:lazyhunter2%/0");
        let Err(error) = cachex_core::cache("fib") else {
            panic!("the configuration is broken");
        };
        assert!(!error.to_string().contains("lazyhunter2"), "{error}");
        Ok(())
    });
    let text = logged.text();
    assert!(text.contains("could not initialise"), "the failure is logged: {text}");
    assert!(!text.contains("lazyhunter2"), "{text}");
}
