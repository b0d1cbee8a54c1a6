//! `#[derive(Command)]` inputs into IR and validation errors.

use quote::ToTokens;
use syn::{DeriveInput, parse_quote};

use super::{parse, validate};
use crate::diag::Ctxt;

/// The checked name, aggregate, `async` flag and id member, or the messages.
fn run(input: &DeriveInput) -> Result<(String, String, bool, String), Vec<String>> {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed).map(|m| {
        (
            m.name,
            m.aggregate.to_token_stream().to_string(),
            m.is_async.is_some(),
            m.id.member.to_token_stream().to_string(),
        )
    });
    match cx.check() {
        Ok(()) => Ok(model.expect("a model when there is no error")),
        Err(errors) => Err(errors.into_iter().map(|e| e.to_string()).collect()),
    }
}

fn ok(
    name: &str,
    aggregate: &str,
    is_async: bool,
    member: &str,
) -> Result<(String, String, bool, String), Vec<String>> {
    Ok((
        name.to_owned(),
        aggregate.to_owned(),
        is_async,
        member.to_owned(),
    ))
}

#[test]
fn named_fields_and_defaults() {
    let input: DeriveInput = parse_quote!(
        #[command(aggregate = Account)]
        struct Deposit {
            amount: u64,
            #[id]
            account: String,
        }
    );
    assert_eq!(run(&input), ok("Deposit", "Account", false, "account"));
}

#[test]
fn tuple_fields_async_and_name() {
    let input: DeriveInput = parse_quote!(
        #[command(aggregate = crate::Account, name = "account.deposit", async)]
        struct Deposit(u64, #[id] String);
    );
    assert_eq!(
        run(&input),
        ok("account.deposit", "crate :: Account", true, "1")
    );
}

#[test]
fn ids_are_counted() {
    let none: DeriveInput = parse_quote!(
        #[command(aggregate = Account)]
        struct Deposit;
    );
    assert_eq!(
        run(&none),
        Err(vec![
            "a command needs a field marked `#[id]` that holds the id of the target aggregate, and this struct has no fields".to_owned()
        ])
    );
    let two: DeriveInput = parse_quote!(
        #[command(aggregate = Account)]
        struct Deposit {
            #[id]
            a: String,
            #[id]
            b: String,
            #[id = "c"]
            c: String,
        }
    );
    assert_eq!(
        run(&two),
        Err(vec![
            "expected `#[id]` without arguments".to_owned(),
            "a command has one `#[id]` field, the id of its target aggregate; this is a second one"
                .to_owned(),
            "a command has one `#[id]` field, the id of its target aggregate; this is a second one"
                .to_owned(),
        ])
    );
}

#[test]
fn the_aggregate_is_required() {
    let input: DeriveInput = parse_quote!(
        #[command(async)]
        struct Deposit(#[id] String);
    );
    assert_eq!(
        run(&input),
        Err(vec![
            "missing `#[command(aggregate = <type>)]`: the aggregate this command changes"
                .to_owned()
        ])
    );
}

#[test]
fn enums_and_generics_are_refused() {
    let input: DeriveInput = parse_quote!(
        #[command(aggregate = Account)]
        enum Deposit<T>
        where
            T: Clone,
        {
            A(T),
        }
    );
    assert_eq!(
        run(&input),
        Err(vec![
            "`#[derive(Command)]` supports structs only, not enums".to_owned(),
            "`#[derive(Command)]` does not support generic parameters".to_owned(),
        ])
    );
}

#[test]
fn async_takes_no_value() {
    let input: DeriveInput = parse_quote!(
        #[command(aggregate = Account, async = true)]
        struct Deposit(#[id] String);
    );
    assert_eq!(
        run(&input),
        Err(vec!["expected `async` without a value".to_owned()])
    );
}

#[test]
fn the_handler_call_depends_on_async() {
    let sync: DeriveInput = parse_quote!(
        #[command(aggregate = Account)]
        struct Deposit(#[id] String);
    );
    let asynchronous: DeriveInput = parse_quote!(
        #[command(aggregate = Account, async)]
        struct Deposit(#[id] String);
    );
    let sync = super::derive(&sync).to_string();
    let asynchronous = super::derive(&asynchronous).to_string();
    assert!(sync.contains(":: Handle < Self >"), "{sync}");
    assert!(
        asynchronous.contains(":: HandleAsync < Self >"),
        "{asynchronous}"
    );
}

#[test]
fn allow_unknown_fields_picks_the_lenient_entry_point() {
    let strict: DeriveInput = parse_quote!(
        #[command(aggregate = Account)]
        struct Deposit(#[id] String);
    );
    let lenient: DeriveInput = parse_quote!(
        #[command(aggregate = Account, allow_unknown_fields)]
        struct Deposit(#[id] String);
    );
    let strict = super::derive(&strict).to_string();
    let lenient = super::derive(&lenient).to_string();
    assert!(
        strict.contains(":: execute_json :: < Deposit >"),
        "{strict}"
    );
    assert!(
        lenient.contains(":: execute_json_lenient :: < Deposit >"),
        "{lenient}"
    );
    let with_value: DeriveInput = parse_quote!(
        #[command(aggregate = Account, allow_unknown_fields = true)]
        struct Deposit(#[id] String);
    );
    assert_eq!(
        run(&with_value),
        Err(vec![
            "expected `allow_unknown_fields` without a value".to_owned()
        ])
    );
}
