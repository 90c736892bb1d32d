//! A TCP proxy between 127.0.0.1 ports that delays or drops the server's replies on command:
//! what `kill`, `CLIENT PAUSE` and `SIGSTOP` cannot do (a reply that arrives after the
//! client's timeout, a request that runs on the server while the client sees a failure).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the proxy does to replies now.
#[derive(Default)]
struct Faults {
    /// Each chunk of a reply waits this many milliseconds before it is passed on.
    delay_ms: AtomicU64,
    /// Replies are read and thrown away.
    drop_replies: AtomicBool,
}

/// A proxy listening on a free port of 127.0.0.1, forwarding to `upstream`; it runs until
/// the test binary exits.
pub struct Proxy {
    port: u16,
    faults: Arc<Faults>,
}

impl Proxy {
    /// A proxy in front of `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Faults::default());
        let shared = Arc::clone(&faults);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (client_in, server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || forward(client_in, server_out, None));
                let faults = Arc::clone(&shared);
                std::thread::spawn(move || forward(server, client, Some(&faults)));
            }
        });
        Proxy { port, faults }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Delays every reply from now on by `delay` (zero: passed on at once).
    pub fn delay_replies(&self, delay: Duration) {
        self.faults.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Throws every reply away from now on (`false`: passes them on again).
    pub fn drop_replies(&self, drop: bool) {
        self.faults.drop_replies.store(drop, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either closes; replies (`faults` set) are delayed or dropped.
fn forward(mut from: TcpStream, mut to: TcpStream, faults: Option<&Faults>) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(faults) = faults {
            let delay = faults.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
            if faults.drop_replies.load(Ordering::SeqCst) {
                continue;
            }
        }
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = (from.shutdown(Shutdown::Both), to.shutdown(Shutdown::Both));
}
