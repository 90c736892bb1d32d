//! Ranges of durations and sizes, URL problems in the user's terms, and the source of every
//! problem of the build stage. Each test runs in a figment `Jail` (its own directory and
//! environment).
#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error

use std::time::Duration;

use cachex_config::{build_cache, build_runtime, load, BackendKind, CacheConfig};
use cachex_core::Error;
use figment::Jail;

fn problems(result: Result<impl Sized, Error>) -> String {
    match result {
        Err(Error::Invalid(problems)) => problems.to_string(),
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(_) => panic!("expected a configuration error, got Ok"),
    }
}

#[test]
fn a_bad_port_in_the_file_names_the_file_key_and_what_is_wrong() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            "[caches.fib]\nbackend = \"redis\"\nurl = \"redis://app:hunter2@127.0.0.1:notaport/0\"\n",
        )?;
        let text = problems(build_runtime(&load().unwrap()));
        assert!(text.contains("cache `fib`, key `url`"), "{text}");
        assert!(text.contains("cachex.toml, key `caches.fib.url`"), "{text}");
        assert!(text.contains("port `notaport` is not a number"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        Ok(())
    });
}

#[test]
fn a_bad_port_in_the_environment_names_the_variable() {
    Jail::expect_with(|jail| {
        jail.create_file("cachex.toml", "[caches.fib]\nbackend = \"redis\"\n")?;
        jail.set_env("CACHEX_CACHES__FIB__URL", "redis://:hunter2@127.0.0.1:99999");
        let text = problems(build_runtime(&load().unwrap()));
        assert!(text.contains("cache `fib`, key `url`"), "{text}");
        assert!(text.contains("environment variable CACHEX_CACHES__FIB__URL"), "{text}");
        assert!(text.contains("port `99999` is out of range"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        Ok(())
    });
}

#[test]
fn a_build_stage_problem_names_its_source() {
    // The URL's shape is fine; the client rejects its database number when the cache is built.
    Jail::expect_with(|jail| {
        jail.create_file("cachex.toml", "[caches.fib]\nbackend = \"redis\"\n")?;
        jail.set_env("CACHEX_CACHES__FIB__URL", "redis://:hunter2@127.0.0.1:6390/notadb");
        let text = problems(build_runtime(&load().unwrap()));
        assert!(text.contains("cache `fib`, key `url`"), "{text}");
        assert!(
            text.contains("(from environment variable CACHEX_CACHES__FIB__URL)"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        Ok(())
    });
}

#[test]
fn an_inherited_url_is_reported_where_it_was_set() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            "[defaults]\nbackend = \"redis\"\nurl = \"http://127.0.0.1:6379\"\n[caches.a]\n[caches.b]\n",
        )?;
        let text = problems(build_runtime(&load().unwrap()));
        assert!(text.contains("[defaults], key `url` (from file"), "{text}");
        assert!(
            text.contains("scheme `http://` is not read by the redis backend"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 2, "reported once, not once per cache: {text}");
        Ok(())
    });
}

#[test]
fn a_zero_timeout_is_out_of_range_from_file_and_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            "[defaults]\ntimeout = \"0s\"\n[caches.x]\nbackend = \"memory\"\nlock_timeout = \"2h\"\n",
        )?;
        jail.set_env("CACHEX_CACHES__Y__TIMEOUT", "0s");
        jail.set_env("CACHEX_CACHES__Y__BACKEND", "redis");
        jail.set_env("CACHEX_CACHES__Y__URL", "redis://127.0.0.1:6390");
        let text = problems(build_runtime(&load().unwrap()));
        assert!(
            text.contains("[defaults], key `timeout` (from file") && text.contains("accepted: from 1ms to 10m"),
            "{text}"
        );
        assert!(
            text.contains(
                "cache `y`, key `timeout` (from environment variable CACHEX_CACHES__Y__TIMEOUT): `0s` is out of range"
            ),
            "{text}"
        );
        assert!(
            text.contains("cache `x`, key `lock_timeout`") && text.contains("accepted: from 1ms to 1h"),
            "{text}"
        );
        Ok(())
    });
}

#[test]
fn sizes_must_be_at_least_one_and_ttl_zero_means_no_expiry() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            "[caches.m]\nbackend = \"memory\"\nttl = \"0s\"\nmax_entries = 0\n[caches.n]\nttl = \"200years\"\n",
        )?;
        let text = problems(build_runtime(&load().unwrap()));
        assert!(text.contains("cache `m`, key `max_entries`"), "{text}");
        assert!(text.contains("must be at least 1"), "{text}");
        assert!(
            text.contains("cache `n`, key `ttl`") && text.contains("from 0s (no expiry)"),
            "{text}"
        );
        assert!(!text.contains("cache `m`, key `ttl`"), "0s is no expiry: {text}");
        Ok(())
    });
}

