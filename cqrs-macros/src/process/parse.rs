//! `#[derive(ProcessManager)]` input into its IR.

use proc_macro2::Span;
use syn::{DeriveInput, Ident, LitStr, Path};

use crate::attr;
use crate::diag::Ctxt;

/// A process manager as written, keeping the syn nodes for spans.
pub(crate) struct Input<'a> {
    /// The whole input.
    pub(crate) original: &'a DeriveInput,
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// Whether `#[process(..)]` is present at all.
    pub(crate) has_attribute: bool,
    /// Where "missing key" errors point.
    pub(crate) missing_span: Span,
    /// The keys given, or attempted with a mistake already reported.
    pub(crate) mentioned: Vec<&'static str>,
    /// `name = ".."`.
    pub(crate) name: Option<LitStr>,
    /// `events(..)`, with the key token.
    pub(crate) events: Option<(Ident, Vec<Path>)>,
    /// `commands(..)`, with the key token.
    pub(crate) commands: Option<(Ident, Vec<Path>)>,
    /// The keys given with a mistake already reported.
    pub(crate) attempted: Vec<&'static str>,
    /// Whether the attribute could not be read whole.
    pub(crate) incomplete: bool,
}

/// Reads the `#[process(..)]` attributes of `input`.
pub(crate) fn from_syn<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Input<'a> {
    let parsed = attr::parse(cx, &input.attrs, "process", super::KEYS);
    attr::misplaced_on_fields(cx, &input.data);
    Input {
        original: input,
        ident: &input.ident,
        has_attribute: parsed.path.is_some(),
        missing_span: parsed.missing_span(&input.ident),
        mentioned: parsed.mentioned(),
        name: parsed.str("name").cloned(),
        events: parsed
            .list("events")
            .map(|(key, items)| (key.clone(), items.to_vec())),
        commands: parsed
            .list("commands")
            .map(|(key, items)| (key.clone(), items.to_vec())),
        attempted: parsed.attempted.clone(),
        incomplete: parsed.incomplete,
    }
}
