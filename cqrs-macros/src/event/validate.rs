//! The rules an event type must follow.

use syn::Ident;

use super::parse::Input;
use crate::check::{self, Structs};
use crate::diag::Ctxt;

/// A checked event, ready to expand.
pub(crate) struct Event<'a> {
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// The stored name.
    pub(crate) name: String,
    /// The schema version.
    pub(crate) version: u32,
}

/// Checks every rule, reporting each broken one to `cx`.
pub(crate) fn validate<'a>(cx: &Ctxt, input: &Input<'a>) -> Option<Event<'a>> {
    event_is_a_struct(cx, input);
    event_is_not_generic(cx, input);
    let name = check::name_or_ident(cx, input.name.as_ref(), input.ident);
    let version = version(cx, input);
    Some(Event {
        ident: input.ident,
        name: name?,
        version: version?,
    })
}

// An event is data: a struct of any kind (named, tuple or unit).
fn event_is_a_struct(cx: &Ctxt, input: &Input<'_>) {
    check::struct_shape(cx, input.original, "Event", Structs::Any);
}

// An event has one concrete type per stored name: no generics.
fn event_is_not_generic(cx: &Ctxt, input: &Input<'_>) {
    check::no_generics(cx, &input.original.generics, "Event");
}

// `version = N` is an integer >= 1 that fits a u32; absent means 1.
fn version(cx: &Ctxt, input: &Input<'_>) -> Option<u32> {
    match &input.version {
        Some(lit) => check::positive(cx, lit, "version = <integer >= 1>"),
        None => Some(1),
    }
}
