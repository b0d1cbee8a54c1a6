//! Attribute machinery shared by every derive: the table of accepted keys,
//! parsing `#[name(key = value, key(a, b), flag)]` into typed values, and the
//! slots that reject a key given twice (unless the key may repeat).
//!
//! Parsing recovers from every mistake it reports: one error per mistaken
//! item, then it goes on with the next item, so the keys after a typo are
//! still seen, and a value it could still make out (a misspelled key's, a
//! type written as a string, a list in brackets) is kept for the fallback
//! expansion, which then agrees with the rest of the user's code.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Ident, Lit, LitInt, LitStr, Meta, Path, Token, Type};

use crate::diag::{self, Ctxt};

/// One key an attribute accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    /// The key as written.
    pub(crate) name: &'static str,
    /// What its value looks like.
    pub(crate) form: Form,
    /// The syntax shown in "expected ..." messages, e.g. `version = <integer >= 1>`.
    pub(crate) syntax: &'static str,
    /// Whether the key may be given more than once, each occurrence kept
    /// (such as `upcast(..)`, one per older version).
    pub(crate) repeated: bool,
}

impl Key {
    /// A key given at most once.
    pub(crate) const fn new(name: &'static str, form: Form, syntax: &'static str) -> Key {
        Key {
            name,
            form,
            syntax,
            repeated: false,
        }
    }

    /// The same key, allowed more than once.
    pub(crate) const fn repeated(self) -> Key {
        Key {
            repeated: true,
            ..self
        }
    }
}

/// The shape of a key's value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Form {
    /// `key = "string"`
    Str,
    /// `key = 123`
    Int,
    /// `key = Type`
    Type,
    /// `key(Type, Type, ..)`, each a plain path to a type; `item` names one
    /// in messages ("an event type").
    List { item: &'static str },
    /// `key("a", "b", ..)`
    StrList,
    /// `key(inner = .., ..)`, with its own keys.
    Nested(&'static [Key]),
    /// `key` alone
    Flag,
}

/// The parsed value of one key.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Str(LitStr),
    Int(LitInt),
    Type(Box<Type>),
    List(Vec<Path>),
    StrList(Vec<LitStr>),
    Nested(Vec<Entry>),
    Flag,
}

/// One `key ..` item of an attribute, with the user's key token.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The key as the user wrote it (its span is the key's span).
    pub(crate) key: Ident,
    /// Which row of the table it matched.
    pub(crate) spec: Key,
    /// Its value, of the row's form.
    pub(crate) value: Value,
    /// Whether the value was recovered from a mistake already reported
    /// (it then only feeds the fallback, and the well-formed key, if the
    /// user also gave it, replaces it).
    pub(crate) recovered: bool,
}

/// What one derive's attribute parsed into.
#[derive(Debug, Default)]
pub(crate) struct Parsed<'a> {
    /// The path of the first `#[name(..)]` attribute, where "missing key"
    /// errors point; `None` when the attribute is absent.
    pub(crate) path: Option<&'a Path>,
    /// The keys, in order; a key given twice is reported and kept once
    /// (unless it repeats). Values recovered from a reported mistake are
    /// here too: they only feed the fallback.
    pub(crate) entries: Vec<Entry>,
    /// Keys the user meant to give: given with a value already reported as
    /// wrong, or misspelled into an unknown key that suggested them. Their
    /// absence is not reported again as a missing key.
    pub(crate) attempted: Vec<&'static str>,
    /// Whether some of the attribute could not be read at all (`#[x = ..]`,
    /// the derive's keys under another derive's attribute): which keys are
    /// missing is then unknown, and none is reported missing.
    pub(crate) incomplete: bool,
}

impl Parsed<'_> {
    /// The entry for `key`, if given (the first, for a repeated key).
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.spec.name == key)
    }

    /// Every entry for `key`, in order.
    pub(crate) fn all<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'s Entry> + 's {
        self.entries.iter().filter(move |e| e.spec.name == key)
    }

    /// The string value of `key`.
    pub(crate) fn str(&self, key: &str) -> Option<&LitStr> {
        match &self.get(key)?.value {
            Value::Str(lit) => Some(lit),
            _ => None,
        }
    }

    /// The integer value of `key`, with the key token.
    pub(crate) fn int(&self, key: &str) -> Option<(&Ident, &LitInt)> {
        let entry = self.get(key)?;
        match &entry.value {
            Value::Int(lit) => Some((&entry.key, lit)),
            _ => None,
        }
    }

    /// The type value of `key`.
    pub(crate) fn ty(&self, key: &str) -> Option<&Type> {
        match &self.get(key)?.value {
            Value::Type(ty) => Some(ty),
            _ => None,
        }
    }

    /// The list value of `key`, with the key token.
    pub(crate) fn list(&self, key: &str) -> Option<(&Ident, &[Path])> {
        let entry = self.get(key)?;
        match &entry.value {
            Value::List(items) => Some((&entry.key, items)),
            _ => None,
        }
    }

    /// The key token of flag `key`, if set.
    pub(crate) fn flag(&self, key: &str) -> Option<&Ident> {
        let entry = self.get(key)?;
        matches!(entry.value, Value::Flag).then_some(&entry.key)
    }

    /// Every key given or attempted, for "missing key" checks.
    pub(crate) fn mentioned(&self) -> Vec<&'static str> {
        let given = self.entries.iter().map(|e| e.spec.name);
        given.chain(self.attempted.iter().copied()).collect()
    }

    /// The span "missing key" errors point at: the attribute's path, or
    /// `fallback` (the type's ident) when the attribute is absent.
    pub(crate) fn missing_span(&self, fallback: &Ident) -> Span {
        self.path
            .and_then(Path::get_ident)
            .map_or_else(|| fallback.span(), Ident::span)
    }
}

