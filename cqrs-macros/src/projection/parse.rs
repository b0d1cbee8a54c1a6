//! `#[derive(Projection)]` input into its IR.

use proc_macro2::Span;
use syn::{DeriveInput, Ident, LitStr, Path};

use crate::attr;
use crate::diag::Ctxt;

/// A projection as written, keeping the syn nodes for spans.
pub(crate) struct Input<'a> {
    /// The whole input.
    pub(crate) original: &'a DeriveInput,
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// Whether `#[projection(..)]` is present at all.
    pub(crate) has_attribute: bool,
    /// Where "missing key" errors point.
    pub(crate) missing_span: Span,
    /// The keys given, or attempted with a mistake already reported: a
    /// required key among them is not reported missing.
    pub(crate) mentioned: Vec<&'static str>,
    /// `name = ".."`.
    pub(crate) name: Option<LitStr>,
    /// `events(..)`, with the key token.
    pub(crate) events: Option<(Ident, Vec<Path>)>,
}

/// Reads the `#[projection(..)]` attributes of `input`.
pub(crate) fn from_syn<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Input<'a> {
    let DeriveInput {
        attrs,
        vis: _,
        ident,
        generics: _,
        data: _,
    } = input;
    let parsed = attr::parse(cx, attrs, "projection", super::KEYS);
    Input {
        original: input,
        ident,
        has_attribute: parsed.path.is_some(),
        missing_span: parsed.missing_span(ident),
        mentioned: parsed.mentioned(),
        name: parsed.str("name").cloned(),
        events: parsed
            .list("events")
            .map(|(key, items)| (key.clone(), items.to_vec())),
    }
}
