//! The rules a projection must follow.

use std::collections::BTreeSet;

use syn::{Ident, Path};

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
    Some(Projection {
        ident: input.ident,
        name: name?,
        events: events?,
    })
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
        if input.mentioned.contains(&"events") {
            return None;
        }
        cx.error_at(
            input.missing_span,
            "missing `events(..)` in `#[projection(..)]`: list the events this projection consumes",
        );
        return None;
    };
    if events.is_empty() {
        cx.error_spanned_by(key, "`events(..)` must list at least one event");
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
