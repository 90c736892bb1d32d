//! No secret from a URL in `Display` or `Debug` of URLs, backend options and errors: a table
//! of URL forms across redis, rediss, redis-cluster, unix, mongodb, mongodb+srv and memcached,
//! with passwords holding any character and secrets in query parameters.

use cachex_core::redact::{redact, redact_url, SecretUrl};
use cachex_core::{Error, Problem, Problems};

/// (URL, its secrets, text that must survive redaction).
const TABLE: &[(&str, &[&str], &str)] = &[
    (
        "redis://app:s3cret-one@db:6379/0",
        &["s3cret-one"],
        "redis://app:***@db:6379/0",
    ),
    ("redis://:pa/ss#wo?rd@db:6379/0", &["pa/ss#wo?rd"], "@db:6379/0"),
    ("redis://app:pass word@db:6379", &["pass word"], "@db:6379"),
    (
        "rediss://app:p%40ss%3Aw0rd@db:6380/1",
        &["p%40ss%3Aw0rd", "p@ss:w0rd"],
        "rediss://app:***@db:6380/1",
    ),
    (
        "redis+unix:///tmp/r.sock?db=0&pass=unixsecret",
        &["unixsecret"],
        "/tmp/r.sock?db=0&pass=***",
    ),
    (
        "unix:///tmp/r.sock?password=sockpass1&db=2",
        &["sockpass1"],
        "password=***&db=2",
    ),
    (
        "redis-cluster://u:clusterpw@h1:7000,h2:7001/0",
        &["clusterpw"],
        "@h1:7000,h2:7001/0",
    ),
    ("rediss-cluster://:tls@cluster@h1:7000", &["tls@cluster"], "@h1:7000"),
    ("redis://db:6379/0?token=tok-123456", &["tok-123456"], "token=***"),
    (
        "redis://u:p w/#?@x@db:6379/0?Pass=second-secret",
        &["p w/#?@x", "second-secret"],
        "Pass=***",
    ),
    (
        "mongodb://root:m0ngo!pw@h1:27017,h2:27017/db?replicaSet=rs",
        &["m0ngo!pw"],
        "replicaSet=rs",
    ),
    (
        "mongodb://h/?tlsCertificateKeyFilePassword=certpw99",
        &["certpw99"],
        "tlsCertificateKeyFilePassword=***",
    ),
    (
        "mongodb://user:pw-mongo@h/?authSource=admin&SECRETKEY=AbC123xyz",
        &["pw-mongo", "AbC123xyz"],
        "authSource=admin",
    ),
    (
        "mongodb+srv://user:srv/pw?x@cluster0.example.net/db?retryWrites=true",
        &["srv/pw?x"],
        "@cluster0.example.net/db?retryWrites=true",
    ),
    (
        "mongodb+srv://cluster0.example.net/?apiToken=srvtoken1",
        &["srvtoken1"],
        "apiToken=***",
    ),
    (
        "memcached://u:memcpw1@127.0.0.1:11211",
        &["memcpw1"],
        "@127.0.0.1:11211",
    ),
    (
        "memcache://127.0.0.1:11211?apiKey=memkey777&timeout=1",
        &["memkey777"],
        "timeout=1",
    ),
    // URLs that do not parse, redacted by their shape: no `@host` after the password, several
    // `@` and no `:`.
    ("redis://app:hunter2hunter2", &["hunter2hunter2"], "redis://app:***"),
    ("redis://:nohost-pw/0?db=1", &["nohost-pw"], "redis://:***/0?db=1"),
    ("mongodb://root:m0ngo pw 2", &["m0ngo pw 2"], "mongodb://root:***"),
    (
        "memcached://u:mem%25cpw,h:1",
        &["mem%25cpw", "mem%cpw"],
        "memcached://u:***",
    ),
    ("redis://app@at-secret@db:6379", &["at-secret"], "redis://***@db:6379"),
];

fn assert_hidden(what: &str, shown: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!shown.contains(secret), "{what} shows `{secret}`: {shown}");
    }
}

#[test]
fn urls_show_no_secret_and_keep_the_rest() {
    assert!(TABLE.len() >= 15);
    for (url, secrets, kept) in TABLE {
        let secret_url = SecretUrl::new(*url);
        let display = secret_url.to_string();
        let debug = format!("{secret_url:?}");
        assert_hidden(&format!("Display of {display}"), &display, secrets);
        assert_hidden(&format!("Debug of {display}"), &debug, secrets);
        assert!(display.contains(kept), "{display} lost `{kept}`");
        assert_eq!(redact_url(url), display);
        assert_eq!(secret_url.expose(), *url, "the client gets the real URL");
    }
}

#[test]
fn errors_quoting_urls_show_no_secret() {
    for (url, secrets, _) in TABLE {
        let _remembered = SecretUrl::new(*url);
        let quoted = format!("cannot connect to {url}: connection refused");
        let problem = Problem::new("cache `x`, key `url`", quoted.clone()).origin(format!("file cachex.toml ({url})"));
        assert_hidden("a Problem", &problem.to_string(), secrets);
        let invalid = Error::Invalid(Problems(vec![problem]));
        assert_hidden("Error::Invalid", &invalid.to_string(), secrets);
        assert_hidden("Error::Invalid (Debug)", &format!("{invalid:?}"), secrets);
        let backend = Error::Backend {
            cache: "x".into(),
            backend: "redis",
            source: quoted.clone().into(),
        };
        assert_hidden("Error::Backend", &backend.to_string(), secrets);
        assert_hidden("Error::Backend (Debug)", &format!("{backend:?}"), secrets);
        assert_hidden(
            "Error::NotInitialized",
            &Error::NotInitialized(quoted.clone()).to_string(),
            secrets,
        );
        assert_hidden("redact", &redact(&quoted), secrets);
    }
}

#[test]
#[cfg(feature = "redis")]
fn redis_options_show_no_secret() {
    for (url, secrets, _) in TABLE
        .iter()
        .filter(|(url, _, _)| url.starts_with("redis") || url.starts_with("unix"))
    {
        let options = cachex_core::backend::redis::RedisOptions::new(url);
        assert_hidden("RedisOptions", &format!("{options:?}"), secrets);
    }
}

#[test]
#[cfg(feature = "mongodb")]
fn mongodb_options_show_no_secret() {
    for (url, secrets, _) in TABLE.iter().filter(|(url, _, _)| url.starts_with("mongodb")) {
        let options = cachex_core::backend::mongodb::MongoOptions::new(url, "cachex", "c");
        assert_hidden("MongoOptions", &format!("{options:?}"), secrets);
    }
}

#[test]
fn configuration_debug_shows_no_secret() {
    for (url, secrets, _) in TABLE {
        let config = cachex::Config::new().cache("x", cachex::CacheConfig::new().url(url));
        assert_hidden("Config", &format!("{config:?}"), secrets);
    }
}

#[test]
fn urls_that_parse_keep_their_ports_in_free_text() {
    for text in [
        "cannot reach redis://db:6379: connection refused",
        "tried redis://127.0.0.1:6390/0, then gave up",
        "mongodb://h1:27017,h2:27018/?replicaSet=rs timed out",
        "redis-cluster://[::1]:7000,h2:7001 has no slots",
    ] {
        assert_eq!(redact(text), text);
    }
    assert_eq!(
        redact("port of redis://app:hunter2 refused"),
        "port of redis://app:*** refused"
    );
}
