//! The schema lock: the shape of every stored event version, checked in, so
//! a change to an event's shape that forgot its new version fails a test
//! before it reaches a log that already holds the old shape.
//!
//! `#[derive(Event)]` records the shape of each event ([`Event::SHAPE`](crate::Event::SHAPE)):
//! its fields, their types as written, and the serde attributes that change
//! the JSON (`rename`, `rename_all`, `default`, `flatten`, `tag`, `skip`,
//! `with`, ...), and a [`fingerprint`] of it, next to its name and version.
//! The lock file (`cqrs-schema.lock` beside your `Cargo.toml`) lists them,
//! one block per event version, readable in a review:
//!
//! ```text
//! [[event]]
//! name = "account.deposited"
//! version = 1
//! fingerprint = "a3f0c2e19d4b7781"
//! shape = '''
//! {
//!     amount: u64,
//! }
//! '''
//! ```
//!
//! One test keeps it:
//!
//! ```no_run
//! #[test]
//! fn event_shapes_are_locked() {
//!     cqrs_core::schema::assert_locked!();
//! }
//! ```
//!
//! # The rule
//!
//! A stored event keeps its shape forever: a shape never changes under a
//! version. The test fails, printing the old and the new shape, when
//!
//! - an event's shape changed under the same version (a field renamed,
//!   added without a default, given another type, a serde rename): bump
//!   the version and add an upcaster from the old one
//!   (`#[event(version = 2, upcast(from = 1, with = ..))]`, see
//!   [`upcast`](crate::upcast));
//! - the lock lists an event or a version that this build cannot read any
//!   more (the event is gone, renamed without `aliases(..)`, or its
//!   upcaster from that version is): old events of it are still stored.
//!
//! A new event, or a new version with its upcaster, only adds a block to
//! the lock: the test writes it, and you commit it. On CI (the `CI`
//! variable set) the lock is never written: a missing block fails.
//!
//! When a change is deliberate (no event of that shape was ever stored, or
//! the JSON does not change, say a type written another way), accept it:
//!
//! ```text
//! CQRS_UPDATE_SCHEMA=1 cargo test
//! ```
//!
//! # Limits
//!
//! The shape is what the derive sees: field names, their types as written,
//! and serde attributes. A change inside a field's own type (a struct used
//! as a field) does not change the fingerprint; version such types with
//! the event that holds them.

mod lock;

pub use lock::{Lock, LockEntry, LockError, LockMode, LockReport, Problem, check_lock};

use crate::registry::Registry;

/// The lock file's name, beside the crate's `Cargo.toml`.
pub const LOCK_FILE: &str = "cqrs-schema.lock";

/// The variable that accepts every change (`CQRS_UPDATE_SCHEMA=1 cargo test`).
pub const UPDATE_VARIABLE: &str = "CQRS_UPDATE_SCHEMA";

/// The fingerprint of a shape: FNV-1a (64 bits) of its text, the same on
/// every platform and compiler.
///
/// ```
/// assert_eq!(cqrs_core::schema::fingerprint(""), 0xcbf2_9ce4_8422_2325);
/// assert_ne!(cqrs_core::schema::fingerprint("a: u8"), cqrs_core::schema::fingerprint("a: u16"));
/// ```
pub const fn fingerprint(shape: &str) -> u64 {
    let bytes = shape.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Checks the lock file at `path` against every event linked into this
/// program (see [`check_lock`]), in the mode the environment asks for
/// ([`LockMode::from_env`]), and panics with the report when it fails.
/// What [`assert_locked!`](crate::assert_locked) calls.
///
/// # Panics
///
/// When the lock does not match: a shape changed under its version, a
/// locked version can no longer be read, or (on CI) an event is missing
/// from the lock; when the file cannot be read, parsed or written; or when
/// no event is registered at all.
#[track_caller]
pub fn assert_lock_file(path: impl AsRef<std::path::Path>) {
    assert_lock_file_with(path, &Registry::from_inventory());
}

/// [`assert_lock_file`] with the events of `registry` instead of every
/// one linked into the program.
///
/// # Panics
///
/// As [`assert_lock_file`].
#[track_caller]
pub fn assert_lock_file_with(path: impl AsRef<std::path::Path>, registry: &Registry) {
    let path = path.as_ref();
    assert!(
        !registry.events().is_empty(),
        "no event is registered in this test binary, so the schema lock {} would be empty: \
         name one of your domain's types in the test (or check the lock with \
         `assert_lock_file_with` and a registry of your own)",
        path.display()
    );
    match check_lock(path, registry, LockMode::from_env()) {
        Ok(report) if report.is_ok() => {
            if let Some(note) = report.note() {
                eprintln!("{note}");
            }
        }
        Ok(report) => panic!("{report}"),
        Err(e) => panic!("{e}"),
    }
}

/// Fails the test when an event's shape changed without a new version (see
/// the [module docs](crate::schema)): `assert_locked!()` checks
/// `cqrs-schema.lock` beside the calling crate's `Cargo.toml`,
/// `assert_locked!("path/to.lock")` a path relative to it.
///
/// ```no_run
/// #[test]
/// fn event_shapes_are_locked() {
///     cqrs_core::schema::assert_locked!();
/// }
/// ```
#[macro_export]
macro_rules! assert_locked {
    () => {
        $crate::schema::assert_lock_file(::core::concat!(
            ::core::env!("CARGO_MANIFEST_DIR"),
            "/",
            "cqrs-schema.lock"
        ))
    };
    ($path:literal) => {
        $crate::schema::assert_lock_file(::core::concat!(
            ::core::env!("CARGO_MANIFEST_DIR"),
            "/",
            $path
        ))
    };
}

#[doc(inline)]
pub use crate::assert_locked;
