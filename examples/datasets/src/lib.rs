//! The datasets service of the Python `cachex` README, in Rust.
//!
//! `GET /datasets/{dataset}` answers the first 1000 rows of an Uber pickups data set as JSON
//! records. The chain of request dependencies is the README's: the path gives a [`DataSet`],
//! [`url_for`] turns it into a [`DatasetUrl`], and [`download`] (cached in the `datasets`
//! cache) fetches and parses the CSV into a [`Frame`] that the handler receives.
//!
//! Offline by default: the service also serves its own small CSV files under `/files/` and
//! downloads from there; [`Source::Remote`] uses the real files of the Python README.

use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{error, web, HttpResponse, ResponseError};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::Instant;
use utoipa::{OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

/// The rows a response carries.
pub const ROWS: usize = 1000;

/// The data sets the service knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataSet {
    /// April 2014.
    Uber1,
    /// May 2014.
    Uber2,
    /// June 2014.
    Uber3,
}

impl DataSet {
    /// Every data set, for messages.
    pub const ALL: [DataSet; 3] = [DataSet::Uber1, DataSet::Uber2, DataSet::Uber3];

    /// The name in URLs.
    pub fn name(self) -> &'static str {
        match self {
            DataSet::Uber1 => "uber1",
            DataSet::Uber2 => "uber2",
            DataSet::Uber3 => "uber3",
        }
    }

    fn remote_file(self) -> &'static str {
        match self {
            DataSet::Uber1 => "uber-rides-data1.csv",
            DataSet::Uber2 => "uber-rides-data2.csv",
            DataSet::Uber3 => "uber-rides-data3.csv",
        }
    }

    fn local_csv(self) -> &'static str {
        match self {
            DataSet::Uber1 => include_str!("../data/uber1.csv"),
            DataSet::Uber2 => include_str!("../data/uber2.csv"),
            DataSet::Uber3 => include_str!("../data/uber3.csv"),
        }
    }
}

/// Where the CSV files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// This service's own copies, at this base URL (e.g. `http://127.0.0.1:8000/files`).
    Local(String),
    /// The files of the Python README, on GitHub (plotly's datasets).
    Remote,
}

/// Where the Python README's files are: `uber-rides-data1.csv` to `uber-rides-data3.csv`.
pub const REMOTE_BASE: &str = "https://github.com/plotly/datasets/raw/master";

/// The URL of a data set's CSV file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetUrl(pub String);

/// One pickup. Both column sets parse: plotly's files (the Python README's, `Date/Time` as
/// `2014-04-01 00:11`) and the raw TLC files (`4/1/2014 0:11:00`); a column a file lacks
/// (`Base`) is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Record {
    /// When, as written in the file (`2014-04-01 00:11`).
    #[serde(rename = "Date/Time")]
    pub date_time: String,
    /// Latitude.
    #[serde(rename = "Lat")]
    pub lat: f64,
    /// Longitude.
    #[serde(rename = "Lon")]
    pub lon: f64,
    /// The TLC base code, when the file has the column.
    #[serde(rename = "Base", default)]
    pub base: Option<String>,
}

/// The first rows of a data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame(pub Vec<Record>);

/// A download that failed: the upstream is unreachable, answered an error, or sent bad CSV.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The HTTP request failed.
    #[error("downloading {0} failed: {1}")]
    Http(String, String),
    /// The CSV did not parse.
    #[error("{0} is not the expected CSV: {1}")]
    Csv(String, String),
}

impl ResponseError for DownloadError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::BAD_GATEWAY
    }
}

/// The HTTP client, built once per process and shared by every worker as `web::Data`.
#[cachex::singleton]
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent("cachex-datasets-example")
        .build()
        .unwrap_or_default()
}

/// The CSV URL of the data set in the path.
#[cachex::actix::dependency]
pub fn url_for(dataset: web::Path<DataSet>, source: web::Data<Source>) -> DatasetUrl {
    url_for_source(dataset.into_inner(), source.get_ref())
}

