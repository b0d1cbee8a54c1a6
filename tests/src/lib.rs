//! Shared helpers for the integration tests.

pub mod child;
pub mod pg;
pub mod stores;
