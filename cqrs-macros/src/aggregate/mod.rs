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
    Key {
        name: "events",
        form: Form::List,
        syntax: "events(<event>, ..)",
    },
    Key {
        name: "commands",
        form: Form::List,
        syntax: "commands(<command>, ..)",
    },
    Key {
        name: "error",
        form: Form::Type,
        syntax: "error = <type>",
    },
    Key {
        name: "services",
        form: Form::Type,
        syntax: "services = <type>",
    },
    Key {
        name: "snapshot_every",
        form: Form::Int,
        syntax: "snapshot_every = <integer >= 1>",
    },
];

/// Expands `#[derive(Aggregate)]` on `input`.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let parsed = parse::from_syn(&cx, input);
    let model = validate::validate(&cx, &parsed);
    diag::finish(cx, model, expand::expand, || fallback::expand(&parsed))
}

#[cfg(test)]
mod tests;
