//! The invalidation channel of a Redis cache with a local tier: `PUBLISH` on
//! `<prefix>:invalidations` after every write, removal and clear, and one subscriber thread per
//! tiered cache and process.
//!
//! Pub/sub rather than server-assisted client tracking (`CLIENT TRACKING ... BCAST PREFIX`):
//! the messages are cachex's own (entry digests, or "everything"), so a `clear` is one message
//! instead of one per key, a process can tell its own echoes, and the same channel works on a
//! cluster, where a plain `PUBLISH` reaches the subscribers of every node. The cost is a
//! `PUBLISH` per write of a tiered cache, pipelined with its `SET` on a standalone server (one
//! round trip); tracking would also see writes by clients that are not cachex, which a cache
//! that only cachex writes does not need.
//!
//! The subscriber is a blocking connection on a thread of its own (no async runtime needed),
//! named after its channel (`CLIENT LIST` shows `name=<prefix>:invalidations`).
//! It sends a `PING` every half of the cache's `timeout`, whatever else it reads: an answer
//! says every message published before the ping was sent has been handled, and the tier serves
//! only while that point is less than the `timeout` ago (a process that was stopped serves
//! nothing until it has read what was published meanwhile). A ping not answered within half
//! the `timeout`, or any error, is a lost channel: the tier is emptied and bypassed until a new
//! connection has subscribed again (retried with a backoff up to 1 s).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redis::{Client, Cmd, Pipeline, Value};

use super::{cluster_seeds, open_client, Connections, RedisOptions, RedisStore, Target};
use crate::coherence::{announced, announced_async, filled, filled_async, InvalidationListener, Invalidations};
use crate::error::BoxError;
use crate::lease::Lease;
use crate::storage::{AsyncStorage, BoxFuture, Storage, StorageKey};

/// The invalidation channel of one Redis cache.
pub(super) struct RedisInvalidations {
    conns: Arc<Connections>,
    channel: String,
}

impl RedisInvalidations {
    /// The channel of the cache whose prefix is `prefix`, on the deployment of `conns`.
    pub(super) fn new(conns: Arc<Connections>, prefix: &str) -> Self {
        RedisInvalidations {
            conns,
            channel: format!("{prefix}:invalidations"),
        }
    }

    fn publish_cmd(&self, message: &[u8]) -> Cmd {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.channel).arg(message);
        cmd
    }

    /// `change` then `PUBLISH`, one pipeline: one round trip on a standalone server, and both
    /// or neither are sent (a reply that comes too late leaves both applied). `None` on a
    /// cluster, whose key and channel live on different nodes.
    fn and_publish_pipe(&self, change: Cmd, message: &[u8]) -> Option<Pipeline> {
        if matches!(self.conns.target, Target::Cluster(_)) {
            return None;
        }
        let mut pipe = redis::pipe();
        pipe.add_command(change)
            .ignore()
            .add_command(self.publish_cmd(message))
            .ignore();
        Some(pipe)
    }

    /// The fill script that also publishes `message` when it writes: one round trip, on a
    /// standalone server and on a cluster; `None` for a lease that is not the server's.
    fn fill_announced_cmd(
        &self,
        key: &StorageKey<'_>,
        lease: &Lease,
        value: &[u8],
        ttl: Option<Duration>,
        message: &[u8],
    ) -> Option<Cmd> {
        let Lease::Held(token) = lease else {
            return None;
        };
        Some(RedisStore::fill_cmd(
            &key.text(),
            token,
            value,
            ttl,
            Some((&self.channel, message)),
        ))
    }

    /// The servers a subscriber may connect to: the server, or each seed node of a cluster (a
    /// `PUBLISH` on any node reaches the subscribers of every node).
    fn subscribe_targets(&self) -> Result<Vec<Client>, BoxError> {
        match &self.conns.target {
            Target::Single(client) => Ok(vec![(**client).clone()]),
            Target::Cluster(_) => cluster_seeds(&self.conns.options.url)
                .unwrap_or_default()
                .iter()
                .map(|seed| Ok(open_client(seed, &self.conns.options)?))
                .collect(),
        }
    }
}

