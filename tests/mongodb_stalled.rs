//! The MongoDB blocking side against a server that stops answering (its process stopped with
//! SIGSTOP: connections stay open, no reply comes): every operation is bounded by `timeout`,
//! so a call returns the error under `on_error = "fail"` and the computed value under
//! `"bypass"`.
#![cfg(feature = "mongodb")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use cachex::{cached, BackendKind, CacheConfig, Config, OnError};
use support::mongo_server::MongoServer;

const TIMEOUT: Duration = Duration::from_millis(500);
/// A bypassed call waits at most for a failed lookup and a failed store: ten times that.
const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq)]
struct AppError(String);

impl From<cachex::Error> for AppError {
    fn from(error: cachex::Error) -> Self {
        AppError(error.to_string())
    }
}

static LENIENT: AtomicUsize = AtomicUsize::new(0);

#[cached(name = "stall_fail")]
fn strict(id: u32) -> Result<u32, AppError> {
    Ok(id + 1)
}

#[cached(name = "stall_bypass")]
fn lenient(id: u32) -> u32 {
    LENIENT.fetch_add(1, Ordering::SeqCst);
    id + 1
}

fn returns_within<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(call());
    });
    rx.recv_timeout(DEADLINE).expect("the call returned")
}

#[test]
fn a_server_that_stops_answering_fails_under_fail_and_computes_under_bypass() {
    let server = MongoServer::launch(support::free_port());
    let mongo = || {
        let mut cache = CacheConfig::new()
            .backend(BackendKind::Mongodb)
            .url(&server.url)
            .timeout(TIMEOUT);
        cache.database = Some(format!("cachex_stalled_{}", std::process::id()));
        cache
    };
    cachex::init_with(
        Config::new()
            .cache("stall_fail", mongo().on_error(OnError::Fail))
            .cache("stall_bypass", mongo()),
    )
    .expect("valid test configuration");

    // While the server answers: computed once, then served from it.
    assert_eq!(strict(1), Ok(2));
    assert_eq!(lenient(1), 2);
    assert_eq!(lenient(1), 2);
    assert_eq!(LENIENT.load(Ordering::SeqCst), 1);
    assert_eq!(cachex::cache("stall_bypass").unwrap().stats().hits, 1);

    server.pause();
    let failed = returns_within(|| strict(2));
    let Err(AppError(message)) = failed else {
        panic!("expected the backend's error under `fail`, got {failed:?}")
    };
    assert!(message.contains("did not answer within"), "{message}");
    assert_eq!(returns_within(|| lenient(1)), 2, "computed again, not waited for");
    assert_eq!(returns_within(|| lenient(5)), 6);
    assert_eq!(LENIENT.load(Ordering::SeqCst), 3);
    assert!(cachex::cache("stall_bypass").unwrap().stats().errors >= 2);
    server.resume();
}
