//! [`MemcachedClient`] over the `memcache` crate (ASCII protocol, no TLS so no OpenSSL), with a
//! pool of blocking connections that connects lazily.

use std::time::Duration;

use memcache::{CommandError, MemcacheError};

use super::MemcachedClient;
use crate::error::BoxError;

/// The `memcache` crate as a [`MemcachedClient`].
///
/// ```
/// use std::time::Duration;
/// // Nothing connects until the first operation.
/// let client = cachex_core::backend::memcached::MemcacheAdapter::new("memcached://127.0.0.1:11211", Duration::from_millis(250)).unwrap();
/// # drop(client);
/// ```
pub struct MemcacheAdapter(memcache::Client);

impl MemcacheAdapter {
    /// A client for `memcached://host:port` (or `memcache://`), each operation bounded by
    /// `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, BoxError> {
        let address = super::server_address(url)?;
        let url = memcache::Url::parse(&format!(
            "memcache://{address}?protocol=ascii&timeout={}",
            timeout.as_secs_f64()
        ))?;
        let pool = r2d2::Pool::builder()
            .max_size(16)
            .min_idle(Some(0))
            .connection_timeout(timeout)
            // A `version` round trip per checkout is the price of safety: the crate never marks a
            // connection broken, so after a timeout a late reply could otherwise answer the
            // next command; the check reads it, fails, and the connection is dropped.
            .test_on_check_out(true)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(memcache::ConnectionManager::new(url));
        Ok(MemcacheAdapter(memcache::Client::with_pool(pool)?))
    }
}

fn is_command(error: &MemcacheError) -> bool {
    matches!(error, MemcacheError::CommandError(_))
}

impl MemcachedClient for MemcacheAdapter {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(self.0.get::<Vec<u8>>(key)?)
    }

    fn set(&self, key: &str, value: &[u8], exptime: u32) -> Result<(), BoxError> {
        Ok(self.0.set(key, value, exptime)?)
    }

    fn add(&self, key: &str, value: &[u8], exptime: u32) -> Result<bool, BoxError> {
        match self.0.add(key, value, exptime) {
            Ok(()) => {}
            Err(error) if is_command(&error) => return Ok(false),
            Err(error) => return Err(error.into()),
        }
        // The crate answers NOT_STORED as a success: whether this call stored is read back
        // (cachex adds values no other call adds: lease markers, time-seeded generations).
        Ok(self.0.get::<Vec<u8>>(key)?.as_deref() == Some(value))
    }

    fn delete(&self, key: &str) -> Result<(), BoxError> {
        self.0.delete(key)?;
        Ok(())
    }

    fn increment(&self, key: &str, delta: u64) -> Result<Option<u64>, BoxError> {
        match self.0.increment(key, delta) {
            Ok(value) => Ok(Some(value)),
            Err(MemcacheError::CommandError(CommandError::KeyNotFound)) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    fn supports_cas(&self) -> bool {
        true
    }

    fn gets(&self, key: &str) -> Result<Option<super::WithCas>, BoxError> {
        let mut found = self.0.gets::<(Vec<u8>, u32, Option<u64>)>(&[key])?;
        Ok(found.remove(key).and_then(|(value, _flags, cas)| Some((value, cas?))))
    }

    fn cas(&self, key: &str, value: &[u8], exptime: u32, cas: u64) -> Result<bool, BoxError> {
        match self.0.cas(key, value, exptime, cas) {
            Ok(stored) => Ok(stored),
            Err(MemcacheError::CommandError(CommandError::KeyNotFound | CommandError::KeyExists)) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}