/// The attribute of each derive, for the checks of attributes in the wrong
/// place: `(attribute, derive)`.
pub(crate) const ATTRIBUTES: &[(&str, &str)] = &[
    ("event", "Event"),
    ("aggregate", "Aggregate"),
    ("command", "Command"),
    ("projection", "Projection"),
    ("query", "Query"),
    ("process", "ProcessManager"),
];

/// Parses every `#[name(..)]` among `attrs` against the accepted `keys`,
/// reporting unknown keys (with a "did you mean" hint), duplicate keys and
/// values of the wrong form.
///
/// When there is no `#[name(..)]` but another derive's attribute is there
/// (`#[event(..)]` on an aggregate), that one is reported and read for the
/// fallback instead.
pub(crate) fn parse<'a>(
    cx: &Ctxt,
    attrs: &'a [Attribute],
    name: &str,
    keys: &'static [Key],
) -> Parsed<'a> {
    let mut parsed = Parsed::default();
    let display = format!("#[{name}(..)]");
    for attr in attrs.iter().filter(|a| a.path().is_ident(name)) {
        parsed.path.get_or_insert(attr.path());
        let tokens = match &attr.meta {
            Meta::Path(_) => continue,
            Meta::List(list) => list.tokens.clone(),
            Meta::NameValue(nv) => {
                let (eq, value) = (&nv.eq_token, &nv.value);
                cx.error_spanned_by(
                    quote!(#eq #value),
                    format!("expected `#[{name}(..)]`, not `#[{name} = ..]`"),
                );
                parsed.incomplete = true;
                continue;
            }
        };
        let parser = |input: ParseStream<'_>| {
            parse_items(
                cx,
                input,
                &display,
                keys,
                &mut parsed.entries,
                &mut parsed.attempted,
            );
            Ok(())
        };
        // `parse_items` reports its errors itself and never fails.
        let _ = parser.parse2(tokens);
    }
    if parsed.path.is_none() {
        foreign_attribute(cx, attrs, name, keys, &mut parsed);
    }
    parsed
}

/// Another derive's attribute in place of this one's: reported on its path,
/// and its keys read (silently) so the fallback knows what the user meant.
fn foreign_attribute<'a>(
    cx: &Ctxt,
    attrs: &'a [Attribute],
    name: &str,
    keys: &'static [Key],
    parsed: &mut Parsed<'a>,
) {
    let derive = ATTRIBUTES
        .iter()
        .find(|(attribute, _)| *attribute == name)
        .map_or(name, |(_, derive)| derive);
    for attr in attrs {
        let Some((foreign, foreign_derive)) = ATTRIBUTES
            .iter()
            .find(|(attribute, _)| *attribute != name && attr.path().is_ident(attribute))
        else {
            continue;
        };
        if parsed.path.is_none() {
            cx.error_spanned_by(
                attr.path(),
                format!(
                    "`#[{foreign}(..)]` is the attribute of `#[derive({foreign_derive})]`; \
                     this type derives `{derive}`: write `#[{name}(..)]`"
                ),
            );
        }
        parsed.path.get_or_insert(attr.path());
        parsed.incomplete = true;
        if let Meta::List(list) = &attr.meta {
            let scratch = Ctxt::new();
            let display = format!("#[{name}(..)]");
            let parser = |input: ParseStream<'_>| {
                parse_items(
                    &scratch,
                    input,
                    &display,
                    keys,
                    &mut parsed.entries,
                    &mut parsed.attempted,
                );
                Ok(())
            };
            let _ = parser.parse2(list.tokens.clone());
            let _ = scratch.check();
        }
    }
}

