//! Test support: real servers started on free ports on 127.0.0.1, stopped when dropped.
//!
//! A missing server binary is a failure whose message names the Debian package to install
//! (`scripts/test.sh` installs them); nothing is skipped.
#![allow(dead_code)] // each test binary uses part of this module

#[cfg(feature = "memcached")]
pub mod memcached_server;
pub mod mongo_server;
pub mod peer;
pub mod proxy;
pub mod redis_server;
pub mod signing;

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// Every server process still running; killed when the test binary exits (servers held in
/// statics are never dropped).
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

extern "C" fn kill_running() {
    let pids = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    for pid in pids {
        // SAFETY: kill(2) on a PID this process spawned and has not reaped.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
}

pub(crate) fn track(pid: u32) {
    static AT_EXIT: Once = Once::new();
    // SAFETY: registers a plain `extern "C" fn` with no captured state.
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(kill_running);
    });
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(pid);
}

pub(crate) fn untrack(pid: u32) {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|p| *p != pid);
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A port whose companion `port + offset` is free too (a Redis Cluster node's bus port).
pub fn free_port_pair(offset: u16) -> u16 {
    loop {
        let port = free_port();
        if port
            .checked_add(offset)
            .is_some_and(|bus| TcpListener::bind(("127.0.0.1", bus)).is_ok())
        {
            return port;
        }
    }
}

/// A fresh directory under the target directory (the system's temporary directory when this
/// module is built into an example), kept for post-mortems.
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map_or_else(std::env::temp_dir, PathBuf::from)
        .join("servers");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new().prefix(name).tempdir_in(base).unwrap().keep()
}

/// Finds `binary` on PATH, or fails naming the package that provides it.
pub fn require_binary(binary: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{binary}` is not installed: install the Debian package `{package}` \
                 (apt-get install -y {package}), or run scripts/test.sh, which installs it"
            )
        })
}

/// A server process, killed when dropped.
pub struct Process {
    pub program: PathBuf,
    pub args: Vec<String>,
    child: Option<Child>,
}

impl Process {
    pub fn spawn(program: PathBuf, args: Vec<String>) -> Process {
        let child = Command::new(&program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        track(child.id());
        Process {
            program,
            args,
            child: Some(child),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            untrack(child.id());
        }
    }

    /// Starts the same program with the same arguments again.
    pub fn restart(&mut self) {
        self.kill();
        *self = Process::spawn(self.program.clone(), self.args.clone());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `ready` returns true, or fails after `limit` naming `what`.
pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < limit,
            "{what} did not become ready within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// Counts computations by label, so tests running in parallel in one binary do not see each
/// other's calls.
#[derive(Default)]
pub struct Counter(Mutex<HashMap<String, usize>>);

impl Counter {
    pub fn bump(&self, what: impl Into<String>) {
        *self.0.lock().unwrap().entry(what.into()).or_default() += 1;
    }

    pub fn get(&self, what: &str) -> usize {
        self.0.lock().unwrap().get(what).copied().unwrap_or(0)
    }
}

/// The outage drill of a backend test: `round(n)` (calls of the cache's functions that assert
/// their values) runs before the server is killed, for `outage_rounds` rounds while it is down
/// (every call must still return its value, and the errors must be counted), and after the
/// restart until the cache counts two more hits, which shows the restarted server is used
/// again; that recovery is the client's reconnect, waited for up to `limit` without asserting
/// how fast it is.
pub async fn survives_restart<F, Fut>(
    cache: &cachex::CacheHandle,
    outage_rounds: u32,
    limit: Duration,
    kill: impl FnOnce(),
    restart: impl FnOnce(),
    mut round: F,
) where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    round(0).await;
    kill();
    let errors = cache.stats().errors;
    for n in 1..=outage_rounds {
        round(n).await;
    }
    assert!(cache.stats().errors > errors, "the outage was seen and counted");
    restart();
    let started = Instant::now();
    let hits = cache.stats().hits;
    let mut n = 10;
    while cache.stats().hits <= hits + 1 {
        assert!(started.elapsed() < limit, "hits did not resume: {:?}", cache.stats());
        round(n).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts `tasks` tokio tasks that call `call` at the same moment (behind a barrier) and
/// returns their results.
pub async fn at_once<T, Fut>(tasks: usize, call: fn() -> Fut) -> Vec<T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(tasks));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let barrier = std::sync::Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                call().await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks);
    for handle in handles {
        results.push(handle.await.expect("the task did not panic"));
    }
    results
}

/// Calls `call` (an async cached call returning 7) on three tokio runtimes in turn, each
/// dropped after its call, and asserts that none of the calls saw a backend error of `cache`:
/// connections made on a runtime that is gone are made again on the next one.
pub fn across_runtimes<F: std::future::Future<Output = u32>>(cache: &str, call: impl Fn() -> F) {
    let handle = cachex::cache(cache).unwrap();
    for round in 0..3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let errors = handle.stats().errors;
        assert_eq!(runtime.block_on(call()), 7);
        assert_eq!(handle.stats().errors, errors, "round {round}: a backend error");
        drop(runtime);
    }
}
