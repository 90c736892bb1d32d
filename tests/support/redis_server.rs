//! `redis-server` processes for the tests: standalone (TCP and unix socket), TLS, and a
//! three-master cluster, each on free ports on 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use super::{free_port, free_port_pair, require_binary, scratch_dir, wait_until, Process};

const READY: Duration = Duration::from_secs(20);

fn redis_server() -> PathBuf {
    require_binary("redis-server", "redis-server")
}

fn base_args(port: u16) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Sends PING over a fresh connection; true when the answer is PONG.
pub fn pings<S: Read + Write>(mut stream: S) -> bool {
    let _ = stream.write_all(b"PING\r\n");
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

fn pings_tcp(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port))
        .map(|s| {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            pings(s)
        })
        .unwrap_or(false)
}

/// One standalone server, listening on TCP and on a unix socket.
pub struct RedisServer {
    pub port: u16,
    pub socket: PathBuf,
    pub dir: PathBuf,
    process: Process,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> RedisServer {
        let port = free_port();
        let dir = scratch_dir("redis-");
        let socket = dir.join("redis.sock");
        let mut args = base_args(port);
        args.extend([
            "--unixsocket".to_string(),
            socket.display().to_string(),
            "--dir".into(),
            dir.display().to_string(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let server = RedisServer {
            port,
            socket,
            dir,
            process: Process::spawn(redis_server(), args),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        wait_until(&format!("redis-server on port {}", self.port), READY, || {
            pings_tcp(self.port)
        });
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn unix_url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn unix_pings(&self) -> bool {
        UnixStream::connect(&self.socket).map(pings).unwrap_or(false)
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same port (with an empty data set).
    pub fn restart(&mut self) {
        self.process.restart();
        self.wait_ready();
    }

    /// A plain client for setting up and inspecting the server.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url()).unwrap().get_connection().unwrap()
    }
}

/// A TLS-only server whose certificate is signed by a CA generated for the test.
pub struct TlsRedisServer {
    pub port: u16,
    pub ca_file: PathBuf,
    _process: Process,
}

impl TlsRedisServer {
    pub fn start() -> TlsRedisServer {
        let dir = scratch_dir("redis-tls-");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cachex test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();

        let port = free_port();
        let mut args = base_args(0);
        let file = |name: &str| dir.join(name).display().to_string();
        args.extend([
            "--tls-port".to_string(),
            port.to_string(),
            "--tls-cert-file".into(),
            file("server.pem"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
            "--dir".into(),
            dir.display().to_string(),
        ]);
        let process = Process::spawn(redis_server(), args);
        wait_until(&format!("TLS redis-server on port {port}"), READY, || {
            super::accepts(port)
        });
        TlsRedisServer {
            port,
            ca_file,
            _process: process,
        }
    }

    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/0", self.port)
    }
}

/// A cluster of three masters (no replicas), all slots assigned.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    processes: Vec<Process>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let dir = scratch_dir("redis-cluster-");
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 3 {
            let port = free_port_pair(10_000);
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        let processes: Vec<Process> = ports
            .iter()
            .map(|port| {
                let mut args = base_args(*port);
                args.extend([
                    "--cluster-enabled".to_string(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    dir.join(format!("nodes-{port}.conf")).display().to_string(),
                    "--cluster-node-timeout".into(),
                    "2000".into(),
                    "--dir".into(),
                    dir.display().to_string(),
                ]);
                Process::spawn(redis_server(), args)
            })
            .collect();
        for port in &ports {
            wait_until(&format!("cluster node on port {port}"), READY, || pings_tcp(*port));
        }
        let cli = require_binary("redis-cli", "redis-server");
        let mut create = std::process::Command::new(cli);
        create.arg("--cluster").arg("create");
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let output = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        for port in &ports {
            wait_until(&format!("cluster state ok on {port}"), READY, || {
                let mut conn =
                    match redis::Client::open(format!("redis://127.0.0.1:{port}")).and_then(|c| c.get_connection()) {
                        Ok(conn) => conn,
                        Err(_) => return false,
                    };
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut conn).unwrap_or_default();
                info.contains("cluster_state:ok")
            });
        }
        RedisCluster { ports, processes }
    }

    /// Kills node `index` (SIGKILL), leaves it down for `down`, and starts it again on the same
    /// port with its cluster configuration (its data set empty).
    pub fn restart_node(&mut self, index: usize, down: Duration) {
        self.processes[index].kill();
        std::thread::sleep(down);
        self.processes[index].restart();
        let port = self.ports[index];
        wait_until(&format!("cluster node on port {port}"), READY, || pings_tcp(port));
    }

    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis-cluster://{}", nodes.join(","))
    }

    /// Number of keys on each master.
    pub fn keys_per_node(&self) -> Vec<usize> {
        self.ports
            .iter()
            .map(|port| {
                let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                    .unwrap()
                    .get_connection()
                    .unwrap();
                redis::cmd("DBSIZE").query::<usize>(&mut conn).unwrap()
            })
            .collect()
    }
}
