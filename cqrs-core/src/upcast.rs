//! Upcasting: how a stored older version of an event becomes the version the
//! code reads.
//!
//! Events are stored forever; their Rust types change. An event whose shape
//! changes gets a new `version`, and says how each older version becomes
//! the next one, in its `#[event(..)]` attribute:
//!
//! - `upcast(from = N, with = f)`: `f` edits the JSON of version `N` into
//!   the JSON of version `N + 1`: `fn(serde_json::Value) ->
//!   Result<serde_json::Value, UpcastError>` (or `-> serde_json::Value`
//!   when it cannot fail);
//! - `upcast(from = N, shape = OldN)`: version `N` decodes as `OldN`, a
//!   plain `Deserialize` struct kept for the purpose, and `impl
//!   Upcast<OldN> for Next` makes the next version of it: the event itself
//!   when `N + 1` is the current version, else the `shape` of the upcaster
//!   from `N + 1`, which must then be typed too.
//!
//! Reading a version-1 event of a version-3 type runs the upcasters from 1
//! and from 2 in turn, wherever a stored event is decoded: aggregate loads,
//! projections (async, inline, in SQL tables, in other processes),
//! [`replay`](crate::replay), rebuilds, [`Engine::events`](crate::Engine::events)
//! and the test kit. Each version from the oldest upcaster's up to the
//! current one needs its upcaster: the derive refuses a gap, and so does
//! [`Registry::validate`](crate::Registry::validate) for descriptors built by
//! hand.
//!
//! Whatever is stored, reading it is never a panic: a payload that does not
//! decode, an upcaster that refuses it (or panics), or an upcast value that
//! does not decode is a [`DecodeError`](crate::DecodeError) naming the event,
//! the stored version and, from the log, where the event is.
//!
//! # Examples
//!
//! ```
//! use cqrs_core::prelude::*;
//! use cqrs_core::upcast::{self, Value, json};
//!
//! /// Version 1 stored `amount` in whole euros.
//! #[derive(Deserialize)]
//! pub struct DepositedV2 { pub cents: u64 }
//!
//! /// Version 3 names the currency too.
//! #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
//! #[event(
//!     name = "account.deposited",
//!     aliases("deposit.made"),              // its name before version 2
//!     version = 3,
//!     upcast(from = 1, with = euros_to_cents),
//!     upcast(from = 2, shape = DepositedV2),
//! )]
//! pub struct Deposited { pub cents: u64, pub currency: String }
//!
//! /// Version 1 -> version 2, on JSON.
//! fn euros_to_cents(mut v1: Value) -> Result<Value, UpcastError> {
//!     let euros = upcast::take_field(&mut v1, "amount")?;
//!     let euros = euros.as_u64().ok_or("`amount` is not a whole number")?;
//!     Ok(json!({ "cents": euros * 100 }))
//! }
//!
//! /// Version 2 -> version 3, typed.
//! impl Upcast<DepositedV2> for Deposited {
//!     fn upcast(v2: DepositedV2) -> Self {
//!         Deposited { cents: v2.cents, currency: "EUR".into() }
//!     }
//! }
//!
//! # fn main() -> Result<(), cqrs_core::DecodeError> {
//! let v1 = cqrs_core::__private::decode_event::<Deposited>("deposit.made", 1, br#"{"amount": 5}"#)?;
//! assert_eq!(v1, Deposited { cents: 500, currency: "EUR".into() });
//!
//! let broken = cqrs_core::__private::decode_event::<Deposited>("deposit.made", 1, br#"{"amount": "five"}"#);
//! assert!(broken.unwrap_err().to_string().contains("upcaster from version 1"));
//! # Ok(()) }
//! ```

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use thiserror::Error;

use serde_json::Map;
pub use serde_json::json;

/// The JSON an upcaster edits (`serde_json::Value`), named here so that a
/// domain crate needs no `serde_json` of its own for it. An alias, not a
/// re-export: re-exported, its variant `String` would make the compiler
/// spell `std::string::String` in full in every message of the user's crate.
pub type Value = serde_json::Value;