#[test]
fn a_stale_window_needs_a_ttl_and_is_inherited_from_the_defaults() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            "[defaults]\nstale_if_error = \"10m\"\n[caches.kept]\nttl = \"1m\"\nstale_while_revalidate = \"30s\"\n\
             [caches.forever]\nstale_while_revalidate = \"30s\"\n",
        )?;
        let text = problems(build_runtime(&load().unwrap()));
        assert!(
            text.contains("cache `forever`, key `stale_while_revalidate` (from file")
                && text.contains("this cache has no `ttl`"),
            "{text}"
        );
        assert!(
            text.contains("[defaults], key `stale_if_error` (from file"),
            "the inherited window is named where it was set: {text}"
        );
        assert!(!text.contains("cache `kept`"), "{text}");
        jail.create_file(
            "cachex.toml",
            "[defaults]\nstale_if_error = \"10m\"\nttl = \"5m\"\n[caches.kept]\nttl = \"1m\"\nstale_while_revalidate = \"30s\"\n",
        )?;
        let runtime = build_runtime(&load().unwrap()).unwrap();
        let stale = runtime.cache("kept").unwrap().settings().stale;
        assert_eq!(stale.while_revalidate, Duration::from_secs(30));
        assert_eq!(stale.if_error, Duration::from_secs(600));
        jail.set_env("CACHEX_CACHES__KEPT__STALE_IF_ERROR", "-1s");
        let text = problems(load().and_then(|loaded| build_runtime(&loaded)));
        assert!(text.contains("stale_if_error"), "{text}");
        Ok(())
    });
}

#[test]
fn lock_timeout_is_inherited_from_the_defaults_with_a_generous_default() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            "[defaults]\nlock_timeout = \"5s\"\n[caches.a]\n[caches.b]\nlock_timeout = \"250ms\"\n",
        )?;
        let runtime = build_runtime(&load().unwrap()).unwrap();
        assert_eq!(
            runtime.cache("a").unwrap().settings().lock_timeout,
            Duration::from_secs(5)
        );
        assert_eq!(
            runtime.cache("b").unwrap().settings().lock_timeout,
            Duration::from_millis(250)
        );
        let plain = build_cache("c", &CacheConfig::memory()).unwrap();
        assert_eq!(plain.settings().lock_timeout, Duration::from_secs(30));
        Ok(())
    });
}

#[test]
fn a_panicking_client_builder_is_a_problem_not_a_panic() {
    // Built in code, the range check is skipped: r2d2 asserts a positive timeout, and that
    // panic must come back as a problem.
    let config = CacheConfig::new()
        .backend(BackendKind::Redis)
        .url("redis://:hunter2@127.0.0.1:6390")
        .timeout(Duration::ZERO);
    let text = problems(build_cache("zero", &config));
    assert!(text.contains("cache `zero`, key `url`"), "{text}");
    assert!(text.contains("failed inside a client library"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn a_local_tier_needs_a_ttl_a_byte_storing_backend_and_a_cache_of_its_own() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            "[defaults]\nlocal = { ttl = \"30s\" }\n\
             [caches.memory]\nlocal = { ttl = \"30s\" }\n\
             [caches.untimed]\nbackend = \"file\"\npath = \"cache\"\nlocal = { max_entries = 10 }\n\
             [caches.empty]\nbackend = \"file\"\npath = \"cache\"\nlocal = { ttl = \"5s\", max_bytes = 0 }\n",
        )?;
        let text = problems(build_runtime(&load().unwrap()));
        assert!(text.contains("[defaults], key `local` (from file"), "{text}");
        assert!(
            text.contains("cache `memory`, key `local`") && text.contains("in process memory already"),
            "{text}"
        );
        assert!(
            text.contains("cache `untimed`, key `local.ttl`") && text.contains("a local tier needs `ttl`"),
            "{text}"
        );
        assert!(text.contains("cache `empty`, key `local.max_bytes`"), "{text}");
        jail.create_file(
            "cachex.toml",
            "[caches.reports]\nbackend = \"file\"\npath = \"cache\"\nlocal = { max_entries = 10, ttl = \"30s\" }\n",
        )?;
        jail.set_env("CACHEX_CACHES__REPORTS__LOCAL__TTL", "5s");
        let runtime = build_runtime(&load().unwrap()).unwrap();
        let local = runtime.cache("reports").unwrap().settings().local.unwrap();
        assert_eq!((local.max_entries, local.ttl), (Some(10), Duration::from_secs(5)));
        jail.set_env("CACHEX_CACHES__REPORTS__LOCAL__TTL", "soon");
        assert!(load().is_err(), "a bad duration from the environment is an error");
        Ok(())
    });
}

