//! Test support: the service, or any app, on a free port of 127.0.0.1 with two workers.
#![allow(dead_code)] // each test binary uses part of this module

use std::net::TcpListener;
use std::time::Duration;

use actix_web::{web, App, HttpServer};

/// Starts an app on a free port with two workers, on its own thread; `app` configures each
/// worker, given the app's base URL. Returns that URL.
pub fn start(app: impl Fn(&mut web::ServiceConfig, String) + Send + Clone + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = base.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let app = app.clone();
                let url = url.clone();
                App::new().configure(move |config| app(config, url))
            })
            .workers(2)
            .listen(listener)
            .unwrap()
            .run()
            .await
        })
    });
    base
}

/// Builds the service's singletons (`cachex::actix::init()`) on a thread of its own: tests
/// call this from inside their runtimes.
pub fn init_service() {
    std::thread::spawn(|| actix_web::rt::System::new().block_on(cachex::actix::init()))
        .join()
        .unwrap()
        .unwrap();
}

/// An HTTP client whose requests give up after 20 s (a server that hangs fails the test).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// GETs `url`, asserting a 200.
pub async fn get_ok(url: &str) -> reqwest::Response {
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response
}
