//! The datasets service and the actix-web plugin over real HTTP: servers on free ports with two
//! workers, requests through a real HTTP client.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

mod support;

use actix_web::{web, HttpResponse, ResponseError};
use cachex_example_datasets::{configure, downloads, DataSet, Record, Source};
use support::{client, init_service, start};

/// The service itself, plus test routes for the plugin.
static SERVICE: LazyLock<String> = LazyLock::new(|| {
    // Build the singletons before the server starts.
    init_service();
    start(|config, base| {
        configure(config, Source::Local(format!("{base}/files")));
        config
            .route("/tally", web::get().to(tally))
            .route("/strict", web::get().to(strict));
    })
});

#[tokio::test]
async fn the_same_json_twice_and_one_download() {
    let base = &*SERVICE;
    let before = downloads(DataSet::Uber2);
    let first = client().get(format!("{base}/datasets/uber2")).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Vec<Record> = first.json().await.unwrap();
    let second: Vec<Record> = client()
        .get(format!("{base}/datasets/uber2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first.len(), 1000, "the first 1000 rows");
    assert_eq!(first, second);
    assert!(first[0].lat > 40.0 && first[0].lon < -73.0);
    assert!(first[0].base.as_deref().is_some_and(|base| base.starts_with('B')));
    assert_eq!(
        downloads(DataSet::Uber2) - before,
        1,
        "the second request was served from the cache"
    );
}

#[tokio::test]
async fn an_unknown_dataset_is_a_404_listing_the_valid_names() {
    let response = client()
        .get(format!("{}/datasets/uber9", *SERVICE))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body = response.text().await.unwrap();
    for dataset in DataSet::ALL {
        assert!(body.contains(dataset.name()), "{body}");
    }
}

#[tokio::test]
async fn a_failed_download_becomes_a_bad_gateway() {
    // Another instance of the service whose file server address points at nothing.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    LazyLock::force(&SERVICE);
    let base = start(move |config, _| configure(config, Source::Local(format!("http://{dead}/files"))));
    let response = client().get(format!("{base}/datasets/uber3")).send().await.unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.text().await.unwrap().contains("downloading"));
}

#[tokio::test]
async fn the_stats_endpoint_reports_the_hit() {
    let base = &*SERVICE;
    client().get(format!("{base}/datasets/uber1")).send().await.unwrap();
    client().get(format!("{base}/datasets/uber1")).send().await.unwrap();
    let stats: serde_json::Value = client()
        .get(format!("{base}/cachex/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let datasets = &stats["datasets"];
    assert_eq!(datasets["backend"], "memory");
    assert!(datasets["hits"].as_u64().unwrap() >= 1, "{stats}");
    assert!(datasets["stores"].as_u64().unwrap() >= 1, "{stats}");
    // Local and shared hits apart (a memory cache has no local tier: every hit is its own).
    assert_eq!(datasets["local_hits"], 0, "{stats}");
    assert_eq!(datasets["shared_hits"], datasets["hits"], "{stats}");
    assert_eq!(datasets["local_bypassed"], false, "{stats}");
}

/// A process-wide object counted at each build.
pub struct Tally {
    pub id: usize,
}

static TALLY_BUILDS: AtomicUsize = AtomicUsize::new(0);

#[cachex::singleton]
fn tally_service() -> Tally {
    Tally {
        id: TALLY_BUILDS.fetch_add(1, Ordering::SeqCst) + 1,
    }
}

async fn tally(data: web::Data<Tally>) -> HttpResponse {
    let thread = format!("{:?}", std::thread::current().id());
    HttpResponse::Ok().body(format!(
        "{} {:p} {thread}",
        data.id,
        Arc::as_ptr(&data.clone().into_inner())
    ))
}

#[tokio::test]
async fn a_zero_argument_singleton_is_built_once_for_all_workers() {
    let base = &*SERVICE;
    let mut seen = std::collections::HashSet::new();
    let mut threads = std::collections::HashSet::new();
    for _ in 0..40 {
        let body = client()
            .get(format!("{base}/tally"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut parts = body.split(' ');
        seen.insert((parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned()));
        threads.insert(parts.next().unwrap().to_owned());
    }
    assert_eq!(TALLY_BUILDS.load(Ordering::SeqCst), 1);
    assert_eq!(seen.len(), 1, "every request saw the same instance: {seen:?}");
    assert!(
        threads.len() >= 2,
        "requests were served by {} worker thread(s)",
        threads.len()
    );
}

#[derive(Debug, thiserror::Error)]
#[error("the value must be positive")]
pub struct NotPositive;

impl ResponseError for NotPositive {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    }
}

#[derive(serde::Deserialize)]
pub struct Params {
    pub n: i64,
}

pub struct Positive(pub i64);

#[cachex::actix::dependency]
fn positive(params: web::Query<Params>) -> Result<Positive, NotPositive> {
    if params.n > 0 {
        Ok(Positive(params.n))
    } else {
        Err(NotPositive)
    }
}

async fn strict(value: Positive) -> HttpResponse {
    HttpResponse::Ok().body(value.0.to_string())
}

#[tokio::test]
async fn a_dependency_error_becomes_its_status() {
    let base = &*SERVICE;
    let ok = client().get(format!("{base}/strict?n=5")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "5");
    let refused = client().get(format!("{base}/strict?n=-1")).send().await.unwrap();
    assert_eq!(refused.status(), 422);
    assert_eq!(refused.text().await.unwrap(), "the value must be positive");
    let missing = client().get(format!("{base}/strict")).send().await.unwrap();
    assert_eq!(missing.status(), 400, "an extractor of the dependency failed");
}

pub struct Region(pub String);

static REGION_BUILDS: AtomicUsize = AtomicUsize::new(0);

#[cachex::singleton]
fn region(name: String) -> Region {
    REGION_BUILDS.fetch_add(1, Ordering::SeqCst);
    Region(name)
}

#[test]
fn a_singleton_with_arguments_is_built_once_per_distinct_arguments() {
    let eu = region("eu".into());
    let eu_again = region("eu".into());
    let us = region("us".into());
    assert!(Arc::ptr_eq(&eu, &eu_again));
    assert_eq!((eu.0.as_str(), us.0.as_str()), ("eu", "us"));
    assert_eq!(REGION_BUILDS.load(Ordering::SeqCst), 2);
}

static SLOW_BUILDS: AtomicUsize = AtomicUsize::new(0);

#[cachex::singleton]
fn slow_pool() -> Vec<u32> {
    SLOW_BUILDS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    vec![1, 2, 3]
}

static ASYNC_BUILDS: AtomicUsize = AtomicUsize::new(0);

#[cachex::singleton]
async fn slow_async_pool(size: u32) -> Vec<u32> {
    ASYNC_BUILDS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    vec![0; size as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_calls_build_once() {
    let threads: Vec<_> = (0..16).map(|_| std::thread::spawn(slow_pool)).collect();
    let built: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(built.iter().all(|p| Arc::ptr_eq(p, &built[0])));
    let tasks: Vec<_> = (0..50).map(|_| tokio::spawn(slow_async_pool(8))).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().len(), 8);
    }
    assert_eq!(SLOW_BUILDS.load(Ordering::SeqCst), 1);
    assert_eq!(ASYNC_BUILDS.load(Ordering::SeqCst), 1);
}

static FLAKY_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

#[cachex::singleton]
fn flaky(name: String) -> Result<String, String> {
    match FLAKY_ATTEMPTS.fetch_add(1, Ordering::SeqCst) {
        0 => Err("the database is not up yet".into()),
        1 => panic!("the driver crashed"),
        _ => Ok(format!("connected to {name}")),
    }
}

#[test]
fn a_failed_or_panicking_build_is_not_kept_and_the_next_call_retries() {
    assert_eq!(flaky("db".into()).unwrap_err(), "the database is not up yet");
    assert!(std::panic::catch_unwind(|| flaky("db".into())).is_err());
    let connected = flaky("db".into()).unwrap();
    assert_eq!(*connected, "connected to db");
    assert!(Arc::ptr_eq(&connected, &flaky("db".into()).unwrap()));
    assert_eq!(FLAKY_ATTEMPTS.load(Ordering::SeqCst), 3);
}

/// The parameters of an operation in the served OpenAPI document.
async fn operation_parameters(base: &str, path: &str) -> Vec<serde_json::Value> {
    let doc: serde_json::Value = support::get_ok(&format!("{base}/api-docs/openapi.json"))
        .await
        .json()
        .await
        .unwrap();
    doc["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("no parameters for GET {path}: {doc}"))
        .clone()
}

#[tokio::test]
async fn the_docs_show_the_path_parameter_of_the_dependency_chain() {
    let parameters = operation_parameters(&SERVICE, "/datasets/{dataset}").await;
    assert_eq!(parameters.len(), 1, "{parameters:?}");
    let dataset = &parameters[0];
    assert_eq!(dataset["name"], "dataset");
    assert_eq!(dataset["in"], "path");
    assert_eq!(dataset["required"], true);
    assert_eq!(
        dataset["schema"]["enum"],
        serde_json::json!(["uber1", "uber2", "uber3"]),
        "{dataset}"
    );
}