/// The items of one attribute, `key .., key ..`: each mistake is reported
/// once, on its token, and parsing goes on with the next item.
fn parse_items(
    cx: &Ctxt,
    input: ParseStream<'_>,
    attr: &str,
    keys: &'static [Key],
    entries: &mut Vec<Entry>,
    attempted: &mut Vec<&'static str>,
) {
    while !input.is_empty() {
        if input.peek(Token![,]) {
            let comma: Token![,] = input.parse().expect("peeked");
            cx.error_spanned_by(comma, format!("expected a key of `{attr}`, found `,`"));
            continue;
        }
        if !(input.peek(Ident::peek_any)) || input.peek2(Token![::]) {
            let tokens = take_until_comma(input);
            let shown = match tokens.clone().into_iter().nth(1) {
                Some(TokenTree::Punct(p)) if p.as_char() == ':' => {
                    // `a::b = ..`: the path is the mistake, shown on `::`.
                    let mut rest = tokens.clone().into_iter().skip(1);
                    let colons: TokenStream = rest.by_ref().take(2).collect();
                    cx.error_spanned_by(colons, format!("expected a key of `{attr}`, not a path"));
                    None
                }
                _ => Some(tokens),
            };
            if let Some(tokens) = shown {
                cx.error_spanned_by(tokens, format!("expected a key of `{attr}`"));
            }
            eat_comma(input);
            continue;
        }
        let key = Ident::parse_any(input).expect("peeked an ident");
        match keys.iter().find(|k| key == k.name) {
            None => unknown_key(cx, input, &key, attr, keys, entries, attempted),
            Some(spec) => {
                let value = parse_value(cx, input, &key, spec, attr);
                match value {
                    Outcome::Ok(value) => push(cx, entries, key, *spec, value, attr),
                    Outcome::Recovered(value) => {
                        attempted.push(spec.name);
                        // A repeated key keeps every occurrence, recovered
                        // ones too (marked so).
                        if spec.repeated || !entries.iter().any(|e| e.spec.name == spec.name) {
                            entries.push(Entry {
                                key,
                                spec: *spec,
                                value,
                                recovered: true,
                            });
                        }
                    }
                    Outcome::Failed => {
                        attempted.push(spec.name);
                        skip_to_comma(input);
                    }
                }
            }
        }
        separator(cx, input, attr);
    }
}

/// After an item: a `,`, the end, or a missing comma, reported once.
fn separator(cx: &Ctxt, input: ParseStream<'_>, attr: &str) {
    if input.is_empty() || eat_comma(input) {
        return;
    }
    if input.peek(Ident::peek_any) {
        // `name = "a" version = 1`: the next key is there, only its comma is
        // missing; it is read as the next item.
        let next = input.fork().call(Ident::parse_any).expect("peeked");
        cx.error_spanned_by(&next, format!("expected `,` before `{next}` in `{attr}`"));
        return;
    }
    let next: TokenTree = input.parse().expect("not empty");
    cx.error_spanned_by(&next, format!("expected `,` between the keys of `{attr}`"));
    if !matches!(&next, TokenTree::Punct(p) if p.as_char() == ';') {
        skip_to_comma(input);
    }
    eat_comma(input);
}

fn push(cx: &Ctxt, entries: &mut Vec<Entry>, key: Ident, spec: Key, value: Value, attr: &str) {
    let entry = Entry {
        key,
        spec,
        value,
        recovered: false,
    };
    let same = entries.iter().position(|e| e.spec.name == spec.name);
    match same {
        _ if spec.repeated => entries.push(entry),
        Some(index) if entries[index].recovered => entries[index] = entry,
        Some(_) if !spec.repeated => cx.error_spanned_by(
            &entry.key,
            format!("duplicate key `{}` in `{attr}`", entry.key),
        ),
        _ => entries.push(entry),
    }
}

/// Unknown key: a typo gets the closest accepted key, whose value is then
/// read for the fallback; anything else gets the list of keys.
fn unknown_key(
    cx: &Ctxt,
    input: ParseStream<'_>,
    key: &Ident,
    attr: &str,
    keys: &'static [Key],
    entries: &mut Vec<Entry>,
    attempted: &mut Vec<&'static str>,
) {
    let written = key.unraw().to_string();
    let names = keys.iter().map(|k| k.name);
    let close = diag::did_you_mean(&written, names.clone()).or_else(|| {
        keys.iter()
            .map(|k| k.name)
            .find(|n| n.eq_ignore_ascii_case(&written))
    });
    let message = match close {
        Some(close) => format!("unknown key `{written}` in `{attr}`, did you mean `{close}`?"),
        None => format!(
            "unknown key `{written}` in `{attr}`, expected {}",
            diag::one_of(names)
        ),
    };
    cx.error_spanned_by(key, message);
    let spec = close.and_then(|close| keys.iter().find(|k| k.name == close));
    let Some(spec) = spec else {
        skip_value(input);
        return;
    };
    attempted.push(spec.name);
    // The value as the key it resembles, for the fallback; its own mistakes
    // would be a second report of one typo, so they are dropped.
    let scratch = Ctxt::new();
    let fork = input.fork();
    match parse_value(&scratch, &fork, key, spec, attr) {
        Outcome::Ok(value) | Outcome::Recovered(value) => {
            syn::parse::discouraged::Speculative::advance_to(input, &fork);
            if spec.repeated || !entries.iter().any(|e| e.spec.name == spec.name) {
                entries.push(Entry {
                    key: key.clone(),
                    spec: *spec,
                    value,
                    recovered: true,
                });
            }
        }
        Outcome::Failed => skip_value(input),
    }
    let _ = scratch.check();
}