fn url_for_source(dataset: DataSet, source: &Source) -> DatasetUrl {
    DatasetUrl(match source {
        Source::Local(base) => format!("{base}/{}.csv", dataset.name()),
        Source::Remote => format!("{REMOTE_BASE}/{}", dataset.remote_file()),
    })
}

/// Downloads and parses the first [`ROWS`] rows of a CSV file; cached in `datasets`.
#[cachex::actix::dependency]
#[cachex::cached(name = "datasets")]
pub async fn download(url: DatasetUrl, client: web::Data<reqwest::Client>) -> Result<Frame, DownloadError> {
    let http = |e: reqwest::Error| DownloadError::Http(url.0.clone(), e.to_string());
    let body = client
        .get(&url.0)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(http)?
        .text()
        .await
        .map_err(http)?;
    let rows = parse(body.as_bytes()).map_err(|e| DownloadError::Csv(url.0.clone(), e.to_string()))?;
    Ok(Frame(rows))
}

/// The first [`ROWS`] records of a CSV file, in either column set.
fn parse(csv: &[u8]) -> Result<Vec<Record>, csv::Error> {
    csv::Reader::from_reader(csv).into_deserialize().take(ROWS).collect()
}

/// The first 1000 rows of a data set.
#[utoipa::path(
    get,
    path = "/datasets/{dataset}",
    // The `dataset` path parameter comes from the dependency chain: Frame <- download <- url_for
    // (`dataset: web::Path<DataSet>`).
    params(Frame),
    responses(
        (status = 200, description = "The first 1000 rows as records", body = [Record]),
        (status = 404, description = "An unknown data set; the body lists the valid names"),
        (status = 502, description = "The download failed"),
    )
)]
pub async fn get_dataset(frame: Frame) -> web::Json<Vec<Record>> {
    web::Json(frame.0)
}

static DOWNLOADS: [AtomicUsize; 3] = [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)];

/// How many times this process served a data set's CSV file under `/files/` (each a real
/// HTTP download).
pub fn downloads(dataset: DataSet) -> usize {
    DOWNLOADS[dataset as usize].load(Ordering::SeqCst)
}

async fn serve_file(name: web::Path<String>) -> HttpResponse {
    let found = DataSet::ALL
        .into_iter()
        .find(|d| name.as_str() == format!("{}.csv", d.name()));
    match found {
        Some(dataset) => {
            DOWNLOADS[dataset as usize].fetch_add(1, Ordering::SeqCst);
            HttpResponse::Ok().content_type("text/csv").body(dataset.local_csv())
        }
        None => HttpResponse::NotFound().finish(),
    }
}

fn unknown_dataset(err: error::PathError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    let valid: Vec<&str> = DataSet::ALL.iter().map(|d| d.name()).collect();
    let body = format!("unknown dataset ({err}); valid datasets: {}", valid.join(", "));
    error::InternalError::from_response(err, HttpResponse::NotFound().body(body)).into()
}

/// The OpenAPI description of the service.
#[derive(OpenApi)]
#[openapi(paths(get_dataset), components(schemas(DataSet, Record)))]
pub struct ApiDoc;

/// What `--help` prints: every setting the service reads.
pub const HELP: &str = "\
The datasets service: the first 1000 rows of a data set as JSON, downloaded once and cached.

Usage: cargo run --example datasets [-- --help]

Settings (environment variables):
  PORT=8000                  the port to listen on
  BIND=127.0.0.1             the address to listen on
  DATASETS_SOURCE=remote     download the Python README's files from GitHub (plotly's datasets)
                             instead of the service's own copies under /files/ (needs internet)
  CACHEX_CONFIG=path         the cachex configuration (default ./cachex.toml;
                             examples/datasets/cachex.toml sets the `datasets` cache)
  CACHEX_CACHES__DATASETS__<KEY>=value
                             override one setting of the `datasets` cache, e.g.
                             CACHEX_CACHES__DATASETS__BACKEND=redis, ..._URL=redis://127.0.0.1:6379/0,
                             ..._TTL=10m, ..._STALE_WHILE_REVALIDATE=1m
  CACHEX_DEFAULTS__<KEY>=value
                             the same for every cache
  RUST_LOG=info              the log level (one line per request at info)

