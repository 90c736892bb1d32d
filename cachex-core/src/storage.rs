//! The traits every byte-storing backend implements: [`Storage`] (blocking) and
//! [`AsyncStorage`] (futures). Keys are the cache's prefix followed by the hex key.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::BoxError;

/// Whether the caller runs inside a tokio runtime, which the async sides of the network
/// backends need (their timeouts are tokio timers; without a runtime they would panic).
///
/// `Handle::try_current` answers, but it clones the runtime's handle, an atomic count that
/// every worker thread writes: asked on every Redis hit, its decrement was the hottest
/// instruction of cachex's own Redis code in a profile. So inside a task it is asked once per
/// task: a small table per thread keeps the ids of the tasks it said yes for. (A task id alone proves nothing: a `LocalSet` can be
/// driven by another executor, outside any runtime.)
#[cfg(any(feature = "redis", feature = "mongodb", feature = "async-memcached"))]
pub(crate) fn in_tokio_runtime() -> bool {
    use std::cell::Cell;
    use std::hash::BuildHasher;

    const SLOTS: usize = 64;
    thread_local! {
        static VERIFIED: [Cell<Option<tokio::task::Id>>; SLOTS] = const { [const { Cell::new(None) }; SLOTS] };
    }
    let in_runtime = || tokio::runtime::Handle::try_current().is_ok();
    let Some(task) = tokio::task::try_id() else {
        return in_runtime();
    };
    let slot = crate::passthrough::PassThrough.hash_one(task) as usize % SLOTS;
    VERIFIED
        .try_with(|verified| {
            if verified[slot].get() == Some(task) {
                return true;
            }
            let yes = in_runtime();
            if yes {
                verified[slot].set(Some(task));
            }
            yes
        })
        .unwrap_or_else(|_| in_runtime())
}

/// A boxed, `Send` future, the return type of [`AsyncStorage`] methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A blocking storage engine for one cache.
///
/// Values are opaque bytes (the [envelope](crate::envelope)); the engine keeps them under
/// `key` until `ttl` passes (`None` = no expiry).
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use cachex_core::{BoxError, Storage};
///
/// #[derive(Default)]
/// struct MapStorage(Mutex<HashMap<String, Vec<u8>>>);
///
/// impl Storage for MapStorage {
///     fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BoxError> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     fn set(&self, key: &str, value: &[u8], _ttl: Option<Duration>) -> Result<(), BoxError> {
///         self.0.lock().unwrap().insert(key.to_owned(), value.to_vec());
///         Ok(())
///     }
///     fn delete(&self, key: &str) -> Result<(), BoxError> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
///     fn clear(&self) -> Result<(), BoxError> {
///         self.0.lock().unwrap().clear();
///         Ok(())
///     }
/// }
///
/// let storage = MapStorage::default();
/// storage.set("p:1", b"v", None).unwrap();
/// assert_eq!(storage.get("p:1").unwrap().as_deref(), Some(&b"v"[..]));
/// ```
pub trait Storage: Send + Sync + 'static {
    /// The bytes stored under `key`, or `None`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BoxError>;
    /// Stores `value` under `key`, replacing what was there, expiring after `ttl`.
    fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), BoxError>;
    /// Removes the entry under `key`, if any.
    fn delete(&self, key: &str) -> Result<(), BoxError>;
    /// Removes every entry of this cache (its prefix), and nothing else.
    fn clear(&self) -> Result<(), BoxError>;
}

/// The asynchronous side of a storage engine for one cache; the same contract as [`Storage`].
///
/// ```
/// use std::time::Duration;
/// use cachex_core::{AsyncStorage, BoxError, BoxFuture};
///
/// struct Nothing;
///
/// impl AsyncStorage for Nothing {
///     fn get<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>> {
///         Box::pin(async { Ok(None) })
///     }
///     fn set<'a>(&'a self, _key: &'a str, _value: &'a [u8], _ttl: Option<Duration>) -> BoxFuture<'a, Result<(), BoxError>> {
///         Box::pin(async { Ok(()) })
///     }
///     fn delete<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<(), BoxError>> {
///         Box::pin(async { Ok(()) })
///     }
///     fn clear(&self) -> BoxFuture<'_, Result<(), BoxError>> {
///         Box::pin(async { Ok(()) })
///     }
/// }
/// ```
pub trait AsyncStorage: Send + Sync + 'static {
    /// The bytes stored under `key`, or `None`.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>>;
    /// Stores `value` under `key`, replacing what was there, expiring after `ttl`.
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Option<Duration>) -> BoxFuture<'a, Result<(), BoxError>>;
    /// Removes the entry under `key`, if any.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BoxError>>;
    /// Removes every entry of this cache (its prefix), and nothing else.
    fn clear(&self) -> BoxFuture<'_, Result<(), BoxError>>;
}
