//! Random configurations (a `cachex.toml` and `CACHEX_*` variables built from the model's keys,
//! with values of random types: `0s`, huge numbers, empty strings, unicode, URLs of every
//! backend) through the loader and the build step: never a panic; `Ok`, or an error in which
//! every problem names a cache or `[defaults]`, a key, and where the value came from.
//!
//! URLs point at loopback ports where nothing listens and no `+srv` URL is drawn; valid
//! timeouts are short, so no case waits on the network for long.
#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error

use cachex_config::{build_runtime, load};
use cachex_core::Error;
use figment::Jail;
use proptest::prelude::*;

const KEYS: &[&str] = &[
    "backend",
    "url",
    "ttl",
    "stale_while_revalidate",
    "stale_if_error",
    "on_error",
    "prefix",
    "max_entries",
    "max_bytes",
    "path",
    "timeout",
    "lock_timeout",
    "tls_ca_file",
    "max_item_bytes",
    "database",
    "collection",
    "encoders",
    "signing_key",
    "signing_key_fallbacks",
];

/// A signing key of the right length: it must never appear in a problem.
const SIGNING_KEY: &str = "property-test signing key, forty bytes!!";

const SECTIONS: &[&str] = &["defaults", "fib", "sessions", "a_1"];

const STRINGS: &[&str] = &[
    "0s",
    "1ms",
    "50ms",
    "11m",
    "1h",
    "2h",
    "99999999999999999999y",
    "-5s",
    "",
    " ",
    "ünïcödé ☃",
    "memory",
    "file",
    "redis",
    "mongodb",
    "memcached",
    "bypass",
    "fail",
    "cache_dir",
    "redis://127.0.0.1:1/0",
    "redis://:pw@127.0.0.1:notaport/0",
    "redis://127.0.0.1:1/notadb",
    "rediss://127.0.0.1:1",
    "redis-cluster://127.0.0.1:1,127.0.0.1:2",
    "unix:///nonexistent/r.sock?pass=pw",
    "mongodb://127.0.0.1:1/?appName=x",
    "mongodb://127.0.0.1:99999",
    "memcached://127.0.0.1:1",
    "http://127.0.0.1:1",
    "no scheme",
];

#[derive(Debug, Clone)]
enum Value {
    Text(&'static str),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Value {
    fn toml(&self) -> toml::Value {
        match self {
            Value::Text(s) => toml::Value::String((*s).to_owned()),
            Value::Int(n) => toml::Value::Integer(*n),
            Value::Float(f) => toml::Value::Float(*f),
            Value::Bool(b) => toml::Value::Boolean(*b),
        }
    }

    fn env(&self) -> String {
        match self {
            Value::Text(s) => (*s).to_owned(),
            Value::Int(n) => n.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
        }
    }
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => proptest::sample::select(STRINGS).prop_map(Value::Text),
        1 => prop_oneof![Just(0i64), Just(1), Just(-1), Just(i64::MAX), Just(i64::MIN), any::<i64>()].prop_map(Value::Int),
        1 => prop_oneof![Just(0.0f64), Just(1e300), Just(-0.5)].prop_map(Value::Float),
        1 => any::<bool>().prop_map(Value::Bool),
    ]
}

/// A value of the type `key` reads (still out of range at times).
fn typed(key: &'static str) -> BoxedStrategy<Value> {
    let text = |options: &'static [&'static str]| proptest::sample::select(options).prop_map(Value::Text).boxed();
    match key {
        "backend" => text(&["memory", "file", "redis", "mongodb", "memcached", "sqlite"]),
        "on_error" => text(&["bypass", "fail", "retry"]),
        "ttl" | "timeout" | "lock_timeout" | "stale_while_revalidate" | "stale_if_error" => {
            text(&["0s", "1ms", "50ms", "1h", "2h", "11m", "99999999999999999999y"])
        }
        "url" => proptest::sample::select(&STRINGS[19..]).prop_map(Value::Text).boxed(),
        "max_entries" | "max_bytes" | "max_item_bytes" => {
            prop_oneof![Just(0i64), Just(1), Just(1 << 20), Just(i64::MAX), Just(-1)]
                .prop_map(Value::Int)
                .boxed()
        }
        "path" | "tls_ca_file" => text(&["cache_dir", "nested/dir", "missing.pem", ""]),
        "signing_key" | "signing_key_fallbacks" => text(&[SIGNING_KEY, "short secret", ""]),
        _ => text(&["cachex", "ünïcödé", "", "app:cache"]),
    }
}

/// (section, key, value) settings.
fn settings() -> impl Strategy<Value = Vec<(&'static str, &'static str, Value)>> {
    let setting = (proptest::sample::select(SECTIONS), proptest::sample::select(KEYS))
        .prop_flat_map(|(section, key)| (Just(section), Just(key), prop_oneof![8 => typed(key), 1 => value()]));
    proptest::collection::vec(setting, 0..6)
}

fn document(file: &[(&'static str, &'static str, Value)]) -> String {
    let mut root = toml::Table::new();
    for (section, key, value) in file {
        let table = if *section == "defaults" {
            root.entry("defaults")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        } else {
            root.entry("caches")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap()
                .entry(*section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        };
        table.as_table_mut().unwrap().insert((*key).to_owned(), value.toml());
    }
    toml::to_string(&root).unwrap()
}

fn variable(section: &str, key: &str) -> String {
    if section == "defaults" {
        format!("CACHEX_DEFAULTS__{}", key.to_ascii_uppercase())
    } else {
        format!(
            "CACHEX_CACHES__{}__{}",
            section.to_ascii_uppercase(),
            key.to_ascii_uppercase()
        )
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn any_configuration_loads_and_builds_or_names_every_problem(file in settings(), env in settings()) {
        let toml = document(&file);
        Jail::expect_with(|jail| {
            jail.create_file("cachex.toml", &toml)?;
            for (section, key, value) in &env {
                jail.set_env(variable(section, key), value.env());
            }
            let built = load().and_then(|loaded| build_runtime(&loaded));
            match built {
                Ok(_) => {}
                Err(Error::Invalid(problems)) => {
                    assert!(!problems.0.is_empty());
                    for problem in &problems.0 {
                        let line = problem.to_string();
                        assert!(
                            line.starts_with("cache `") || line.starts_with("[defaults]"),
                            "no cache named: {line}\n{toml}\n{env:?}"
                        );
                        assert!(line.contains("key `"), "no key named: {line}\n{toml}\n{env:?}");
                        assert!(
                            line.contains(" (from file ") || line.contains(" (from environment variable CACHEX_"),
                            "no source named: {line}\n{toml}\n{env:?}"
                        );
                        assert!(!line.contains(":pw@"), "a password shown: {line}");
                        assert!(
                            !line.contains(SIGNING_KEY) && !line.contains("short secret"),
                            "a signing key shown: {line}"
                        );
                    }
                }
                Err(other) => panic!("not a configuration error: {other:?}\n{toml}\n{env:?}"),
            }
            Ok(())
        });
    }
}
