//! Every attribute and body shape of the macros in one crate compiled with every warning and
//! every default clippy lint denied: code the macros generate raises nothing in a user's crate.
//! A warning fails `cargo test` (`deny(warnings)`), a clippy lint fails
//! `cargo clippy --all-targets -- -D warnings` (`deny(clippy::all)`). Nothing here calls the
//! `_invalidate` companions of most functions, on purpose: an unused companion must not warn.
#![deny(warnings)]
#![deny(clippy::all)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};

use cachex::{cached, encoder, singleton, CacheConfig, Config};
use serde::{Deserialize, Serialize};

static CALLS: AtomicU32 = AtomicU32::new(0);

static SETUP: LazyLock<()> = LazyLock::new(|| {
    cachex::init_with(Config::new().cache("hygiene", CacheConfig::memory().encoder("Tenant", "tenant_name")))
        .expect("the test configuration is valid");
});

fn called() -> u32 {
    CALLS.fetch_add(1, Ordering::SeqCst)
}

#[derive(Debug)]
pub struct AppError(String);

impl From<cachex::Error> for AppError {
    fn from(error: cachex::Error) -> Self {
        AppError(error.to_string())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub rows: Vec<u32>,
}

/// A type keyed by a `#[cachex::encoder]` (it has no serde support).
#[derive(Clone, Debug)]
pub struct Tenant(String);

#[encoder]
fn tenant_name(tenant: &Tenant) -> String {
    tenant.0.to_lowercase()
}

/// A client left out of keys.
pub struct Client;

#[cached(name = "hygiene")]
fn plain(n: u64) -> u64 {
    called();
    n + 1
}

#[cached(name = "hygiene", version = 2, id = "hygiene::renamed")]
fn versioned(n: u64) -> u64 {
    n * 2
}

#[cached(name = "hygiene", skip = "client, verbose")]
fn skipped(id: u32, client: &Client, verbose: bool, #[skip] trace: &str, _note: &str) -> Report {
    let _ = (client, verbose, trace);
    Report { rows: vec![id] }
}

#[cached(name = "hygiene")]
fn fallible(id: u32) -> Result<Report, AppError> {
    if id == 0 {
        return Err(AppError("zero".into()));
    }
    Ok(Report { rows: vec![id] })
}

#[cached(name = "hygiene")]
fn optional(id: u32) -> Option<u32> {
    (id > 0).then_some(id)
}

#[cached(name = "hygiene", cache_none)]
fn optional_kept(id: u32) -> Option<u32> {
    (id > 0).then_some(id)
}

#[cached(name = "hygiene")]
fn borrowed(text: &str, items: &[u8], list: &Vec<u32>, owned: String) -> usize {
    text.len() + items.len() + list.len() + owned.len()
}

#[cached(name = "hygiene")]
fn named_lifetime<'a>(text: &'a str, _other: &'a str) -> usize {
    text.len()
}

#[cached(name = "hygiene")]
fn mutable_binding(mut n: u64) -> u64 {
    n += 1;
    n
}

#[cached(name = "hygiene")]
fn no_arguments() -> u32 {
    41 + 1
}

#[cached(name = "hygiene")]
fn tenant(tenant: &Tenant) -> usize {
    tenant.0.len()
}

#[cached(name = "hygiene")]
async fn plain_async(n: u64) -> u64 {
    tokio::task::yield_now().await;
    n + 1
}

#[cached(name = "hygiene")]
async fn fallible_async(id: u32, _client: &Client) -> Result<Option<Report>, AppError> {
    Ok((id > 0).then(|| Report { rows: vec![id] }))
}

pub struct Repo {
    label: &'static str,
}

impl Repo {
    #[cached(name = "hygiene")]
    fn lookup(&self, id: u32) -> String {
        format!("{}-{id}", self.label)
    }

    #[cached(name = "hygiene")]
    async fn lookup_async(&self, id: u32) -> Result<String, AppError> {
        Ok(format!("{}-{id}", self.label))
    }
}

