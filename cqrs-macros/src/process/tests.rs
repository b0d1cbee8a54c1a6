//! `#[derive(ProcessManager)]` inputs into IR, validation errors and the
//! fallback's `Issues` impls.

use quote::ToTokens;
use syn::{DeriveInput, parse_quote};

use super::{fallback, parse, validate};
use crate::diag::Ctxt;

/// The checked name, events and commands.
type Model = (String, Vec<String>, Vec<String>);

/// The checked model, or the messages.
fn run(input: &DeriveInput) -> Result<Model, Vec<String>> {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed).map(|m| {
        let shown = |paths: &[&syn::Path]| {
            paths
                .iter()
                .map(|p| p.to_token_stream().to_string())
                .collect()
        };
        (m.name, shown(&m.events), shown(&m.commands))
    });
    match cx.check() {
        Ok(()) => Ok(model.expect("a model when there is no error")),
        Err(errors) => Err(errors.into_iter().map(|e| e.to_string()).collect()),
    }
}

/// The messages, which must be there.
fn errors(input: &DeriveInput) -> Vec<String> {
    run(input).expect_err("a mistake")
}

#[test]
fn name_events_and_commands_are_read() {
    let input: DeriveInput = parse_quote!(
        #[process(name = "transfer", events(Sent, bank::Received), commands(Receive))]
        struct Transfer {
            to: String,
        }
    );
    assert_eq!(
        run(&input),
        Ok((
            "transfer".to_owned(),
            vec!["Sent".to_owned(), "bank :: Received".to_owned()],
            vec!["Receive".to_owned()]
        ))
    );
}

#[test]
fn the_name_defaults_to_the_type_and_commands_to_none() {
    let input: DeriveInput = parse_quote!(
        #[process(events(Sent))]
        struct r#Transfer;
    );
    assert_eq!(
        run(&input),
        Ok(("Transfer".to_owned(), vec!["Sent".to_owned()], Vec::new()))
    );
}

#[test]
fn the_attribute_and_events_are_required() {
    let missing: DeriveInput = parse_quote!(
        struct Transfer;
    );
    assert_eq!(
        errors(&missing),
        ["missing `#[process(events(..), commands(..))]` on this process manager"]
    );
    let absent: DeriveInput = parse_quote!(
        #[process(name = "transfer", commands(Receive))]
        struct Transfer;
    );
    assert_eq!(
        errors(&absent),
        [
            "missing `events(..)` in `#[process(..)]`: list the events this process manager reacts to"
        ]
    );
    let empty: DeriveInput = parse_quote!(
        #[process(events())]
        struct Transfer;
    );
    assert_eq!(
        errors(&empty),
        ["`events(..)` must list at least one event"]
    );
}

#[test]
fn a_misspelt_key_is_one_error() {
    let input: DeriveInput = parse_quote!(
        #[process(evnts(Sent), commands(Receive))]
        struct Transfer;
    );
    assert_eq!(
        errors(&input),
        ["unknown key `evnts` in `#[process(..)]`, did you mean `events`?"]
    );
}

#[test]
fn events_and_commands_are_listed_once() {
    let events: DeriveInput = parse_quote!(
        #[process(events(Sent, Received, Sent))]
        struct Transfer;
    );
    assert_eq!(errors(&events), ["`Sent` is listed twice in `events(..)`"]);
    let commands: DeriveInput = parse_quote!(
        #[process(events(Sent), commands(Receive, Refund, Receive))]
        struct Transfer;
    );
    assert_eq!(
        errors(&commands),
        ["`Receive` is listed twice in `commands(..)`"]
    );
}

#[test]
fn names_are_checked() {
    let empty: DeriveInput = parse_quote!(
        #[process(name = "", events(Sent))]
        struct Transfer;
    );
    assert_eq!(errors(&empty), ["`name` must not be empty"]);
    let spaced: DeriveInput = parse_quote!(
        #[process(name = "money transfer", events(Sent))]
        struct Transfer;
    );
    assert_eq!(
        errors(&spaced),
        ["`name` may contain only letters, digits, `.`, `-`, `_` and `/`, found a space"]
    );
}

#[test]
fn enums_and_generics_are_refused() {
    let input: DeriveInput = parse_quote!(
        #[process(events(Sent))]
        enum Transfer<T> {
            Idle(T),
        }
    );
    assert_eq!(
        errors(&input),
        [
            "`#[derive(ProcessManager)]` supports structs only, not enums",
            "`#[derive(ProcessManager)]` does not support generic parameters",
        ]
    );
}

/// The commands of the fallback's `Issues` impls, as written (`__CqrsC`
/// for the impl for every command).
fn fallback_issues(input: &DeriveInput) -> Vec<String> {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let _ = cx.check();
    let tokens = fallback::expand(&parsed).to_string();
    let mut found = Vec::new();
    let mut rest = tokens.as_str();
    while let Some(at) = rest.find("process :: Issues < ") {
        rest = &rest[at + "process :: Issues < ".len()..];
        let command = rest.split(' ').next().unwrap_or_default();
        found.push(command.to_owned());
    }
    found
}

#[test]
fn the_fallback_lets_every_listed_command_be_sent() {
    let listed: DeriveInput = parse_quote!(
        #[process(evnts(Sent), commands(Receive, Refund, Receive))]
        struct Transfer;
    );
    assert_eq!(
        fallback_issues(&listed),
        ["__CqrsCommand0", "__CqrsCommand1"]
    );
    let misspelt: DeriveInput = parse_quote!(
        #[process(events(Sent), comands(Receive))]
        struct Transfer;
    );
    assert_eq!(fallback_issues(&misspelt), ["__CqrsCommand0"]);
    let none: DeriveInput = parse_quote!(
        #[process(evnts(Sent))]
        struct Transfer;
    );
    assert_eq!(fallback_issues(&none), Vec::<String>::new());
}

#[test]
fn the_fallback_lets_any_command_be_sent_when_the_list_is_unknown() {
    let missing: DeriveInput = parse_quote!(
        struct Transfer;
    );
    assert_eq!(fallback_issues(&missing), ["__CqrsC"]);
    let unread: DeriveInput = parse_quote!(
        #[process = "transfer"]
        struct Transfer;
    );
    assert_eq!(fallback_issues(&unread), ["__CqrsC"]);
    // A malformed list still says which commands were meant.
    let malformed: DeriveInput = parse_quote!(
        #[process(events(Sent), commands = Receive)]
        struct Transfer;
    );
    assert_eq!(fallback_issues(&malformed), ["__CqrsCommand0"]);
}
