//! The actix plugin the way a newcomer writes it, over real HTTP with two workers: extractor
//! arguments of a cached dependency need no configuration. `web::Path<T>` and `web::Query<T>`
//! are keyed by their `T`, `web::Data<T>` is left out of the key, and a `HashMap` query is
//! keyed independently of its order.

mod support;

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use actix_web::web;
use cachex::{CacheConfig, Config};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub id: u32,
    pub tag: String,
    pub db: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Filter {
    pub tag: String,
}

/// Application state: not `Serialize`, and no part of any key.
pub struct Db {
    pub name: String,
}

/// Computations per (id, tag).
static LOADS: LazyLock<Mutex<HashMap<(u32, String), usize>>> = LazyLock::new(Default::default);

fn loads(id: u32, tag: &str) -> usize {
    LOADS.lock().unwrap().get(&(id, tag.to_owned())).copied().unwrap_or(0)
}

#[cachex::actix::dependency]
#[cachex::cached(name = "users")]
async fn load_user(id: web::Path<u32>, filter: web::Query<Filter>, db: web::Data<Db>) -> User {
    *LOADS.lock().unwrap().entry((*id, filter.tag.clone())).or_default() += 1;
    User {
        id: *id,
        tag: filter.tag.clone(),
        db: db.name.clone(),
    }
}

async fn user(user: User) -> web::Json<User> {
    web::Json(user)
}

/// Computations per number of parameters.
static SEARCHES: LazyLock<Mutex<HashMap<usize, usize>>> = LazyLock::new(Default::default);

#[cachex::cached(name = "search")]
async fn search(params: web::Query<HashMap<String, String>>) -> usize {
    *SEARCHES.lock().unwrap().entry(params.len()).or_default() += 1;
    params.len()
}

async fn search_handler(params: web::Query<HashMap<String, String>>) -> String {
    search(params).await.to_string()
}

/// An app with its own `Db`, on a free port with two workers; returns its base URL.
fn start(db: &'static str) -> String {
    LazyLock::force(&INIT);
    support::start(move |config, _| {
        config
            .app_data(web::Data::new(Db { name: db.to_owned() }))
            .route("/users/{id}", web::get().to(user))
            .route("/search", web::get().to(search_handler));
    })
}

static INIT: LazyLock<()> = LazyLock::new(|| {
    cachex::init_with(
        Config::new()
            .cache("users", CacheConfig::memory())
            .cache("search", CacheConfig::memory()),
    )
    .expect("init() accepts extractor arguments with no encoder configured");
});

static APP_A: LazyLock<String> = LazyLock::new(|| start("a"));
static APP_B: LazyLock<String> = LazyLock::new(|| start("b"));

async fn get<T: serde::de::DeserializeOwned>(url: String) -> T {
    support::get_ok(&url).await.json().await.unwrap()
}

#[tokio::test]
async fn path_and_query_arguments_hit_the_second_time_and_miss_for_another_value() {
    let base = &*APP_A;
    let first: User = get(format!("{base}/users/7?tag=x")).await;
    let second: User = get(format!("{base}/users/7?tag=x")).await;
    assert_eq!(first, second);
    assert_eq!(first.id, 7);
    assert_eq!(loads(7, "x"), 1, "the second request was a hit");
    let other_path: User = get(format!("{base}/users/8?tag=x")).await;
    assert_eq!(
        (other_path.id, loads(8, "x")),
        (8, 1),
        "another path value is another key"
    );
    let other_query: User = get(format!("{base}/users/7?tag=y")).await;
    assert_eq!(
        (other_query.tag.as_str(), loads(7, "y")),
        ("y", 1),
        "another query is another key"
    );
    assert_eq!(loads(7, "x"), 1);
}

#[tokio::test]
async fn two_apps_with_different_state_share_entries_for_the_same_path() {
    let (a, b) = (&*APP_A, &*APP_B);
    let from_a: User = get(format!("{a}/users/21?tag=shared")).await;
    let from_b: User = get(format!("{b}/users/21?tag=shared")).await;
    assert_eq!(from_a.db, "a");
    assert_eq!(
        from_b, from_a,
        "app b got the entry app a computed: web::Data is not in the key"
    );
    assert_eq!(loads(21, "shared"), 1);
}

#[tokio::test]
async fn a_hash_map_query_is_keyed_independently_of_its_order() {
    let base = &*APP_A;
    let pairs: Vec<String> = (0..12).map(|i| format!("k{i}={i}")).collect();
    let forward = pairs.join("&");
    let backward = pairs.iter().rev().cloned().collect::<Vec<_>>().join("&");
    let first: usize = get(format!("{base}/search?{forward}")).await;
    let second: usize = get(format!("{base}/search?{backward}")).await;
    let third: usize = get(format!("{base}/search?{forward}")).await;
    assert_eq!((first, second, third), (12, 12, 12));
    assert_eq!(
        SEARCHES.lock().unwrap().get(&12).copied(),
        Some(1),
        "equal maps built in other orders, in other workers, are one key"
    );
}

/// A type of the application's own named `Data`: keyed like any other argument.
mod own {
    #[derive(serde::Serialize)]
    pub struct Data<T>(pub T);
}

#[cachex::cached(name = "search")]
fn own_data(data: own::Data<u32>) -> u32 {
    data.0
}

#[test]
fn a_type_of_another_crate_named_data_is_part_of_the_key() {
    LazyLock::force(&INIT);
    assert_eq!(own_data(own::Data(1)), 1);
    assert_eq!(
        own_data(own::Data(2)),
        2,
        "not left out of the key like actix-web's Data"
    );
}
