//! How the processes that share a cache tell each other which entries changed, so that each
//! drops them from its [local tier](crate::local): the messages (entry digests, or "everything";
//! never a value), the channel a backend offers for them ([`Invalidations`]) and the side that
//! receives them ([`InvalidationListener`]).
//!
//! Redis offers one (pub/sub on a channel per cache); other backends offer none, and a local
//! tier in front of them is bounded by its `ttl` alone.

use std::hash::BuildHasher;
use std::sync::{OnceLock, Weak};
use std::time::Duration;

use crate::error::BoxError;
use crate::key::Key;
use crate::lease::Lease;
use crate::storage::{AsyncStorage, BoxFuture, Storage, StorageKey};

/// What one message says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// These entries were written or removed.
    Keys(Vec<Key>),
    /// Every entry of the cache was removed.
    Clear,
}

/// The message that asks nothing of the processes that receive it, published by a check.
///
/// ```
/// use cachex_core::coherence::{probe, Invalidation};
/// let mut from_another_process = probe();
/// from_another_process[4] ^= 0xff;
/// assert_eq!(Invalidation::decode(&from_another_process), None);
/// ```
pub fn probe() -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(TAG);
    out.extend_from_slice(origin());
    out.push(PROBE);
    out
}

/// The first bytes of every message: a tag and the format's version.
const TAG: &[u8; 4] = b"cxi1";
const ORIGIN_LEN: usize = 16;
const KEYS: u8 = b'k';
const CLEAR: u8 = b'c';
/// A message that asks nothing: what `init()` publishes to check it may.
const PROBE: u8 = b'p';
const HEADER_LEN: usize = TAG.len() + ORIGIN_LEN + 1;

/// This process's identity in the messages it sends, so it ignores its own echoes: 16 random
/// bytes, drawn once.
pub(crate) fn origin() -> &'static [u8; ORIGIN_LEN] {
    static ORIGIN: OnceLock<[u8; ORIGIN_LEN]> = OnceLock::new();
    ORIGIN.get_or_init(|| {
        let draw = |salt: u64| std::collections::hash_map::RandomState::new().hash_one((salt, std::process::id()));
        let mut origin = [0; ORIGIN_LEN];
        origin[..8].copy_from_slice(&draw(1).to_le_bytes());
        origin[8..].copy_from_slice(&draw(2).to_le_bytes());
        origin
    })
}

impl Invalidation {
    /// The message this process sends: the tag, this process's origin, then the entries.
    ///
    /// ```
    /// use cachex_core::coherence::Invalidation;
    /// use cachex_core::Key;
    /// let message = Invalidation::Keys(vec![Key([7; 32])]).encode();
    /// assert_eq!(message.len(), 4 + 16 + 1 + 32);
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let keys: &[Key] = match self {
            Invalidation::Keys(keys) => keys,
            Invalidation::Clear => &[],
        };
        let mut out = Vec::with_capacity(HEADER_LEN + 32 * keys.len());
        out.extend_from_slice(TAG);
        out.extend_from_slice(origin());
        out.push(if matches!(self, Invalidation::Clear) {
            CLEAR
        } else {
            KEYS
        });
        for key in keys {
            out.extend_from_slice(&key.0);
        }
        out
    }

    /// What a received message asks of this process: `None` for its own echo (and for a
    /// [`probe`]). A message that
    /// does not read (another version, or not from cachex) counts as [`Invalidation::Clear`]:
    /// dropping everything is always safe, keeping an entry it may have named is not.
    ///
    /// ```
    /// use cachex_core::coherence::Invalidation;
    /// let own = Invalidation::Clear.encode();
    /// assert_eq!(Invalidation::decode(&own), None);
    /// assert_eq!(Invalidation::decode(b"garbage"), Some(Invalidation::Clear));
    /// ```
    pub fn decode(message: &[u8]) -> Option<Invalidation> {
        if message.len() < HEADER_LEN || &message[..TAG.len()] != TAG {
            return Some(Invalidation::Clear);
        }
        if message[TAG.len()..TAG.len() + ORIGIN_LEN] == origin()[..] {
            return None;
        }
        let body = &message[HEADER_LEN..];
        match message[HEADER_LEN - 1] {
            PROBE => None,
            KEYS if body.len() % 32 == 0 && !body.is_empty() => Some(Invalidation::Keys(
                body.chunks_exact(32)
                    .map(|chunk| Key(chunk.try_into().unwrap_or([0; 32])))
                    .collect(),
            )),
            _ => Some(Invalidation::Clear),
        }
    }
}

