//! `#[derive(Command)]`: a request to one aggregate, routed to its handler.

mod expand;
mod fallback;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::attr::{self, Form, Key};
use crate::diag::{self, Ctxt};

/// The keys of `#[command(..)]`.
pub(crate) const KEYS: &[Key] = &[
    Key {
        name: "aggregate",
        form: Form::Type,
        syntax: "aggregate = <type>",
    },
    attr::NAME,
    Key {
        name: "async",
        form: Form::Flag,
        syntax: "async",
    },
    attr::ALLOW_UNKNOWN_FIELDS,
];

/// Expands `#[derive(Command)]` on `input`.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed);
    diag::finish(cx, model, expand::expand, || fallback::expand(&parsed))
}

#[cfg(test)]
mod tests;
