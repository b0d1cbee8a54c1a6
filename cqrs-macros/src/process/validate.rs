//! The rules a process manager must follow.

use std::collections::BTreeSet;

use syn::{Ident, Path};

use super::parse::Input;
use crate::check::{self, Structs};
use crate::diag::{Ctxt, tokens_to_string};

/// A checked process manager, ready to expand.
pub(crate) struct Process<'a> {
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// The manager's name.
    pub(crate) name: String,
    /// The events it reacts to, in declaration order.
    pub(crate) events: Vec<&'a Path>,
    /// The commands it may send, in declaration order.
    pub(crate) commands: Vec<&'a Path>,
}

/// Checks every rule, reporting each broken one to `cx`.
pub(crate) fn validate<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<Process<'a>> {
    check::struct_shape(cx, input.original, "ProcessManager", Structs::Any);
    check::no_generics(cx, &input.original.generics, "ProcessManager");
    let present = attribute_is_present(cx, input);
    let events = present
        .then(|| events_are_listed(cx, input))
        .flatten()
        .and_then(|events| distinct(cx, events, "events"));
    let commands = match &input.commands {
        Some((_, commands)) => distinct(cx, commands, "commands"),
        None => Some(Vec::new()),
    };
    let name = check::name_or_ident(cx, input.name.as_ref(), input.ident);
    Some(Process {
        ident: input.ident,
        name: name?,
        events: events?,
        commands: commands?,
    })
}

// `#[process(..)]` is required: it lists the events; reported on the type's
// name when absent.
fn attribute_is_present(cx: &Ctxt, input: &Input<'_>) -> bool {
    if !input.has_attribute {
        cx.error_at(
            input.ident.span(),
            "missing `#[process(events(..), commands(..))]` on this process manager",
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
            "missing `events(..)` in `#[process(..)]`: list the events this process manager reacts to",
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

// Each type is listed once; the second one is reported.
fn distinct<'a>(cx: &Ctxt, items: &'a [Path], key: &str) -> Option<Vec<&'a Path>> {
    let mut seen = BTreeSet::new();
    let mut ok = true;
    for path in items {
        let shown = tokens_to_string(path);
        if !seen.insert(shown.clone()) {
            cx.error_spanned_by(path, format!("`{shown}` is listed twice in `{key}(..)`"));
            ok = false;
        }
    }
    ok.then(|| items.iter().collect())
}
