//! `#[derive(Query)]` input into its IR.

use proc_macro2::Span;
use syn::{DeriveInput, Ident, LitStr, Type};

use crate::attr;
use crate::diag::Ctxt;

/// A query as written, keeping the syn nodes for spans.
pub(crate) struct Input<'a> {
    /// The whole input.
    pub(crate) original: &'a DeriveInput,
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// Whether `#[query(..)]` is present at all.
    pub(crate) has_attribute: bool,
    /// Where "missing key" errors point.
    pub(crate) missing_span: Span,
    /// The keys given, or attempted with a mistake already reported: a
    /// required key among them is not reported missing.
    pub(crate) mentioned: Vec<&'static str>,
    /// `projection = P`.
    pub(crate) projection: Option<Type>,
    /// `output = T`.
    pub(crate) output: Option<Type>,
    /// `name = ".."`.
    pub(crate) name: Option<LitStr>,
    /// Whether the attribute could not be read whole.
    pub(crate) incomplete: bool,
    /// The `allow_unknown_fields` flag, as written.
    pub(crate) allow_unknown_fields: Option<Ident>,
}

/// Reads the `#[query(..)]` attributes of `input`.
pub(crate) fn from_syn<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Input<'a> {
    let DeriveInput {
        attrs,
        vis: _,
        ident,
        generics: _,
        data,
    } = input;
    let parsed = attr::parse(cx, attrs, "query", super::KEYS);
    attr::misplaced_on_fields(cx, data);
    Input {
        original: input,
        ident,
        has_attribute: parsed.path.is_some(),
        missing_span: parsed.missing_span(ident),
        mentioned: parsed.mentioned(),
        projection: parsed.ty("projection").cloned(),
        output: parsed.ty("output").cloned(),
        name: parsed.str("name").cloned(),
        incomplete: parsed.incomplete,
        allow_unknown_fields: parsed.flag("allow_unknown_fields").cloned(),
    }
}
