//! Decoding a body given by name: strict about its shape and its fields,
//! and saying where it went wrong.
//!
//! Two small crates do the bookkeeping: `serde_path_to_error` tracks the
//! path of the value a decode error arose at, `serde_ignored` reports every
//! field the type's `Deserialize` skipped. [`TopLevel`] adds the rules of
//! the body itself: a struct with named fields decodes from a JSON object
//! only (serde would also read it from an array, by position), and a unit
//! struct also from `{}` (serde takes only `null`).

use std::cell::Cell;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};

use super::JsonBody;
use crate::error::{BodyError, Error};

/// What to do with fields the type does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fields {
    /// Refuse them: the default.
    Known,
    /// Ignore them (`allow_unknown_fields`).
    AnyExtra,
}

/// Decodes `body` into the `kind` (`"command"`, `"query"`) named `name`.
pub(super) fn decode<T: DeserializeOwned>(
    kind: &'static str,
    name: &'static str,
    body: JsonBody<'_>,
    fields: Fields,
) -> Result<T, Error> {
    let decoded = match body {
        JsonBody::Value(value) => from(value, fields),
        JsonBody::Text(text) => {
            let mut parser = serde_json::Deserializer::from_slice(text);
            from(&mut parser, fields).and_then(|decoded| {
                // Anything after the value but whitespace is refused.
                parser.end().map_err(|error| BodyError::Decode {
                    path: String::new(),
                    error,
                })?;
                Ok(decoded)
            })
        }
    };
    decoded.map_err(|reason| Error::InvalidBody { kind, name, reason })
}

fn from<'de, D, T>(deserializer: D, fields: Fields) -> Result<T, BodyError>
where
    D: Deserializer<'de, Error = serde_json::Error>,
    T: de::Deserialize<'de>,
{
    let expected = Cell::new(None);
    let mut unknown = Vec::new();
    let top = TopLevel {
        inner: deserializer,
        expected: &expected,
        fields,
    };
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(field_path(&path));
    let decoded =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(top, &mut note));
    let refuse_unknown = fields == Fields::Known && !unknown.is_empty();
    match decoded {
        // Also when decoding failed: a misspelt field usually leaves the
        // real one missing, and the misspelling is what to show.
        _ if refuse_unknown => Err(BodyError::UnknownFields {
            fields: unknown,
            expected: expected.get(),
        }),
        Ok(decoded) => Ok(decoded),
        Err(error) => Err(BodyError::Decode {
            path: error.path().to_string(),
            error: error.into_inner(),
        }),
    }
}

/// An ignored field's path written as `serde_path_to_error` writes the
/// path of an error (`lines[2].price`), without the `?` that
/// `serde_ignored` shows for an `Option` or a newtype on the way.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    let mut written = String::new();
    let mut segments = Vec::new();
    let mut at = path;
    loop {
        match at {
            Path::Root => break,
            Path::Seq { parent, index } => {
                segments.push(format!("[{index}]"));
                at = parent;
            }
            Path::Map { parent, key } => {
                segments.push(key.clone());
                at = parent;
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => at = parent,
        }
    }
    for segment in segments.iter().rev() {
        if !written.is_empty() && !segment.starts_with('[') {
            written.push('.');
        }
        written.push_str(segment);
    }
    written
}

/// Whether `value`'s compact JSON text is longer than `limit` bytes. The
/// text's length is added up without writing it, and a string is weighed
/// by its length before it is scanned for escapes, so a 50 MB value costs
/// no more work than `limit` bytes of it.
pub(super) fn longer_than(value: &serde_json::Value, limit: usize) -> bool {
    let mut left = limit;
    !fits(&mut left, value)
}