#[singleton]
fn base() -> u32 {
    7
}

#[singleton]
async fn base_async() -> u32 {
    8
}

#[singleton]
fn connection(host: &str, port: u16) -> String {
    format!("{host}:{port}")
}

#[singleton]
async fn pool(size: usize) -> Result<Vec<u8>, AppError> {
    if size == 0 {
        return Err(AppError("empty".into()));
    }
    Ok(vec![0; size])
}

#[singleton]
fn settings() -> Result<String, AppError> {
    Ok("settings".to_owned())
}

#[cfg(feature = "actix")]
mod actix_shapes {
    //! `#[dependency]`: zero arguments, another dependency as argument, sync and async,
    //! fallible, combined with `#[cached]`.
    use cachex::actix::__private::actix_web;
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, Serialize, Deserialize)]
    pub struct Origin(pub String);

    #[derive(Clone, Debug, Serialize, Deserialize)]
    pub struct Page(pub String);

    #[derive(Clone, Debug, Serialize, Deserialize)]
    pub struct Title(pub String);

    #[cachex::actix::dependency]
    pub fn origin() -> Origin {
        Origin("https://example.com".to_owned())
    }

    #[cachex::actix::dependency]
    #[cachex::cached(name = "hygiene")]
    pub async fn page(origin: Origin) -> Result<Page, actix_web::Error> {
        Ok(Page(format!("{}/page", origin.0)))
    }

    #[cachex::actix::dependency]
    pub fn title(page: Page, origin: Origin) -> Title {
        Title(format!("{} at {}", page.0, origin.0))
    }

    #[test]
    fn dependencies_extract() {
        use actix_web::FromRequest;
        std::sync::LazyLock::force(&super::SETUP);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let request = actix_web::test::TestRequest::default().to_http_request();
        let title = runtime.block_on(Title::extract(&request)).unwrap();
        assert_eq!(title.0, "https://example.com/page at https://example.com");
    }
}

#[test]
fn every_shape_runs() {
    LazyLock::force(&SETUP);
    assert_eq!(plain(1), 2);
    assert_eq!(plain(1), 2);
    plain_invalidate(1).unwrap();
    assert_eq!(versioned(2), 4);
    assert_eq!(skipped(3, &Client, true, "a", "b"), Report { rows: vec![3] });
    assert_eq!(skipped(3, &Client, false, "c", "d"), Report { rows: vec![3] });
    assert_eq!(fallible(0).unwrap_err().0, "zero");
    assert_eq!(fallible(1).unwrap(), Report { rows: vec![1] });
    assert_eq!(optional(0), None);
    assert_eq!(optional_kept(2), Some(2));
    assert_eq!(borrowed("ab", &[1], &vec![1, 2], "c".into()), 6);
    assert_eq!(mutable_binding(1), 2);
    assert_eq!(named_lifetime("abc", "d"), 3);
    assert_eq!(no_arguments(), 42);
    assert_eq!(tenant(&Tenant("Acme".into())), 4);
    let repo = Repo { label: "r" };
    assert_eq!(repo.lookup(1), "r-1");
    repo.lookup_invalidate(1).unwrap();
    assert_eq!(*base(), 7);
    assert!(Arc::ptr_eq(&base(), &base()));
    assert_eq!(*connection("db", 5432), "db:5432");
    assert_eq!(*settings().unwrap(), "settings");
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        assert_eq!(plain_async(1).await, 2);
        plain_async_invalidate(1).await.unwrap();
        assert!(fallible_async(1, &Client).await.unwrap().is_some());
        assert_eq!(repo.lookup_async(2).await.unwrap(), "r-2");
        assert_eq!(*base_async().await, 8);
        assert!(pool(0).await.is_err());
        assert_eq!(pool(2).await.unwrap().len(), 2);
    });
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        1,
        "plain(1) computed once before its invalidation"
    );
}
