//! Compile-time behaviour of the derives: every mistake in `ui/<derive>/` is
//! rejected with the checked `.stderr`, every shape in `ui-pass/` compiles.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p
//! cqrs-tests --test ui`, then read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*/*.rs");
    t.pass("ui-pass/*.rs");
}
