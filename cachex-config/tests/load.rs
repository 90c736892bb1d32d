//! Loading `cachex.toml` and the `CACHEX_*` environment, and the errors bad values give.
//! Each test runs in a figment `Jail`: its own working directory and environment.
#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error

use std::time::Duration;

use cachex_config::{build_runtime, load, BackendKind, CacheConfig, Config, Loaded};
use cachex_core::{Error, OnError};
use figment::Jail;

fn problems(error: Error) -> String {
    match error {
        Error::Invalid(problems) => problems.to_string(),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn file_then_environment_override() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            r#"
            [defaults]
            ttl = "5m"
            on_error = "fail"

            [caches.fib]
            backend = "memory"
            max_entries = 100_000
            ttl = "10m"
            [caches.fib.encoders]
            "url::Url" = "display"

            [caches.other]
            "#,
        )?;
        jail.set_env("CACHEX_CACHES__FIB__TTL", "30s");
        jail.set_env("CACHEX_CACHES__FIB__MAX_ENTRIES", "7");
        let loaded = load().expect("valid configuration");
        let fib = loaded.config.effective("fib").unwrap();
        assert_eq!(fib.ttl, Some(Duration::from_secs(30)), "the environment beats the file");
        assert_eq!(fib.max_entries, Some(7));
        assert_eq!(fib.on_error, Some(OnError::Fail), "inherited from [defaults]");
        assert_eq!(fib.encoders.get("url::Url").map(String::as_str), Some("display"));
        let other = loaded.config.effective("other").unwrap();
        assert_eq!(other.ttl, Some(Duration::from_secs(300)));
        assert_eq!(other.backend, None);
        Ok(())
    });
}

#[test]
fn cachex_config_names_the_file() {
    Jail::expect_with(|jail| {
        jail.create_file("elsewhere.toml", "[caches.picked]\nbackend = \"memory\"\n")?;
        jail.create_file("cachex.toml", "[caches.ignored]\n")?;
        jail.set_env("CACHEX_CONFIG", "elsewhere.toml");
        let loaded = load().unwrap();
        assert!(loaded.config.caches.contains_key("picked"));
        assert!(!loaded.config.caches.contains_key("ignored"));
        jail.set_env("CACHEX_CONFIG", "missing.toml");
        let message = problems(load().unwrap_err());
        assert!(
            message.contains("missing.toml") && message.contains("CACHEX_CONFIG"),
            "{message}"
        );
        Ok(())
    });
}

#[test]
fn no_file_and_no_environment_is_the_embedded_default() {
    Jail::expect_with(|_jail| {
        let loaded = load().unwrap();
        assert_eq!(loaded.config, Config::default());
        let runtime = build_runtime(&loaded).unwrap();
        let cache = runtime.cache("anything").unwrap();
        assert_eq!(cache.settings().prefix, "cachex:anything");
        Ok(())
    });
}

#[test]
fn a_typo_key_names_the_file_and_key_and_lists_accepted_keys() {
    Jail::expect_with(|jail| {
        jail.create_file("cachex.toml", "[caches.fib]\nbackend = \"memory\"\ntll = \"5m\"\n")?;
        let message = problems(load().unwrap_err());
        assert!(message.contains("cache `fib`, key `tll`"), "{message}");
        assert!(message.contains("cachex.toml"), "{message}");
        assert!(
            message.contains("`ttl`") && message.contains("`backend`"),
            "lists accepted keys: {message}"
        );
        Ok(())
    });
}

#[test]
fn a_typo_in_the_environment_names_the_variable() {
    Jail::expect_with(|jail| {
        jail.set_env("CACHEX_CACHES__FIB__TLL", "5m");
        let message = problems(load().unwrap_err());
        assert!(message.contains("CACHEX_CACHES__FIB__TLL"), "{message}");
        assert!(message.contains("key `tll`"), "{message}");
        Ok(())
    });
}

#[test]
fn a_bad_duration_names_the_variable_and_key() {
    Jail::expect_with(|jail| {
        jail.create_file("cachex.toml", "[caches.fib]\nttl = \"10m\"\n")?;
        jail.set_env("CACHEX_CACHES__FIB__TTL", "3 fortnights");
        let message = problems(load().unwrap_err());
        assert!(
            message.contains("environment variable CACHEX_CACHES__FIB__TTL"),
            "{message}"
        );
        assert!(message.contains("cache `fib`, key `ttl`"), "{message}");
        assert!(message.contains("\"30s\""), "shows accepted durations: {message}");
        Ok(())
    });
}

#[test]
fn a_bad_duration_in_the_file_names_the_file() {
    Jail::expect_with(|jail| {
        jail.create_file("cachex.toml", "[defaults]\nttl = \"soon\"\n")?;
        let message = problems(load().unwrap_err());
        assert!(message.contains("[defaults], key `ttl`"), "{message}");
        assert!(message.contains("cachex.toml, key `defaults.ttl`"), "{message}");
        Ok(())
    });
}

#[test]
fn an_unknown_backend_lists_the_backends() {
    Jail::expect_with(|jail| {
        jail.create_file("cachex.toml", "[caches.fib]\nbackend = \"mysql\"\n")?;
        let message = problems(load().unwrap_err());
        assert!(message.contains("`mysql`"), "{message}");
        for backend in ["memory", "file", "redis", "mongodb", "memcached"] {
            assert!(message.contains(&format!("`{backend}`")), "{message}");
        }
        Ok(())
    });
}

