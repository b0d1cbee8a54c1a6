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
    Key::new("aggregate", Form::Type, "aggregate = <type>"),
    attr::NAME,
    Key::new("async", Form::Flag, "async"),
    attr::ALLOW_UNKNOWN_FIELDS,
];

/// Expands `#[derive(Command)]` on `input`.
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
