//! `#[derive(Projection)]`: a read model fed from the global log.

mod expand;
mod fallback;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::attr::{self, Form, Key};
use crate::diag::{self, Ctxt};

/// The keys of `#[projection(..)]`.
pub(crate) const KEYS: &[Key] = &[
    attr::NAME,
    Key::new(
        "events",
        Form::List {
            item: "an event type",
        },
        "events(<event>, ..)",
    ),
    Key::new("tables", Form::Type, "tables = sqlite | postgres"),
    Key::new("unknown_events", Form::Type, "unknown_events = skip | fail"),
];

/// Expands `#[derive(Projection)]` on `input`.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed);
    diag::finish(cx, model, expand::expand, |_| fallback::expand(&parsed))
}

#[cfg(test)]
mod tests;
