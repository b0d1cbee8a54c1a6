//! `#[derive(Event)]` inputs into IR and validation errors.

use syn::{DeriveInput, parse_quote};

use super::{parse, validate};
use crate::diag::Ctxt;

/// The checked name and version, or every message.
fn run(input: &DeriveInput) -> Result<(String, u32), Vec<String>> {
    checked(input).map(|m| (m.name, m.version))
}

/// What validation makes of an input: its parts, or every message.
struct Checked {
    name: String,
    version: u32,
    aliases: Vec<String>,
    upcasts: Vec<(u32, bool)>,
    shape: String,
}

fn checked(input: &DeriveInput) -> Result<Checked, Vec<String>> {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed).map(|m| Checked {
        name: m.name,
        version: m.version,
        aliases: m.aliases,
        upcasts: m
            .upcasts
            .iter()
            .map(|u| (u.from, matches!(u.step, validate::Step::Typed(_))))
            .collect(),
        shape: m.shape,
    });
    match cx.check() {
        Ok(()) => Ok(model.expect("a model when there is no error")),
        Err(errors) => Err(errors.into_iter().map(|e| e.to_string()).collect()),
    }
}

fn errors(input: &DeriveInput) -> Vec<String> {
    match checked(input) {
        Ok(_) => Vec::new(),
        Err(messages) => messages,
    }
}

#[test]
fn defaults_are_the_type_name_and_version_1() {
    let input: DeriveInput = parse_quote!(
        struct AccountOpened {
            owner: String,
        }
    );
    assert_eq!(run(&input), Ok(("AccountOpened".to_owned(), 1)));
}

#[test]
fn raw_identifiers_lose_their_prefix() {
    let input: DeriveInput = parse_quote!(
        struct r#Move;
    );
    assert_eq!(run(&input), Ok(("Move".to_owned(), 1)));
}

#[test]
fn name_and_version_are_read() {
    let input: DeriveInput = parse_quote!(
        #[event(name = "account.opened", version = 3)]
        struct AccountOpened(String);
    );
    assert_eq!(run(&input), Ok(("account.opened".to_owned(), 3)));
}

#[test]
fn every_mistake_is_reported_at_once() {
    let input: DeriveInput = parse_quote!(
        #[event(name = "", version = 0, colour = "red")]
        enum AccountOpened<T> {
            A(T),
        }
    );
    assert_eq!(
        run(&input),
        Err(vec![
            "unknown key `colour` in `#[event(..)]`, expected `name`, `version`, `aliases` or `upcast`".to_owned(),
            "`#[derive(Event)]` supports structs only, not enums".to_owned(),
            "`#[derive(Event)]` does not support generic parameters".to_owned(),
            "`name` must not be empty".to_owned(),
            "expected `version = <integer >= 1>`, found 0".to_owned(),
        ])
    );
}

#[test]
fn versions_must_fit_a_u32() {
    let input: DeriveInput = parse_quote!(
        #[event(version = 4294967296)]
        struct Big;
    );
    assert_eq!(
        run(&input),
        Err(vec![
            "expected `version = <integer >= 1>`, this is too large".to_owned()
        ])
    );
}

#[test]
fn unions_get_no_fallback_impl() {
    let input: DeriveInput = parse_quote!(
        union U {
            a: u8,
        }
    );
    let tokens = super::derive(&input).to_string();
    assert!(tokens.contains("compile_error"), "{tokens}");
    assert!(!tokens.contains("impl"), "{tokens}");
}

#[test]
fn a_valid_event_registers_itself() {
    let input: DeriveInput = parse_quote!(
        #[event(name = "account.opened")]
        struct AccountOpened;
    );
    let tokens = super::derive(&input).to_string();
    assert!(!tokens.contains("compile_error"), "{tokens}");
    assert!(tokens.contains("inventory :: submit"), "{tokens}");
    assert!(tokens.contains("\"account.opened\""), "{tokens}");
}

#[test]
fn upcasters_and_aliases_are_read_in_version_order() {
    let input: DeriveInput = parse_quote!(
        #[event(
            name = "account.deposited",
            aliases("deposit.made", "money.in"),
            version = 3,
            upcast(from = 2, shape = DepositedV2),
            upcast(from = 1, with = v1_to_v2),
        )]
        struct Deposited {
            cents: u64,
        }
    );
    let event = checked(&input).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(event.aliases, ["deposit.made", "money.in"]);
    assert_eq!(event.upcasts, [(1, false), (2, true)]);
    assert_eq!(event.shape, "{\n    cents: u64,\n}");
}

#[test]
fn an_upcaster_reads_an_older_version() {
    let input: DeriveInput = parse_quote!(
        #[event(version = 2, upcast(from = 2, with = f))]
        struct E;
    );
    assert_eq!(
        errors(&input),
        [
            "`from = 2` is not older than the event's version 2: an upcaster reads an older version (bump `version` first)"
        ]
    );
    // Without `version`, the event is at version 1: nothing is older.
    let input: DeriveInput = parse_quote!(
        #[event(upcast(from = 1, with = f))]
        struct E;
    );
    assert_eq!(errors(&input).len(), 1);
}

