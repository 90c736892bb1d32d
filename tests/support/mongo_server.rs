//! A MongoDB-protocol server for the tests: the PyPI `mongoeco` server started through
//! `tests/support/mongo_launcher.py` from the virtualenv `scripts/mongo-venv.sh` creates under
//! `target/`. `CACHEX_TEST_MONGODB_URL` points the tests at a real MongoDB instead (except the
//! kill/restart test, which needs a server it can kill).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::free_port;

/// The environment variable that names a real MongoDB for the tests.
pub const EXTERNAL_URL: &str = "CACHEX_TEST_MONGODB_URL";

fn venv_python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/mongoeco-venv/bin/python");
    assert!(
        python.is_file(),
        "the MongoDB test server is not installed: run scripts/mongo-venv.sh (scripts/test.sh runs it), \
         which puts the PyPI package mongoeco[wire] in target/mongoeco-venv (it needs CPython 3.13); \
         or set {EXTERNAL_URL} to a real MongoDB"
    );
    python
}

/// A mongoeco server on a port of 127.0.0.1, killed when dropped.
pub struct MongoServer {
    pub port: u16,
    pub url: String,
    child: Option<Child>,
}

impl MongoServer {
    /// The server the tests use: the external one if `CACHEX_TEST_MONGODB_URL` is set, else a
    /// launched one.
    pub fn for_tests() -> MongoServer {
        match std::env::var(EXTERNAL_URL) {
            Ok(url) => MongoServer {
                port: 0,
                url,
                child: None,
            },
            Err(_) => Self::launch(free_port()),
        }
    }

    /// A launched server on `port`.
    pub fn launch(port: u16) -> MongoServer {
        let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/mongo_launcher.py");
        let mut child = Command::new(venv_python())
            .arg(launcher)
            .args(["--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start the mongoeco launcher");
        super::track(child.id());
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let url = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("the mongoeco launcher did not start (it printed {line:?})"))
            .to_owned();
        MongoServer {
            port,
            url,
            child: Some(child),
        }
    }

    /// Stops the server process (SIGSTOP): connections stay open and nothing answers.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let child = self.child.as_ref().expect("a launched server, not an external one");
        // SAFETY: kill(2) on the PID of a child this process spawned and has not reaped.
        let sent = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(sent, 0, "cannot signal the mongoeco server");
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            super::untrack(child.id());
        }
    }

    /// Starts a server again on the same port (empty: mongoeco keeps data in memory).
    pub fn restart(&mut self) {
        self.kill();
        *self = MongoServer::launch(self.port);
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        self.kill();
    }
}
