//! The rules an aggregate must follow.

use std::collections::BTreeMap;

use quote::format_ident;
use syn::{Ident, LitInt, Path, Type, Visibility};

use super::parse::{Input, List, path_key, variant_of};
use crate::check::{self, Structs};
use crate::diag::Ctxt;

/// A checked aggregate, ready to expand.
pub(crate) struct Aggregate<'a> {
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// Its visibility.
    pub(crate) vis: &'a Visibility,
    /// The generated event enum's ident, `<Ident>Event`.
    pub(crate) event_enum: Ident,
    /// The stream type name.
    pub(crate) name: String,
    /// The events, in declaration order.
    pub(crate) events: Vec<EventRef<'a>>,
    /// The commands, in declaration order.
    pub(crate) commands: Vec<&'a Path>,
    /// The domain error type.
    pub(crate) error: &'a Type,
    /// The services type, `None` for `()`.
    pub(crate) services: Option<&'a Type>,
    /// `snapshot_every`, if set.
    pub(crate) snapshot: Option<Snapshot<'a>>,
}

/// One event of `events(..)`.
pub(crate) struct EventRef<'a> {
    /// The path as written.
    pub(crate) path: &'a Path,
    /// The enum variant: the path's last segment.
    pub(crate) variant: &'a Ident,
}

/// The snapshot policy, with the tokens that asked for it.
pub(crate) struct Snapshot<'a> {
    /// Every this many events.
    pub(crate) every: u64,
    /// `snapshot_every`, as written.
    pub(crate) key: &'a Ident,
    /// The shape of the state (see `crate::shape`): a snapshot taken by
    /// another shape is not decoded.
    pub(crate) state_shape: String,
}

/// Checks every rule, reporting each broken one to `cx`.
pub(crate) fn validate<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<Aggregate<'a>> {
    aggregate_is_a_struct(cx, input);
    aggregate_is_not_generic(cx, input);
    let present = attribute_is_present(cx, input);
    if present {
        required_keys_are_given(cx, input);
    }
    let events = input
        .events
        .as_ref()
        .filter(|events| events_are_listed(cx, input, events));
    let events = events.map(|events| events_are_distinct(cx, events));
    let commands = input
        .commands
        .as_ref()
        .filter(|commands| commands_are_listed(cx, input, commands))
        .map(|c| commands_are_distinct(cx, c));
    let name = check::name_or_ident(cx, input.name.as_ref(), input.ident);
    let snapshot = match &input.snapshot_every {
        Some((key, lit)) => Some(Some(Snapshot {
            every: snapshot_every_is_positive(cx, lit)?,
            key,
            state_shape: crate::shape::of(input.original),
        })),
        None => Some(None),
    };
    Some(Aggregate {
        ident: input.ident,
        vis: input.vis,
        event_enum: format_ident!("{}Event", input.ident, span = input.ident.span()),
        name: name?,
        events: events??,
        commands: commands.unwrap_or_default(),
        error: input.error.as_ref()?,
        services: input.services.as_ref(),
        snapshot: snapshot?,
    })
}

// The aggregate is state: a struct with named fields, or a unit struct.
fn aggregate_is_a_struct(cx: &Ctxt, input: &Input<'_>) {
    check::struct_shape(cx, input.original, "Aggregate", Structs::NamedOrUnit);
}

// One stream type is one concrete type: no generics.
fn aggregate_is_not_generic(cx: &Ctxt, input: &Input<'_>) {
    check::no_generics(cx, &input.original.generics, "Aggregate");
}

// `#[aggregate(..)]` is required: it lists the events and the error; reported
// on the type's name when absent.
fn attribute_is_present(cx: &Ctxt, input: &Input<'_>) -> bool {
    if !input.has_attribute {
        cx.error_at(
            input.ident.span(),
            "missing `#[aggregate(events(..), error = <type>)]` on this aggregate",
        );
    }
    input.has_attribute
}

// `events(..)` and `error = T` are required; every missing one is named in
// one error.
fn required_keys_are_given(cx: &Ctxt, input: &Input<'_>) {
    check::required_keys(
        cx,
        "aggregate",
        input.missing_span,
        &input.mentioned,
        input.incomplete,
        &[
            (
                "events",
                "events(..)",
                "list the events this aggregate records",
            ),
            (
                "error",
                "error = <type>",
                "the error type its handlers return",
            ),
        ],
    );
}

// `events(..)` lists at least one event.
fn events_are_listed(cx: &Ctxt, input: &Input<'_>, events: &List) -> bool {
    if events.items.is_empty() {
        if !input.attempted.contains(&"events") {
            cx.error_spanned_by(&events.key, "`events(..)` must list at least one event");
        }
        return false;
    }
    true
}

// `commands(..)`, when given, lists at least one command, as `events(..)`
// does: an aggregate without commands leaves the key out.
fn commands_are_listed(cx: &Ctxt, input: &Input<'_>, commands: &List) -> bool {
    if commands.items.is_empty() && !input.attempted.contains(&"commands") {
        cx.error_spanned_by(
            &commands.key,
            "`commands(..)` must list at least one command; leave it out for an aggregate without commands",
        );
    }
    true
}

// Each event is listed once, and no two events end in the same name (each
// becomes a variant of the event enum); the second one is reported.
fn events_are_distinct<'a>(cx: &Ctxt, events: &'a List) -> Option<Vec<EventRef<'a>>> {
    let mut seen_paths = BTreeMap::new();
    let mut seen_variants: BTreeMap<String, &Path> = BTreeMap::new();
    let mut refs = Vec::new();
    let mut ok = true;
    for path in &events.items {
        let Some(variant) = variant_of(path) else {
            continue;
        };
        let key = path_key(path);
        if seen_paths.insert(key.clone(), path).is_some() {
            cx.error_spanned_by(path, format!("`{key}` is listed twice in `events(..)`"));
            ok = false;
            continue;
        }
        if let Some(first) = seen_variants.insert(variant.to_string(), path) {
            cx.error_spanned_by(
                path,
                format!(
                    "`{key}` and `{}` would both be the variant `{variant}` of the event enum; events of one aggregate need distinct type names",
                    path_key(first)
                ),
            );
            ok = false;
            continue;
        }
        refs.push(EventRef { path, variant });
    }
    ok.then_some(refs)
}

// Each command is listed once; the second one is reported.
fn commands_are_distinct<'a>(cx: &Ctxt, commands: &'a List) -> Vec<&'a Path> {
    let mut seen = BTreeMap::new();
    let mut distinct = Vec::new();
    for path in &commands.items {
        let key = path_key(path);
        if seen.insert(key.clone(), path).is_some() {
            cx.error_spanned_by(path, format!("`{key}` is listed twice in `commands(..)`"));
        } else {
            distinct.push(path);
        }
    }
    distinct
}

// `snapshot_every = N` is an integer >= 1.
fn snapshot_every_is_positive(cx: &Ctxt, lit: &LitInt) -> Option<u64> {
    check::positive(cx, lit, "snapshot_every = <integer >= 1>")
}
