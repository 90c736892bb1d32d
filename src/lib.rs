//! # cachex
//!
//! Configuration-first caching for Rust services. Caches are declared by name in
//! `cachex.toml` (overridable by `CACHEX_*` environment variables), bound to functions with
//! `#[cached(name = "...")]`, and served by real storage engines.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! static CALLS: AtomicU32 = AtomicU32::new(0);
//!
//! #[cachex::cached(name = "doc_square")]
//! fn square(n: u64) -> u64 {
//!     CALLS.fetch_add(1, Ordering::SeqCst);
//!     n * n
//! }
//!
//! fn main() -> Result<(), cachex::Error> {
//!     cachex::init()?; // no cachex.toml here: every bound name gets a memory cache
//!     assert_eq!(square(12), 144);
//!     assert_eq!(square(12), 144);
//!     assert_eq!(CALLS.load(Ordering::SeqCst), 1);
//!     assert_eq!(cachex::cache("doc_square")?.stats().hits, 1);
//!     square_invalidate(12)?;
//!     assert_eq!(square(12), 144);
//!     assert_eq!(CALLS.load(Ordering::SeqCst), 2);
//!     Ok(())
//! }
//! ```
//!
//! See the README for the configuration format, the backends, and the mapping from the
//! Python library's names.
#![warn(missing_docs)]

pub use cachex_config::{init, init_with, BackendKind, CacheConfig, Config};
pub use cachex_core::{
    cache, AsyncStorage, BoxError, BoxFuture, CacheHandle, CacheValue, Error, Key, KeyBuilder, OnError, Problem,
    Problems, Stats, Storage,
};
pub use cachex_macros::{cached, encoder, singleton};

/// The value envelope that byte-storing backends keep (magic, version, structural type
/// fingerprint, fresh-until and stored-until instants, MAC of signed values, bincode payload),
/// and the signing keys.
pub mod envelope {
    pub use cachex_core::envelope::*;
}

/// The Memcached backend's client traits, registration and adapters (feature `memcached`;
/// adapters behind `memcache` and `async-memcached`).
#[cfg(feature = "memcached")]
pub mod memcached {
    #[cfg(feature = "async-memcached")]
    pub use cachex_core::AsyncMemcachedAdapter;
    #[cfg(feature = "memcache")]
    pub use cachex_core::MemcacheAdapter;
    pub use cachex_core::{
        memcached_exptime as exptime, memcached_register as register, memcached_register_async as register_async,
        AsyncMemcachedClient, MemcachedClient,
    };
}

/// The actix-web plugin (feature `actix`): singletons as `web::Data<T>`, cached functions as
/// request dependencies with `#[cachex::actix::dependency]`, a stats handler.
#[cfg(feature = "actix")]
pub mod actix {
    pub use cachex_actix::*;
    pub use cachex_macros::dependency;
}

/// Configuration loading and checking, for users who compose their own sources.
pub mod config {
    pub use cachex_config::*;
}

#[doc(hidden)]
pub use cachex_core::__private;
