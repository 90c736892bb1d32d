//! The MongoDB backend against a MongoDB-protocol server (the PyPI `mongoeco` server started by
//! the test support, or a real MongoDB named by `CACHEX_TEST_MONGODB_URL`).
#![cfg(feature = "mongodb")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use cachex::{cached, CacheConfig, Config, OnError};
use mongodb::bson::{doc, Document};
use support::mongo_server::MongoServer;
use support::{signing, Counter};

struct Servers {
    main: MongoServer,
    fault: Mutex<MongoServer>,
    database: String,
}

static SERVERS: LazyLock<Servers> = LazyLock::new(|| {
    let servers = Servers {
        main: MongoServer::for_tests(),
        fault: Mutex::new(MongoServer::launch(support::free_port())),
        database: format!("cachex_test_{}", std::process::id()),
    };
    let mongo = |url: &str| {
        let mut cache = CacheConfig::new()
            .backend(cachex::BackendKind::Mongodb)
            .url(url)
            .timeout(Duration::from_secs(2));
        cache.database = Some(servers.database.clone());
        cache
    };
    let main = servers.main.url.clone();
    let shared = |prefix: &str| {
        let mut cache = mongo(&main).prefix(prefix);
        cache.collection = Some("shared".into());
        cache
    };
    cachex::init_with(
        Config::new()
            .defaults(CacheConfig::new().ttl(Duration::from_secs(600)))
            .cache("mg", mongo(&main))
            .cache("mg_filter", mongo(&main).ttl(Duration::from_millis(300)))
            .cache("mg_refresh", mongo(&main).ttl(Duration::from_secs(60)))
            .cache("mg_dot", shared("a.b"))
            .cache("mg_x", shared("aXb"))
            .cache("mg_big", mongo(&main))
            .cache("mg_big_fail", mongo(&main).on_error(OnError::Fail))
            .cache("mg_corrupt", mongo(&main))
            .cache("mg_flight", mongo(&main))
            .cache("mg_signed", mongo(&main).signing_key(signing::KEY, &[]))
            .cache(
                "mg_rotated",
                mongo(&main).signing_key(signing::KEY, &[signing::OLD_KEY]),
            )
            .cache(
                "mg_fault",
                mongo(&servers.fault.lock().unwrap().url).timeout(Duration::from_millis(500)),
            ),
    )
    .expect("valid test configuration");
    servers
});

fn servers() -> &'static Servers {
    &SERVERS
}

async fn collection(name: &str) -> mongodb::Collection<Document> {
    let client = mongodb::Client::with_uri_str(&servers().main.url).await.unwrap();
    client.database(&servers().database).collection(name)
}

static COMPUTED: LazyLock<Counter> = LazyLock::new(Counter::default);

#[cached(name = "mg")]
fn sync_value(id: u32) -> String {
    COMPUTED.bump(format!("sync:{id}"));
    format!("sync {id}")
}

#[cached(name = "mg")]
async fn async_value(id: u32) -> (u32, Vec<u8>) {
    COMPUTED.bump(format!("async:{id}"));
    (id, vec![id as u8; 100])
}

#[tokio::test]
async fn sync_and_async_round_trips() {
    servers();
    // The blocking side, called from inside a runtime (it moves off the runtime's thread).
    assert_eq!(sync_value(1), "sync 1");
    assert_eq!(sync_value(1), "sync 1");
    assert_eq!(COMPUTED.get("sync:1"), 1);
    assert_eq!(async_value(2).await, (2, vec![2; 100]));
    assert_eq!(async_value(2).await, (2, vec![2; 100]));
    assert_eq!(COMPUTED.get("async:2"), 1);
    let documents = collection("mg").await;
    let found = documents.find_one(doc! {}).await.unwrap().unwrap();
    assert!(found.get_str("_id").unwrap().starts_with("cachex:mg:"));
    assert!(found.get_binary_generic("value").is_ok());
    assert!(found.get_datetime("expires_at").is_ok());
}

#[test]
fn the_blocking_side_works_outside_any_runtime() {
    servers();
    assert_eq!(sync_value(9), "sync 9");
    assert_eq!(sync_value(9), "sync 9");
    assert_eq!(COMPUTED.get("sync:9"), 1);
}

