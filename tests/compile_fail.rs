//! Bad uses of `#[cached]` are compile errors that point at the offending span with the fix.

#[test]
fn bad_uses_of_cached_do_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
