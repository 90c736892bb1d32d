//! Configuration of [cachex](https://docs.rs/cachex): the `cachex.toml` model, loading from
//! the file and the `CACHEX_*` environment (figment), checking with the source of every bad
//! value, and building the caches it describes.
//!
//! ```
//! use cachex_config::{CacheConfig, Config, Loaded};
//! let config = Config::new().cache("fib", CacheConfig::memory().max_entries(1_000));
//! let runtime = cachex_config::build_runtime(&Loaded::from_code(config))?;
//! assert_eq!(runtime.cache("fib")?.settings().name, "fib");
//! # Ok::<(), cachex_core::Error>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod build;
mod load;
mod model;
mod prefixes;

pub use build::{available_backends, build_cache, build_runtime, check, LOCK_TIMEOUT_RANGE, MAX_TTL, TIMEOUT_RANGE};
pub use load::{
    config_file, env_provider, from_figment, from_toml_str, load, load_file, subject, Loaded, CONFIG_ENV, DEFAULT_FILE,
    ENV_PREFIX,
};
pub use model::{BackendKind, CacheConfig, Config, LocalConfig, Secret};

use cachex_core::{registry, Error, Loader, Problems, Runtime};

/// Loads the configuration (`cachex.toml` or `$CACHEX_CONFIG`, then `CACHEX_*` variables),
/// builds every cache and checks every `#[cached]` binding in the binary, before the first
/// call. Returns one error listing every problem.
///
/// ```no_run
/// fn main() -> Result<(), cachex_core::Error> {
///     cachex_config::init()?;
///     Ok(())
/// }
/// ```
pub fn init() -> Result<(), Error> {
    init_loaded(load()?)
}

/// Like [`init`], with a configuration built in code instead of files and environment.
///
/// ```
/// use cachex_config::{CacheConfig, Config};
/// # fn main() -> Result<(), cachex_core::Error> {
/// cachex_config::init_with(Config::new().cache("doc_init", CacheConfig::memory()))?;
/// assert!(cachex_core::cache("doc_init").is_ok());
/// # Ok(()) }
/// ```
pub fn init_with(config: Config) -> Result<(), Error> {
    init_loaded(Loaded::from_code(config))
}

fn init_loaded(loaded: Loaded) -> Result<(), Error> {
    if cachex_core::initialized() {
        return Err(Error::AlreadyInitialized);
    }
    let runtime = build_runtime(&loaded)?;
    let problems = registry::check_bindings(&runtime);
    if !problems.is_empty() {
        return Err(Error::Invalid(Problems(problems)));
    }
    cachex_core::install(runtime)
}

fn lazy_runtime() -> Result<Runtime, Error> {
    build_runtime(&load()?)
}

inventory::submit! { Loader(lazy_runtime) }