/// What reading one value gave.
enum Outcome {
    /// A well-formed value.
    Ok(Value),
    /// A mistake, reported, and the value it still let us make out.
    Recovered(Value),
    /// A mistake, reported.
    Failed,
}

fn expected(cx: &Ctxt, spec: &Key, tokens: impl ToTokens) -> Outcome {
    cx.error_spanned_by(tokens, format!("expected `{}`", spec.syntax));
    Outcome::Failed
}

fn parse_value(cx: &Ctxt, input: ParseStream<'_>, key: &Ident, spec: &Key, attr: &str) -> Outcome {
    match spec.form {
        Form::Flag => {
            if input.peek(Token![=]) || input.peek(syn::token::Paren) {
                let tokens = take_until_comma(input);
                cx.error_spanned_by(
                    tokens,
                    format!("expected `{}` without a value", spec.syntax),
                );
                return Outcome::Recovered(Value::Flag);
            }
            Outcome::Ok(Value::Flag)
        }
        Form::List { item } => parse_list(cx, input, key, spec, item),
        Form::StrList => parse_group(cx, input, key, spec, |cx, content| {
            let mut items = Vec::new();
            let mut ok = true;
            while !content.is_empty() {
                match content.parse::<Lit>() {
                    Ok(Lit::Str(lit)) if lit.suffix().is_empty() => items.push(lit),
                    Ok(other) => {
                        cx.error_spanned_by(&other, format!("expected `{}`", spec.syntax));
                        ok = false;
                    }
                    Err(_) => {
                        let tokens = take_until_comma(content);
                        cx.error_spanned_by(tokens, format!("expected `{}`", spec.syntax));
                        ok = false;
                    }
                }
                if !content.is_empty() && !eat_comma(content) {
                    let tokens = take_until_comma(content);
                    cx.error_spanned_by(tokens, format!("expected `,` in `{}`", spec.syntax));
                    ok = false;
                    eat_comma(content);
                }
            }
            (Value::StrList(items), ok)
        }),
        Form::Nested(inner) => {
            let display = format!("{}(..)` in `{attr}", spec.name);
            parse_group(cx, input, key, spec, |cx, content| {
                let mut entries = Vec::new();
                let mut attempted = Vec::new();
                let before = cx.len();
                parse_items(cx, content, &display, inner, &mut entries, &mut attempted);
                let ok = cx.len() == before;
                (Value::Nested(entries), ok)
            })
        }
        Form::Str | Form::Int | Form::Type => parse_assigned(cx, input, key, spec),
    }
}

/// `key = value`, recovering `key: value` and `key value`.
fn parse_assigned(cx: &Ctxt, input: ParseStream<'_>, key: &Ident, spec: &Key) -> Outcome {
    let mut clean = true;
    if input.peek(Token![=]) {
        let eq: Token![=] = input.parse().expect("peeked");
        if input.is_empty() || input.peek(Token![,]) {
            return expected(cx, spec, eq);
        }
    } else if input.peek(Token![:]) && !input.peek(Token![::]) {
        let colon: Token![:] = input.parse().expect("peeked");
        cx.error_spanned_by(colon, format!("expected `{}`, with `=`", spec.syntax));
        clean = false;
    } else if input.is_empty() || input.peek(Token![,]) {
        return expected(cx, spec, key);
    } else {
        let value = input.fork().parse::<TokenTree>().expect("not empty");
        cx.error_spanned_by(&value, format!("expected `{}`, with `=`", spec.syntax));
        clean = false;
    }
    let outcome = match spec.form {
        Form::Type => parse_type_value(cx, input, spec, clean),
        Form::Str => parse_str_value(cx, input, spec, clean),
        _ => parse_int_value(cx, input, spec, clean),
    };
    match outcome {
        Outcome::Ok(value) if !clean => Outcome::Recovered(value),
        other => other,
    }
}

