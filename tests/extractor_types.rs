//! Only actix-web's extractors are keyed by the data they carry: a type of the application's
//! own that is merely named like one (`Path<T>`, `Query<T>`, ...) is keyed whole, by its own
//! `Serialize`, so none of its fields is dropped from the key.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::LazyLock;

use cachex::{cached, CacheConfig, Config};

static SETUP: LazyLock<()> = LazyLock::new(|| {
    cachex::init_with(Config::new().cache("extractor_types", CacheConfig::memory()))
        .expect("the test configuration is valid");
});

/// The application's own types, named like actix-web's extractors; each carries a second
/// field besides its `T`, and derefs to the `T` as actix-web's do.
mod own {
    #[derive(serde::Serialize)]
    pub struct Path<T> {
        pub inner: T,
        pub tenant: String,
    }

    impl<T> std::ops::Deref for Path<T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.inner
        }
    }

    #[derive(serde::Serialize)]
    pub struct Query<T>(pub T, pub u8);
}

static PATHS: AtomicU32 = AtomicU32::new(0);

#[cached(name = "extractor_types")]
fn by_own_path(path: own::Path<u32>) -> String {
    PATHS.fetch_add(1, Ordering::SeqCst);
    format!("{}@{}", *path, path.tenant)
}

fn path(inner: u32, tenant: &str) -> own::Path<u32> {
    own::Path {
        inner,
        tenant: tenant.to_owned(),
    }
}

#[test]
fn a_type_of_its_own_named_path_is_keyed_whole() {
    LazyLock::force(&SETUP);
    assert_eq!(by_own_path(path(1, "a")), "1@a");
    assert_eq!(
        by_own_path(path(1, "b")),
        "1@b",
        "the second field is part of the key: not served the first tenant's value"
    );
    assert_eq!(PATHS.load(Ordering::SeqCst), 2);
    assert_eq!(by_own_path(path(1, "a")), "1@a");
    assert_eq!(PATHS.load(Ordering::SeqCst), 2, "the same value whole is a hit");
    by_own_path_invalidate(path(1, "a")).unwrap();
    assert_eq!(by_own_path(path(1, "a")), "1@a");
    assert_eq!(PATHS.load(Ordering::SeqCst), 3, "invalidate forms the same whole key");
}

static QUERIES: AtomicU32 = AtomicU32::new(0);

#[cached(name = "extractor_types")]
fn by_own_query(query: &own::Query<String>) -> usize {
    QUERIES.fetch_add(1, Ordering::SeqCst);
    query.0.len() + usize::from(query.1)
}

#[test]
fn a_borrowed_type_of_its_own_named_query_is_keyed_whole() {
    LazyLock::force(&SETUP);
    assert_eq!(by_own_query(&own::Query("ab".to_owned(), 1)), 3);
    assert_eq!(by_own_query(&own::Query("ab".to_owned(), 2)), 4);
    assert_eq!(QUERIES.load(Ordering::SeqCst), 2);
}

/// actix-web's own extractors are still keyed by their `T`: `web::Path<T>` and `web::Query<T>`
/// implement no `Serialize`, so keyed whole they would need an encoder (`init` would refuse
/// them); keyed by their `T`, equal values hit and others miss.
#[cfg(feature = "actix")]
mod actix {
    use super::*;
    use cachex::actix::__private::actix_web::web;

    static LOADS: AtomicU32 = AtomicU32::new(0);

    #[cached(name = "extractor_types")]
    fn by_path(id: web::Path<u32>, query: &web::Query<String>) -> u32 {
        LOADS.fetch_add(1, Ordering::SeqCst);
        *id + query.len() as u32
    }

    #[test]
    fn actix_web_extractors_are_keyed_by_their_data() {
        LazyLock::force(&SETUP);
        let path = || web::Path::from(7u32);
        let query = |q: &str| web::Query(q.to_owned());
        assert_eq!(by_path(path(), &query("abc")), 10);
        assert_eq!(by_path(path(), &query("abc")), 10);
        assert_eq!(LOADS.load(Ordering::SeqCst), 1, "keyed by the data: a hit");
        assert_eq!(by_path(path(), &query("abcd")), 11);
        assert_eq!(by_path(web::Path::from(8), &query("abc")), 11);
        assert_eq!(LOADS.load(Ordering::SeqCst), 3, "other data, other keys");
    }
}
