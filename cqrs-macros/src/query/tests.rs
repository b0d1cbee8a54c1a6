//! `#[derive(Query)]` inputs into IR and validation errors.

use quote::ToTokens;
use syn::{DeriveInput, parse_quote};

use super::{parse, validate};
use crate::diag::Ctxt;

/// The checked name, projection and output, or the messages.
fn run(input: &DeriveInput) -> Result<(String, String, String), Vec<String>> {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed).map(|m| {
        (
            m.name,
            m.projection.to_token_stream().to_string(),
            m.output.to_token_stream().to_string(),
        )
    });
    match cx.check() {
        Ok(()) => Ok(model.expect("a model when there is no error")),
        Err(errors) => Err(errors.into_iter().map(|e| e.to_string()).collect()),
    }
}

#[test]
fn unit_structs_and_generic_outputs() {
    let input: DeriveInput = parse_quote!(
        #[query(projection = Balances, output = HashMap<String, u64>)]
        struct AllBalances;
    );
    assert_eq!(
        run(&input),
        Ok((
            "AllBalances".to_owned(),
            "Balances".to_owned(),
            "HashMap < String , u64 >".to_owned()
        ))
    );
}

#[test]
fn projection_and_output_are_required() {
    let input: DeriveInput = parse_quote!(
        #[query(name = "balance")]
        struct BalanceOf;
    );
    assert_eq!(
        run(&input),
        Err(vec![
            "missing `projection = <type>` and `output = <type>` in `#[query(..)]`".to_owned()
        ])
    );
    let absent: DeriveInput = parse_quote!(
        struct BalanceOf;
    );
    assert_eq!(
        run(&absent),
        Err(vec![
            "missing `#[query(projection = <type>, output = <type>)]` on this query".to_owned()
        ])
    );
}

#[test]
fn a_typo_gets_a_hint_and_is_not_also_missing() {
    let input: DeriveInput = parse_quote!(
        #[query(projection = Balances, outptu = u64)]
        struct BalanceOf;
    );
    assert_eq!(
        run(&input),
        Err(vec![
            "unknown key `outptu` in `#[query(..)]`, did you mean `output`?".to_owned()
        ])
    );
}

#[test]
fn the_output_type_is_registered_as_written() {
    let input: DeriveInput = parse_quote!(
        #[query(projection = Balances, output = Option<u64>)]
        struct BalanceOf;
    );
    let tokens = super::derive(&input).to_string();
    assert!(tokens.contains("\"Option<u64>\""), "{tokens}");
}

#[test]
fn allow_unknown_fields_picks_the_lenient_entry_point() {
    let strict: DeriveInput = parse_quote!(
        #[query(projection = Balances, output = u64)]
        struct Total;
    );
    let lenient: DeriveInput = parse_quote!(
        #[query(projection = Balances, output = u64, allow_unknown_fields)]
        struct Total;
    );
    let strict = super::derive(&strict).to_string();
    let lenient = super::derive(&lenient).to_string();
    assert!(strict.contains(":: query_json :: < Total >"), "{strict}");
    assert!(
        lenient.contains(":: query_json_lenient :: < Total >"),
        "{lenient}"
    );
}
