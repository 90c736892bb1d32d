//! The Redis backend: standalone servers (`redis://`, `rediss://`, `unix://`) and Redis Cluster
//! (`redis-cluster://` / `rediss-cluster://` with several seed nodes).
//!
//! - Async side: one multiplexed connection per server shared by every task and every cache on
//!   that server (`ConnectionManager`, which reconnects by itself; the cluster connection for a
//!   cluster), made again on the caller's runtime when the runtime that made it is gone. No pool
//!   checkout per operation: the benchmarks measure why.
//! - Blocking side: a small `r2d2` pool of blocking connections with read/write timeouts; a
//!   connection that saw an error is discarded, so a late reply can never answer another call.
//! - Values are the envelope's bytes under `prefix:hexkey`, with `PX` for the TTL.
//! - A computation's lease and fill are Lua scripts on that one key (so a cluster runs each on
//!   the key's node): the lease stores a marker where the entry is absent and answers the
//!   SHA-1 of what the entry holds; the fill writes only while the entry still has that SHA-1
//!   (and publishes the tier's invalidation in the same script).
//! - `clear` runs `SCAN` with the prefix's glob metacharacters escaped and exactly 64 `?` after
//!   it, then `UNLINK`; on a cluster, on every master.
//! - A cache with a local tier keeps the tiers of every process coherent through pub/sub on
//!   `<prefix>:invalidations` (see the `invalidations` module).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::{Client, Cmd, ConnectionLike, RedisError, Value};

use crate::backend::per_runtime::PerRuntime;
use invalidations::RedisInvalidations;

mod invalidations;
use crate::error::BoxError;
use crate::lease::{marker, Lease, MARKER_LEN, MARKER_MAGIC};
use crate::storage::{AsyncStorage, BoxFuture, Storage, StorageKey};

/// The per-operation timeout when the configuration sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// How to reach a Redis deployment.
///
/// ```
/// use cachex_core::backend::redis::RedisOptions;
/// let options = RedisOptions::new("redis://:secret@127.0.0.1:6379/0");
/// assert!(!format!("{options:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port/db`, `rediss://...`, `unix:///path`,
    /// `redis+unix:///path`, or `redis-cluster://[user:password@]host:port,host:port`
    /// (`rediss-cluster://` for TLS).
    pub url: String,
    /// Per-operation timeout (connect, then each command).
    pub timeout: Duration,
    /// A PEM root certificate to trust for `rediss://` instead of the built-in roots.
    pub tls_root_cert: Option<Vec<u8>>,
}

impl RedisOptions {
    /// Options for `url` with the default timeout and the built-in TLS roots.
    pub fn new(url: &str) -> Self {
        RedisOptions {
            url: url.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            tls_root_cert: None,
        }
    }
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &crate::redact::redact_url(&self.url))
            .field("timeout", &self.timeout)
            .field("tls_root_cert", &self.tls_root_cert.as_ref().map(|c| c.len()))
            .finish()
    }
}

/// The seed URLs of a cluster URL, or `None` for a standalone URL.
fn cluster_seeds(url: &str) -> Option<Vec<String>> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("redis-cluster://") {
        ("redis", rest)
    } else if let Some(rest) = url.strip_prefix("rediss-cluster://") {
        ("rediss", rest)
    } else {
        return None;
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let query = path.find('?').map_or("", |q| &path[q..]);
    Some(
        hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|host| format!("{scheme}://{userinfo}{host}{query}"))
            .collect(),
    )
}

fn tls_certs(options: &RedisOptions) -> Option<redis::TlsCertificates> {
    options.tls_root_cert.as_ref().map(|root| redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(root.clone()),
    })
}

fn open_client(url: &str, options: &RedisOptions) -> Result<Client, RedisError> {
    match tls_certs(options) {
        Some(certs) => Client::build_with_tls(url, certs),
        None => Client::open(url),
    }
}

/// A blocking connection, marked broken after any error so the pool drops it.
struct Blocking {
    conn: Box<dyn ConnectionLike + Send>,
    broken: bool,
}