impl RedisInvalidations {
    /// Why the server refuses this process the channel, if it does: a `PUBLISH` of a probe
    /// (which other processes ignore), then a `SUBSCRIBE` on a connection of its own.
    fn refusal(&self) -> Option<String> {
        if let Err(error) = self.conns.query::<i64>(&self.publish_cmd(&crate::coherence::probe())) {
            let error = error.to_string();
            return refused(&error).then_some(format!("PUBLISH was refused: {error}"));
        }
        let target = self.subscribe_targets().ok()?.into_iter().next()?;
        let mut conn = target.get_connection_with_timeout(self.conns.options.timeout).ok()?;
        conn.set_read_timeout(Some(self.conns.options.timeout)).ok()?;
        conn.set_write_timeout(Some(self.conns.options.timeout)).ok()?;
        match subscribe(&mut conn, &self.channel) {
            Err(error) if refused(&error) => Some(format!("SUBSCRIBE was refused: {error}")),
            _ => None,
        }
    }

    /// The ACL user this process connects as (`default` when the URL names none).
    fn user(&self) -> String {
        let target = self
            .subscribe_targets()
            .ok()
            .and_then(|targets| targets.into_iter().next());
        target
            .and_then(|client| {
                client
                    .get_connection_info()
                    .redis_settings()
                    .username()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "default".to_owned())
    }
}

impl Invalidations for RedisInvalidations {
    /// The subscriber pings every half `timeout` and reports each answer: a tier is never more
    /// than the cache's `timeout` behind the channel while it serves.
    fn caught_up_within(&self) -> Option<Duration> {
        Some(self.conns.options.timeout)
    }

    fn check(&self) -> Result<(), String> {
        match self.refusal() {
            None => Ok(()),
            Some(reason) => Err(format!(
                "the local tier's invalidations need the channel `{channel}`, which the redis user `{user}` may not use \
                 ({reason}); add it to the user's ACL rules (ACL SETUSER {user} &{channel}; Debian's redis 7 gives new \
                 users no channels: acl-pubsub-default resetchannels), or leave `local` out",
                channel = self.channel,
                user = self.user(),
            )),
        }
    }

    fn publish(&self, message: &[u8]) -> Result<(), BoxError> {
        self.conns.query::<i64>(&self.publish_cmd(message)).map(drop)
    }

