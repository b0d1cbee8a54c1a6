//! Example domains for `cqrs-core`, shared by the runnable examples, the
//! integration tests and the benchmarks.

pub mod bank;
