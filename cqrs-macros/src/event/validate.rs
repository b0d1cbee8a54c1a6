//! The rules an event type must follow.

use std::collections::BTreeMap;

use syn::{Ident, LitInt, LitStr, Path, Type};

use super::parse::{Input, UpcastInput};
use crate::check::{self, Structs};
use crate::diag::{Ctxt, tokens_to_string};

/// A checked event, ready to expand.
pub(crate) struct Event<'a> {
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// The stored name.
    pub(crate) name: String,
    /// The schema version.
    pub(crate) version: u32,
    /// The names it was stored under before.
    pub(crate) aliases: Vec<String>,
    /// Its upcasters, by the version they read, ascending.
    pub(crate) upcasts: Vec<Upcaster<'a>>,
    /// The shape of its JSON (see `crate::shape`).
    pub(crate) shape: String,
}

/// One checked upcaster.
pub(crate) struct Upcaster<'a> {
    /// The version it reads.
    pub(crate) from: u32,
    /// How.
    pub(crate) step: Step<'a>,
}

/// How an upcaster makes the next version.
pub(crate) enum Step<'a> {
    /// `with = f`: a function on JSON.
    Json(&'a Path),
    /// `shape = S`: the version decodes as `S`, which upcasts typed.
    Typed(&'a Type),
}

/// Checks every rule, reporting each broken one to `cx`.
pub(crate) fn validate<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<Event<'a>> {
    event_is_a_struct(cx, input);
    event_is_not_generic(cx, input);
    let name = check::name_or_ident(cx, input.name.as_ref(), input.ident);
    let version = version(cx, input);
    let aliases = name
        .as_deref()
        .and_then(|name| aliases_are_older_names(cx, input, name));
    let upcasts = upcasts_are_well_formed(cx, input);
    let upcasts = match (version, upcasts) {
        (Some(version), Some(upcasts)) => upcasts_read_older_versions(cx, &upcasts, version)
            .then(|| upcasts_read_one_version_each(cx, upcasts))
            .flatten()
            .filter(|upcasts| typed_upcasts_end_typed(cx, upcasts, version))
            .filter(|upcasts| no_version_is_skipped(cx, input, upcasts, version))
            .map(|upcasts| upcasts.into_iter().map(|(u, _)| u).collect()),
        _ => None,
    };
    Some(Event {
        ident: input.ident,
        name: name?,
        version: version?,
        aliases: aliases?,
        upcasts: upcasts?,
        shape: crate::shape::of(input.original),
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

// Each alias is a valid name, other than the event's own, listed once.
fn aliases_are_older_names(cx: &Ctxt, input: &Input<'_>, name: &str) -> Option<Vec<String>> {
    let mut aliases: Vec<String> = Vec::new();
    let mut ok = true;
    for lit in &input.aliases {
        let Some(alias) = check::name_as(cx, lit, "an alias") else {
            ok = false;
            continue;
        };
        if alias == name {
            cx.error_spanned_by(
                lit,
                format!("`{alias}` is the event's own name: `aliases(..)` lists the names it was stored under before"),
            );
            ok = false;
        } else if aliases.contains(&alias) {
            cx.error_spanned_by(lit, format!("`{alias}` is listed twice in `aliases(..)`"));
            ok = false;
        } else {
            aliases.push(alias);
        }
    }
    ok.then_some(aliases)
}

/// An upcaster whose own keys are well formed.
struct Formed<'a> {
    from: u32,
    from_lit: &'a LitInt,
    step: Step<'a>,
}

// Each `upcast(..)` has `from = N` (N >= 1) and one of `with = f` (a path
// to a function) and `shape = S` (a plain type); a mistake inside it that
// was already reported is not reported again.
fn upcasts_are_well_formed<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<Vec<Formed<'a>>> {
    let mut ok = !input.chain_attempted;
    let mut formed = Vec::new();
    for upcast in &input.upcasts {
        if upcast.recovered {
            ok = false;
            continue;
        }
        match upcast_is_well_formed(cx, upcast) {
            Some(one) => formed.push(one),
            None => ok = false,
        }
    }
    ok.then_some(formed)
}

fn upcast_is_well_formed<'a>(cx: &Ctxt, upcast: &'a UpcastInput) -> Option<Formed<'a>> {
    let UpcastInput {
        key,
        from,
        with,
        shape,
        second_step,
        recovered: _,
    } = upcast;
    let step = match (with, shape) {
        (Some((_, with)), None) => Some(Step::Json(function_path(cx, with)?)),
        (None, Some((_, shape))) => {
            check::plain_type(cx, "shape", shape, "the type of an older version").then_some(())?;
            Some(Step::Typed(shape))
        }
        (Some((first, _)), Some(_)) => {
            // Reported on the one written second.
            cx.error_spanned_by(
                second_step.as_ref().unwrap_or(first),
                "`upcast(..)` takes `with = <function>` (on JSON) or `shape = <type>` (typed), not both",
            );
            return None;
        }
        (None, None) => None,
    };
    match (from, step) {
        (Some(lit), Some(step)) => {
            let from = check::positive(cx, lit, "from = <version >= 1>")?;
            Some(Formed {
                from,
                from_lit: lit,
                step,
            })
        }
        (None, Some(_)) => {
            cx.error_spanned_by(
                key,
                "missing `from = <version>` in `upcast(..)`: the version this upcaster reads",
            );
            None
        }
        (Some(_), None) => {
            cx.error_spanned_by(
                key,
                "missing `with = <function>` or `shape = <type>` in `upcast(..)`: how it makes the next version",
            );
            None
        }
        (None, None) => {
            cx.error_spanned_by(
                key,
                "missing `from = <version>` and `with = <function>` (or `shape = <type>`) in `upcast(..)`",
            );
            None
        }
    }
}