enum Target {
    Single(Box<Client>),
    Cluster(Box<ClusterClient>),
}

struct BlockingManager {
    target: Target,
    timeout: Duration,
}

impl r2d2::ManageConnection for BlockingManager {
    type Connection = Blocking;
    type Error = RedisError;

    fn connect(&self) -> Result<Blocking, RedisError> {
        let conn: Box<dyn ConnectionLike + Send> = match &self.target {
            Target::Single(client) => {
                let conn = client.get_connection_with_timeout(self.timeout)?;
                conn.set_read_timeout(Some(self.timeout))?;
                conn.set_write_timeout(Some(self.timeout))?;
                Box::new(conn)
            }
            Target::Cluster(client) => Box::new(client.get_connection()?),
        };
        Ok(Blocking { conn, broken: false })
    }

    fn is_valid(&self, _conn: &mut Blocking) -> Result<(), RedisError> {
        Ok(())
    }

    fn has_broken(&self, conn: &mut Blocking) -> bool {
        conn.broken || !conn.conn.is_open()
    }
}

#[derive(Clone)]
enum Shared {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

/// The connections to one deployment, shared by every cache that uses the same options.
struct Connections {
    options: RedisOptions,
    target: Target,
    blocking: r2d2::Pool<BlockingManager>,
    shared: PerRuntime<Shared>,
}

/// Whether `options` connect with TLS (`rediss://`, `rediss-cluster://`, or a root certificate).
fn uses_tls(options: &RedisOptions) -> bool {
    options.tls_root_cert.is_some()
        || options.url.starts_with("rediss://")
        || options.url.starts_with("rediss-cluster://")
}

/// Makes rustls usable for TLS URLs: installs the `ring` provider as the process default
/// unless the application installed one (rustls cannot pick one when several are compiled in).
/// Without TLS nothing is installed; an installed provider is never replaced.
fn ensure_crypto_provider(options: &RedisOptions) {
    if uses_tls(options) && rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl Connections {
    fn new(options: &RedisOptions) -> Result<Self, BoxError> {
        ensure_crypto_provider(options);
        let target = match cluster_seeds(&options.url) {
            Some(seeds) => {
                let mut builder = ClusterClient::builder(seeds)
                    .connection_timeout(options.timeout)
                    .response_timeout(options.timeout)
                    .retries(1);
                if let Some(certs) = tls_certs(options) {
                    builder = builder.certs(certs);
                }
                Target::Cluster(Box::new(builder.build()?))
            }
            None => Target::Single(Box::new(open_client(&options.url, options)?)),
        };
        let blocking_target = match &target {
            Target::Single(client) => Target::Single(client.clone()),
            Target::Cluster(client) => Target::Cluster(client.clone()),
        };
        let blocking = r2d2::Pool::builder()
            .max_size(16)
            .min_idle(Some(0))
            .connection_timeout(options.timeout)
            .test_on_check_out(false)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(BlockingManager {
                target: blocking_target,
                timeout: options.timeout,
            });
        Ok(Connections {
            options: options.clone(),
            target,
            blocking,
            shared: PerRuntime::new(),
        })
    }

    /// The shared connection, connecting on first use.
    async fn shared(&self) -> Result<Shared, BoxError> {
        if !crate::backend::in_tokio_runtime() {
            return Err("the async side of the redis backend needs a tokio runtime".into());
        }
        match self.shared.get() {
            Some(shared) => Ok(shared),
            // Boxed: connecting is a large future, and every operation's future would carry
            // (and every boxing of it copy) that much room for a path taken once.
            None => Box::pin(self.connect()).await,
        }
    }

    /// Connects on the caller's runtime (the first call, or the first since the runtime of
    /// the last connection went away).
    async fn connect(&self) -> Result<Shared, BoxError> {
        let shared = self
            .shared
            .get_or_make(|| async {
                Ok::<_, RedisError>(match &self.target {
                    Target::Single(client) => {
                        let config = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(self.options.timeout))
                            .set_response_timeout(Some(self.options.timeout))
                            .set_number_of_retries(1)
                            .set_max_delay(Duration::from_millis(500));
                        Shared::Single(client.get_connection_manager_with_config(config).await?)
                    }
                    Target::Cluster(client) => Shared::Cluster(client.get_async_connection().await?),
                })
            })
            .await?;
        Ok(shared)
    }

    async fn query_async<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, BoxError> {
        Ok(match self.shared().await? {
            // The manager's own method: through `ConnectionLike` every command is one more boxed
            // future.
            Shared::Single(mut conn) => redis::from_redis_value(conn.send_packed_command(cmd).await?.extract_error()?)?,
            Shared::Cluster(mut conn) => cmd.query_async(&mut conn).await?,
        })
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, BoxError> {
        let mut conn = self.blocking.get()?;
        let result = cmd.query::<T>(&mut *conn.conn);
        if result.is_err() {
            conn.broken = true;
        }
        Ok(result?)
    }

    /// Runs `pipe` on a blocking connection (discarded after an error, as in [`Connections::query`]).
    fn query_pipe(&self, pipe: &redis::Pipeline) -> Result<(), BoxError> {
        let mut conn = self.blocking.get()?;
        let result = pipe.query::<()>(&mut *conn.conn);
        if result.is_err() {
            conn.broken = true;
        }
        Ok(result?)
    }

    /// Runs `pipe` on the shared connection.
    async fn query_pipe_async(&self, pipe: &redis::Pipeline) -> Result<(), BoxError> {
        match self.shared().await? {
            Shared::Single(mut conn) => Ok(pipe.query_async::<()>(&mut conn).await?),
            Shared::Cluster(mut conn) => Ok(pipe.query_async::<()>(&mut conn).await?),
        }
    }

    /// Standalone clients for every master of a cluster (for SCAN), or the client itself.
    fn scan_targets(&self, slots: Option<Value>) -> Result<Vec<Client>, BoxError> {
        match (&self.target, slots) {
            (Target::Single(client), _) => Ok(vec![(**client).clone()]),
            (Target::Cluster(_), Some(slots)) => {
                let seed = cluster_seeds(&self.options.url)
                    .and_then(|s| s.into_iter().next())
                    .ok_or("a cluster URL needs at least one node")?;
                masters(&slots)?
                    .into_iter()
                    .map(|(host, port)| Ok(open_client(&with_host(&seed, &host, port), &self.options)?))
                    .collect()
            }
            (Target::Cluster(_), None) => Err("CLUSTER SLOTS did not answer".into()),
        }
    }
}

/// `url` with its host and port replaced.
fn with_host(url: &str, host: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let userinfo = authority.rfind('@').map_or("", |at| &authority[..=at]);
    format!("{scheme}://{userinfo}{host}:{port}{tail}")
}

/// The master addresses in a `CLUSTER SLOTS` reply.
fn masters(slots: &Value) -> Result<Vec<(String, u16)>, BoxError> {
    let Value::Array(ranges) = slots else {
        return Err("unexpected CLUSTER SLOTS reply".into());
    };
    let mut found: Vec<(String, u16)> = Vec::new();
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        let Some(Value::Array(master)) = parts.get(2) else {
            continue;
        };
        let host = match master.first() {
            Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            Some(Value::SimpleString(text)) => text.clone(),
            _ => continue,
        };
        let Some(Value::Int(port)) = master.get(1) else {
            continue;
        };
        let address = (host, u16::try_from(*port)?);
        if !found.contains(&address) {
            found.push(address);
        }
    }
    Ok(found)
}

/// Escapes Redis glob metacharacters (`*`, `?`, `[`, `]`, `\`).
///
/// ```
/// assert_eq!(cachex_core::backend::redis::glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
/// ```
pub fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

static DEPLOYMENTS: Mutex<Vec<(RedisOptions, Arc<Connections>)>> = Mutex::new(Vec::new());

/// One Redis cache: the shared connections of its deployment and its prefix.
#[derive(Clone)]
pub struct RedisStore {
    conns: Arc<Connections>,
    pattern: String,
    cluster: bool,
}

impl RedisStore {
    /// A store for the cache whose prefix is `prefix`. Nothing connects yet: the first
    /// operation does, and a deployment that is down then is an error of that operation.
    pub fn new(options: &RedisOptions, prefix: &str) -> Result<Self, BoxError> {
        crate::redact::remember(&options.url);
        let mut deployments = DEPLOYMENTS.lock().unwrap_or_else(PoisonError::into_inner);
        let conns = match deployments.iter().find(|(o, _)| o == options) {
            Some((_, conns)) => Arc::clone(conns),
            None => {
                let conns = Arc::new(Connections::new(options)?);
                deployments.push((options.clone(), Arc::clone(&conns)));
                conns
            }
        };
        Ok(RedisStore {
            cluster: matches!(conns.target, Target::Cluster(_)),
            conns,
            pattern: format!("{}:{}", glob_escape(prefix), "?".repeat(64)),
        })
    }