#[test]
fn one_upcaster_per_version() {
    let input: DeriveInput = parse_quote!(
        #[event(version = 3, upcast(from = 1, with = f), upcast(from = 2, with = g), upcast(from = 1, with = h))]
        struct E;
    );
    assert_eq!(
        errors(&input),
        ["a second upcaster from version 1: give each version one"]
    );
}

#[test]
fn a_gap_in_the_chain_names_the_missing_version() {
    let input: DeriveInput = parse_quote!(
        #[event(version = 4, upcast(from = 1, with = f), upcast(from = 3, with = g))]
        struct E;
    );
    assert_eq!(
        errors(&input),
        [
            "no upcaster from version 2: events stored at version 2 could not be read; add `upcast(from = 2, ..)`"
        ]
    );
    let input: DeriveInput = parse_quote!(
        #[event(version = 3, upcast(from = 1, with = f))]
        struct E;
    );
    assert_eq!(errors(&input).len(), 1);
    // Versions below the oldest upcaster were never stored: no gap.
    let input: DeriveInput = parse_quote!(
        #[event(version = 3, upcast(from = 2, with = f))]
        struct E;
    );
    assert_eq!(errors(&input), Vec::<String>::new());
}

#[test]
fn an_upcaster_needs_its_version_and_one_way_to_upcast() {
    for (input, message) in [
        (
            parse_quote!(
                #[event(version = 2, upcast(with = f))]
                struct E;
            ),
            "missing `from = <version>` in `upcast(..)`: the version this upcaster reads",
        ),
        (
            parse_quote!(
                #[event(version = 2, upcast(from = 1))]
                struct E;
            ),
            "missing `with = <function>` or `shape = <type>` in `upcast(..)`: how it makes the next version",
        ),
        (
            parse_quote!(
                #[event(version = 2, upcast())]
                struct E;
            ),
            "missing `from = <version>` and `with = <function>` (or `shape = <type>`) in `upcast(..)`",
        ),
        (
            parse_quote!(
                #[event(version = 2, upcast(from = 1, with = f, shape = S))]
                struct E;
            ),
            "`upcast(..)` takes `with = <function>` (on JSON) or `shape = <type>` (typed), not both",
        ),
        (
            parse_quote!(
                #[event(version = 2, upcast(from = 0, with = f))]
                struct E;
            ),
            "expected `from = <version >= 1>`, found 0",
        ),
        (
            parse_quote!(
                #[event(version = 2, upcast(from = 1, with = &f))]
                struct E;
            ),
            "expected `with = <function>`, the path to a function, not `&f`",
        ),
        (
            parse_quote!(
                #[event(version = 3, upcast(from = 1, shape = S), upcast(from = 2, with = f))]
                struct E;
            ),
            "`shape = S` upcasts into the shape of version 2, but the upcaster from version 2 works on JSON: give it `shape = ..` too, or make this one `with = <function>`",
        ),
    ] {
        let input: DeriveInput = input;
        assert_eq!(errors(&input), [message]);
    }
}

#[test]
fn a_mistake_inside_an_upcaster_is_one_error() {
    // The bad value is reported; the upcaster is not then reported missing
    // or as a gap.
    let input: DeriveInput = parse_quote!(
        #[event(version = 3, upcast(from = "1", with = f), upcast(from = 2, with = g))]
        struct E;
    );
    assert_eq!(errors(&input), ["expected `from = <version>`"]);
    let input: DeriveInput = parse_quote!(
        #[event(version = 0, upcast(from = 1, with = f))]
        struct E;
    );
    assert_eq!(
        errors(&input),
        ["expected `version = <integer >= 1>`, found 0"]
    );
    let input: DeriveInput = parse_quote!(
        #[event(version = 2, upcst(from = 1, with = f))]
        struct E;
    );
    assert_eq!(
        errors(&input),
        ["unknown key `upcst` in `#[event(..)]`, did you mean `upcast`?"]
    );
}

#[test]
fn aliases_are_older_names() {
    let input: DeriveInput = parse_quote!(
        #[event(name = "a.b", aliases("a.b"))]
        struct E;
    );
    assert_eq!(
        errors(&input),
        ["`a.b` is the event's own name: `aliases(..)` lists the names it was stored under before"]
    );
    let input: DeriveInput = parse_quote!(
        #[event(aliases("x", "x", ""))]
        struct E;
    );
    assert_eq!(
        errors(&input),
        [
            "`x` is listed twice in `aliases(..)`",
            "an alias must not be empty"
        ]
    );
}

#[test]
fn the_shape_and_the_upcasters_are_generated() {
    let input: DeriveInput = parse_quote!(
        #[event(version = 3, upcast(from = 1, with = up), upcast(from = 2, shape = V2))]
        struct E {
            #[serde(rename = "c")]
            cents: u64,
        }
    );
    let tokens = super::derive(&input).to_string();
    assert!(!tokens.contains("compile_error"), "{tokens}");
    for expected in [
        "Upcaster :: json (1u32 , __cqrs_upcast_1)",
        "Upcaster :: typed (2u32 , __cqrs_upcast_2)",
        "upcasts : & [1u32 , 2u32]",
        "#[serde(rename = \\\"c\\\")] cents: u64,",
    ] {
        assert!(tokens.contains(expected), "missing {expected} in {tokens}");
    }
}