/// Takes the length of `value`'s compact text from `left`, or says it does
/// not fit.
fn fits(left: &mut usize, value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(true) => spend(left, 4),
        Value::Bool(false) => spend(left, 5),
        Value::Number(n) => spend(left, n.to_string().len()),
        Value::String(s) => string_fits(left, s),
        Value::Array(items) => {
            spend(left, 2 + items.len().saturating_sub(1)) && items.iter().all(|i| fits(left, i))
        }
        Value::Object(map) => {
            spend(left, 2 + map.len().saturating_sub(1))
                && map
                    .iter()
                    .all(|(k, v)| string_fits(left, k) && spend(left, 1) && fits(left, v))
        }
    }
}

/// A string's quotes, bytes and escapes (serde_json escapes `"`, `\` and
/// the characters below U+0020).
fn string_fits(left: &mut usize, s: &str) -> bool {
    let escapes = || {
        s.bytes()
            .map(|b| match b {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
                0x00..=0x1f => 5,
                _ => 0,
            })
            .sum()
    };
    spend(left, s.len().saturating_add(2)) && spend(left, escapes())
}

fn spend(left: &mut usize, bytes: usize) -> bool {
    match left.checked_sub(bytes) {
        Some(rest) => {
            *left = rest;
            true
        }
        None => false,
    }
}

/// The body itself, as the type's `Deserialize` sees it: the rules of
/// [the module](self) on its shape, every other request passed on as is.
/// Values inside the body are not touched.
struct TopLevel<'a, D> {
    inner: D,
    /// The top-level fields of the type, once it said (for messages).
    expected: &'a Cell<Option<&'static [&'static str]>>,
    fields: Fields,
}

