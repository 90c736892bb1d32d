//! Procedural macros of [cachex](https://docs.rs/cachex): `#[cached]` and `#[encoder]`.
//!
//! They only parse and emit calls into the runtime, naming paths under `::cachex` (the
//! facade's `__private` re-exports), so a user crate depends on `cachex` alone. Use them
//! through the facade: `#[cachex::cached(name = "fib")]`.
//!
//! On a mistake, each macro reports every error it finds at once and keeps the item as written
//! next to them, so the item's callers do not fail in turn.
#![forbid(unsafe_code)]

mod cached;
mod dependency;
mod encoder;
mod singleton;
mod util;

use proc_macro::TokenStream;

/// Caches a function's results in the named cache of `cachex.toml`.
///
/// Attributes: `name = "cache"` (required), `version = N` (changes every key), `skip = "arg"`
/// (leaves an argument out of the key; `_`-prefixed arguments and `#[skip]` on an argument do
/// too), `id = "stable::name"` (the function's identity in keys, default its module path and
/// name), `cache_none` (an `Option` return caches `None` too).
///
/// See the `cachex` crate for examples.
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    cached::expand(attr.into(), item.into()).into()
}

/// Builds a function's value once per distinct arguments, lazily, and shares it as `Arc<T>`
/// (`Result<T, E>` becomes `Result<Arc<T>, E>`; an `Err` or a panic is not kept). Sync or
/// `async`, free functions only; arguments must be `Serialize`. Zero-argument singletons are
/// registered at link time, so the actix-web plugin can hand them out as `web::Data<T>`.
///
/// See the `cachex` crate for examples.
#[proc_macro_attribute]
pub fn singleton(attr: TokenStream, item: TokenStream) -> TokenStream {
    singleton::expand(attr.into(), item.into()).into()
}

/// Makes the function's return type (`T`, or the `T` of `Result<T, E>`) an actix-web request
/// extractor: each argument is extracted from the request (path, query, app data, other
/// dependencies), the function is called (served from its cache when it is also `#[cached]`,
/// written below this attribute), and an `Err` becomes the response through `ResponseError`.
/// Use it as `#[cachex::actix::dependency]` (feature `actix`).
///
/// See the `cachex` crate for examples.
#[proc_macro_attribute]
pub fn dependency(attr: TokenStream, item: TokenStream) -> TokenStream {
    dependency::expand(attr.into(), item.into()).into()
}

/// Marks `fn name(value: &T) -> impl Serialize` as a key encoder for arguments of type `T`,
/// selected by its name in `[caches.<name>.encoders]`.
///
/// See the `cachex` crate for examples.
#[proc_macro_attribute]
pub fn encoder(attr: TokenStream, item: TokenStream) -> TokenStream {
    encoder::expand(attr.into(), item.into()).into()
}
