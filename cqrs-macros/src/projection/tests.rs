//! Parse and validation tests for `#[derive(...)]`.