/// Makes `Self`, the next version of an event, from `Old`, the shape of
/// the version before it (`upcast(from = N, shape = Old)`).
///
/// `Self` is the event itself when `Old` is the version just below the
/// current one, else the shape of the next older version: chained, version
/// 1 becomes 2, then 3, each step a small impl.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be made from the older shape `{Old}`",
    label = "missing `impl Upcast<{Old}> for {Self}`",
    note = "add `impl Upcast<{Old}> for {Self} {{ fn upcast(old: {Old}) -> Self {{ .. }} }}`"
)]
pub trait Upcast<Old>: Sized {
    /// The next version of `old`.
    fn upcast(old: Old) -> Self;
}

/// What a JSON upcaster (`upcast(from = N, with = f)`) returns: the edited
/// value, or a `Result` of it with an error that converts into
/// [`UpcastError`] (such as `serde_json::Error`, `String` or `&str`).
#[diagnostic::on_unimplemented(
    message = "an upcaster returns `serde_json::Value` or `Result<serde_json::Value, E>`, not `{Self}`",
    label = "this upcaster returns `{Self}`",
    note = "a JSON upcaster is `fn(serde_json::Value) -> Result<serde_json::Value, UpcastError>`"
)]
pub trait UpcastOutput {
    /// The value, or why the upcaster refused the payload.
    ///
    /// # Errors
    ///
    /// The upcaster's error.
    fn into_result(self) -> Result<Value, UpcastError>;
}

impl UpcastOutput for Value {
    fn into_result(self) -> Result<Value, UpcastError> {
        Ok(self)
    }
}

impl<E: Into<UpcastError>> UpcastOutput for Result<Value, E> {
    fn into_result(self) -> Result<Value, UpcastError> {
        self.map_err(Into::into)
    }
}

/// Why an upcaster could not bring a stored payload to the next version.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UpcastError {
    /// The upcaster's own words.
    #[error("{0}")]
    Refused(String),
    /// The payload is not a JSON object, where the upcaster edits fields.
    #[error("the payload is {found}, not a JSON object")]
    NotAnObject {
        /// What it is (`an array`, `a string`, ..).
        found: &'static str,
    },
    /// A field the upcaster reads is absent.
    #[error("field `{0}` is missing")]
    MissingField(String),
    /// A value did not convert (`serde_json::from_value` and friends).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The upcaster panicked: caught, so reading a stored event never
    /// panics.
    #[error("the upcaster panicked: {0}")]
    Panicked(String),
}

impl UpcastError {
    /// An upcaster's refusal, in its own words.
    pub fn new(message: impl fmt::Display) -> Self {
        Self::Refused(message.to_string())
    }
}

impl From<String> for UpcastError {
    fn from(message: String) -> Self {
        Self::Refused(message)
    }
}

impl From<&str> for UpcastError {
    fn from(message: &str) -> Self {
        Self::Refused(message.to_owned())
    }
}

/// One upcaster of event `E`: which version it reads, and how it makes the
/// next one. What `upcast(from = N, ..)` generates in [`Event::UPCASTERS`](crate::Event::UPCASTERS).
pub struct Upcaster<E> {
    from: u32,
    step: Step<E>,
}

/// How an upcaster makes the next version.
pub(crate) enum Step<E> {
    /// JSON of version `from` into JSON of version `from + 1`.
    Json(fn(Value) -> Result<Value, UpcastError>),
    /// JSON of version `from` decoded as its shape, then upcast through
    /// every later version into `E`.
    Typed(fn(Value) -> Result<E, serde_json::Error>),
}

impl<E> Upcaster<E> {
    /// An upcaster from version `from` on JSON: `step` returns the JSON of
    /// version `from + 1`.
    pub const fn json(from: u32, step: fn(Value) -> Result<Value, UpcastError>) -> Self {
        Self {
            from,
            step: Step::Json(step),
        }
    }

