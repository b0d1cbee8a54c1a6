//! `#[derive(Event)]` inputs into IR and validation errors.

use syn::{DeriveInput, parse_quote};

use super::{parse, validate};
use crate::diag::Ctxt;

/// The checked name and version, or every message.
fn run(input: &DeriveInput) -> Result<(String, u32), Vec<String>> {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed).map(|m| (m.name, m.version));
    match cx.check() {
        Ok(()) => Ok(model.expect("a model when there is no error")),
        Err(errors) => Err(errors.into_iter().map(|e| e.to_string()).collect()),
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
            "unknown key `colour` in `#[event(..)]`, expected `name` or `version`".to_owned(),
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
