//! `#[derive(Aggregate)]` input into its IR.

use proc_macro2::Span;
use syn::{DeriveInput, Ident, LitInt, LitStr, Path, Type, Visibility};

use crate::attr;
use crate::diag::{self, Ctxt};

/// A list key such as `events(A, B)`, with the key token for its errors.
pub(crate) struct List {
    /// `events` / `commands` as written.
    pub(crate) key: Ident,
    /// The listed types (the valid items, when some were reported).
    pub(crate) items: Vec<Path>,
}

/// An aggregate as written, keeping the syn nodes for spans.
pub(crate) struct Input<'a> {
    /// The whole input.
    pub(crate) original: &'a DeriveInput,
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// The type's visibility, given to the generated event enum.
    pub(crate) vis: &'a Visibility,
    /// Whether `#[aggregate(..)]` is present at all.
    pub(crate) has_attribute: bool,
    /// Whether the attribute could not be read whole (no key is then
    /// reported missing).
    pub(crate) incomplete: bool,
    /// Where "missing key" errors point.
    pub(crate) missing_span: Span,
    /// The keys given, or attempted with a mistake already reported: a
    /// required key among them is not reported missing.
    pub(crate) mentioned: Vec<&'static str>,
    /// The keys given with a mistake already reported.
    pub(crate) attempted: Vec<&'static str>,
    /// `name = ".."`.
    pub(crate) name: Option<LitStr>,
    /// `events(..)`.
    pub(crate) events: Option<List>,
    /// `commands(..)`.
    pub(crate) commands: Option<List>,
    /// `error = T`.
    pub(crate) error: Option<Type>,
    /// `services = T`.
    pub(crate) services: Option<Type>,
    /// `snapshot_every = N`, with the key token.
    pub(crate) snapshot_every: Option<(Ident, LitInt)>,
}

/// Reads the `#[aggregate(..)]` attributes of `input`.
pub(crate) fn from_syn<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Input<'a> {
    let DeriveInput {
        attrs,
        vis,
        ident,
        generics: _,
        data,
    } = input;
    let parsed = attr::parse(cx, attrs, "aggregate", super::KEYS);
    attr::misplaced_on_fields(cx, data);
    let list = |key: &str| {
        parsed.list(key).map(|(key, items)| List {
            key: key.clone(),
            items: items.to_vec(),
        })
    };
    Input {
        original: input,
        ident,
        vis,
        has_attribute: parsed.path.is_some(),
        incomplete: parsed.incomplete,
        missing_span: parsed.missing_span(ident),
        mentioned: parsed.mentioned(),
        attempted: parsed.attempted.clone(),
        name: parsed.str("name").cloned(),
        events: list("events"),
        commands: list("commands"),
        error: parsed.ty("error").cloned(),
        services: parsed.ty("services").cloned(),
        snapshot_every: parsed
            .int("snapshot_every")
            .map(|(key, lit)| (key.clone(), lit.clone())),
    }
}

/// The enum variant an event path gets: its last segment.
pub(crate) fn variant_of(path: &Path) -> Option<&Ident> {
    path.segments.last().map(|segment| &segment.ident)
}

/// How a listed path is compared for duplicates: its tokens, spacing aside.
pub(crate) fn path_key(path: &Path) -> String {
    diag::tokens_to_string(path)
}
