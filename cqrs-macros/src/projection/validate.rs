//! The rules a projection must follow.

use std::collections::BTreeSet;

use syn::{Ident, Meta, Path, Type};

use super::parse::Input;
use crate::check::{self, Structs};
use crate::diag::{Ctxt, tokens_to_string};

/// A checked projection, ready to expand.
pub(crate) struct Projection<'a> {
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// The projection name.
    pub(crate) name: String,
    /// The consumed events, in declaration order.
    pub(crate) events: Vec<&'a Path>,
    /// The `#[document]` fields: name and type.
    pub(crate) documents: Vec<(&'a Ident, &'a Type)>,
    /// `tables = ..`: the database its own tables are in, and the token.
    pub(crate) tables: Option<(Tables, &'a Type)>,
    /// `unknown_events = skip`: it skips events this build does not know.
    pub(crate) skip_unknown: bool,
}

/// The databases a projection may keep SQL tables of its own in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tables {
    Sqlite,
    Postgres,
}

/// Checks every rule, reporting each broken one to `cx`.
pub(crate) fn validate<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<Projection<'a>> {
    projection_is_a_struct(cx, input);
    projection_is_not_generic(cx, input);
    let events = attribute_is_present(cx, input)
        .then(|| events_are_listed(cx, input))
        .flatten()
        .and_then(|events| events_are_distinct(cx, events));
    let name = check::name_or_ident(cx, input.name.as_ref(), input.ident);
    let documents =
        documents_are_well_formed(cx, input).filter(|_| documents_are_on_fields(cx, input));
    let documents =
        documents.filter(|documents| durable_state_is_all_documents(cx, input, documents));
    let tables = tables_are_a_known_database(cx, input);
    let skip_unknown = unknown_events_is_a_policy(cx, input);
    let documents = documents.filter(|documents| tables_have_no_documents(cx, input, documents));
    Some(Projection {
        ident: input.ident,
        name: name?,
        events: events?,
        documents: documents?,
        tables: tables?,
        skip_unknown: skip_unknown?,
    })
}

// `unknown_events = ..` names `skip` or `fail`; absent means `fail`.
fn unknown_events_is_a_policy(cx: &Ctxt, input: &Input<'_>) -> Option<bool> {
    let Some(ty) = &input.unknown_events else {
        return Some(false);
    };
    match ty {
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("skip") => Some(true),
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("fail") => Some(false),
        _ => {
            cx.error_spanned_by(
                ty,
                format!(
                    "expected `unknown_events = skip` (skip, count and warn) or `unknown_events = fail` (stop, the default), not `{}`",
                    tokens_to_string(ty)
                ),
            );
            None
        }
    }
}

// `#[document]` marks a field; on the struct itself it is reported there.
fn documents_are_on_fields(cx: &Ctxt, input: &Input<'_>) -> bool {
    for attr in &input.misplaced_documents {
        cx.error_spanned_by(
            attr,
            "`#[document]` goes on a field of type `Documents<D>`, not on the struct",
        );
    }
    input.misplaced_documents.is_empty()
}