    /// `name key`, sized up front (growing the command's buffer for a 90-byte key cost a
    /// reallocation per operation).
    fn key_cmd(name: &str, key: &str) -> Cmd {
        let mut cmd = Cmd::with_capacity(2, name.len() + key.len());
        cmd.arg(name).arg(key);
        cmd
    }

    fn set_cmd(key: &str, value: &[u8], ttl: Option<Duration>) -> Cmd {
        let mut cmd = Cmd::with_capacity(5, key.len() + value.len() + 32);
        cmd.arg("SET").arg(key).arg(value);
        if let Some(ttl) = ttl.filter(|t| !t.is_zero()) {
            cmd.arg("PX").arg(ttl.as_millis().max(1) as u64);
        }
        cmd
    }

    /// `EVAL script 1 key args...`: one key, so a cluster routes it to the key's node.
    fn script_cmd(script: &str, key: &str, args: &[&[u8]]) -> Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(1).arg(key);
        for arg in args {
            cmd.arg(*arg);
        }
        cmd
    }

    /// Takes the lease of `key` (see [`crate::lease`]): a new `marker` kept for `lease_for`
    /// where the entry is absent; the lease is the SHA-1 of the bytes the entry then holds
    /// (computed by the server, so a stale value is not sent back), or nil when another
    /// computation's marker is there.
    fn lease_cmd(key: &str, marker: &[u8], lease_for: Duration) -> Cmd {
        const LEASE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return redis.sha1hex(ARGV[1])
end
if string.len(v) == tonumber(ARGV[4]) and string.sub(v, 1, 4) == ARGV[3] then return false end
return redis.sha1hex(v)";
        let millis = (lease_for.as_millis().max(1) as u64).to_string();
        let len = MARKER_LEN.to_string();
        Self::script_cmd(LEASE, key, &[marker, millis.as_bytes(), MARKER_MAGIC, len.as_bytes()])
    }

