//! `memcached` processes for the tests, on free ports on 127.0.0.1, and a small hand-written
//! client of the text protocol (what a user bringing their own client would write).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use super::{free_port, require_binary, wait_until, Process};

/// One memcached server.
pub struct MemcachedServer {
    pub port: u16,
    process: Process,
}

impl MemcachedServer {
    pub fn start() -> MemcachedServer {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> MemcachedServer {
        let port = free_port();
        let mut args: Vec<String> = ["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0", "-m", "64"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            args.extend(["-u".to_string(), "root".to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let server = MemcachedServer {
            port,
            process: Process::spawn(require_binary("memcached", "memcached"), args),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        wait_until(
            &format!("memcached on port {}", self.port),
            Duration::from_secs(20),
            || TextClient::connect(self.port).is_ok_and(|c| c.version().is_ok()),
        );
    }

    pub fn url(&self) -> String {
        format!("memcached://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same port (empty).
    pub fn restart(&mut self) {
        self.process.restart();
        self.wait_ready();
    }
}

/// A minimal blocking client of memcached's text protocol over one connection.
pub struct TextClient(Mutex<BufReader<TcpStream>>);

type Result<T> = std::result::Result<T, cachex::BoxError>;

impl TextClient {
    pub fn connect(port: u16) -> Result<TextClient> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        Ok(TextClient(Mutex::new(BufReader::new(stream))))
    }

    /// Sends `command` (and `data` as a block) and returns the first reply line.
    fn call(&self, command: &str, data: Option<&[u8]>) -> Result<(String, BufReaderGuard<'_>)> {
        let mut conn = self.0.lock().unwrap();
        let mut request = command.as_bytes().to_vec();
        request.extend_from_slice(b"\r\n");
        if let Some(data) = data {
            request.extend_from_slice(data);
            request.extend_from_slice(b"\r\n");
        }
        conn.get_mut().write_all(&request)?;
        let mut line = String::new();
        conn.read_line(&mut line)?;
        if line.is_empty() {
            return Err("connection closed".into());
        }
        Ok((line.trim_end().to_owned(), conn))
    }

    pub fn version(&self) -> Result<String> {
        let (line, _conn) = self.call("version", None)?;
        line.strip_prefix("VERSION ")
            .map(str::to_owned)
            .ok_or_else(|| line.into())
    }

    /// Every key on the server (`lru_crawler metadump all`).
    pub fn keys(&self) -> Result<Vec<String>> {
        let (mut line, mut conn) = self.call("lru_crawler metadump all", None)?;
        let mut keys = Vec::new();
        while line != "END" {
            if let Some(key) = line.strip_prefix("key=") {
                keys.push(percent_decode(key.split(' ').next().unwrap_or_default()));
            }
            line.clear();
            conn.read_line(&mut line)?;
            line = line.trim_end().to_owned();
        }
        Ok(keys)
    }
}

/// metadump shows keys URL-encoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

type BufReaderGuard<'a> = std::sync::MutexGuard<'a, BufReader<TcpStream>>;

impl cachex::memcached::MemcachedClient for TextClient {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let (line, mut conn) = self.call(&format!("get {key}"), None)?;
        if line == "END" {
            return Ok(None);
        }
        let len: usize = line.rsplit(' ').next().ok_or("bad VALUE line")?.parse()?;
        let mut data = vec![0u8; len + 2];
        conn.read_exact(&mut data)?;
        data.truncate(len);
        let mut end = String::new();
        conn.read_line(&mut end)?;
        Ok(Some(data))
    }

    fn set(&self, key: &str, value: &[u8], exptime: u32) -> Result<()> {
        let (line, _conn) = self.call(&format!("set {key} 0 {exptime} {}", value.len()), Some(value))?;
        if line == "STORED" {
            Ok(())
        } else {
            Err(line.into())
        }
    }

    fn add(&self, key: &str, value: &[u8], exptime: u32) -> Result<bool> {
        let (line, _conn) = self.call(&format!("add {key} 0 {exptime} {}", value.len()), Some(value))?;
        match line.as_str() {
            "STORED" => Ok(true),
            "NOT_STORED" => Ok(false),
            _ => Err(line.into()),
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        let (line, _conn) = self.call(&format!("delete {key}"), None)?;
        match line.as_str() {
            "DELETED" | "NOT_FOUND" => Ok(()),
            _ => Err(line.into()),
        }
    }

    fn increment(&self, key: &str, delta: u64) -> Result<Option<u64>> {
        let (line, _conn) = self.call(&format!("incr {key} {delta}"), None)?;
        if line == "NOT_FOUND" {
            return Ok(None);
        }
        Ok(Some(line.parse()?))
    }
}
