//! `#[derive(ProcessManager)]`: a workflow across aggregates, one instance
//! per correlation key.

mod expand;
mod fallback;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::attr::{self, Form, Key};
use crate::diag::{self, Ctxt};

/// The keys of `#[process(..)]`.
pub(crate) const KEYS: &[Key] = &[
    attr::NAME,
    Key::new(
        "events",
        Form::List {
            item: "an event type",
        },
        "events(<event>, ..)",
    ),
    Key::new(
        "commands",
        Form::List {
            item: "a command type",
        },
        "commands(<command>, ..)",
    ),
];

/// Expands `#[derive(ProcessManager)]` on `input`.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed);
    diag::finish(cx, model, expand::expand, |_| fallback::expand(&parsed))
}

#[cfg(test)]
mod tests;
