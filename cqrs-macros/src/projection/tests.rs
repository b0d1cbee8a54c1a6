//! `#[derive(Projection)]` inputs into IR and validation errors.

use quote::ToTokens;
use syn::{DeriveInput, parse_quote};

use super::{parse, validate};
use crate::diag::Ctxt;

/// The checked name and events, or the messages.
fn run(input: &DeriveInput) -> Result<(String, Vec<String>), Vec<String>> {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed).map(|m| {
        let events = m
            .events
            .iter()
            .map(|e| e.to_token_stream().to_string())
            .collect();
        (m.name, events)
    });
    match cx.check() {
        Ok(()) => Ok(model.expect("a model when there is no error")),
        Err(errors) => Err(errors.into_iter().map(|e| e.to_string()).collect()),
    }
}

#[test]
fn events_and_name_are_read() {
    let input: DeriveInput = parse_quote!(
        #[projection(name = "balances", events(Deposited, bank::Withdrawn))]
        struct Balances(u64);
    );
    assert_eq!(
        run(&input),
        Ok((
            "balances".to_owned(),
            vec!["Deposited".to_owned(), "bank :: Withdrawn".to_owned()]
        ))
    );
}

#[test]
fn events_are_required_non_empty_and_distinct() {
    let missing: DeriveInput = parse_quote!(
        struct Balances;
    );
    assert_eq!(
        run(&missing),
        Err(vec![
            "missing `#[projection(events(..))]` on this projection".to_owned()
        ])
    );
    let absent: DeriveInput = parse_quote!(
        #[projection(name = "b")]
        struct Balances;
    );
    assert_eq!(
        run(&absent),
        Err(vec![
            "missing `events(..)` in `#[projection(..)]`: list the events this projection consumes"
                .to_owned()
        ])
    );
    let empty: DeriveInput = parse_quote!(
        #[projection(events())]
        struct Balances;
    );
    assert_eq!(
        run(&empty),
        Err(vec!["`events(..)` must list at least one event".to_owned()])
    );
    let twice: DeriveInput = parse_quote!(
        #[projection(events(A, B, A))]
        struct Balances;
    );
    assert_eq!(
        run(&twice),
        Err(vec!["`A` is listed twice in `events(..)`".to_owned()])
    );
}

#[test]
fn unions_and_lifetimes_are_refused() {
    let input: DeriveInput = parse_quote!(
        #[projection(events(A))]
        union Balances<'a> {
            a: &'a u8,
        }
    );
    assert_eq!(
        run(&input),
        Err(vec![
            "`#[derive(Projection)]` supports structs only, not unions".to_owned(),
            "`#[derive(Projection)]` does not support generic parameters".to_owned(),
        ])
    );
}