fn parse_type_value(cx: &Ctxt, input: ParseStream<'_>, spec: &Key, clean: bool) -> Outcome {
    if input.peek(Lit) {
        let lit: Lit = input.parse().expect("peeked");
        if let Lit::Str(s) = &lit
            && let Ok(ty) = s.parse::<Type>()
        {
            if clean {
                cx.error_spanned_by(
                    &lit,
                    format!(
                        "expected `{}`: write the type `{}` without quotes",
                        spec.syntax,
                        diag::tokens_to_string(&ty)
                    ),
                );
            }
            return Outcome::Recovered(Value::Type(Box::new(ty)));
        }
        if clean {
            cx.error_spanned_by(&lit, format!("expected `{}`, found a literal", spec.syntax));
        }
        return Outcome::Failed;
    }
    match input.parse::<Type>() {
        Ok(ty) => Outcome::Ok(Value::Type(Box::new(ty))),
        Err(_) if !clean => Outcome::Failed,
        Err(_) => {
            let tokens = take_until_comma(input);
            expected(cx, spec, tokens)
        }
    }
}

fn parse_str_value(cx: &Ctxt, input: ParseStream<'_>, spec: &Key, clean: bool) -> Outcome {
    let value = input.fork().parse::<Lit>();
    let report = |tokens: &dyn ToTokens, message: String| {
        if clean {
            cx.error_spanned_by(tokens.to_token_stream(), message);
        }
    };
    match value {
        Ok(Lit::Str(lit)) => {
            let _: Lit = input.parse().expect("forked");
            if lit.suffix().is_empty() {
                Outcome::Ok(Value::Str(lit))
            } else {
                report(
                    &lit,
                    format!(
                        "expected `{}`: a string without the suffix `{}`",
                        spec.syntax,
                        lit.suffix()
                    ),
                );
                if clean {
                    Outcome::Recovered(Value::Str(LitStr::new(&lit.value(), lit.span())))
                } else {
                    Outcome::Failed
                }
            }
        }
        _ => {
            let tokens = take_until_comma(input);
            report(&tokens, format!("expected `{}`", spec.syntax));
            Outcome::Failed
        }
    }
}

fn parse_int_value(cx: &Ctxt, input: ParseStream<'_>, spec: &Key, clean: bool) -> Outcome {
    if input.peek(Token![-]) {
        let tokens = take_until_comma(input);
        if clean {
            cx.error_spanned_by(
                tokens,
                format!("expected `{}`, found a negative number", spec.syntax),
            );
        }
        return Outcome::Failed;
    }
    match input.fork().parse::<Lit>() {
        Ok(Lit::Int(lit)) => {
            let _: Lit = input.parse().expect("forked");
            if lit.suffix().is_empty() {
                return Outcome::Ok(Value::Int(lit));
            }
            if clean {
                cx.error_spanned_by(
                    &lit,
                    format!(
                        "expected `{}`: an integer without the suffix `{}`",
                        spec.syntax,
                        lit.suffix()
                    ),
                );
            }
            Outcome::Recovered(Value::Int(LitInt::new(lit.base10_digits(), lit.span())))
        }
        _ => {
            let tokens = take_until_comma(input);
            if clean {
                cx.error_spanned_by(tokens, format!("expected `{}`", spec.syntax));
            }
            Outcome::Failed
        }
    }
}

/// `key(..)` for the list forms: the parenthesized content, or the content of
/// `key = (..)`, `key[..]` and `key{..}`, reported and still read.
fn parse_group(
    cx: &Ctxt,
    input: ParseStream<'_>,
    key: &Ident,
    spec: &Key,
    items: impl FnOnce(&Ctxt, ParseStream<'_>) -> (Value, bool),
) -> Outcome {
    let mut clean = true;
    if input.peek(Token![=]) && input.peek2(syn::token::Paren) {
        let eq: Token![=] = input.parse().expect("peeked");
        cx.error_spanned_by(eq, format!("expected `{}`, without `=`", spec.syntax));
        clean = false;
    }
    let group = match input.fork().parse::<TokenTree>() {
        Ok(TokenTree::Group(group)) if group.delimiter() != Delimiter::None => group,
        _ => {
            let tokens = take_until_comma(input);
            if tokens.is_empty() {
                cx.error_spanned_by(key, format!("expected `{}`", spec.syntax));
            } else {
                cx.error_spanned_by(tokens, format!("expected `{}`", spec.syntax));
            }
            return Outcome::Failed;
        }
    };
    let _: TokenTree = input.parse().expect("forked");
    if group.delimiter() != Delimiter::Parenthesis {
        cx.error_spanned_by(
            &group,
            format!("expected `{}`, in parentheses", spec.syntax),
        );
        clean = false;
    }
    let mut result = None;
    let parser = |content: ParseStream<'_>| {
        result = Some(items(cx, content));
        Ok(())
    };
    let _ = parser.parse2(group.stream());
    match result {
        Some((value, true)) if clean => Outcome::Ok(value),
        Some((value, _)) => Outcome::Recovered(value),
        None => Outcome::Failed,
    }
}

