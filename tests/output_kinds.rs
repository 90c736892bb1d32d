//! What of a return value is cached is decided by its type, not by how it is spelled: an alias
//! of `Result` caches `Ok` only and an alias of `Option` caches `Some` only (unless
//! `cache_none`), as the types themselves do; a type of the application's own that is merely
//! named `Result` is cached whole.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::LazyLock;

use cachex::{cached, CacheConfig, Config, OnError};

static SETUP: LazyLock<()> = LazyLock::new(|| {
    cachex::init_with(
        Config::new()
            .cache("kinds", CacheConfig::memory())
            .cache("kinds_strict", CacheConfig::memory().on_error(OnError::Fail)),
    )
    .expect("the test configuration is valid");
});

/// Counts the computations of one function.
struct Calls {
    count: AtomicU32,
}

impl Calls {
    const fn new() -> Self {
        Calls {
            count: AtomicU32::new(0),
        }
    }

    fn add(&self) -> u32 {
        self.count.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn get(&self) -> u32 {
        self.count.load(Ordering::SeqCst)
    }
}

/// An alias whose error is serializable: nothing but the type tells that it is a `Result`.
type Fetched = Result<u32, String>;

static FETCHED: Calls = Calls::new();

#[cached(name = "kinds")]
fn fetch(fail: bool) -> Fetched {
    let n = FETCHED.add();
    if fail {
        Err(format!("attempt {n} failed"))
    } else {
        Ok(n)
    }
}

#[test]
fn an_alias_of_result_caches_ok_only() {
    LazyLock::force(&SETUP);
    assert_eq!(fetch(true), Err("attempt 1 failed".to_owned()));
    assert_eq!(
        fetch(true),
        Err("attempt 2 failed".to_owned()),
        "an Err is not cached: the next call computes again"
    );
    assert_eq!(FETCHED.get(), 2);
    assert_eq!(fetch(false), Ok(3));
    assert_eq!(fetch(false), Ok(3), "an Ok is cached");
    assert_eq!(FETCHED.get(), 3);
}

type Maybe = Option<u32>;

static MAYBE: Calls = Calls::new();

#[cached(name = "kinds")]
fn maybe(found: bool) -> Maybe {
    let n = MAYBE.add();
    found.then_some(n)
}

#[test]
fn an_alias_of_option_caches_some_only() {
    LazyLock::force(&SETUP);
    assert_eq!(maybe(false), None);
    assert_eq!(maybe(false), None);
    assert_eq!(MAYBE.get(), 2, "a None is not cached: the next call computes again");
    assert_eq!(maybe(true), Some(3));
    assert_eq!(maybe(true), Some(3), "a Some is cached");
    assert_eq!(MAYBE.get(), 3);
}

static KEPT_NONE: Calls = Calls::new();

#[cached(name = "kinds", cache_none)]
fn maybe_kept(found: bool) -> Maybe {
    let n = KEPT_NONE.add();
    found.then_some(n)
}

#[test]
fn an_alias_of_option_with_cache_none_caches_none_too() {
    LazyLock::force(&SETUP);
    assert_eq!(maybe_kept(false), None);
    assert_eq!(maybe_kept(false), None);
    assert_eq!(KEPT_NONE.get(), 1, "with cache_none, a None is cached");
}

static READS: Calls = Calls::new();

#[cached(name = "kinds")]
fn read(fail: bool) -> std::io::Result<u32> {
    let n = READS.add();
    if fail {
        Err(std::io::Error::other(format!("read {n} failed")))
    } else {
        Ok(n)
    }
}

#[test]
fn an_io_result_caches_ok_only() {
    LazyLock::force(&SETUP);
    assert!(read(true).is_err());
    assert!(read(true).is_err());
    assert_eq!(READS.get(), 2, "an Err is not cached: the next call computes again");
    assert_eq!(read(false).unwrap(), 3);
    assert_eq!(read(false).unwrap(), 3, "an Ok is cached");
    assert_eq!(READS.get(), 3);
}

static LOADS: Calls = Calls::new();

#[cached(name = "kinds")]
async fn load(fail: bool) -> Fetched {
    let n = LOADS.add();
    tokio::task::yield_now().await;
    if fail {
        Err(format!("load {n} failed"))
    } else {
        Ok(n)
    }
}

#[tokio::test]
async fn an_async_function_returning_an_alias_of_result_caches_ok_only() {
    LazyLock::force(&SETUP);
    assert!(load(true).await.is_err());
    assert!(load(true).await.is_err());
    assert_eq!(LOADS.get(), 2, "an Err is not cached: the next call computes again");
    assert_eq!(load(false).await, Ok(3));
    assert_eq!(load(false).await, Ok(3), "an Ok is cached");
    assert_eq!(LOADS.get(), 3);
}

/// The application's own type named `Result`: not std's, so it is cached whole.
mod own {
    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct Result<T> {
        pub value: T,
        pub failed: bool,
    }
}

static OWN: Calls = Calls::new();

#[cached(name = "kinds")]
fn own_result(n: u32) -> own::Result<u32> {
    OWN.add();
    own::Result { value: n, failed: true }
}

#[test]
fn a_type_of_its_own_named_result_is_cached_whole() {
    LazyLock::force(&SETUP);
    assert_eq!(own_result(4), own_result(4));
    assert_eq!(OWN.get(), 1, "cached whole, whatever its fields say");
}

#[derive(Debug, PartialEq)]
pub struct AppError(String);

impl From<cachex::Error> for AppError {
    fn from(error: cachex::Error) -> Self {
        AppError(error.to_string())
    }
}

/// Under `on_error = "fail"`, an alias of a `Result` whose error takes a `cachex::Error` is a
/// return type that can carry the error: `init` accepts the binding.
type Strict = Result<u32, AppError>;

#[cached(name = "kinds_strict")]
fn strict(n: u32) -> Strict {
    if n == 0 {
        Err(AppError("zero".to_owned()))
    } else {
        Ok(n)
    }
}

#[test]
fn an_alias_of_result_can_carry_a_cachex_error() {
    LazyLock::force(&SETUP);
    assert_eq!(strict(2), Ok(2));
    assert_eq!(strict(0), Err(AppError("zero".to_owned())));
    assert_eq!(cachex::cache("kinds_strict").unwrap().stats().stores, 1);
}