#[test]
fn one_prefix_on_one_redis_database_names_both_caches_and_their_sources() {
    Jail::expect_with(|jail| {
        // One server and database, written two ways (a password, the default database).
        jail.create_file(
            "cachex.toml",
            "[caches.sessions]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6390/0\"\nprefix = \"shared\"\n\
             [caches.users]\nbackend = \"redis\"\nurl = \"redis://:hunter2@127.0.0.1:6390\"\nprefix = \"shared\"\n",
        )?;
        let text = problems(build_runtime(&load().unwrap()));
        assert!(
            text.contains(
                "cache `users`, key `prefix` (from file cachex.toml, key `caches.users.prefix`): \
                 cache `sessions` has the same prefix `shared` (its `prefix`, from file cachex.toml, key \
                 `caches.sessions.prefix`) on the same redis server and database (127.0.0.1:6390, db 0): \
                 the two caches would read, overwrite and clear each other's entries; give one of them \
                 another `prefix`"
            ),
            "{text}"
        );
        assert_eq!(text.lines().count(), 2, "one problem for the pair: {text}");
        assert!(!text.contains("hunter2"), "{text}");
        // From the environment, the variable is named.
        jail.create_file(
            "cachex.toml",
            "[defaults]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6390/2\"\n\
             [caches.sessions]\nprefix = \"shared\"\n[caches.users]\n",
        )?;
        jail.set_env("CACHEX_CACHES__USERS__PREFIX", "shared");
        let text = problems(build_runtime(&load().unwrap()));
        assert!(
            text.contains(
                "cache `users`, key `prefix` (from environment variable CACHEX_CACHES__USERS__PREFIX): \
                 cache `sessions` has the same prefix `shared` (its `prefix`, from file"
            ) && text.contains("(127.0.0.1:6390, db 2)"),
            "{text}"
        );
        Ok(())
    });
}

#[test]
fn a_prefix_equal_to_another_caches_default_prefix_is_a_problem() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            "[caches.reports]\nbackend = \"file\"\npath = \"cache\"\n\
             [caches.exports]\nbackend = \"file\"\npath = \"./cache/\"\nprefix = \"cachex:reports\"\n",
        )?;
        let text = problems(build_runtime(&load().unwrap()));
        assert!(
            text.contains(
                "cache `exports`, key `prefix` (from file cachex.toml, key `caches.exports.prefix`): \
                 cache `reports` has the same prefix `cachex:reports` (its default prefix, `cachex:<name>`) \
                 on the same directory (cache)"
            ),
            "{text}"
        );
        Ok(())
    });
}

#[test]
fn one_prefix_on_one_mongodb_collection_or_memcached_server_is_a_problem() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            "[caches.a]\nbackend = \"mongodb\"\nurl = \"mongodb://u:pw@Db:27017/?authSource=admin\"\n\
             prefix = \"p\"\ncollection = \"entries\"\n\
             [caches.b]\nbackend = \"mongodb\"\nurl = \"mongodb://db\"\nprefix = \"p\"\ncollection = \"entries\"\n\
             [caches.c]\nbackend = \"memcached\"\nurl = \"memcached://127.0.0.1\"\nprefix = \"m\"\n\
             [caches.d]\nbackend = \"memcached\"\nurl = \"memcache://127.0.0.1:11211\"\nprefix = \"m\"\n",
        )?;
        let text = problems(load().and_then(|loaded| cachex_config::check(&loaded)));
        assert!(
            text.contains(
                "cache `b`, key `prefix` (from file cachex.toml, key `caches.b.prefix`): cache `a` has the same \
                 prefix `p`"
            ) && text.contains("on the same mongodb collection (db:27017, database `cachex`, collection `entries`)"),
            "{text}"
        );
        assert!(
            text.contains("cache `d`, key `prefix` (from file cachex.toml, key `caches.d.prefix`): cache `c`")
                && text.contains("on the same memcached server (127.0.0.1:11211)"),
            "{text}"
        );
        assert!(!text.contains("pw@"), "{text}");
        Ok(())
    });
}

#[test]
fn one_prefix_in_different_places_or_in_memory_is_fine() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "cachex.toml",
            // Two redis databases, two directories, two mongodb collections (each cache's own
            // by default), two memcached servers, two backends, two memory caches, and a
            // prefix that starts another (`SCAN` and the file names match `prefix:` then
            // exactly 64 hex digits, so neither clears the other's entries).
            "[caches.r0]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6390/0\"\nprefix = \"p\"\n\
             [caches.r1]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6390/1\"\nprefix = \"p\"\n\
             [caches.r2]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6390/0\"\nprefix = \"p:x\"\n\
             [caches.f1]\nbackend = \"file\"\npath = \"one\"\nprefix = \"p\"\n\
             [caches.f2]\nbackend = \"file\"\npath = \"two\"\nprefix = \"p\"\n\
             [caches.f3]\nbackend = \"file\"\npath = \"one\"\nprefix = \"p:x\"\n\
             [caches.g1]\nbackend = \"mongodb\"\nurl = \"mongodb://127.0.0.1:1\"\nprefix = \"p\"\n\
             [caches.g2]\nbackend = \"mongodb\"\nurl = \"mongodb://127.0.0.1:1\"\nprefix = \"p\"\n\
             [caches.c1]\nbackend = \"memcached\"\nurl = \"memcached://127.0.0.1:11211\"\nprefix = \"p\"\n\
             [caches.c2]\nbackend = \"memcached\"\nurl = \"memcached://127.0.0.1:11212\"\nprefix = \"p\"\n\
             [caches.m1]\nbackend = \"memory\"\nprefix = \"p\"\n\
             [caches.m2]\nbackend = \"memory\"\nprefix = \"p\"\n",
        )?;
        let loaded = load().unwrap();
        if let Err(error) = cachex_config::check(&loaded) {
            panic!("no problem expected: {error}");
        }
        Ok(())
    });
}