Routes: /datasets/{uber1,uber2,uber3}, /docs/ (OpenAPI), /metrics (Prometheus), /cachex/stats (JSON)
";

/// The Prometheus recorder of this process, installed on first use (with the histogram buckets
/// cachex publishes); `None` when another recorder was installed first.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("cache_load_duration_seconds".into()),
                    cachex::metrics::LOAD_BUCKETS,
                )
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full("cache_backend_duration_seconds".into()),
                        cachex::metrics::BACKEND_BUCKETS,
                    )
                });
            match builder.and_then(PrometheusBuilder::install_recorder) {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "no Prometheus recorder: /metrics answers 503");
                    None
                }
            }
        })
        .as_ref()
}

/// `/metrics`: every cache's counters, published from the numbers `stats()` reads, in
/// Prometheus's text format.
async fn metrics() -> HttpResponse {
    match prometheus() {
        Some(handle) => {
            cachex::metrics::publish();
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(handle.render())
        }
        None => HttpResponse::ServiceUnavailable().body("another metrics recorder is installed"),
    }
}

/// Logs one line per request: method, path, status and duration (`tracing`, at info).
pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let (method, path) = (request.method().clone(), request.path().to_owned());
    let response = next.call(request).await?;
    tracing::info!(%method, %path, status = response.status().as_u16(), duration_ms = started.elapsed().as_secs_f64() * 1e3, "request");
    Ok(response)
}

/// Wires the service into an app: the cachex plugin, the source, the routes, `/docs` and
/// `/metrics`.
pub fn configure(config: &mut web::ServiceConfig, source: Source) {
    prometheus();
    config
        .configure(cachex::actix::configure)
        .app_data(web::Data::new(source))
        .app_data(web::PathConfig::default().error_handler(unknown_dataset))
        .route("/datasets/{dataset}", web::get().to(get_dataset))
        .route("/files/{name}", web::get().to(serve_file))
        .route("/cachex/stats", web::get().to(cachex::actix::stats))
        .route("/metrics", web::get().to(metrics))
        .service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", ApiDoc::openapi()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_files_are_the_python_readmes() {
        let urls: Vec<String> = DataSet::ALL
            .into_iter()
            .map(|dataset| url_for_source(dataset, &Source::Remote).0)
            .collect();
        assert_eq!(
            urls,
            [
                "https://github.com/plotly/datasets/raw/master/uber-rides-data1.csv",
                "https://github.com/plotly/datasets/raw/master/uber-rides-data2.csv",
                "https://github.com/plotly/datasets/raw/master/uber-rides-data3.csv",
            ]
        );
    }

    #[test]
    fn both_column_sets_parse() {
        let plotly = "Date/Time,Lat,Lon\n2014-04-01 00:11,40.769,-73.9549\n";
        let records = parse(plotly.as_bytes()).unwrap();
        assert_eq!(records[0].date_time, "2014-04-01 00:11");
        assert_eq!(records[0].base, None);
        let raw = "\"Date/Time\",\"Lat\",\"Lon\",\"Base\"\n\"4/1/2014 0:11:00\",40.769,-73.9549,\"B02512\"\n";
        let records = parse(raw.as_bytes()).unwrap();
        assert_eq!(records[0].base.as_deref(), Some("B02512"));
        let bundled = parse(DataSet::Uber1.local_csv().as_bytes()).unwrap();
        assert_eq!(bundled.len(), ROWS);
        assert!(bundled[0].date_time.starts_with("2014-04-01 "), "{:?}", bundled[0]);
    }

    #[test]
    fn the_help_lists_every_setting_read() {
        for setting in [
            "PORT",
            "BIND",
            "DATASETS_SOURCE",
            "CACHEX_CONFIG",
            "CACHEX_CACHES__DATASETS__",
            "CACHEX_DEFAULTS__",
            "RUST_LOG",
        ] {
            assert!(HELP.contains(setting), "{setting}");
        }
    }
}
