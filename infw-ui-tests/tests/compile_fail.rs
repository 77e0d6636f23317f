//! Mistakes in a `network!` declaration are compile errors at the offending token, one
//! file per kind of mistake in tests/ui/ with the expected message in its .stderr.
#[test]
fn mistakes_are_compile_errors_at_the_offending_token() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
