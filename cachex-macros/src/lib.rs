//! Procedural macros of [cachex](https://docs.rs/cachex): `#[cached]`, `#[singleton]`,
//! `#[encoder]` and `#[dependency]`. Their documentation, with a runnable example of every
//! attribute, is on their re-exports in the `cachex` crate, where the examples run.
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

/// *Implemented in `cachex-macros`; documented, with an example of every attribute, as
/// [`cachex::cached`](https://docs.rs/cachex/latest/cachex/attr.cached.html).*
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    cached::expand(attr.into(), item.into()).into()
}

/// *Implemented in `cachex-macros`; documented, with examples, as
/// [`cachex::singleton`](https://docs.rs/cachex/latest/cachex/attr.singleton.html).*
#[proc_macro_attribute]
pub fn singleton(attr: TokenStream, item: TokenStream) -> TokenStream {
    singleton::expand(attr.into(), item.into()).into()
}

/// *Implemented in `cachex-macros`; documented, with an example, as
/// [`cachex::actix::dependency`](https://docs.rs/cachex/latest/cachex/actix/attr.dependency.html)
/// (feature `actix`).*
#[proc_macro_attribute]
pub fn dependency(attr: TokenStream, item: TokenStream) -> TokenStream {
    dependency::expand(attr.into(), item.into()).into()
}

/// *Implemented in `cachex-macros`; documented, with an example, as
/// [`cachex::encoder`](https://docs.rs/cachex/latest/cachex/attr.encoder.html).*
#[proc_macro_attribute]
pub fn encoder(attr: TokenStream, item: TokenStream) -> TokenStream {
    encoder::expand(attr.into(), item.into()).into()
}
