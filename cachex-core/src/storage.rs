//! The traits every byte-storing backend implements: [`Storage`] (blocking) and
//! [`AsyncStorage`] (futures), and [`StorageKey`], the name of an entry: the cache's prefix and
//! the key's digest.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::BoxError;
use crate::key::Key;
use crate::lease::Lease;

/// The name of one entry in a shared store: the cache's prefix and the key's digest. Backends
/// that name an entry by one string use [`StorageKey::text`] (`prefix:hex`); others compose
/// their own name from the parts (memcached puts its namespace generation between them).
///
/// ```
/// use cachex_core::{Key, StorageKey};
/// let key = StorageKey::new("cachex:fib", Key([0xab; 32]));
/// assert_eq!(key.text(), format!("cachex:fib:{}", "ab".repeat(32)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageKey<'a> {
    /// The cache's namespace (`prefix` in the configuration).
    pub prefix: &'a str,
    /// The digest of the call's key.
    pub digest: Key,
}

impl<'a> StorageKey<'a> {
    /// The entry of `digest` under `prefix`.
    pub fn new(prefix: &'a str, digest: Key) -> Self {
        StorageKey { prefix, digest }
    }

    /// `prefix:hex`, the entry's name as one string.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(self.prefix.len() + 65);
        out.push_str(self.prefix);
        out.push(':');
        self.digest.push_hex(&mut out);
        out
    }
}

impl std::fmt::Display for StorageKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
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
/// use cachex_core::{BoxError, Key, Storage, StorageKey};
///
/// #[derive(Default)]
/// struct MapStorage(Mutex<HashMap<String, Vec<u8>>>);
///
/// impl Storage for MapStorage {
///     fn get(&self, key: &StorageKey<'_>) -> Result<Option<Vec<u8>>, BoxError> {
///         Ok(self.0.lock().unwrap().get(&key.text()).cloned())
///     }
///     fn set(&self, key: &StorageKey<'_>, value: &[u8], _ttl: Option<Duration>) -> Result<(), BoxError> {
///         self.0.lock().unwrap().insert(key.text(), value.to_vec());
///         Ok(())
///     }
///     fn delete(&self, key: &StorageKey<'_>) -> Result<(), BoxError> {
///         self.0.lock().unwrap().remove(&key.text());
///         Ok(())
///     }
///     fn clear(&self) -> Result<(), BoxError> {
///         self.0.lock().unwrap().clear();
///         Ok(())
///     }
/// }
///
/// let storage = MapStorage::default();
/// let key = StorageKey::new("p", Key([1; 32]));
/// storage.set(&key, b"v", None).unwrap();
/// assert_eq!(storage.get(&key).unwrap().as_deref(), Some(&b"v"[..]));
/// ```
pub trait Storage: Send + Sync + 'static {
    /// The bytes stored under `key`, or `None`.
    fn get(&self, key: &StorageKey<'_>) -> Result<Option<Vec<u8>>, BoxError>;
    /// Stores `value` under `key`, replacing what was there, expiring after `ttl`.
    fn set(&self, key: &StorageKey<'_>, value: &[u8], ttl: Option<Duration>) -> Result<(), BoxError>;
    /// Removes the entry under `key`, if any.
    fn delete(&self, key: &StorageKey<'_>) -> Result<(), BoxError>;
    /// Removes every entry of this cache (its prefix), and nothing else.
    fn clear(&self) -> Result<(), BoxError>;

    /// Takes the [lease](crate::lease) of `key` before a computation of its value: where the
    /// entry is absent, stores a marker (a miss for readers) kept for `lease_for`. The
    /// default keeps none ([`Lease::Unguarded`]): its fills are plain writes, and a
    /// computation that an invalidation overtook may store its older value.
    fn lease(&self, key: &StorageKey<'_>, lease_for: Duration) -> Result<Lease, BoxError> {
        let _ = (key, lease_for);
        Ok(Lease::Unguarded)
    }

    /// Stores `value` under `key` if the entry is still as `lease` found it; returns whether
    /// it did. The default writes for [`Lease::Unguarded`], and refuses otherwise.
    fn fill(&self, key: &StorageKey<'_>, lease: &Lease, value: &[u8], ttl: Option<Duration>) -> Result<bool, BoxError> {
        match lease {
            Lease::Unguarded => self.set(key, value, ttl).map(|()| true),
            Lease::HeldElsewhere | Lease::Held(_) => Ok(false),
        }
    }

    /// Gives `lease` up when its computation stored nothing (it failed): its marker goes, so
    /// another computation may fill the entry before the lease would have lapsed. The default
    /// does nothing (the marker lapses by itself).
    fn release(&self, key: &StorageKey<'_>, lease: &Lease) -> Result<(), BoxError> {
        let _ = (key, lease);
        Ok(())
    }
}

/// The asynchronous side of a storage engine for one cache; the same contract as [`Storage`].
///
/// ```
/// use std::time::Duration;
/// use cachex_core::{AsyncStorage, BoxError, BoxFuture, StorageKey};
///
/// struct Nothing;
///
/// impl AsyncStorage for Nothing {
///     fn get<'a>(&'a self, _key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>> {
///         Box::pin(async { Ok(None) })
///     }
///     fn set<'a>(&'a self, _key: &'a StorageKey<'a>, _value: &'a [u8], _ttl: Option<Duration>) -> BoxFuture<'a, Result<(), BoxError>> {
///         Box::pin(async { Ok(()) })
///     }
///     fn delete<'a>(&'a self, _key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<(), BoxError>> {
///         Box::pin(async { Ok(()) })
///     }
///     fn clear(&self) -> BoxFuture<'_, Result<(), BoxError>> {
///         Box::pin(async { Ok(()) })
///     }
/// }
/// ```
pub trait AsyncStorage: Send + Sync + 'static {
    /// The bytes stored under `key`, or `None`.
    fn get<'a>(&'a self, key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>>;
    /// Stores `value` under `key`, replacing what was there, expiring after `ttl`.
    fn set<'a>(
        &'a self,
        key: &'a StorageKey<'a>,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), BoxError>>;
    /// Removes the entry under `key`, if any.
    fn delete<'a>(&'a self, key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<(), BoxError>>;
    /// Removes every entry of this cache (its prefix), and nothing else.
    fn clear(&self) -> BoxFuture<'_, Result<(), BoxError>>;

    /// [`Storage::lease`], awaiting the backend.
    fn lease<'a>(&'a self, key: &'a StorageKey<'a>, lease_for: Duration) -> BoxFuture<'a, Result<Lease, BoxError>> {
        let _ = (key, lease_for);
        Box::pin(async { Ok(Lease::Unguarded) })
    }

    /// [`Storage::fill`], awaiting the backend.
    fn fill<'a>(
        &'a self,
        key: &'a StorageKey<'a>,
        lease: &'a Lease,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, BoxError>> {
        Box::pin(async move {
            match lease {
                Lease::Unguarded => self.set(key, value, ttl).await.map(|()| true),
                Lease::HeldElsewhere | Lease::Held(_) => Ok(false),
            }
        })
    }

    /// [`Storage::release`], awaiting the backend.
    fn release<'a>(&'a self, key: &'a StorageKey<'a>, lease: &'a Lease) -> BoxFuture<'a, Result<(), BoxError>> {
        let _ = (key, lease);
        Box::pin(async { Ok(()) })
    }
}