// `#[document]` is a bare marker on a named field.
fn documents_are_well_formed<'a>(
    cx: &Ctxt,
    input: &'a Input<'a>,
) -> Option<Vec<(&'a Ident, &'a Type)>> {
    let mut ok = true;
    let mut documents = Vec::new();
    for field in &input.fields {
        let Some(attr) = field.document else { continue };
        let message = "`#[document]` takes no arguments: the collection is named after its field";
        match &attr.meta {
            Meta::Path(_) => {}
            Meta::List(list) => {
                cx.error_at(list.delimiter.span().join(), message);
                ok = false;
            }
            Meta::NameValue(nv) => {
                let (eq, value) = (&nv.eq_token, &nv.value);
                cx.error_spanned_by(quote::quote!(#eq #value), message);
                ok = false;
            }
        }
        match field.ident {
            Some(ident) => documents.push((ident, field.ty)),
            None => {
                cx.error_spanned_by(attr, "`#[document]` needs a named field: the collection is stored under the field's name");
                ok = false;
            }
        }
    }
    ok.then_some(documents)
}

// A projection with `#[document]` fields resumes from its saved documents, so
// every other field would silently start empty after a restart.
fn durable_state_is_all_documents(
    cx: &Ctxt,
    input: &Input<'_>,
    documents: &[(&Ident, &Type)],
) -> bool {
    if documents.is_empty() {
        return true;
    }
    let mut ok = true;
    for field in input.fields.iter().filter(|f| f.document.is_none()) {
        let name = field
            .ident
            .map_or_else(|| String::from("this field"), |i| format!("`{i}`"));
        cx.error_spanned_by(
            field.original,
            format!(
                "{name} is not a `#[document]` field: a projection with `#[document]` fields resumes from the \
                 saved documents after a restart, so {name} would start empty; make it `#[document]` too"
            ),
        );
        ok = false;
    }
    ok
}

// `tables = ..` names `sqlite` or `postgres`.
fn tables_are_a_known_database<'a>(
    cx: &Ctxt,
    input: &'a Input<'a>,
) -> Option<Option<(Tables, &'a Type)>> {
    let Some(ty) = &input.tables else {
        return Some(None);
    };
    let known = match ty {
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("sqlite") => Some(Tables::Sqlite),
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("postgres") => Some(Tables::Postgres),
        _ => None,
    };
    match known {
        Some(kind) => Some(Some((kind, ty))),
        None => {
            cx.error_spanned_by(
                ty,
                format!(
                    "expected `tables = sqlite` or `tables = postgres`, the database the projection's own tables are in, not `{}`",
                    tokens_to_string(ty)
                ),
            );
            None
        }
    }
}

// A projection kept in its own tables has its state there, not in
// `#[document]` fields; reported on the first document field.
fn tables_have_no_documents(cx: &Ctxt, input: &Input<'_>, documents: &[(&Ident, &Type)]) -> bool {
    match (&input.tables, documents.first()) {
        (Some(_), Some((field, _))) => {
            cx.error_spanned_by(
                field,
                "a projection with `tables = ..` keeps its read model in its own SQL tables: it has no `#[document]` fields",
            );
            false
        }
        _ => true,
    }
}

// A projection is a read model: a struct of any kind.
fn projection_is_a_struct(cx: &Ctxt, input: &Input<'_>) {
    check::struct_shape(cx, input.original, "Projection", Structs::Any);
}

// One projection name is one concrete type: no generics.
fn projection_is_not_generic(cx: &Ctxt, input: &Input<'_>) {
    check::no_generics(cx, &input.original.generics, "Projection");
}

// `#[projection(..)]` is required: it lists the consumed events; reported on
// the type's name when absent.
fn attribute_is_present(cx: &Ctxt, input: &Input<'_>) -> bool {
    if !input.has_attribute {
        cx.error_at(
            input.ident.span(),
            "missing `#[projection(events(..))]` on this projection",
        );
    }
    input.has_attribute
}

// `events(..)` is required and lists at least one event.
fn events_are_listed<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<&'a [Path]> {
    let Some((key, events)) = &input.events else {
        if input.mentioned.contains(&"events") || input.incomplete {
            return None;
        }
        cx.error_at(
            input.missing_span,
            "missing `events(..)` in `#[projection(..)]`: list the events this projection consumes",
        );
        return None;
    };
    if events.is_empty() {
        if !input.attempted.contains(&"events") {
            cx.error_spanned_by(key, "`events(..)` must list at least one event");
        }
        return None;
    }
    Some(events)
}

// Each event is listed once; the second one is reported.
fn events_are_distinct<'a>(cx: &Ctxt, events: &'a [Path]) -> Option<Vec<&'a Path>> {
    let mut seen = BTreeSet::new();
    let mut ok = true;
    for path in events {
        let key = tokens_to_string(path);
        if !seen.insert(key.clone()) {
            cx.error_spanned_by(path, format!("`{key}` is listed twice in `events(..)`"));
            ok = false;
        }
    }
    ok.then(|| events.iter().collect())
}
