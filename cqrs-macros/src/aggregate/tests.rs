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
