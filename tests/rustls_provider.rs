//! Building Redis caches without TLS installs no rustls provider, so an application can still
//! install its own; with TLS, an installed provider is kept, never replaced, and nothing panics.
#![cfg(feature = "redis")]

use std::sync::Arc;

use cachex::{CacheConfig, Config};

#[test]
fn the_provider_is_installed_only_for_tls_and_never_replaced() {
    cachex::init_with(
        Config::new()
            .cache("plain", CacheConfig::redis("redis://127.0.0.1:1/0"))
            .cache("cluster", CacheConfig::redis("redis-cluster://127.0.0.1:1,127.0.0.1:2")),
    )
    .expect("valid configuration");
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "no TLS URL: no provider installed"
    );

    // The application installs its own, as the README says, then a TLS cache is built.
    rustls::crypto::ring::default_provider()
        .install_default()
        .expect("the application's install succeeds");
    let installed = Arc::clone(rustls::crypto::CryptoProvider::get_default().unwrap());
    let options = cachex_core::backend::redis::RedisOptions::new("rediss://127.0.0.1:1/0");
    cachex_core::backend::redis::RedisStore::new(&options, "tls").expect("a TLS store builds");
    assert!(
        Arc::ptr_eq(&installed, rustls::crypto::CryptoProvider::get_default().unwrap()),
        "the application's provider is kept"
    );
}