/// Forwards `deserialize_*` methods that take only a visitor.
macro_rules! forward {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.inner.$method(visitor)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for TopLevel<'_, D> {
    type Error = D::Error;

    forward! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.expected.set(Some(fields));
        // As a map: a JSON object, never an array.
        self.inner.deserialize_map(Object { visitor, name })
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.expected.set(Some(&[]));
        self.inner.deserialize_any(Unit {
            visitor,
            name,
            fields: self.fields,
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A struct's visitor that takes a JSON object only, and says so.
struct Object<V> {
    visitor: V,
    name: &'static str,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Object<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON object with the fields of `{}`", self.name)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(map)
    }
}

/// A unit struct's visitor that takes `null` or `{}`.
struct Unit<V> {
    visitor: V,
    name: &'static str,
    fields: Fields,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Unit<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{{}}` or `null` (`{}` has no fields)", self.name)
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V::Value, A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if self.fields == Fields::Known {
                return Err(de::Error::custom(format_args!(
                    "unknown field `{}`: `{}` has no fields",
                    crate::record::Shown(&key),
                    self.name
                )));
            }
            map.next_value::<IgnoredAny>()?;
        }
        self.visitor.visit_unit()
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Deposit {
        account: String,
        amount: u64,
        #[serde(default)]
        note: Option<Note>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Note {
        text: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Listed {
        notes: Vec<Note>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Ping;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Pair(String, u64);

    fn value<T: DeserializeOwned>(body: serde_json::Value, fields: Fields) -> Result<T, String> {
        decode("command", "Deposit", JsonBody::Value(body), fields).map_err(|e| e.to_string())
    }

    fn text<T: DeserializeOwned>(body: &str, fields: Fields) -> Result<T, String> {
        decode(
            "command",
            "Deposit",
            JsonBody::Text(body.as_bytes()),
            fields,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_well_formed_body_decodes_from_a_value_and_from_text() {
        let expected = Deposit {
            account: "a".into(),
            amount: 5,
            note: None,
        };
        let body = json!({ "account": "a", "amount": 5 });
        assert_eq!(value::<Deposit>(body.clone(), Fields::Known), Ok(expected));
        assert!(text::<Deposit>(&body.to_string(), Fields::Known).is_ok());
    }

    #[test]
    fn unknown_fields_are_refused_at_any_depth_unless_allowed() {
        let typo = json!({ "account": "a", "amuont": 5 });
        let refused = value::<Deposit>(typo.clone(), Fields::Known).unwrap_err();
        assert_eq!(
            refused,
            "body of command `Deposit` refused: unknown field `amuont` (its fields: `account`, `amount`, `note`)"
        );
        let nested = json!({ "account": "a", "amount": 5, "note": { "text": "x", "txet": "y" } });
        let refused = text::<Deposit>(&nested.to_string(), Fields::Known).unwrap_err();
        assert!(refused.contains("unknown field `note.txet` "), "{refused}");
        let listed = json!({ "notes": [{ "text": "x" }, { "text": "y", "n": 1 }] });
        let refused = value::<Listed>(listed, Fields::Known).unwrap_err();
        assert!(refused.contains("unknown field `notes[1].n` "), "{refused}");
        let allowed = json!({ "account": "a", "amount": 5, "extra": [1, 2] });
        assert!(value::<Deposit>(allowed, Fields::AnyExtra).is_ok());
    }

    #[test]
    fn a_struct_takes_an_object_only() {
        for body in [json!(["a", 5]), json!(5), json!("a"), json!(null)] {
            let refused = value::<Deposit>(body.clone(), Fields::Known).unwrap_err();
            assert!(
                refused.contains("expected a JSON object with the fields of `Deposit`"),
                "{body}: {refused}"
            );
        }
        let refused = text::<Deposit>(r#"["a", 5]"#, Fields::AnyExtra).unwrap_err();
        assert!(refused.contains("expected a JSON object"), "{refused}");
    }

    #[test]
    fn a_unit_struct_takes_an_empty_object_or_null() {
        assert_eq!(value::<Ping>(json!({}), Fields::Known), Ok(Ping));
        assert_eq!(value::<Ping>(json!(null), Fields::Known), Ok(Ping));
        assert_eq!(text::<Ping>(" {} ", Fields::Known), Ok(Ping));
        let refused = value::<Ping>(json!({ "x": 1 }), Fields::Known).unwrap_err();
        assert!(refused.contains("unknown field `x`"), "{refused}");
        assert_eq!(value::<Ping>(json!({ "x": 1 }), Fields::AnyExtra), Ok(Ping));
        assert!(value::<Ping>(json!([]), Fields::Known).is_err());
    }

    #[test]
    fn a_tuple_struct_keeps_its_array_form() {
        assert_eq!(
            value::<Pair>(json!(["a", 5]), Fields::Known),
            Ok(Pair("a".into(), 5))
        );
    }

    #[test]
    fn the_message_names_the_path_and_the_reason() {
        let wrong = json!({ "account": 5, "amount": 5 });
        assert_eq!(
            value::<Deposit>(wrong, Fields::Known).unwrap_err(),
            "body of command `Deposit` refused: at `account`: invalid type: integer `5`, expected a string"
        );
        let missing = text::<Deposit>(r#"{"account": "a"}"#, Fields::Known).unwrap_err();
        assert!(missing.contains("missing field `amount`"), "{missing}");
        let broken = text::<Deposit>(r#"{"account": "a", "#, Fields::Known).unwrap_err();
        assert!(broken.contains("EOF while parsing"), "{broken}");
        let trailing = text::<Deposit>(r#"{"account": "a", "amount": 1} x"#, Fields::Known);
        assert!(trailing.unwrap_err().contains("trailing characters"));
    }

    #[test]
    fn the_size_is_that_of_the_compact_text() {
        let bodies = [
            json!({ "a": "x".repeat(100) }),
            json!({}),
            json!([]),
            json!(null),
            json!([true, false, null, 1, -2.5, 1e300, u64::MAX, "", {}]),
            json!({ "quote\"d": "tab\t nl\n cr\r bs\\ nul\u{0} bell\u{7} del\u{7f} é 🚀" }),
            json!({ "nested": { "list": [[1, 2], { "k": [] }] }, "b": "c" }),
        ];
        for body in bodies {
            let len = body.to_string().len();
            assert!(!longer_than(&body, len), "{body}: {len}");
            assert!(longer_than(&body, len - 1), "{body}: {len}");
        }
    }
}
