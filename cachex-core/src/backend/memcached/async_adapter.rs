//! [`AsyncMemcachedClient`] over the `async-memcached` crate (tokio), with a `deadpool` pool
//! of connections: its client needs `&mut` for every command, so concurrent tasks each take
//! one. A connection that timed out or failed is dropped, never reused. The pool lives on the
//! runtime of its first call, and is made again on the caller's once that runtime is gone.

use std::time::Duration;

use async_memcached::{AsciiProtocol, Client, Error, MetaProtocol, Status};
use deadpool::managed::{self, Metrics, Object, Pool, RecycleError, RecycleResult};

use super::AsyncMemcachedClient;
use crate::backend::per_runtime::PerRuntime;
use crate::error::BoxError;
use crate::storage::BoxFuture;

struct Connector {
    dsn: String,
}

impl managed::Manager for Connector {
    type Type = Client;
    type Error = Error;

    async fn create(&self) -> Result<Client, Error> {
        Client::new(&self.dsn).await
    }

    async fn recycle(&self, client: &mut Client, _: &Metrics) -> RecycleResult<Error> {
        if client.is_closed() {
            Err(RecycleError::message("connection closed"))
        } else {
            Ok(())
        }
    }
}

/// The `async-memcached` crate as an [`AsyncMemcachedClient`].
///
/// ```
/// use std::time::Duration;
/// // Nothing connects until the first operation.
/// let client = cachex_core::backend::memcached::AsyncMemcachedAdapter::new("memcached://127.0.0.1:11211", Duration::from_millis(250)).unwrap();
/// # drop(client);
/// ```
pub struct AsyncMemcachedAdapter {
    dsn: String,
    pools: PerRuntime<Pool<Connector>>,
    timeout: Duration,
}

impl AsyncMemcachedAdapter {
    /// A client for `memcached://host:port`, each operation bounded by `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, BoxError> {
        let address = super::server_address(url)?;
        let adapter = AsyncMemcachedAdapter {
            dsn: format!("tcp://{address}"),
            pools: PerRuntime::new(),
            timeout,
        };
        adapter.pool()?;
        Ok(adapter)
    }

    /// A new pool (no connection is made before its first checkout).
    fn pool(&self) -> Result<Pool<Connector>, BoxError> {
        Ok(Pool::builder(Connector { dsn: self.dsn.clone() })
            .max_size(16)
            .runtime(deadpool::Runtime::Tokio1)
            .create_timeout(Some(self.timeout))
            .wait_timeout(Some(self.timeout))
            .build()?)
    }

    async fn checkout(&self) -> Result<Object<Connector>, BoxError> {
        if !crate::backend::in_tokio_runtime() {
            return Err("the async memcached adapter needs a tokio runtime".into());
        }
        let pool = self.pools.get_or_make(|| async { self.pool() }).await?;
        Ok(pool.get().await.map_err(|e| e.to_string())?)
    }

    /// The outcome of one command on `client`: the connection goes back to the pool only when
    /// the command completed (a protocol answer such as NOT_STORED included).
    fn finish<T>(
        &self,
        client: Object<Connector>,
        outcome: Result<Result<T, Error>, tokio::time::error::Elapsed>,
    ) -> Result<Result<T, Error>, BoxError> {
        match outcome {
            Ok(Ok(value)) => Ok(Ok(value)),
            Ok(Err(Error::Protocol(status))) => Ok(Err(Error::Protocol(status))),
            Ok(Err(error)) => {
                let _ = Object::take(client);
                Err(error.to_string().into())
            }
            Err(_) => {
                let _ = Object::take(client);
                Err(format!("memcached did not answer within {:?}", self.timeout).into())
            }
        }
    }
}

/// Runs one command on a pooled connection within the adapter's timeout.
macro_rules! command {
    ($adapter:expr, |$client:ident| $call:expr) => {{
        let mut $client = $adapter.checkout().await?;
        let outcome = tokio::time::timeout($adapter.timeout, $call).await;
        $adapter.finish($client, outcome)?
    }};
}

fn protocol(error: Error) -> BoxError {
    error.to_string().into()
}

impl AsyncMemcachedClient for AsyncMemcachedAdapter {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>> {
        Box::pin(async move {
            let value = command!(self, |c| c.get(key)).map_err(protocol)?;
            Ok(value.and_then(|v| v.data))
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], exptime: u32) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move { command!(self, |c| c.set(key, value, Some(i64::from(exptime)), None)).map_err(protocol) })
    }

    fn add<'a>(&'a self, key: &'a str, value: &'a [u8], exptime: u32) -> BoxFuture<'a, Result<bool, BoxError>> {
        Box::pin(async move {
            match command!(self, |c| c.add(key, value, Some(i64::from(exptime)), None)) {
                Ok(()) => Ok(true),
                Err(Error::Protocol(Status::NotStored | Status::Exists)) => Ok(false),
                Err(error) => Err(protocol(error)),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            match command!(self, |c| c.delete(key)) {
                Ok(()) | Err(Error::Protocol(Status::NotFound)) => Ok(()),
                Err(error) => Err(protocol(error)),
            }
        })
    }

    fn increment<'a>(&'a self, key: &'a str, delta: u64) -> BoxFuture<'a, Result<Option<u64>, BoxError>> {
        Box::pin(async move {
            match command!(self, |c| c.increment(key, delta)) {
                Ok(value) => Ok(Some(value)),
                Err(Error::Protocol(Status::NotFound)) => Ok(None),
                Err(error) => Err(protocol(error)),
            }
        })
    }

    fn supports_cas(&self) -> bool {
        true
    }

    /// `mg <key> v c`: the value and its CAS unique (meta protocol).
    fn gets<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<super::WithCas>, BoxError>> {
        Box::pin(async move {
            let found = command!(self, |c| c.meta_get(key, false, None, Some(&["v", "c"]))).map_err(protocol)?;
            Ok(found.and_then(|value| Some((value.data?, value.cas?))))
        })
    }

    /// `ms <key> <len> C<cas> T<exptime>`: stored only while the CAS unique is `cas`.
    fn cas<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        exptime: u32,
        cas: u64,
    ) -> BoxFuture<'a, Result<bool, BoxError>> {
        Box::pin(async move {
            let (compare, ttl) = (format!("C{cas}"), format!("T{exptime}"));
            let flags = [compare.as_str(), ttl.as_str()];
            match command!(self, |c| c.meta_set(key, value, false, None, Some(&flags))) {
                Ok(_) => Ok(true),
                Err(Error::Protocol(Status::Exists | Status::NotFound | Status::NotStored)) => Ok(false),
                Err(error) => Err(protocol(error)),
            }
        })
    }
}