    /// Writes `value` under `key` only if the entry's bytes still have the SHA-1 `lease`,
    /// and then publishes `announce` (a channel and a message) when there is one; answers 1
    /// when it wrote. A script may publish on a cluster too (the message reaches every node).
    pub(super) fn fill_cmd(
        key: &str,
        lease: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
        announce: Option<(&str, &[u8])>,
    ) -> Cmd {
        const FILL: &str = r"
local v = redis.call('GET', KEYS[1])
if not v or redis.sha1hex(v) ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then redis.call('SET', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
if ARGV[4] then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return 1";
        let millis = ttl
            .filter(|t| !t.is_zero())
            .map_or(0, |ttl| ttl.as_millis().max(1) as u64)
            .to_string();
        match announce {
            Some((channel, message)) => Self::script_cmd(
                FILL,
                key,
                &[lease, value, millis.as_bytes(), channel.as_bytes(), message],
            ),
            None => Self::script_cmd(FILL, key, &[lease, value, millis.as_bytes()]),
        }
    }

    /// Removes the entry under `key` if it is still the marker whose SHA-1 is `lease`.
    fn release_cmd(key: &str, lease: &[u8]) -> Cmd {
        const RELEASE: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 4) == ARGV[2] and redis.sha1hex(v) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0";
        Self::script_cmd(RELEASE, key, &[lease, MARKER_MAGIC])
    }