/// `key(A, b::B, ..)`: each item a plain path to a type; every other item is
/// reported on itself and the valid ones are kept.
fn parse_list(cx: &Ctxt, input: ParseStream<'_>, key: &Ident, spec: &Key, item: &str) -> Outcome {
    if input.peek(Token![=]) && !input.peek2(syn::token::Paren) {
        // `events = A`: one type, not a list; kept as a list of one.
        let tokens = take_until_comma(input);
        cx.error_spanned_by(&tokens, format!("expected `{}`", spec.syntax));
        let path = syn::parse2::<TokenStream>(tokens)
            .ok()
            .and_then(|t| syn::parse2::<Path>(t.into_iter().skip(1).collect()).ok());
        return match path {
            Some(path) if listed_path_problem(&path).is_none() => {
                Outcome::Recovered(Value::List(vec![path]))
            }
            _ => Outcome::Failed,
        };
    }
    parse_group(cx, input, key, spec, |cx, content| {
        let mut items = Vec::new();
        let mut ok = true;
        while !content.is_empty() {
            if content.peek(Token![,]) {
                let comma: Token![,] = content.parse().expect("peeked");
                cx.error_spanned_by(comma, format!("expected {item}, found `,`"));
                ok = false;
                continue;
            }
            match list_item(cx, content, item) {
                Some(path) => items.push(path),
                None => ok = false,
            }
            if content.is_empty() || eat_comma(content) {
                continue;
            }
            // `A B`: the comma is missing; `B` is read as the next item.
            let next = content.fork().parse::<TokenTree>().expect("not empty");
            cx.error_spanned_by(
                &next,
                format!("expected `,` between the items of `{}`", spec.syntax),
            );
            ok = false;
        }
        (Value::List(items), ok)
    })
}

/// One item of a list of types: the path, or `None` after reporting why it
/// is none (a literal, a keyword, a reference, ..). A reference, a trait
/// object or a string still give their path when they contain a plain one,
/// for the fallback.
fn list_item(cx: &Ctxt, content: ParseStream<'_>, item: &str) -> Option<Path> {
    if content.peek(Lit) {
        let lit: Lit = content.parse().expect("peeked");
        if let Lit::Str(s) = &lit
            && let Ok(path) = s.parse::<Path>()
            && listed_path_problem(&path).is_none()
        {
            cx.error_spanned_by(
                &lit,
                format!(
                    "expected {item}: write `{}` without quotes",
                    diag::tokens_to_string(&path)
                ),
            );
            return Some(path);
        }
        cx.error_spanned_by(&lit, format!("expected {item}, found a literal"));
        return None;
    }
    let fork = content.fork();
    let Ok(ty) = fork.parse::<Type>() else {
        if content.peek(Ident::peek_any) && !content.peek(syn::Ident) && !is_path_keyword(content) {
            let keyword = Ident::parse_any(content).expect("peeked");
            cx.error_spanned_by(
                &keyword,
                format!("expected {item}, found the keyword `{keyword}`"),
            );
            return None;
        }
        let tokens = take_until_comma(content);
        cx.error_spanned_by(tokens, format!("expected {item}"));
        return None;
    };
    syn::parse::discouraged::Speculative::advance_to(content, &fork);
    // A `$t:ty` or `$p:path` fragment of a `macro_rules!` macro arrives as an
    // invisible group around the type.
    let ty = ungroup(ty);
    let (path, found) = match &ty {
        Type::Path(p) if p.qself.is_none() => (Some(p.path.clone()), None),
        Type::Reference(r) => (plain_path(&r.elem), Some("a reference")),
        Type::TraitObject(t) => (
            t.bounds.iter().find_map(|b| match b {
                syn::TypeParamBound::Trait(t) => Some(t.path.clone()),
                _ => None,
            }),
            Some("a trait object"),
        ),
        Type::Path(_) => (None, Some("a qualified path")),
        _ => (None, Some("another kind of type")),
    };
    let path = path.filter(|p| listed_path_problem(p).is_none());
    match (found, path) {
        (None, Some(path)) => Some(path),
        (Some(found), path) => {
            let hint = path
                .as_ref()
                .map(|p| format!(": write `{}`", diag::tokens_to_string(p)))
                .unwrap_or_default();
            cx.error_spanned_by(&ty, format!("expected {item}, found {found}{hint}"));
            path
        }
        (None, None) => {
            let Type::Path(p) = &ty else { return None };
            let problem = listed_path_problem(&p.path).unwrap_or_default();
            cx.error_spanned_by(&ty, format!("expected {item}, found {problem}"));
            None
        }
    }
}

/// `self`, `super`, `crate` and `Self` start paths, so syn reads them as
/// types; they are checked as paths.
fn is_path_keyword(content: ParseStream<'_>) -> bool {
    content.peek(Token![self])
        || content.peek(Token![Self])
        || content.peek(Token![super])
        || content.peek(Token![crate])
}

fn ungroup(ty: Type) -> Type {
    match ty {
        Type::Group(group) => ungroup(*group.elem),
        other => other,
    }
}