/// The channel a backend offers for invalidations among the processes sharing a cache.
///
/// ```
/// use std::sync::Weak;
/// use cachex_core::coherence::{InvalidationListener, Invalidations};
/// use cachex_core::{BoxError, BoxFuture};
///
/// /// Delivers nothing: a single-process deployment.
/// struct Alone;
///
/// impl Invalidations for Alone {
///     fn publish(&self, _message: &[u8]) -> Result<(), BoxError> {
///         Ok(())
///     }
///     fn publish_async<'a>(&'a self, _message: &'a [u8]) -> BoxFuture<'a, Result<(), BoxError>> {
///         Box::pin(async { Ok(()) })
///     }
///     fn subscribe(&self, listener: Weak<dyn InvalidationListener>) {
///         if let Some(listener) = listener.upgrade() {
///             listener.connected();
///         }
///     }
/// }
/// ```
pub trait Invalidations: Send + Sync + 'static {
    /// Sends `message` to every process subscribed to this cache's channel, blocking.
    fn publish(&self, message: &[u8]) -> Result<(), BoxError>;
    /// Sends `message`, awaiting the backend.
    fn publish_async<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<(), BoxError>>;
    /// Starts delivering this cache's messages to `listener` (on a thread of its own) for as
    /// long as the listener lives, and telling it when the channel is up and when it is lost.
    fn subscribe(&self, listener: Weak<dyn InvalidationListener>);

    /// How far behind the channel a subscriber that is up may fall before it says so: a
    /// channel that returns `Some(d)` calls [`InvalidationListener::caught_up`] at least every
    /// `d` while it is up, and a local tier it feeds serves only while the last point it caught
    /// up to is less than `d` ago (so a process that was stopped serves nothing until its
    /// subscriber has read what was published meanwhile). `None` (the default): the channel
    /// does not say, and a tier trusts `connected` and `lost` alone.
    fn caught_up_within(&self) -> Option<Duration> {
        None
    }

    /// Checks, for `init()`, that this process may publish and subscribe on the channel: `Err`
    /// says what to change when the server refuses either. A server that cannot be reached is
    /// no problem here (calls follow `on_error`, and the tier stays bypassed until it is up).
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// Writes `value` under `key` in `storage` (the cache's own store), then publishes
    /// `message`, blocking. By default one after the other; a channel on the same engine may
    /// send both at once (Redis pipelines them: one round trip).
    fn set_and_publish(
        &self,
        storage: &dyn Storage,
        key: &StorageKey<'_>,
        value: &[u8],
        ttl: Option<Duration>,
        message: &[u8],
    ) -> Result<(), BoxError> {
        announced(storage.set(key, value, ttl), || self.publish(message))
    }

    /// [`Invalidations::set_and_publish`], awaiting the backend.
    fn set_and_publish_async<'a>(
        &'a self,
        storage: &'a dyn AsyncStorage,
        key: &'a StorageKey<'a>,
        value: &'a [u8],
        ttl: Option<Duration>,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let set = storage.set(key, value, ttl).await;
            announced_async(set, self.publish_async(message)).await
        })
    }

    /// Fills the entry under `key` in `storage` under `lease` (see
    /// [`Storage::fill`]), then publishes `message` when the value landed, blocking; returns
    /// whether it landed. Redis does both in one script, on a standalone server and a cluster.
    fn fill_and_publish(
        &self,
        storage: &dyn Storage,
        key: &StorageKey<'_>,
        lease: &Lease,
        value: &[u8],
        ttl: Option<Duration>,
        message: &[u8],
    ) -> Result<bool, BoxError> {
        filled(storage.fill(key, lease, value, ttl), || self.publish(message))
    }

    /// [`Invalidations::fill_and_publish`], awaiting the backend.
    fn fill_and_publish_async<'a>(
        &'a self,
        storage: &'a dyn AsyncStorage,
        key: &'a StorageKey<'a>,
        lease: &'a Lease,
        value: &'a [u8],
        ttl: Option<Duration>,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, BoxError>> {
        Box::pin(
            async move { filled_async(storage.fill(key, lease, value, ttl).await, self.publish_async(message)).await },
        )
    }

    /// Removes the entry under `key` from `storage`, then publishes `message`, blocking:
    /// published even when the removal failed (it may have run on the server all the same).
    /// Redis pipelines both on a standalone server.
    fn delete_and_publish(&self, storage: &dyn Storage, key: &StorageKey<'_>, message: &[u8]) -> Result<(), BoxError> {
        announced(storage.delete(key), || self.publish(message))
    }

    /// [`Invalidations::delete_and_publish`], awaiting the backend.
    fn delete_and_publish_async<'a>(
        &'a self,
        storage: &'a dyn AsyncStorage,
        key: &'a StorageKey<'a>,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let deleted = storage.delete(key).await;
            announced_async(deleted, self.publish_async(message)).await
        })
    }
}

