//! `#[derive(Projection)]` input into its IR.

use proc_macro2::Span;
use syn::{Attribute, Data, DeriveInput, Field, Fields, Ident, LitStr, Path, Type};

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
    /// `tables = ..`, the database kind as written.
    pub(crate) tables: Option<Type>,
    /// `unknown_events = ..`, the policy as written.
    pub(crate) unknown_events: Option<Type>,
    /// Every field, with its `#[document]` attribute if it has one.
    pub(crate) fields: Vec<StateField<'a>>,
    /// `#[document]` on the struct itself, not on a field.
    pub(crate) misplaced_documents: Vec<&'a Attribute>,
    /// The keys given with a mistake already reported.
    pub(crate) attempted: Vec<&'static str>,
    /// Whether the attribute could not be read whole.
    pub(crate) incomplete: bool,
}

/// One field of the projection's state.
pub(crate) struct StateField<'a> {
    /// The whole field, for spans.
    pub(crate) original: &'a Field,
    /// Its name; `None` in a tuple struct.
    pub(crate) ident: Option<&'a Ident>,
    /// Its type.
    pub(crate) ty: &'a Type,
    /// `#[document]` on it, if present.
    pub(crate) document: Option<&'a Attribute>,
}

/// Reads the `#[projection(..)]` attributes of `input`.
pub(crate) fn from_syn<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Input<'a> {
    let DeriveInput {
        attrs,
        vis: _,
        ident,
        generics: _,
        data,
    } = input;
    let fields = match data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named.named.iter().map(state_field).collect(),
            Fields::Unnamed(unnamed) => unnamed.unnamed.iter().map(state_field).collect(),
            Fields::Unit => Vec::new(),
        },
        Data::Enum(_) | Data::Union(_) => Vec::new(),
    };
    let parsed = attr::parse(cx, attrs, "projection", super::KEYS);
    attr::misplaced_on_fields(cx, data);
    let tables = parsed.ty("tables").cloned();
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
        tables,
        unknown_events: parsed.ty("unknown_events").cloned(),
        fields,
        misplaced_documents: attrs
            .iter()
            .filter(|a| a.path().is_ident("document"))
            .collect(),
        attempted: parsed.attempted.clone(),
        incomplete: parsed.incomplete,
    }
}

fn state_field(field: &Field) -> StateField<'_> {
    let Field {
        attrs,
        vis: _,
        mutability: _,
        ident,
        colon_token: _,
        ty,
    } = field;
    StateField {
        original: field,
        ident: ident.as_ref(),
        ty,
        document: attrs.iter().find(|attr| attr.path().is_ident("document")),
    }
}