fn plain_path(ty: &Type) -> Option<Path> {
    match ty {
        Type::Path(p) if p.qself.is_none() => Some(p.path.clone()),
        Type::Paren(p) => plain_path(&p.elem),
        Type::Group(g) => plain_path(&g.elem),
        _ => None,
    }
}

/// Why `path` cannot be listed: it must end in a type's name (the enum
/// variant is named after it), not in `self`, `super`, `crate` or `Self`,
/// and not go through `Self` (which means another type in generated code).
pub(crate) fn listed_path_problem(path: &Path) -> Option<String> {
    let last = path.segments.last()?;
    let keyword = |ident: &Ident| {
        matches!(
            ident.to_string().as_str(),
            "self" | "super" | "crate" | "Self"
        )
    };
    if keyword(&last.ident) {
        return Some(format!("`{}`", diag::tokens_to_string(path)));
    }
    if path.segments.iter().any(|s| s.ident == "Self") {
        return Some(format!(
            "a path through `Self`: `{}`",
            diag::tokens_to_string(path)
        ));
    }
    None
}

/// Skips the value of an unknown key: `= <type or literal>`, `(..)` or nothing.
fn skip_value(input: ParseStream<'_>) {
    if input.peek(syn::token::Paren) {
        let _ = input.parse::<TokenTree>();
    } else if input.peek(Token![=]) {
        let _ = input.parse::<Token![=]>();
        // A type first, so `key = HashMap<K, V>` does not stop at its comma.
        let fork = input.fork();
        if fork.parse::<Type>().is_ok() && (fork.is_empty() || fork.peek(Token![,])) {
            let _ = input.parse::<Type>();
        } else {
            skip_to_comma(input);
        }
    }
}

fn skip_to_comma(input: ParseStream<'_>) {
    let _: TokenStream = take_until_comma(input);
}

/// Consumes a `,` if one is next.
fn eat_comma(input: ParseStream<'_>) -> bool {
    input.parse::<Option<Token![,]>>().ok().flatten().is_some()
}

fn take_until_comma(input: ParseStream<'_>) -> TokenStream {
    let mut tokens = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        match input.parse::<TokenTree>() {
            Ok(tt) => tt.to_tokens(&mut tokens),
            Err(_) => break,
        }
    }
    tokens
}

/// The accepted `name = ".."`, shared by every derive.
pub(crate) const NAME: Key = Key::new("name", Form::Str, "name = \"<name>\"");

/// Attributes of any derive on a field: they belong on the struct.
pub(crate) fn misplaced_on_fields(cx: &Ctxt, data: &syn::Data) {
    let fields: Vec<&syn::Field> = match data {
        syn::Data::Struct(data) => data.fields.iter().collect(),
        syn::Data::Enum(data) => data.variants.iter().flat_map(|v| v.fields.iter()).collect(),
        syn::Data::Union(data) => data.fields.named.iter().collect(),
    };
    for attr in fields.iter().flat_map(|f| &f.attrs) {
        if let Some((name, _)) = ATTRIBUTES
            .iter()
            .find(|(name, _)| attr.path().is_ident(name))
        {
            cx.error_spanned_by(
                attr,
                format!("`#[{name}(..)]` goes on the struct, not on a field"),
            );
        }
    }
}

