//! The datasets service: `cargo run --example datasets`, then open the URL it prints;
//! `-- --help` lists every setting it reads.
//!
//! - `PORT` (default 8000) and `BIND` (default 127.0.0.1) choose the address.
//! - `DATASETS_SOURCE=remote` downloads the real files of the Python README instead of the
//!   service's own copies (needs internet).
//! - `CACHEX_CONFIG=examples/datasets/cachex.toml` moves the `datasets` cache to a file or
//!   Redis by changing one line of that file.
//! - One log line per request (`RUST_LOG`, default `info`); Prometheus metrics at `/metrics`.

use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};
use cachex_example_datasets::{configure, log_request, prometheus, Source, HELP};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    if std::env::args().skip(1).any(|arg| arg == "--help" || arg == "-h") {
        print!("{HELP}");
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Some(handle) = prometheus() {
        // Histogram samples are folded in at each scrape; without scrapes, every few seconds.
        let handle = handle.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(5));
            handle.run_upkeep();
        });
    }
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1".into());
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|e| std::io::Error::other(format!("PORT={port}: {e}")))?,
        Err(_) => 8000,
    };
    let source = match std::env::var("DATASETS_SOURCE").as_deref() {
        Ok("remote") => Source::Remote,
        _ => Source::Local(format!("http://127.0.0.1:{port}/files")),
    };
    cachex::actix::init().await.map_err(std::io::Error::other)?;
    let server = HttpServer::new(move || {
        let source = source.clone();
        App::new()
            .wrap(from_fn(log_request))
            .configure(move |config| configure(config, source))
    })
    .workers(2)
    .bind((bind.as_str(), port))?;
    println!("datasets service listening on http://{bind}:{port}");
    println!("  try http://{bind}:{port}/datasets/uber1 and the API docs at http://{bind}:{port}/docs/");
    server.run().await
}
