//! Procedural macros of [cachex](https://docs.rs/cachex): `#[cached]` and `#[encoder]`.
//!
//! They only parse and emit calls into the runtime, naming paths under `::cachex` (the
//! facade's `__private` re-exports), so a user crate depends on `cachex` alone. Use them
//! through the facade: `#[cachex::cached(name = "fib")]`.

mod cached;
mod encoder;
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
    cached::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Marks `fn name(value: &T) -> impl Serialize` as a key encoder for arguments of type `T`,
/// selected by its name in `[caches.<name>.encoders]`.
///
/// See the `cachex` crate for examples.
#[proc_macro_attribute]
pub fn encoder(attr: TokenStream, item: TokenStream) -> TokenStream {
    encoder::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
