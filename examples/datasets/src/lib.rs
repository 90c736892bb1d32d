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

use actix_web::{error, web, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
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
            DataSet::Uber1 => "uber-raw-data-apr14.csv",
            DataSet::Uber2 => "uber-raw-data-may14.csv",
            DataSet::Uber3 => "uber-raw-data-jun14.csv",
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
    /// The files of the Python README, on GitHub.
    Remote,
}

const REMOTE_BASE: &str =
    "https://raw.githubusercontent.com/fivethirtyeight/uber-tlc-foil-response/master/uber-trip-data";

/// The URL of a data set's CSV file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetUrl(pub String);

/// One pickup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Record {
    /// When, as written in the file (`4/1/2014 0:11:00`).
    #[serde(rename = "Date/Time")]
    pub date_time: String,
    /// Latitude.
    #[serde(rename = "Lat")]
    pub lat: f64,
    /// Longitude.
    #[serde(rename = "Lon")]
    pub lon: f64,
    /// The TLC base code.
    #[serde(rename = "Base")]
    pub base: String,
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
    let dataset = dataset.into_inner();
    DatasetUrl(match source.get_ref() {
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
    let rows = csv::Reader::from_reader(body.as_bytes())
        .into_deserialize()
        .take(ROWS)
        .collect::<Result<Vec<Record>, _>>()
        .map_err(|e| DownloadError::Csv(url.0.clone(), e.to_string()))?;
    Ok(Frame(rows))
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

/// Wires the service into an app: the cachex plugin, the source, the routes and `/docs`.
pub fn configure(config: &mut web::ServiceConfig, source: Source) {
    config
        .configure(cachex::actix::configure)
        .app_data(web::Data::new(source))
        .app_data(web::PathConfig::default().error_handler(unknown_dataset))
        .route("/datasets/{dataset}", web::get().to(get_dataset))
        .route("/files/{name}", web::get().to(serve_file))
        .route("/cachex/stats", web::get().to(cachex::actix::stats))
        .service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", ApiDoc::openapi()));
}