    fn slots_cmd() -> Cmd {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        cmd
    }

    fn scan_cmd(&self, cursor: u64) -> Cmd {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor).arg("MATCH").arg(&self.pattern).arg("COUNT").arg(1000);
        cmd
    }

    /// `UNLINK` for a batch of keys: one command on a standalone server, one per key on a
    /// cluster node (its keys hash to different slots).
    fn unlink(&self, keys: &[String]) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        if self.cluster {
            for key in keys {
                pipe.cmd("UNLINK").arg(key).ignore();
            }
        } else {
            pipe.cmd("UNLINK").arg(keys).ignore();
        }
        pipe
    }

    fn clear_blocking(&self) -> Result<(), BoxError> {
        let slots = if self.cluster {
            Some(self.conns.query::<Value>(&Self::slots_cmd())?)
        } else {
            None
        };
        for client in self.conns.scan_targets(slots)? {
            let mut conn = client.get_connection_with_timeout(self.conns.options.timeout)?;
            conn.set_read_timeout(Some(self.conns.options.timeout))?;
            conn.set_write_timeout(Some(self.conns.options.timeout))?;
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = self.scan_cmd(cursor).query(&mut conn)?;
                if !keys.is_empty() {
                    self.unlink(&keys).query::<()>(&mut conn)?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }

    async fn clear_async(&self) -> Result<(), BoxError> {
        let slots = if self.cluster {
            Some(self.conns.query_async::<Value>(&Self::slots_cmd()).await?)
        } else {
            None
        };
        for client in self.conns.scan_targets(slots)? {
            // Each command bounded by the cache's timeout, as on the blocking side.
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.conns.options.timeout))
                .set_response_timeout(Some(self.conns.options.timeout));
            let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = self.scan_cmd(cursor).query_async(&mut conn).await?;
                if !keys.is_empty() {
                    self.unlink(&keys).query_async::<()>(&mut conn).await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }
}

impl Storage for RedisStore {
    fn get(&self, key: &StorageKey<'_>) -> Result<Option<Vec<u8>>, BoxError> {
        let key = &key.text();
        self.conns.query(&Self::key_cmd("GET", key))
    }
    fn set(&self, key: &StorageKey<'_>, value: &[u8], ttl: Option<Duration>) -> Result<(), BoxError> {
        let key = &key.text();
        self.conns.query(&Self::set_cmd(key, value, ttl))
    }
    fn delete(&self, key: &StorageKey<'_>) -> Result<(), BoxError> {
        let key = &key.text();
        self.conns.query(&Self::key_cmd("UNLINK", key))
    }
    fn clear(&self) -> Result<(), BoxError> {
        self.clear_blocking()
    }
    fn lease(&self, key: &StorageKey<'_>, lease_for: Duration) -> Result<Lease, BoxError> {
        let cmd = Self::lease_cmd(&key.text(), &marker(lease_for), lease_for);
        Ok(leased(self.conns.query(&cmd)?))
    }
    fn fill(&self, key: &StorageKey<'_>, lease: &Lease, value: &[u8], ttl: Option<Duration>) -> Result<bool, BoxError> {
        let Lease::Held(token) = lease else {
            return Ok(false);
        };
        Ok(self
            .conns
            .query::<i64>(&Self::fill_cmd(&key.text(), token, value, ttl, None))?
            == 1)
    }
    fn release(&self, key: &StorageKey<'_>, lease: &Lease) -> Result<(), BoxError> {
        match lease {
            Lease::Held(token) => self.conns.query(&Self::release_cmd(&key.text(), token)),
            _ => Ok(()),
        }
    }
}

/// The lease the lease script answered: the SHA-1 it computed, or nil for another's marker.
fn leased(answer: Option<Vec<u8>>) -> Lease {
    answer.map_or(Lease::HeldElsewhere, Lease::Held)
}

impl AsyncStorage for RedisStore {
    fn get<'a>(&'a self, key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>> {
        let key = key.text();
        Box::pin(async move { self.conns.query_async(&Self::key_cmd("GET", &key)).await })
    }
    fn set<'a>(
        &'a self,
        key: &'a StorageKey<'a>,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        let key = key.text();
        Box::pin(async move { self.conns.query_async(&Self::set_cmd(&key, value, ttl)).await })
    }
    fn delete<'a>(&'a self, key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<(), BoxError>> {
        let key = key.text();
        Box::pin(async move { self.conns.query_async(&Self::key_cmd("UNLINK", &key)).await })
    }
    fn clear(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(self.clear_async())
    }
    fn lease<'a>(&'a self, key: &'a StorageKey<'a>, lease_for: Duration) -> BoxFuture<'a, Result<Lease, BoxError>> {
        let cmd = Self::lease_cmd(&key.text(), &marker(lease_for), lease_for);
        Box::pin(async move { Ok(leased(self.conns.query_async(&cmd).await?)) })
    }
    fn fill<'a>(
        &'a self,
        key: &'a StorageKey<'a>,
        lease: &'a Lease,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, BoxError>> {
        Box::pin(async move {
            let Lease::Held(token) = lease else {
                return Ok(false);
            };
            let cmd = Self::fill_cmd(&key.text(), token, value, ttl, None);
            Ok(self.conns.query_async::<i64>(&cmd).await? == 1)
        })
    }
    fn release<'a>(&'a self, key: &'a StorageKey<'a>, lease: &'a Lease) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            match lease {
                Lease::Held(token) => self.conns.query_async(&Self::release_cmd(&key.text(), token)).await,
                _ => Ok(()),
            }
        })
    }
}

