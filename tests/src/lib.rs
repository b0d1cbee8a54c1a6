//! Shared helpers for the integration tests.

pub mod child;
pub mod nats;
pub mod pg;
pub mod process;
pub mod stores;
pub mod transfers;

/// Whether a test server is required rather than skipped when missing:
/// `<variable>=1`, or `CI=true` (CI never skips a test silently).
pub fn required(variable: &str) -> bool {
    std::env::var(variable).is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}
