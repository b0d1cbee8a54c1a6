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

/// The `#[document]` fields, or the messages.
fn documents(input: &DeriveInput) -> Result<Vec<String>, Vec<String>> {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed).map(|m| {
        m.documents
            .iter()
            .map(|(field, _)| field.to_string())
            .collect()
    });
    match cx.check() {
        Ok(()) => Ok(model.expect("a model when there is no error")),
        Err(errors) => Err(errors.into_iter().map(|e| e.to_string()).collect()),
    }
}

#[test]
fn document_fields_are_collections() {
    let input: DeriveInput = parse_quote!(
        #[projection(events(Deposited))]
        struct Balances {
            #[document]
            accounts: Documents<u64>,
            #[document]
            owners: Documents<String>,
        }
    );
    assert_eq!(
        documents(&input),
        Ok(vec!["accounts".to_owned(), "owners".to_owned()])
    );
}

#[test]
fn a_durable_projection_has_no_other_state() {
    let input: DeriveInput = parse_quote!(
        #[projection(events(Deposited))]
        struct Balances {
            #[document]
            accounts: Documents<u64>,
            seen: u64,
        }
    );
    let errors = documents(&input).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("`seen` is not a `#[document]` field"),
        "{errors:?}"
    );
}

#[test]
fn document_takes_no_arguments_and_needs_a_name() {
    let input: DeriveInput = parse_quote!(
        #[projection(events(Deposited))]
        struct Balances {
            #[document(table = "x")]
            accounts: Documents<u64>,
        }
    );
    assert!(documents(&input).unwrap_err()[0].contains("takes no arguments"));
    let input: DeriveInput = parse_quote!(
        #[projection(events(Deposited))]
        struct Balances(#[document] Documents<u64>);
    );
    assert!(documents(&input).unwrap_err()[0].contains("needs a named field"));
}