/// `with = f` names a function by its path.
fn function_path<'a>(cx: &Ctxt, ty: &'a Type) -> Option<&'a Path> {
    match ty {
        Type::Path(p) if p.qself.is_none() => Some(&p.path),
        Type::Group(g) => function_path(cx, &g.elem),
        _ => {
            cx.error_spanned_by(
                ty,
                format!(
                    "expected `with = <function>`, the path to a function, not `{}`",
                    tokens_to_string(ty)
                ),
            );
            None
        }
    }
}

// An upcaster reads a version older than the event's own.
fn upcasts_read_older_versions(cx: &Ctxt, upcasts: &[Formed<'_>], version: u32) -> bool {
    let mut ok = true;
    for upcast in upcasts.iter().filter(|u| u.from >= version) {
        cx.error_spanned_by(
            upcast.from_lit,
            format!(
                "`from = {}` is not older than the event's version {version}: an upcaster reads an older version (bump `version` first)",
                upcast.from
            ),
        );
        ok = false;
    }
    ok
}

// One upcaster per version; the second is reported.
fn upcasts_read_one_version_each<'a>(
    cx: &Ctxt,
    upcasts: Vec<Formed<'a>>,
) -> Option<Vec<(Upcaster<'a>, &'a LitInt)>> {
    let mut by_version: BTreeMap<u32, (Upcaster<'a>, &'a LitInt)> = BTreeMap::new();
    let mut ok = true;
    for Formed {
        from,
        from_lit,
        step,
    } in upcasts
    {
        match by_version.entry(from) {
            std::collections::btree_map::Entry::Occupied(_) => {
                cx.error_spanned_by(
                    from_lit,
                    format!("a second upcaster from version {from}: give each version one"),
                );
                ok = false;
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert((Upcaster { from, step }, from_lit));
            }
        }
    }
    ok.then(|| by_version.into_values().collect())
}

// A typed upcaster makes the shape of the next version: the event itself,
// or the shape of the next upcaster, which must then be typed too.
fn typed_upcasts_end_typed(cx: &Ctxt, upcasts: &[(Upcaster<'_>, &LitInt)], version: u32) -> bool {
    let mut ok = true;
    for (upcaster, _) in upcasts {
        let Step::Typed(shape) = upcaster.step else {
            continue;
        };
        let next = upcaster.from + 1;
        if next == version {
            continue;
        }
        let next_is_json = upcasts
            .iter()
            .any(|(u, _)| u.from == next && matches!(u.step, Step::Json(_)));
        if next_is_json {
            cx.error_spanned_by(
                shape,
                format!(
                    "`shape = {}` upcasts into the shape of version {next}, but the upcaster from version {next} works on JSON: give it `shape = ..` too, or make this one `with = <function>`",
                    tokens_to_string(shape)
                ),
            );
            ok = false;
        }
    }
    ok
}

// Every version from the oldest upcaster's up to the current one has its
// upcaster: a stored event of a skipped version could not be read. The
// error is on the `from` of the next upcaster above the gap, or on
// `version` when the gap is just below it.
fn no_version_is_skipped(
    cx: &Ctxt,
    input: &Input<'_>,
    upcasts: &[(Upcaster<'_>, &LitInt)],
    version: u32,
) -> bool {
    let Some((oldest, _)) = upcasts.first() else {
        return true;
    };
    let Some(missing) = (oldest.from..version).find(|v| !upcasts.iter().any(|(u, _)| u.from == *v))
    else {
        return true;
    };
    let message = format!(
        "no upcaster from version {missing}: events stored at version {missing} could not be read; add `upcast(from = {missing}, ..)`"
    );
    match upcasts.iter().find(|(u, _)| u.from > missing) {
        Some((_, lit)) => cx.error_spanned_by(lit, message),
        None => match &input.version {
            Some(lit) => cx.error_spanned_by(lit, message),
            None => cx.error_spanned_by(input.ident, message),
        },
    }
    false
}

/// The aliases as literals, for the expansion.
pub(crate) fn alias_literals(aliases: &[String]) -> Vec<LitStr> {
    aliases
        .iter()
        .map(|a| LitStr::new(a, proc_macro2::Span::call_site()))
        .collect()
}
