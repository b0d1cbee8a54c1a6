//! `#[derive(Aggregate)]` inputs into IR and validation errors.

use syn::{DeriveInput, parse_quote};

use super::{parse, validate};
use crate::diag::Ctxt;

/// The checked model's event variants and commands, or the messages.
fn run(input: &DeriveInput) -> Result<(String, Vec<String>, Vec<String>), Vec<String>> {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed);
    match (cx.check(), model) {
        (Ok(()), Some(m)) => Ok((
            m.name.clone(),
            m.events.iter().map(|e| e.variant.to_string()).collect(),
            m.commands
                .iter()
                .map(|c| quote::quote!(#c).to_string())
                .collect(),
        )),
        (Ok(()), None) => panic!("no model and no error"),
        (Err(e), _) => Err(e.into_iter().map(|e| e.to_string()).collect()),
    }
}

#[test]
fn a_full_aggregate_parses() {
    let input: DeriveInput = parse_quote! {
        #[aggregate(name = "account", events(Opened, crate::events::Deposited), commands(Open),
                    error = AccountError, services = Clock, snapshot_every = 100)]
        pub struct Account { balance: u64 }
    };
    assert_eq!(
        run(&input),
        Ok((
            "account".to_owned(),
            vec!["Opened".to_owned(), "Deposited".to_owned()],
            vec!["Open".to_owned()]
        ))
    );
}

#[test]
fn defaults_apply() {
    let input: DeriveInput = parse_quote! {
        #[aggregate(events(Opened), error = E)]
        struct Account;
    };
    assert_eq!(
        run(&input),
        Ok(("Account".to_owned(), vec!["Opened".to_owned()], vec![]))
    );
}

#[test]
fn a_missing_attribute_is_reported_on_the_name_alone() {
    let input: DeriveInput = parse_quote!(
        struct Account;
    );
    assert_eq!(
        run(&input),
        Err(vec![
            "missing `#[aggregate(events(..), error = <type>)]` on this aggregate".to_owned()
        ])
    );
}

#[test]
fn required_keys_are_reported_missing() {
    let input: DeriveInput = parse_quote!(
        #[aggregate(name = "account")]
        struct Account;
    );
    assert_eq!(
        run(&input),
        Err(vec![
            "missing `events(..)` and `error = <type>` in `#[aggregate(..)]`".to_owned()
        ])
    );
}

#[test]
fn a_misspelled_or_malformed_key_is_not_also_missing() {
    let input: DeriveInput = parse_quote!(
        #[aggregate(evnts(Opened), error = "E")]
        struct Account;
    );
    assert_eq!(
        run(&input),
        Err(vec![
            "unknown key `evnts` in `#[aggregate(..)]`, did you mean `events`?".to_owned(),
            "expected `error = <type>`: write the type `E` without quotes".to_owned(),
        ])
    );
}

#[test]
fn duplicates_and_colliding_variants_are_reported() {
    let input: DeriveInput = parse_quote!(
        #[aggregate(events(Opened, a::Closed, Opened, b::Closed), commands(Open, Open), error = E)]
        struct Account;
    );
    assert_eq!(
        run(&input),
        Err(vec![
            "`Opened` is listed twice in `events(..)`".to_owned(),
            "`b::Closed` and `a::Closed` would both be the variant `Closed` of the event enum; events of one aggregate need distinct type names".to_owned(),
            "`Open` is listed twice in `commands(..)`".to_owned(),
        ])
    );
}

#[test]
fn shapes_values_and_generics_are_checked() {
    let input: DeriveInput = parse_quote!(
        #[aggregate(events(), error = E, snapshot_every = 0, name = "a b")]
        struct Account<T>(T);
    );
    assert_eq!(
        run(&input),
        Err(vec![
            "`#[derive(Aggregate)]` needs a struct with named fields or a unit struct, not a tuple struct".to_owned(),
            "`#[derive(Aggregate)]` does not support generic parameters".to_owned(),
            "`events(..)` must list at least one event".to_owned(),
            "`name` may contain only letters, digits, `.`, `-`, `_` and `/`, found a space".to_owned(),
            "expected `snapshot_every = <integer >= 1>`, found 0".to_owned(),
        ])
    );
}

#[test]
fn the_fallback_still_defines_the_event_enum() {
    let input: DeriveInput = parse_quote!(
        #[aggregate(events(Opened, Opened), error = E)]
        pub struct Account;
    );
    let tokens = super::derive(&input).to_string();
    assert!(tokens.contains("compile_error"), "{tokens}");
    assert!(tokens.contains("pub enum AccountEvent"), "{tokens}");
    // One variant: the duplicate is the reported mistake.
    assert_eq!(tokens.matches("Opened (Opened)").count(), 1, "{tokens}");
    assert!(tokens.contains("unreachable !"), "{tokens}");
}

#[test]
fn snapshots_are_generated_only_when_asked_for() {
    let with: DeriveInput = parse_quote!(
        #[aggregate(events(Opened), error = E, snapshot_every = 10)]
        struct Account;
    );
    let without: DeriveInput = parse_quote!(
        #[aggregate(events(Opened), error = E)]
        struct Account;
    );
    assert!(
        super::derive(&with)
            .to_string()
            .contains("__private :: encode_snapshot")
    );
    assert!(
        !super::derive(&without)
            .to_string()
            .contains("__private :: encode_snapshot")
    );
}
