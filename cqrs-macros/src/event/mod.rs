//! `#[derive(Event)]`: a named, versioned fact.

mod expand;
mod fallback;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::diag::{self, Ctxt};

/// The keys of `#[event(..)]`.
pub(crate) const KEYS: &[crate::attr::Key] = &[
    crate::attr::NAME,
    crate::attr::Key::new(
        "version",
        crate::attr::Form::Int,
        "version = <integer >= 1>",
    ),
];

/// Expands `#[derive(Event)]` on `input`.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed);
    diag::finish(cx, model, expand::expand, |_| fallback::expand(&parsed))
}

#[cfg(test)]
mod tests;
