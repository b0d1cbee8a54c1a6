//! No stored input makes reading an event panic (issue 11): arbitrary JSON
//! (and arbitrary bytes) stored under every version and name of an event,
//! through its upcasters (on JSON and typed, careful and careless ones),
//! decode into the event or into a typed error, never a panic.
//!
//! A property test: proptest generates JSON values of every kind, nested,
//! and shrinks a failing one to a minimal input.

use std::sync::Once;

use cqrs_core::prelude::*;
use cqrs_core::{DecodeErrorKind, decode_event, upcast};
use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};

/// Version 4. Version 1 held whole euros in `amount`, version 2 `cents`,
/// version 3 `cents` and `note`.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(
    name = "fuzz.deposited",
    aliases("fuzz.deposit"),
    version = 4,
    upcast(from = 1, with = careful),
    upcast(from = 2, with = careless),
    upcast(from = 3, shape = V3)
)]
struct Deposited {
    cents: u64,
    note: String,
    currency: String,
}

/// Checks what it reads: refuses with a reason.
fn careful(mut v1: Value) -> Result<Value, UpcastError> {
    let euros = upcast::take_field(&mut v1, "amount")?
        .as_u64()
        .ok_or("`amount` is not a whole number")?;
    let cents = euros.checked_mul(100).ok_or("`amount` is too large")?;
    Ok(json!({ "cents": cents }))
}

/// Indexes blindly: `serde_json` panics when the value is not an object
/// (`v["note"] = ..` on an array), and the arithmetic can overflow.
fn careless(mut v2: Value) -> Value {
    let cents = v2["cents"].as_u64().unwrap_or(0);
    v2["note"] = Value::String(format!("{}", cents + 1));
    v2
}

#[derive(Deserialize)]
struct V3 {
    cents: u64,
    note: String,
}

impl Upcast<V3> for Deposited {
    fn upcast(v3: V3) -> Self {
        // Panics on an empty note: caught like any upcaster's panic.
        let first = v3.note.chars().next().expect("a note");
        Deposited {
            cents: v3.cents,
            currency: if first.is_ascii_digit() { "EUR" } else { "USD" }.into(),
            note: v3.note,
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ".{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop::sample::select(&["amount", "cents", "note", "currency", "x", ""][..]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..5).prop_map(|entries| {
                let map: Map<String, Value> = entries
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect();
                Value::Object(map)
            }),
        ]
    })
}

/// The panics the upcasters raise are caught; their messages would only
/// flood the output.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

fn read(name: &str, version: u32, payload: &[u8]) -> Result<Deposited, cqrs_core::DecodeError> {
    quiet_panics();
    let outcome = std::panic::catch_unwind(|| decode_event::<Deposited>(name, version, payload));
    outcome.unwrap_or_else(|_| panic!("decoding {name} v{version} {payload:?} panicked"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_of_any_version_decodes_or_is_a_typed_error(
        value in json_value(),
        version in 0u32..6,
        alias in any::<bool>(),
    ) {
        let name = if alias { "fuzz.deposit" } else { "fuzz.deposited" };
        let payload = value.to_string();
        match read(name, version, payload.as_bytes()) {
            Ok(event) => prop_assert!((1..=4).contains(&version), "{event:?}"),
            Err(e) => {
                let ok = match &e.kind {
                    DecodeErrorKind::NewerVersion { found, .. } => *found > 4,
                    DecodeErrorKind::OlderVersion { found, .. } => *found == 0,
                    DecodeErrorKind::Payload { version: v, .. } => *v == version,
                    DecodeErrorKind::Upcast { found, .. } => *found == version,
                    DecodeErrorKind::UpcastOutput { found, .. } => *found == version,
                    _ => false,
                };
                prop_assert!(ok, "version {version}: {e:?}");
                // The message names the event and its stored version.
                let text = e.to_string();
                prop_assert!(text.contains(name), "{text}");
            }
        }
    }

    #[test]
    fn arbitrary_bytes_are_a_typed_error(bytes in prop::collection::vec(any::<u8>(), 0..64), version in 1u32..5) {
        // Bytes that happen to be a valid payload are fine too.
        let _ = read("fuzz.deposited", version, &bytes);
    }
}

#[test]
fn each_upcaster_runs_and_each_panic_is_named() {
    let v1 = read("fuzz.deposit", 1, br#"{"amount": 2}"#).unwrap();
    assert_eq!(
        v1,
        Deposited {
            cents: 200,
            note: "201".into(),
            currency: "EUR".into()
        }
    );
    let careless = read("fuzz.deposited", 2, b"[1]").unwrap_err();
    assert!(
        matches!(careless.kind, DecodeErrorKind::Upcast { from: 2, .. }),
        "{careless:?}"
    );
    assert!(
        careless.to_string().contains("the upcaster panicked"),
        "{careless}"
    );
    let typed = read("fuzz.deposited", 3, br#"{"cents": 1, "note": ""}"#).unwrap_err();
    assert!(
        matches!(typed.kind, DecodeErrorKind::Upcast { from: 3, .. })
            && typed.to_string().contains("a note"),
        "{typed}"
    );
    let overflow = read("fuzz.deposit", 1, br#"{"amount": 18446744073709551615}"#).unwrap_err();
    assert!(
        overflow.to_string().contains("`amount` is too large"),
        "{overflow}"
    );
}