/// The redis backend: `url` (standalone, TLS, unix socket or cluster), `timeout`,
/// `tls_ca_file`.
pub const KIND: super::Kind = super::Kind {
    name: "redis",
    keys: &["url", "timeout", "tls_ca_file"],
    url_schemes: &[
        "redis",
        "rediss",
        "redis+unix",
        "unix",
        "redis-cluster",
        "rediss-cluster",
    ],
    stores_bytes: true,
    build: |spec| {
        let tls_root_cert = match spec.tls_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                super::SettingProblem::new("tls_ca_file", format!("cannot read {}: {e}", path.display()))
            })?),
            None => None,
        };
        let options = RedisOptions {
            url: spec.required_url("redis")?.to_owned(),
            timeout: spec.timeout.unwrap_or(DEFAULT_TIMEOUT),
            tls_root_cert,
        };
        let store = RedisStore::new(&options, spec.prefix)
            .map_err(|e| super::SettingProblem::new("url", format!("not a usable redis URL: {e}")))?;
        let invalidations = RedisInvalidations::new(Arc::clone(&store.conns), spec.prefix);
        Ok(super::Backend::bytes("redis", store).with_invalidations(invalidations))
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_split_into_seeds_with_credentials() {
        assert_eq!(
            cluster_seeds("redis-cluster://u:p@h1:7000,h2:7001/"),
            Some(vec![
                "redis://u:p@h1:7000".to_string(),
                "redis://u:p@h2:7001".to_string()
            ])
        );
        assert_eq!(cluster_seeds("rediss-cluster://h:1").unwrap(), vec!["rediss://h:1"]);
        assert_eq!(cluster_seeds("redis://h:1/0"), None);
    }

    #[test]
    fn host_replacement_keeps_credentials() {
        assert_eq!(
            with_host("rediss://u:p@h1:7000", "10.0.0.2", 7002),
            "rediss://u:p@10.0.0.2:7002"
        );
        assert_eq!(with_host("redis://h1:7000/?x=1", "n", 1), "redis://n:1/?x=1");
    }
}
