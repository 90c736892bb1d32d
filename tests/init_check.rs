//! `init()` checks every binding in the binary before the first call and reports every
//! problem in one error. This binary holds deliberately bad bindings.

use std::sync::atomic::{AtomicUsize, Ordering};

use cachex::{cached, CacheConfig, Config, OnError};

/// A type that is neither Serialize nor Display.
#[derive(Debug, Clone)]
pub struct Opaque(u32);

#[cached(name = "bare")]
fn needs_an_encoder(value: Opaque) -> u32 {
    value.0
}

#[cached(name = "checked")]
fn display_of_debug_only(value: Opaque) -> u32 {
    value.0
}

#[cached(name = "undeclared")]
fn bound_to_a_missing_cache(n: u32) -> u32 {
    n
}

#[cached(name = "strict")]
fn cannot_carry_errors(n: u32) -> u32 {
    n
}

#[derive(Debug)]
pub struct StrictError;

impl From<cachex::Error> for StrictError {
    fn from(_: cachex::Error) -> Self {
        StrictError
    }
}

#[cached(name = "strict")]
fn can_carry_errors(n: u32) -> Result<u32, StrictError> {
    Ok(n)
}

#[cached(name = "checked")]
fn unknown_encoder(label: String) -> String {
    label
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(name = "checked")]
fn fine(n: u64) -> u64 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    n
}

#[test]
fn init_reports_every_bad_binding_at_once_then_calls_still_run() {
    let config = Config::new()
        .cache(
            "checked",
            CacheConfig::memory()
                .encoder("init_check::Opaque", "display")
                .encoder("String", "no_such_encoder"),
        )
        .cache("strict", CacheConfig::memory().on_error(OnError::Fail))
        .cache("bare", CacheConfig::memory());
    let error = cachex::init_with(config).unwrap_err();
    let message = error.to_string();
    println!("{message}");
    assert!(message.contains("cachex found 5 problems"), "{message}");
    // An argument type with no key encoding, with the fix.
    assert!(
        message.contains("`init_check::Opaque` does not implement serde::Serialize"),
        "{message}"
    );
    assert!(
        message.contains("[caches.bare.encoders] \"init_check::Opaque\" = one of debug, skip"),
        "{message}"
    );
    // Among the ways out, what actix extractors get by default.
    assert!(
        message.contains(
            "web::Path<T>, web::Query<T>, web::Json<T>, web::Form<T> and web::ReqData<T> are keyed by their T"
        ) && message.contains("web::Data<T> is left out of the key"),
        "{message}"
    );
    // A configured encoder the type cannot use, with the encodings it supports.
    assert!(message.contains("argument `value: Opaque`"), "{message}");
    assert!(message.contains("encoder `display`"), "{message}");
    assert!(message.contains("supports debug, skip"), "{message}");
    // A bound name missing from a configuration that declares caches.
    assert!(message.contains("bound_to_a_missing_cache"), "{message}");
    assert!(message.contains("[caches.undeclared]"), "{message}");
    // on_error = "fail" with a return type that cannot carry the error.
    assert!(message.contains("cannot_carry_errors"), "{message}");
    assert!(!message.contains("can_carry_errors` ("), "{message}");
    // An unknown encoder name, with the accepted ones.
    assert!(message.contains("unknown encoder `no_such_encoder`"), "{message}");
    assert!(message.contains("accepted: serde, display, debug, skip"), "{message}");

    // init failed, so nothing was installed; the first call initialises lazily from the
    // (absent) configuration files: the embedded default, where every name gets a memory cache.
    assert_eq!(fine(3), 3);
    assert_eq!(fine(3), 3);
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    // A binding that is invalid under the embedded default runs uncached, and still returns.
    assert_eq!(needs_an_encoder(Opaque(5)), 5);
    assert_eq!(display_of_debug_only(Opaque(6)), 6);
    assert_eq!(bound_to_a_missing_cache(7), 7);
    assert_eq!(cannot_carry_errors(8), 8);
    assert_eq!(can_carry_errors(9).unwrap(), 9);
    assert_eq!(unknown_encoder("x".into()), "x");
    assert!(matches!(cachex::init(), Err(cachex::Error::AlreadyInitialized)));
}
