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
    Key {
        name: "projection",
        form: Form::Type,
        syntax: "projection = <type>",
    },
    Key {
        name: "output",
        form: Form::Type,
        syntax: "output = <type>",
    },
    attr::NAME,
    attr::ALLOW_UNKNOWN_FIELDS,
];

/// Expands `#[derive(Query)]` on `input`.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed);
    diag::finish(cx, model, expand::expand, || fallback::expand(&parsed))
}

#[cfg(test)]
mod tests;
