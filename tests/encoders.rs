//! Key encoders chosen by type name in the configuration: built-ins and `#[cachex::encoder]`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, Mutex};

use cachex::{cached, encoder, CacheConfig, Config};

/// A type with no serde support, keyed by its Display text.
#[derive(Clone)]
pub struct Url(String);

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A type keyed by a custom encoder: only its lowercase form matters.
#[derive(Clone, Debug)]
pub struct Email(String);

#[encoder]
fn email_lowercase(email: &Email) -> String {
    email.0.to_lowercase()
}

static SETUP: LazyLock<()> = LazyLock::new(|| {
    cachex::init_with(
        Config::new()
            .cache("pages", CacheConfig::memory().encoder("encoders::Url", "display"))
            .cache(
                "users",
                CacheConfig::memory()
                    .encoder("Email", "email_lowercase")
                    .encoder("alloc::string::String", "skip"),
            )
            .cache("debugged", CacheConfig::memory().encoder("encoders::Email", "debug")),
    )
    .expect("valid configuration");
});

static COMPUTED: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Default::default);

fn bump(what: String) {
    *COMPUTED.lock().unwrap().entry(what).or_default() += 1;
}

fn computed(what: &str) -> usize {
    COMPUTED.lock().unwrap().get(what).copied().unwrap_or(0)
}

#[cached(name = "pages")]
fn page(url: &Url) -> usize {
    bump(format!("page:{url}"));
    url.0.len()
}

#[test]
fn display_encoder_from_configuration() {
    LazyLock::force(&SETUP);
    assert_eq!(page(&Url("https://a.example/x".into())), 19);
    assert_eq!(page(&Url("https://a.example/x".into())), 19);
    assert_eq!(computed("page:https://a.example/x"), 1);
    assert_eq!(page(&Url("https://a.example/y".into())), 19);
    assert_eq!(computed("page:https://a.example/y"), 1);
}

#[cached(name = "users")]
fn profile(email: Email, note: String) -> String {
    bump(format!("profile:{}", email.0));
    format!("profile of {} ({note})", email.0.to_lowercase())
}

#[test]
fn custom_encoder_and_type_name_match_as_written_or_in_full() {
    LazyLock::force(&SETUP);
    let first = profile(Email("Ann@Example.com".into()), "first".into());
    // Same lowercase email, another note: `String` is skipped in this cache, so it is a hit.
    let second = profile(Email("ann@example.com".into()), "second".into());
    assert_eq!(first, second);
    assert_eq!(
        computed("profile:Ann@Example.com") + computed("profile:ann@example.com"),
        1
    );
    profile(Email("bob@example.com".into()), "x".into());
    assert_eq!(computed("profile:bob@example.com"), 1);
}

#[cached(name = "debugged")]
fn debugged(email: &Email) -> usize {
    bump(format!("debugged:{}", email.0));
    email.0.len()
}

#[test]
fn debug_encoder_distinguishes_values() {
    LazyLock::force(&SETUP);
    debugged(&Email("A".into()));
    debugged(&Email("a".into()));
    debugged(&Email("A".into()));
    assert_eq!(computed("debugged:A"), 1);
    assert_eq!(computed("debugged:a"), 1);
}
