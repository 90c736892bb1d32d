//! Bad uses of `#[cached]` are compile errors that point at the offending span with the fix.
//!
//! The expected compiler output was blessed under `--all-features` (the README's test command):
//! rustc lists some `Serialize` implementors, and which exist depends on the features.
#![cfg(all(
    feature = "redis",
    feature = "mongodb",
    feature = "memcache",
    feature = "async-memcached",
    feature = "actix"
))]

#[test]
fn bad_uses_of_cached_do_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