#[test]
fn a_bad_cache_name_says_why() {
    Jail::expect_with(|jail| {
        jail.create_file("cachex.toml", "[caches.User-Sessions]\nbackend = \"memory\"\n")?;
        let message = problems(build_runtime(&load().unwrap()).err().unwrap());
        assert!(message.contains("`User-Sessions`"), "{message}");
        assert!(message.contains("lowercase letters, digits and `_`"), "{message}");
        assert!(message.contains("cachex.toml"), "{message}");
        Ok(())
    });
}

#[test]
fn every_problem_is_reported_at_once() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            r#"
            [defaults]
            prefix = "shared"
            [caches.a]
            backend = "memory"
            path = "/tmp/x"
            [caches.b]
            max_entries = 0
            [caches.Bad]
            "#,
        )?;
        let message = problems(build_runtime(&load().unwrap()).err().unwrap());
        assert!(message.contains("cachex found 4 problems"), "{message}");
        assert!(message.contains("[defaults], key `prefix`"), "{message}");
        assert!(message.contains("cache `a`, key `path`"), "{message}");
        assert!(message.contains("cache `b`, key `max_entries`"), "{message}");
        assert!(message.contains("`Bad`"), "{message}");
        Ok(())
    });
}

#[test]
fn a_url_password_never_appears_in_errors_or_debug() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            "[caches.fib]\nbackend = \"memory\"\nurl = \"redis://app:hunter2@db:6379/0\"\n",
        )?;
        let loaded = load().unwrap();
        let debug = format!("{loaded:?} {:?}", loaded.config);
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("redis://app:***@db:6379/0"), "{debug}");
        let error = build_runtime(&loaded).err().unwrap();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("cache `fib`, key `url`"), "{shown}");

        // A URL in a value of the wrong type shows up in the deserializer's message.
        jail.create_file("cachex.toml", "[caches.fib]\nttl = \"redis://app:hunter2@db:6379/0\"\n")?;
        let error = load().unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        Ok(())
    });
}

#[test]
fn test_variables_and_cachex_config_are_not_configuration() {
    Jail::expect_with(|jail| {
        jail.set_env("CACHEX_TEST_MONGODB_URL", "mongodb://127.0.0.1:1");
        assert!(load().is_ok());
        Ok(())
    });
}

#[test]
fn the_builder_makes_the_same_configuration_as_a_file() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            "[defaults]\nttl = \"5m\"\n[caches.fib]\nbackend = \"memory\"\nmax_entries = 10\n[caches.fib.encoders]\n\"url::Url\" = \"display\"\n",
        )?;
        let built = Config::new()
            .defaults(CacheConfig::new().ttl(Duration::from_secs(300)))
            .cache(
                "fib",
                CacheConfig::memory().max_entries(10).encoder("url::Url", "display"),
            );
        assert_eq!(load().unwrap().config, built);
        assert_eq!(built.caches["fib"].backend, Some(BackendKind::Memory));
        assert!(build_runtime(&Loaded::from_code(built)).is_ok());
        Ok(())
    });
}

#[test]
fn signing_keys_are_checked_inherited_and_never_shown() {
    const KEY: &str = "an operator's signing key of 32+ bytes, from the env";
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            r#"
            [caches.sessions]
            backend = "file"
            path = "target/sessions"

            [caches.reports]
            backend = "file"
            path = "target/reports"
            signing_key = "too short"
            signing_key_fallbacks = ["also short"]

            [caches.fib]
            backend = "memory"
            signing_key = "a memory cache keeps typed values; nothing to sign"
            "#,
        )?;
        jail.set_env("CACHEX_DEFAULTS__SIGNING_KEY", KEY);
        let loaded = load().expect("loads");
        let sessions = loaded.config.effective("sessions").unwrap();
        assert_eq!(
            sessions.signing_key.as_ref().map(|k| k.expose()),
            Some(KEY),
            "inherited"
        );
        assert!(!format!("{loaded:?}").contains(KEY), "a key in Debug output");
        let message = problems(build_runtime(&loaded).map(|_| ()).unwrap_err());
        assert!(
            message.contains("cache `reports`, key `signing_key`") && message.contains("this one has 9"),
            "{message}"
        );
        assert!(
            message.contains("key `signing_key_fallbacks`") && message.contains("fallback 1"),
            "{message}"
        );
        assert!(message.contains("cachex.toml"), "names the file: {message}");
        assert!(
            message.contains("cache `fib`, key `signing_key`")
                && message.contains("does not apply to backend `memory`"),
            "{message}"
        );
        for secret in [KEY, "too short", "also short"] {
            assert!(!message.contains(secret), "a key in the error: {message}");
        }
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.set_env("CACHEX_DEFAULTS__SIGNING_KEY", "short");
        let message = problems(build_runtime(&load().expect("loads")).map(|_| ()).unwrap_err());
        assert!(message.contains("[defaults], key `signing_key`"), "{message}");
        assert!(
            message.contains("CACHEX_DEFAULTS__SIGNING_KEY"),
            "names the variable: {message}"
        );
        Ok(())
    });
}
