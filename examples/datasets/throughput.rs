//! Serves the datasets service and, next to it, the same handler answering a precomputed frame,
//! so a load generator can compare them: `cargo run --release --example datasets_throughput`,
//! then e.g. `wrk -t2 -c50 -d10s http://127.0.0.1:PORT/datasets/uber1` against each address.

use std::net::TcpListener;

use actix_web::{web, App, HttpServer};
use cachex_example_datasets::{configure, Record, Source, ROWS};

async fn precomputed(frame: web::Data<Vec<Record>>) -> web::Json<Vec<Record>> {
    web::Json(frame.get_ref().clone())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    cachex::actix::init().await.map_err(std::io::Error::other)?;
    let service = TcpListener::bind("127.0.0.1:0")?;
    let plain = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", service.local_addr()?);
    let source = Source::Local(format!("{base}/files"));
    // The same rows the cached endpoint serves, parsed once from the bundled file.
    let rows: Result<Vec<Record>, _> = csv::Reader::from_reader(include_str!("data/uber1.csv").as_bytes())
        .into_deserialize()
        .take(ROWS)
        .collect();
    let frame = rows.map_err(std::io::Error::other)?;
    println!("cached service:    {base}/datasets/uber1");
    println!("precomputed value: http://{}/datasets/uber1", plain.local_addr()?);
    let cached = HttpServer::new(move || {
        let source = source.clone();
        App::new().configure(move |config| configure(config, source))
    })
    .workers(2)
    .listen(service)?
    .run();
    let direct = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(frame.clone()))
            .route("/datasets/{dataset}", web::get().to(precomputed))
    })
    .workers(2)
    .listen(plain)?
    .run();
    let (cached, direct) = tokio::join!(cached, direct);
    cached.and(direct)
}