/// `allow_unknown_fields`, shared by `#[command]` and `#[query]`: dispatch
/// by name ignores body fields the type does not have, instead of refusing
/// them.
pub(crate) const ALLOW_UNKNOWN_FIELDS: Key =
    Key::new("allow_unknown_fields", Form::Flag, "allow_unknown_fields");

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    const UPCAST: &[Key] = &[
        Key::new("from", Form::Int, "from = <version>"),
        Key::new("with", Form::Type, "with = <function>"),
    ];

    const KEYS: &[Key] = &[
        NAME,
        Key::new("version", Form::Int, "version = <integer >= 1>"),
        Key::new(
            "events",
            Form::List {
                item: "an event type",
            },
            "events(<event>, ..)",
        ),
        Key::new("output", Form::Type, "output = <type>"),
        Key::new("async", Form::Flag, "async"),
        Key::new("aliases", Form::StrList, "aliases(\"<name>\", ..)"),
        Key::new(
            "upcast",
            Form::Nested(UPCAST),
            "upcast(from = <version>, with = <function>)",
        )
        .repeated(),
    ];

    fn parse_all(attrs: &[Attribute]) -> (Vec<String>, Vec<Entry>, Vec<&'static str>) {
        let cx = Ctxt::new();
        let parsed = parse(&cx, attrs, "x", KEYS);
        let messages = match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (messages, parsed.entries, parsed.attempted)
    }

    fn messages(attrs: &[Attribute]) -> (Vec<String>, usize) {
        let (messages, entries, _) = parse_all(attrs);
        (messages, entries.len())
    }

    #[test]
    fn every_form_parses() {
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[x(name = "a", version = 2, events(A, b::B,), output = HashMap<K, V>)]),
            parse_quote!(#[x(async, aliases("old.a", "old.b"), upcast(from = 1, with = up), upcast(from = 2, with = up2))]),
        ];
        assert_eq!(messages(&attrs), (vec![], 8));
    }

    #[test]
    fn repeated_keys_keep_every_occurrence() {
        let attrs: Vec<Attribute> =
            vec![parse_quote!(#[x(upcast(from = 1, with = a), upcast(from = 2, with = b))])];
        let cx = Ctxt::new();
        let parsed = parse(&cx, &attrs, "x", KEYS);
        cx.check().unwrap();
        let froms: Vec<String> = parsed
            .all("upcast")
            .map(|e| match &e.value {
                Value::Nested(inner) => match &inner[0].value {
                    Value::Int(i) => i.to_string(),
                    _ => panic!(),
                },
                _ => panic!(),
            })
            .collect();
        assert_eq!(froms, ["1", "2"]);
        let aliases: Vec<Attribute> = vec![parse_quote!(#[x(aliases("old.a", "old.b"))])];
        let cx = Ctxt::new();
        let parsed = parse(&cx, &aliases, "x", KEYS);
        cx.check().unwrap();
        let Some(Value::StrList(names)) = parsed.get("aliases").map(|e| &e.value) else {
            panic!("no aliases");
        };
        let names: Vec<String> = names.iter().map(LitStr::value).collect();
        assert_eq!(names, ["old.a", "old.b"]);
    }

    #[test]
    fn mistakes_are_all_reported() {
        let attrs: Vec<Attribute> = vec![parse_quote!(
            #[x(nme = "a", version = "2", name = "b", name = "c", async = true, zzz = Vec<A, B>, events)]
        )];
        let (messages, count) = messages(&attrs);
        assert_eq!(
            messages,
            [
                "unknown key `nme` in `#[x(..)]`, did you mean `name`?",
                "expected `version = <integer >= 1>`",
                "duplicate key `name` in `#[x(..)]`",
                "expected `async` without a value",
                "unknown key `zzz` in `#[x(..)]`, expected `name`, `version`, `events`, `output`, `async`, `aliases` or `upcast`",
                "expected `events(<event>, ..)`",
            ]
        );
        // `name = "b"` replaces what `nme` was read as; `async` is kept.
        assert_eq!(count, 2);
    }

    #[test]
    fn a_missing_comma_is_one_error_and_the_next_key_is_read() {
        let attrs: Vec<Attribute> = vec![parse_quote!(#[x(name = "a" version = 2, output = u8)])];
        let (messages, entries, _) = parse_all(&attrs);
        assert_eq!(messages, ["expected `,` before `version` in `#[x(..)]`"]);
        assert_eq!(entries.len(), 3);
    }

    #[test]
    fn list_items_are_checked_one_by_one() {
        let attrs: Vec<Attribute> = vec![parse_quote!(
            #[x(events(A, Self, 1, "B", &C, crate, type, D E, ,F))]
        )];
        let (messages, entries, _) = parse_all(&attrs);
        assert_eq!(
            messages,
            [
                "expected an event type, found `Self`",
                "expected an event type, found a literal",
                "expected an event type: write `B` without quotes",
                "expected an event type, found a reference: write `C`",
                "expected an event type, found `crate`",
                "expected an event type, found the keyword `type`",
                "expected `,` between the items of `events(<event>, ..)`",
                "expected an event type, found `,`",
            ]
        );
        let Value::List(items) = &entries[0].value else {
            panic!()
        };
        let names: Vec<String> = items.iter().map(diag::tokens_to_string).collect();
        assert_eq!(names, ["A", "B", "C", "D", "E", "F"]);
    }

    #[test]
    fn literals_are_checked_for_suffixes_and_signs() {
        let attrs: Vec<Attribute> =
            vec![parse_quote!(#[x(name = "a"_x, version = -1, output = "u8")])];
        assert_eq!(
            messages(&attrs).0,
            [
                "expected `name = \"<name>\"`: a string without the suffix `_x`",
                "expected `version = <integer >= 1>`, found a negative number",
                "expected `output = <type>`: write the type `u8` without quotes",
            ]
        );
    }

    #[test]
    fn literals_are_not_types() {
        let attrs: Vec<Attribute> = vec![parse_quote!(#[x(output = 5)])];
        assert_eq!(
            messages(&attrs).0,
            ["expected `output = <type>`, found a literal"]
        );
    }

    #[test]
    fn name_value_form_is_rejected() {
        let attrs: Vec<Attribute> = vec![parse_quote!(#[x = "a"])];
        assert_eq!(messages(&attrs).0, ["expected `#[x(..)]`, not `#[x = ..]`"]);
    }
}