    /// A typed upcaster from version `from`: `step` decodes the JSON of
    /// version `from` as its shape and upcasts it, through the typed
    /// upcasters of every later version, into the event.
    pub const fn typed(from: u32, step: fn(Value) -> Result<E, serde_json::Error>) -> Self {
        Self {
            from,
            step: Step::Typed(step),
        }
    }

    /// The version it reads.
    pub const fn from(&self) -> u32 {
        self.from
    }

    /// Whether it is typed (`shape = ..`) rather than on JSON.
    pub const fn is_typed(&self) -> bool {
        matches!(self.step, Step::Typed(_))
    }

    pub(crate) fn step(&self) -> &Step<E> {
        &self.step
    }
}

impl<E> Clone for Upcaster<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Upcaster<E> {}

impl<E> Clone for Step<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Step<E> {}

impl<E> fmt::Debug for Upcaster<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upcaster")
            .field("from", &self.from)
            .field("typed", &self.is_typed())
            .finish()
    }
}

/// Runs `f`, catching a panic as [`UpcastError::Panicked`]: upcasters are
/// user code run on whatever the log holds.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, UpcastError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| String::from("(a panic without a message)"));
        UpcastError::Panicked(message)
    })
}

/// The payload as a JSON object, to edit its fields.
///
/// # Errors
///
/// [`UpcastError::NotAnObject`] for any other JSON value.
pub fn object_mut(value: &mut Value) -> Result<&mut Map<String, Value>, UpcastError> {
    let found = match value {
        Value::Object(map) => return Ok(map),
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
    };
    Err(UpcastError::NotAnObject { found })
}

/// Removes field `name` from the payload and returns its value.
///
/// # Errors
///
/// [`UpcastError::NotAnObject`], or [`UpcastError::MissingField`] when the
/// payload has no such field.
pub fn take_field(value: &mut Value, name: &str) -> Result<Value, UpcastError> {
    object_mut(value)?
        .remove(name)
        .ok_or_else(|| UpcastError::MissingField(name.to_owned()))
}

/// Renames field `from` of the payload to `to`.
///
/// # Errors
///
/// As [`take_field`].
///
/// ```
/// let mut v = serde_json::json!({ "amount": 5 });
/// cqrs_core::upcast::rename_field(&mut v, "amount", "cents")?;
/// assert_eq!(v, serde_json::json!({ "cents": 5 }));
/// # Ok::<(), cqrs_core::UpcastError>(())
/// ```
pub fn rename_field(value: &mut Value, from: &str, to: &str) -> Result<(), UpcastError> {
    let taken = take_field(value, from)?;
    object_mut(value)?.insert(to.to_owned(), taken);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_helpers_refuse_what_they_cannot_edit() {
        let mut list = json!([1, 2]);
        assert!(matches!(
            object_mut(&mut list),
            Err(UpcastError::NotAnObject { found: "an array" })
        ));
        let mut v = json!({ "a": 1 });
        let missing = take_field(&mut v, "b").unwrap_err();
        assert_eq!(missing.to_string(), "field `b` is missing");
        rename_field(&mut v, "a", "b").unwrap();
        assert_eq!(v, json!({ "b": 1 }));
    }

    #[test]
    fn outputs_and_errors_convert() {
        assert_eq!(json!(1).into_result().unwrap(), json!(1));
        let refused: Result<Value, &str> = Err("no");
        assert_eq!(refused.into_result().unwrap_err().to_string(), "no");
        let json: Result<Value, serde_json::Error> = serde_json::from_str::<Value>("{");
        assert!(matches!(json.into_result(), Err(UpcastError::Json(_))));
        assert_eq!(UpcastError::new(5).to_string(), "5");
    }

    #[test]
    fn a_panic_is_an_error() {
        let caught = guarded(|| -> u8 { panic!("boom") }).unwrap_err();
        assert_eq!(caught.to_string(), "the upcaster panicked: boom");
        assert_eq!(guarded(|| 3).unwrap(), 3);
    }
}
