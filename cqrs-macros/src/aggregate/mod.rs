//! `#[derive(Aggregate)]`: the write model, its event enum and its fold.

mod expand;
mod fallback;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::attr::{self, Form, Key};
use crate::diag::{self, Ctxt};

/// The keys of `#[aggregate(..)]`.
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
    Key::new("error", Form::Type, "error = <type>"),
    Key::new("services", Form::Type, "services = <type>"),
    Key::new(
        "snapshot_every",
        Form::Int,
        "snapshot_every = <integer >= 1>",
    ),
];

/// Expands `#[derive(Aggregate)]` on `input`.
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
