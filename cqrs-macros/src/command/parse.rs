//! `#[derive(Command)]` input into its IR.

use proc_macro2::Span;
use syn::{Attribute, Data, DeriveInput, Field, Ident, LitStr, Member, Type};

use crate::attr;
use crate::diag::Ctxt;

/// A command as written, keeping the syn nodes for spans.
pub(crate) struct Input<'a> {
    /// The whole input.
    pub(crate) original: &'a DeriveInput,
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// Where "missing key" errors point.
    pub(crate) missing_span: Span,
    /// The keys given, or attempted with a mistake already reported: a
    /// required key among them is not reported missing.
    pub(crate) mentioned: Vec<&'static str>,
    /// `aggregate = X`.
    pub(crate) aggregate: Option<Type>,
    /// `name = ".."`.
    pub(crate) name: Option<LitStr>,
    /// The `async` flag, as written.
    pub(crate) is_async: Option<Ident>,
    /// The `allow_unknown_fields` flag, as written.
    pub(crate) allow_unknown_fields: Option<Ident>,
    /// Every field marked `#[id]`, in order.
    pub(crate) ids: Vec<IdField<'a>>,
    /// `#[id]` on the struct itself, not on a field.
    pub(crate) misplaced_ids: Vec<&'a Attribute>,
    /// Whether the attribute could not be read whole.
    pub(crate) incomplete: bool,
}

/// A field marked `#[id]`.
pub(crate) struct IdField<'a> {
    /// How to reach it: `self.<member>`.
    pub(crate) member: Member,
    /// Its type.
    pub(crate) ty: &'a Type,
    /// The `#[id]` attribute, for its errors.
    pub(crate) attr: &'a Attribute,
}

/// Reads `#[command(..)]` and the `#[id]` fields of `input`.
pub(crate) fn from_syn<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Input<'a> {
    let DeriveInput {
        attrs,
        vis: _,
        ident,
        generics: _,
        data,
    } = input;
    let parsed = attr::parse(cx, attrs, "command", super::KEYS);
    attr::misplaced_on_fields(cx, data);
    let misplaced_ids = attrs.iter().filter(|a| a.path().is_ident("id")).collect();
    let ids = match data {
        Data::Struct(data) => data.fields.iter().enumerate().flat_map(id_fields).collect(),
        Data::Enum(_) | Data::Union(_) => Vec::new(),
    };
    Input {
        original: input,
        ident,
        missing_span: parsed.missing_span(ident),
        mentioned: parsed.mentioned(),
        aggregate: parsed.ty("aggregate").cloned(),
        name: parsed.str("name").cloned(),
        is_async: parsed.flag("async").cloned(),
        allow_unknown_fields: parsed.flag("allow_unknown_fields").cloned(),
        ids,
        misplaced_ids,
        incomplete: parsed.incomplete,
    }
}

fn id_fields((index, field): (usize, &Field)) -> Vec<IdField<'_>> {
    let Field {
        attrs,
        vis: _,
        mutability: _,
        ident,
        colon_token: _,
        ty,
    } = field;
    let member = match ident {
        Some(ident) => Member::Named(ident.clone()),
        None => Member::Unnamed(syn::Index {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            span: Span::call_site(),
        }),
    };
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("id"))
        .map(|attr| IdField {
            member: member.clone(),
            ty,
            attr,
        })
        .collect()
}
