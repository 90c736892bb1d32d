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
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use cachex_config::{init, init_with, BackendKind, CacheConfig, Config};
pub use cachex_core::{
    cache, AsyncStorage, BoxError, BoxFuture, CacheHandle, CacheValue, Error, Key, KeyBuilder, OnError, Problem,
    Problems, Stats, Storage, StorageKey,
};
pub use cachex_macros::{cached, encoder, singleton};

/// The value envelope that byte-storing backends keep (magic, version, structural type
/// fingerprint, fresh-until and stored-until instants, MAC of signed values, bincode payload),
/// and the signing keys.
pub mod envelope {
    pub use cachex_core::envelope::*;
}

/// The storage engines, one module each (re-exported below under their own names, the way
/// sqlx re-exports its drivers): the options, defaults and docs of each.
pub use cachex_core::backend;
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use cachex_core::backend::file;
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub use cachex_core::backend::memcached;
pub use cachex_core::backend::memory;
#[cfg(feature = "mongodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub use cachex_core::backend::mongodb;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use cachex_core::backend::redis;

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
