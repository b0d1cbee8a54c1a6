//! `#[derive(Query)]`: a question one projection answers.

mod expand;
mod fallback;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::attr::{self, Form, Key};
use crate::diag::{self, Ctxt};

/// The keys of `#[query(..)]`.
pub(crate) const KEYS: &[Key] = &[
    Key::new("projection", Form::Type, "projection = <type>"),
    Key::new("output", Form::Type, "output = <type>"),
    attr::NAME,
    attr::ALLOW_UNKNOWN_FIELDS,
];

/// Expands `#[derive(Query)]` on `input`.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed);
    diag::finish(cx, model, expand::expand, |poison| {
        fallback::expand(&parsed, poison)
    })
}

#[cfg(test)]
mod tests;