/// The outcome of a change to the store (`done`) and of its publication, which runs whatever
/// `done` says (a change that failed, on a timeout say, may have been applied): an error says
/// which of the two failed.
pub(crate) fn announced(
    done: Result<(), BoxError>,
    publish: impl FnOnce() -> Result<(), BoxError>,
) -> Result<(), BoxError> {
    joined(done, publish())
}

/// [`announced`], awaiting the publication.
pub(crate) async fn announced_async(
    done: Result<(), BoxError>,
    publish: impl std::future::Future<Output = Result<(), BoxError>>,
) -> Result<(), BoxError> {
    joined(done, publish.await)
}

/// The outcome of a fill (`landed`: whether it wrote), published when it wrote (a fill that
/// was refused changed nothing).
pub(crate) fn filled(
    landed: Result<bool, BoxError>,
    publish: impl FnOnce() -> Result<(), BoxError>,
) -> Result<bool, BoxError> {
    if landed? {
        publish().map_err(|error| unpublished(&error))?;
        return Ok(true);
    }
    Ok(false)
}

/// [`filled`], awaiting the publication.
pub(crate) async fn filled_async(
    landed: Result<bool, BoxError>,
    publish: impl std::future::Future<Output = Result<(), BoxError>>,
) -> Result<bool, BoxError> {
    if landed? {
        publish.await.map_err(|error| unpublished(&error))?;
        return Ok(true);
    }
    Ok(false)
}

/// The error of a change that was made but not announced.
fn unpublished(error: &BoxError) -> BoxError {
    format!(
        "the store was changed, but the other processes were not told (their local tiers keep their copies up to the local ttl): {error}"
    )
    .into()
}

fn joined(done: Result<(), BoxError>, published: Result<(), BoxError>) -> Result<(), BoxError> {
    match (done, published) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(error), Ok(())) => Err(error),
        (Ok(()), Err(error)) => Err(unpublished(&error)),
        (Err(error), Err(unpublished)) => {
            Err(format!("{error}; and the other processes were not told either: {unpublished}").into())
        }
    }
}

/// What receives a cache's invalidations (its local tier).
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use cachex_core::coherence::{Invalidation, InvalidationListener};
///
/// /// Remembers whether the channel is up, and prints what changed.
/// struct Watcher(AtomicBool);
///
/// impl InvalidationListener for Watcher {
///     fn connected(&self) {
///         self.0.store(true, Ordering::Release);
///     }
///     fn lost(&self, _reason: &str) {
///         self.0.store(false, Ordering::Release);
///     }
///     fn message(&self, message: &[u8]) {
///         println!("{:?}", Invalidation::decode(message));
///     }
/// }
///
/// let watcher = Watcher(AtomicBool::new(false));
/// watcher.connected();
/// assert!(watcher.0.load(Ordering::Acquire));
/// ```
pub trait InvalidationListener: Send + Sync {
    /// The channel is up: every message sent from now on will be delivered.
    fn connected(&self);
    /// The channel is lost: messages may be missed until [`connected`](Self::connected).
    fn lost(&self, reason: &str);
    /// A message arrived (its raw bytes; see [`Invalidation::decode`]).
    fn message(&self, message: &[u8]);
    /// Every message published before `as_of` has been delivered (see
    /// [`Invalidations::caught_up_within`]). By default ignored.
    fn caught_up(&self, as_of: std::time::Instant) {
        let _ = as_of;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_another_process_read_back() {
        let keys = vec![Key([1; 32]), Key([2; 32])];
        let mut message = Invalidation::Keys(keys.clone()).encode();
        message[TAG.len()] ^= 0xff; // another origin
        assert_eq!(Invalidation::decode(&message), Some(Invalidation::Keys(keys)));
        let mut clear = Invalidation::Clear.encode();
        clear[TAG.len()] ^= 0xff;
        assert_eq!(Invalidation::decode(&clear), Some(Invalidation::Clear));
    }

    #[test]
    fn a_truncated_message_clears() {
        let mut message = Invalidation::Keys(vec![Key([1; 32])]).encode();
        message[TAG.len()] ^= 0xff;
        message.pop();
        assert_eq!(Invalidation::decode(&message), Some(Invalidation::Clear));
    }
}
