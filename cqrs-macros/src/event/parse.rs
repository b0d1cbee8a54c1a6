//! `#[derive(Event)]` input into its IR.

use syn::{DeriveInput, Ident, LitInt, LitStr, Type};

use crate::attr::{self, Value};
use crate::diag::Ctxt;

/// An event type as written, keeping the syn nodes for spans.
pub(crate) struct Input<'a> {
    /// The whole input.
    pub(crate) original: &'a DeriveInput,
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// `name = ".."`.
    pub(crate) name: Option<LitStr>,
    /// `version = N`.
    pub(crate) version: Option<LitInt>,
    /// `aliases("..", ..)`.
    pub(crate) aliases: Vec<LitStr>,
    /// Each `upcast(..)`, in order.
    pub(crate) upcasts: Vec<UpcastInput>,
    /// Whether an `upcast(..)` or `version` was given with a mistake
    /// already reported: the chain is then not checked as a whole.
    pub(crate) chain_attempted: bool,
}

/// One `upcast(from = N, with = f)` or `upcast(from = N, shape = S)`.
pub(crate) struct UpcastInput {
    /// The `upcast` key, where missing keys are reported.
    pub(crate) key: Ident,
    /// `from = N`.
    pub(crate) from: Option<LitInt>,
    /// `with = f`, with its key.
    pub(crate) with: Option<(Ident, Type)>,
    /// `shape = S`, with its key.
    pub(crate) shape: Option<(Ident, Type)>,
    /// The second of `with` and `shape`, when both are given.
    pub(crate) second_step: Option<Ident>,
    /// Whether a mistake inside it was already reported.
    pub(crate) recovered: bool,
}

/// Reads the `#[event(..)]` attributes of `input`.
pub(crate) fn from_syn<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Input<'a> {
    let DeriveInput {
        attrs,
        vis: _,
        ident,
        generics: _,
        data,
    } = input;
    let parsed = attr::parse(cx, attrs, "event", super::KEYS);
    attr::misplaced_on_fields(cx, data);
    let aliases = match parsed.get("aliases").map(|e| &e.value) {
        Some(Value::StrList(items)) => items.clone(),
        _ => Vec::new(),
    };
    let upcasts = parsed
        .all("upcast")
        .filter_map(|entry| match &entry.value {
            Value::Nested(inner) => Some(upcast(&entry.key, inner, entry.recovered)),
            _ => None,
        })
        .collect();
    Input {
        original: input,
        ident,
        name: parsed.str("name").cloned(),
        version: parsed.int("version").map(|(_, lit)| lit.clone()),
        aliases,
        upcasts,
        chain_attempted: parsed.attempted.contains(&"upcast")
            || parsed.attempted.contains(&"version")
            || parsed.get("version").is_some_and(|e| e.recovered),
    }
}

fn upcast(key: &Ident, inner: &[attr::Entry], recovered: bool) -> UpcastInput {
    let typed = |name: &str| {
        inner
            .iter()
            .find(|e| e.spec.name == name)
            .and_then(|e| match &e.value {
                Value::Type(ty) => Some((e.key.clone(), (**ty).clone())),
                _ => None,
            })
    };
    UpcastInput {
        key: key.clone(),
        from: inner
            .iter()
            .find(|e| e.spec.name == "from")
            .and_then(|e| match &e.value {
                Value::Int(lit) => Some(lit.clone()),
                _ => None,
            }),
        with: typed("with"),
        shape: typed("shape"),
        second_step: inner
            .iter()
            .filter(|e| matches!(e.spec.name, "with" | "shape"))
            .nth(1)
            .map(|e| e.key.clone()),
        recovered,
    }
}
