//! `#[derive(Event)]`: a named, versioned fact, with the older names and
//! versions it reads and the shape the schema lock records.

mod expand;
mod fallback;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::attr::{self, Form, Key};
use crate::diag::{self, Ctxt};

/// The keys of `upcast(..)`.
pub(crate) const UPCAST_KEYS: &[Key] = &[
    Key::new("from", Form::Int, "from = <version>"),
    Key::new("with", Form::Type, "with = <function>"),
    Key::new("shape", Form::Type, "shape = <type>"),
];

/// The keys of `#[event(..)]`.
pub(crate) const KEYS: &[Key] = &[
    attr::NAME,
    Key::new("version", Form::Int, "version = <integer >= 1>"),
    Key::new("aliases", Form::StrList, "aliases(\"<old name>\", ..)"),
    Key::new(
        "upcast",
        Form::Nested(UPCAST_KEYS),
        "upcast(from = <version>, with = <function>)",
    )
    .repeated(),
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