#[tokio::test]
async fn the_ttl_index_exists_after_init() {
    servers();
    let indexes = collection("mg").await.list_indexes().await.unwrap();
    use futures_util::TryStreamExt;
    let indexes: Vec<_> = indexes.try_collect().await.unwrap();
    let ttl = indexes
        .iter()
        .find(|index| index.keys == doc! { "expires_at": 1 })
        .unwrap_or_else(|| panic!("no index on expires_at: {indexes:?}"));
    assert_eq!(ttl.options.as_ref().and_then(|o| o.expire_after), Some(Duration::ZERO));
}

#[cached(name = "mg_filter")]
async fn filtered(id: u32) -> u32 {
    COMPUTED.bump(format!("filtered:{id}"));
    id
}

#[tokio::test]
async fn expiry_is_enforced_by_the_read_filter() {
    servers();
    let documents = collection("mg_filter").await;
    // No TTL index here, so nothing but the read filter can hide an expired document.
    documents.drop_indexes().await.unwrap();
    filtered(1).await;
    filtered(1).await;
    assert_eq!(COMPUTED.get("filtered:1"), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    filtered(1).await;
    assert_eq!(COMPUTED.get("filtered:1"), 2, "an expired document is a miss");
}

#[tokio::test]
async fn an_overwrite_refreshes_the_expiry() {
    servers();
    let handle = cachex::cache("mg_refresh").unwrap();
    let documents = collection("mg_refresh").await;
    handle.set_async(&"k", &1u8).await.unwrap();
    let first = documents.find_one(doc! {}).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    handle.set_async(&"k", &2u8).await.unwrap();
    let second = documents.find_one(doc! {}).await.unwrap().unwrap();
    assert_eq!(
        documents.count_documents(doc! {}).await.unwrap(),
        1,
        "one document per entry"
    );
    assert!(second.get_datetime("expires_at").unwrap() > first.get_datetime("expires_at").unwrap());
    assert_eq!(handle.get_async::<_, u8>(&"k").await.unwrap(), Some(2));
}

#[tokio::test]
async fn clear_is_prefix_exact() {
    servers();
    let dot = cachex::cache("mg_dot").unwrap();
    let x = cachex::cache("mg_x").unwrap();
    for id in 0..3u32 {
        dot.set_async(&id, &id).await.unwrap();
        x.set_async(&id, &id).await.unwrap();
    }
    let documents = collection("shared").await;
    assert_eq!(documents.count_documents(doc! {}).await.unwrap(), 6);
    dot.clear_async().await.unwrap();
    // `a.b` as a pattern would match `aXb`: escaped, it does not.
    assert_eq!(documents.count_documents(doc! {}).await.unwrap(), 3);
    assert_eq!(x.get_async::<_, u32>(&1u32).await.unwrap(), Some(1));
    x.clear().unwrap();
    assert_eq!(documents.count_documents(doc! {}).await.unwrap(), 0);
}

#[cached(name = "mg_big")]
async fn huge(id: u8) -> Vec<u8> {
    COMPUTED.bump(format!("huge:{id}"));
    vec![id; 17 * 1024 * 1024]
}

#[derive(Debug)]
struct AppError(String);

impl From<cachex::Error> for AppError {
    fn from(error: cachex::Error) -> Self {
        AppError(error.to_string())
    }
}

#[cached(name = "mg_big_fail")]
async fn huge_strict(id: u8) -> Result<Vec<u8>, AppError> {
    Ok(vec![id; 17 * 1024 * 1024])
}

#[tokio::test]
async fn a_document_over_sixteen_mebibytes_is_refused_before_the_write() {
    servers();
    assert_eq!(huge(1).await.len(), 17 * 1024 * 1024);
    assert_eq!(huge(1).await.len(), 17 * 1024 * 1024);
    assert_eq!(COMPUTED.get("huge:1"), 2, "computed and returned, not stored");
    assert_eq!(cachex::cache("mg_big").unwrap().stats().stores, 0);
    let AppError(message) = huge_strict(1).await.unwrap_err();
    assert!(message.contains("16777216 byte limit"), "{message}");
    assert_eq!(
        collection("mg_big_fail").await.count_documents(doc! {}).await.unwrap(),
        0
    );
}

#[cached(name = "mg_corrupt")]
async fn corruptible(case: String) -> String {
    COMPUTED.bump(format!("corruptible:{case}"));
    format!("value {case}")
}

#[tokio::test]
async fn corrupt_documents_are_misses() {
    servers();
    let documents = collection("mg_corrupt").await;
    let cases: [(&str, Document); 3] = [
        ("missing", doc! { "$unset": { "value": "" } }),
        ("text", doc! { "$set": { "value": "not binary" } }),
        (
            "garbage",
            doc! { "$set": { "value": mongodb::bson::Binary {
                subtype: mongodb::bson::spec::BinarySubtype::Generic,
                bytes: b"\x00\x01 not an envelope".to_vec(),
            } } },
        ),
    ];
    let handle = cachex::cache("mg_corrupt").unwrap();
    for (case, update) in cases {
        handle.clear_async().await.unwrap();
        corruptible(case.into()).await;
        documents.update_one(doc! {}, update).await.unwrap();
        let errors = handle.stats().errors;
        assert_eq!(corruptible(case.into()).await, format!("value {case}"));
        assert_eq!(COMPUTED.get(&format!("corruptible:{case}")), 2, "{case}: recomputed");
        assert_eq!(handle.stats().errors, errors + 1, "{case}: counted");
        corruptible(case.into()).await;
        assert_eq!(
            COMPUTED.get(&format!("corruptible:{case}")),
            2,
            "{case}: overwritten, a hit again"
        );
    }
}

static FLIGHT: AtomicUsize = AtomicUsize::new(0);

#[cached(name = "mg_flight")]
async fn slow(id: u32) -> u32 {
    FLIGHT.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    id * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_tasks_on_one_key_compute_once() {
    servers();
    let results = support::at_once(200, || slow(21)).await;
    assert!(results.iter().all(|&v| v == 42), "{results:?}");
    assert_eq!(FLIGHT.load(Ordering::SeqCst), 1);
}

#[cached(name = "mg_fault")]
async fn through_fault(id: u32) -> u32 {
    id + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_never_fails_a_call_and_hits_resume_after_restart() {
    servers();
    let handle = cachex::cache("mg_fault").unwrap();
    let run = |round: u32| async move {
        for i in 0..3 {
            assert_eq!(through_fault(i).await, i + 1, "round {round}");
        }
    };
    support::survives_restart(
        &handle,
        1,
        Duration::from_secs(60),
        || servers().fault.lock().unwrap().kill(),
        || servers().fault.lock().unwrap().restart(),
        run,
    )
    .await;
}

/// The documents of the caches, by storage key (their `_id`, `cachex:<cache>:<hex>`, in the
/// collection named after the cache).
struct Documents;

impl Documents {
    fn collection(storage_key: &str) -> mongodb::sync::Collection<Document> {
        let cache = storage_key.split(':').nth(1).unwrap();
        let client = mongodb::sync::Client::with_uri_str(&servers().main.url).unwrap();
        client.database(&servers().database).collection(cache)
    }
}

impl signing::RawStore for Documents {
    fn get(&self, storage_key: &str) -> Option<Vec<u8>> {
        let found = Self::collection(storage_key)
            .find_one(doc! { "_id": storage_key })
            .run()
            .unwrap()?;
        Some(found.get_binary_generic("value").unwrap().clone())
    }
    fn put(&self, storage_key: &str, bytes: &[u8]) {
        let value = mongodb::bson::Binary {
            subtype: mongodb::bson::spec::BinarySubtype::Generic,
            bytes: bytes.to_vec(),
        };
        let updated = Self::collection(storage_key)
            .update_one(doc! { "_id": storage_key }, doc! { "$set": { "value": value } })
            .run()
            .unwrap();
        assert_eq!(updated.matched_count, 1, "{storage_key} is stored");
    }
    fn remove(&self, storage_key: &str) {
        let deleted = Self::collection(storage_key)
            .delete_one(doc! { "_id": storage_key })
            .run()
            .unwrap();
        assert_eq!(deleted.deleted_count, 1, "{storage_key} was stored");
    }
}

#[test]
fn signed_values_verify_or_are_misses() {
    servers();
    signing::drill("mg_signed", "mg_rotated", &Documents);
}

#[cached(name = "mg")]
async fn per_runtime(id: u32) -> u32 {
    COMPUTED.bump(format!("per_runtime:{id}"));
    id
}

/// The async client's connections are made on the runtime of the first call; when that
/// runtime is gone, the next runtime's calls still reach the server (no error, no
/// recomputation).
#[test]
fn a_runtime_that_is_gone_leaves_no_broken_connection() {
    servers();
    support::across_runtimes("mg", || per_runtime(7));
    assert_eq!(COMPUTED.get("per_runtime:7"), 1, "computed once, then hits");
}