    fn publish_async<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.conns
                .query_async::<i64>(&self.publish_cmd(message))
                .await
                .map(drop)
        })
    }

    fn set_and_publish(
        &self,
        storage: &dyn Storage,
        key: &StorageKey<'_>,
        value: &[u8],
        ttl: Option<Duration>,
        message: &[u8],
    ) -> Result<(), BoxError> {
        match self.and_publish_pipe(RedisStore::set_cmd(&key.text(), value, ttl), message) {
            Some(pipe) => self.conns.query_pipe(&pipe),
            None => announced(storage.set(key, value, ttl), || self.publish(message)),
        }
    }

    fn set_and_publish_async<'a>(
        &'a self,
        storage: &'a dyn AsyncStorage,
        key: &'a StorageKey<'a>,
        value: &'a [u8],
        ttl: Option<Duration>,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            match self.and_publish_pipe(RedisStore::set_cmd(&key.text(), value, ttl), message) {
                Some(pipe) => self.conns.query_pipe_async(&pipe).await,
                None => announced_async(storage.set(key, value, ttl).await, self.publish_async(message)).await,
            }
        })
    }

    fn fill_and_publish(
        &self,
        storage: &dyn Storage,
        key: &StorageKey<'_>,
        lease: &Lease,
        value: &[u8],
        ttl: Option<Duration>,
        message: &[u8],
    ) -> Result<bool, BoxError> {
        match self.fill_announced_cmd(key, lease, value, ttl, message) {
            Some(cmd) => Ok(self.conns.query::<i64>(&cmd)? == 1),
            None => filled(storage.fill(key, lease, value, ttl), || self.publish(message)),
        }
    }

    fn fill_and_publish_async<'a>(
        &'a self,
        storage: &'a dyn AsyncStorage,
        key: &'a StorageKey<'a>,
        lease: &'a Lease,
        value: &'a [u8],
        ttl: Option<Duration>,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, BoxError>> {
        Box::pin(async move {
            match self.fill_announced_cmd(key, lease, value, ttl, message) {
                Some(cmd) => Ok(self.conns.query_async::<i64>(&cmd).await? == 1),
                None => filled_async(storage.fill(key, lease, value, ttl).await, self.publish_async(message)).await,
            }
        })
    }

    fn delete_and_publish(&self, storage: &dyn Storage, key: &StorageKey<'_>, message: &[u8]) -> Result<(), BoxError> {
        match self.and_publish_pipe(RedisStore::key_cmd("UNLINK", &key.text()), message) {
            Some(pipe) => self.conns.query_pipe(&pipe),
            None => announced(storage.delete(key), || self.publish(message)),
        }
    }

    fn delete_and_publish_async<'a>(
        &'a self,
        storage: &'a dyn AsyncStorage,
        key: &'a StorageKey<'a>,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            match self.and_publish_pipe(RedisStore::key_cmd("UNLINK", &key.text()), message) {
                Some(pipe) => self.conns.query_pipe_async(&pipe).await,
                None => announced_async(storage.delete(key).await, self.publish_async(message)).await,
            }
        })
    }

    fn subscribe(&self, listener: Weak<dyn InvalidationListener>) {
        let subscriber = match self.subscribe_targets() {
            Ok(targets) => Subscriber {
                targets,
                channel: self.channel.clone(),
                options: self.conns.options.clone(),
            },
            Err(error) => {
                tracing::warn!(channel = %self.channel, %error, "cachex local tier stays bypassed: no server to subscribe to");
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("cachex-invalidations".into())
            .spawn(move || subscriber.run(&listener));
        if let Err(error) = spawned {
            tracing::warn!(channel = %self.channel, %error, "cachex local tier stays bypassed: no thread for its invalidations");
        }
    }
}

/// The first wait before connecting again after a failure; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(1);

/// The subscriber of one cache's channel, on its own thread.
struct Subscriber {
    targets: Vec<Client>,
    channel: String,
    options: RedisOptions,
}

/// Why a subscription ended.
enum Ended {
    /// The listener is gone (its cache was dropped): the thread ends.
    ListenerGone,
    /// The connection failed or went silent.
    Lost(String),
    /// The server refused the subscription (the reason).
    Refused(String),
}

/// Sends `SUBSCRIBE channel` on `conn` and reads the reply: `Err` with the reason when it is
/// not the server's confirmation of that subscription.
fn subscribe(conn: &mut redis::Connection, channel: &str) -> Result<(), String> {
    let command = redis::cmd("SUBSCRIBE").arg(channel).get_packed_command();
    conn.send_packed_command(&command).map_err(|e| e.to_string())?;
    let reply = conn
        .recv_response()
        .and_then(Value::extract_error)
        .map_err(|e| e.to_string())?;
    match &reply {
        Value::Array(items) | Value::Push { data: items, .. } if matches!(items.first(), Some(Value::BulkString(kind)) if kind.eq_ignore_ascii_case(b"subscribe")) => {
            Ok(())
        }
        other => Err(format!("unexpected reply to SUBSCRIBE: {other:?}")),
    }
}

/// Whether a server's error is an ACL refusal (`-NOPERM`, which redis-rs shows as `NoPerm`).
fn refused(error: &str) -> bool {
    error.contains("NoPerm") || error.contains("NOPERM")
}

impl Subscriber {
    /// Half the cache's timeout: how long the connection may stay silent before a `PING`, and
    /// how long that ping may take.
    fn heartbeat(&self) -> Duration {
        (self.options.timeout / 2).max(Duration::from_millis(5))
    }

    fn run(self, listener: &Weak<dyn InvalidationListener>) {
        let mut retry = FIRST_RETRY;
        let mut next = 0;
        let mut warned = false;
        loop {
            if listener.strong_count() == 0 {
                return;
            }
            let Some(target) = self.targets.get(next % self.targets.len().max(1)) else {
                tracing::warn!(channel = %self.channel, "cachex local tier stays bypassed: no server to subscribe to");
                return;
            };
            let reason = match self.listen(target, listener) {
                Ok(Ended::ListenerGone) => return,
                Ok(Ended::Lost(reason)) => {
                    retry = FIRST_RETRY;
                    reason
                }
                Ok(Ended::Refused(reason)) => {
                    if !warned {
                        warned = true;
                        tracing::warn!(channel = %self.channel, %reason, "cachex local tier stays bypassed: the server refused its subscription (an ACL user needs `&{}`); trying again", self.channel);
                    }
                    reason
                }
                Err(error) => error.to_string(),
            };
            match listener.upgrade() {
                Some(listener) => listener.lost(&reason),
                None => return,
            }
            tracing::debug!(channel = %self.channel, %reason, ?retry, "cachex invalidation channel down; connecting again");
            std::thread::sleep(retry);
            retry = (retry * 2).min(MAX_RETRY);
            next += 1;
        }
    }

    /// Subscribes through `target` and hands messages over until the connection is lost (or
    /// the listener is gone); `Err` when it could not subscribe.
    fn listen(&self, target: &Client, listener: &Weak<dyn InvalidationListener>) -> Result<Ended, BoxError> {
        let heartbeat = self.heartbeat();
        let mut conn = target.get_connection_with_timeout(self.options.timeout)?;
        conn.set_write_timeout(Some(self.options.timeout))?;
        conn.set_read_timeout(Some(self.options.timeout))?;
        // Named after its channel, so `CLIENT LIST` tells an operator what it is (best effort:
        // an ACL user may not be allowed to name itself).
        let _ = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(&self.channel)
            .query::<()>(&mut conn);
        // SUBSCRIBE by hand: redis-rs's `PubSub::subscribe` takes a refusal (`-NOPERM`, an
        // ACL user without the channel) for a subscription. The tier serves only once the
        // server's reply confirms it.
        if let Err(refused) = subscribe(&mut conn, &self.channel) {
            return Ok(Ended::Refused(refused));
        }
        match listener.upgrade() {
            Some(listener) => listener.connected(),
            None => return Ok(Ended::ListenerGone),
        }
        let mut pubsub = conn.as_pubsub();
        let mut next_ping = Instant::now() + heartbeat;
        loop {
            let now = Instant::now();
            if now >= next_ping {
                // The answer comes after every message published before the ping was sent;
                // redis-rs queues the messages read before it, so they are handled (the
                // queue drained) before the tier hears it has caught up.
                pubsub.set_read_timeout(Some(heartbeat))?;
                if let Err(error) = pubsub.ping::<Value>() {
                    return Ok(Ended::Lost(format!(
                        "no answer to a ping within {heartbeat:?}: {error}"
                    )));
                }
                match drain(&mut pubsub, listener, heartbeat)? {
                    Drained::Empty => match listener.upgrade() {
                        Some(listener) => listener.caught_up(now),
                        None => return Ok(Ended::ListenerGone),
                    },
                    Drained::Flooded => {}
                    Drained::Ended(ended) => return Ok(ended),
                }
                next_ping = now + heartbeat;
                continue;
            }
            // A timeout here leaves the connection as it was: redis-rs skips a late reply
            // only after a command's (the ping's) timeout, and that one ends the connection.
            pubsub.set_read_timeout(Some(
                next_ping.saturating_duration_since(now).max(Duration::from_millis(1)),
            ))?;
            match pubsub.get_message() {
                Ok(message) => match listener.upgrade() {
                    Some(listener) => listener.message(message.get_payload_bytes()),
                    None => return Ok(Ended::ListenerGone),
                },
                Err(error) if error.is_timeout() => {
                    if listener.strong_count() == 0 {
                        return Ok(Ended::ListenerGone);
                    }
                }
                Err(error) => return Ok(Ended::Lost(error.to_string())),
            }
        }
    }
}

/// How [`drain`] ended.
enum Drained {
    /// Every message read before the ping's answer is handled.
    Empty,
    /// Messages kept coming for `within`: whether those read before the answer are all
    /// handled is not known (the tier does not hear it caught up this time).
    Flooded,
    Ended(Ended),
}

/// Hands over the messages waiting on `pubsub` (those redis-rs queued while it read the
/// answer to a ping, then any in the socket) until none comes within 100 µs.
fn drain(
    pubsub: &mut redis::PubSub<'_>,
    listener: &Weak<dyn InvalidationListener>,
    within: Duration,
) -> Result<Drained, BoxError> {
    pubsub.set_read_timeout(Some(Duration::from_micros(100)))?;
    let started = Instant::now();
    while started.elapsed() < within {
        match pubsub.get_message() {
            Ok(message) => match listener.upgrade() {
                Some(listener) => listener.message(message.get_payload_bytes()),
                None => return Ok(Drained::Ended(Ended::ListenerGone)),
            },
            Err(error) if error.is_timeout() => return Ok(Drained::Empty),
            Err(error) => return Ok(Drained::Ended(Ended::Lost(error.to_string()))),
        }
    }
    Ok(Drained::Flooded)
}
