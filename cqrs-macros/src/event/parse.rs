//! `#[derive(Event)]` input into its IR.

use syn::{DeriveInput, Ident, LitInt, LitStr};

use crate::attr;
use crate::diag::Ctxt;

/// An event type as written, keeping the syn nodes for spans.
pub(crate) struct Input<'a> {
    /// The whole input.
    pub(crate) original: &'a DeriveInput,
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// `name = ".."`.
    pub(crate) name: Option<LitStr>,
    /// `version = N`.
    pub(crate) version: Option<LitInt>,
}

/// Reads the `#[event(..)]` attributes of `input`.
pub(crate) fn from_syn<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Input<'a> {
    let DeriveInput {
        attrs,
        vis: _,
        ident,
        generics: _,
        data,
    } = input;
    let parsed = attr::parse(cx, attrs, "event", super::KEYS);
    attr::misplaced_on_fields(cx, data);
    Input {
        original: input,
        ident,
        name: parsed.str("name").cloned(),
        version: parsed.int("version").map(|(_, lit)| lit.clone()),
    }
}
