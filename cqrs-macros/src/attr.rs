//! Attribute machinery shared by every derive: the table of accepted keys,
//! parsing `#[name(key = value, key(a, b), flag)]` into typed values, and the
//! single-value slots that reject a key given twice.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
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
}

/// The shape of a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// `key = "string"`
    Str,
    /// `key = 123`
    Int,
    /// `key = Type`
    Type,
    /// `key(Path, Path, ..)`
    List,
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
}

/// What one derive's attribute parsed into.
#[derive(Debug, Default)]
pub(crate) struct Parsed<'a> {
    /// The path of the first `#[name(..)]` attribute, where "missing key"
    /// errors point; `None` when the attribute is absent.
    pub(crate) path: Option<&'a Path>,
    /// The keys, in order; a key given twice is reported and kept once.
    pub(crate) entries: Vec<Entry>,
    /// Keys the user meant to give: given with a value already reported as
    /// wrong, or misspelled into an unknown key that suggested them. Their
    /// absence is not reported again as a missing key.
    pub(crate) attempted: Vec<&'static str>,
}

impl Parsed<'_> {
    /// The entry for `key`, if given.
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.spec.name == key)
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

/// Parses every `#[name(..)]` among `attrs` against the accepted `keys`,
/// reporting unknown keys (with a "did you mean" hint), duplicate keys and
/// values of the wrong form.
pub(crate) fn parse<'a>(
    cx: &Ctxt,
    attrs: &'a [Attribute],
    name: &str,
    keys: &'static [Key],
) -> Parsed<'a> {
    let mut parsed = Parsed::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident(name)) {
        parsed.path.get_or_insert(attr.path());
        let tokens = match &attr.meta {
            Meta::Path(_) => continue,
            Meta::List(list) => list.tokens.clone(),
            Meta::NameValue(nv) => {
                cx.error_spanned_by(
                    {
                        let (eq, value) = (&nv.eq_token, &nv.value);
                        quote::quote!(#eq #value)
                    },
                    format!("expected `#[{name}(..)]`, not `#[{name} = ..]`"),
                );
                continue;
            }
        };
        let parser = |input: ParseStream<'_>| parse_items(cx, input, name, keys, &mut parsed);
        if let Err(error) = parser.parse2(tokens) {
            cx.syn_error(error);
        }
    }
    parsed
}

fn parse_items(
    cx: &Ctxt,
    input: ParseStream<'_>,
    attr: &str,
    keys: &'static [Key],
    parsed: &mut Parsed<'_>,
) -> syn::Result<()> {
    while !input.is_empty() {
        let key = Ident::parse_any(input)
            .map_err(|e| syn::Error::new(e.span(), format!("expected a key of `#[{attr}(..)]`")))?;
        let spec = keys.iter().find(|k| key == k.name);
        match spec {
            None => {
                if let Some(meant) = report_unknown_key(cx, &key, attr, keys) {
                    parsed.attempted.push(meant);
                }
                skip_value(input)?;
            }
            Some(spec) => match parse_value(input, spec) {
                Ok(value) => {
                    if parsed.entries.iter().any(|e| e.spec.name == spec.name) {
                        cx.error_spanned_by(
                            &key,
                            format!("duplicate key `{key}` in `#[{attr}(..)]`"),
                        );
                    } else {
                        parsed.entries.push(Entry {
                            key,
                            spec: *spec,
                            value,
                        });
                    }
                }
                Err(error) => {
                    cx.syn_error(error);
                    parsed.attempted.push(spec.name);
                    skip_to_comma(input);
                }
            },
        }
        if input.is_empty() {
            break;
        }
        input
            .parse::<Token![,]>()
            .map_err(|e| syn::Error::new(e.span(), "expected `,` between keys"))?;
    }
    Ok(())
}

/// Unknown key: a typo gets the closest accepted key, which is returned,
/// anything else the list.
fn report_unknown_key(
    cx: &Ctxt,
    key: &Ident,
    attr: &str,
    keys: &'static [Key],
) -> Option<&'static str> {
    let written = key.unraw().to_string();
    let names = keys.iter().map(|k| k.name);
    let close = diag::did_you_mean(&written, names.clone());
    let message = match close {
        Some(close) => {
            format!("unknown key `{written}` in `#[{attr}(..)]`, did you mean `{close}`?")
        }
        None => format!(
            "unknown key `{written}` in `#[{attr}(..)]`, expected {}",
            diag::one_of(names)
        ),
    };
    cx.error_spanned_by(key, message);
    close
}

fn expected(spec: &Key, span: Span) -> syn::Error {
    syn::Error::new(span, format!("expected `{}`", spec.syntax))
}

fn parse_value(input: ParseStream<'_>, spec: &Key) -> syn::Result<Value> {
    match spec.form {
        Form::Flag => {
            if input.peek(Token![=]) || input.peek(syn::token::Paren) {
                let tokens: TokenStream = take_until_comma(input);
                return Err(syn::Error::new_spanned(
                    tokens,
                    format!("expected `{}` without a value", spec.syntax),
                ));
            }
            Ok(Value::Flag)
        }
        Form::List => {
            if !input.peek(syn::token::Paren) {
                let tokens = take_until_comma(input);
                if tokens.is_empty() {
                    return Err(expected(spec, input.span()));
                }
                return Err(syn::Error::new_spanned(
                    tokens,
                    format!("expected `{}`", spec.syntax),
                ));
            }
            let content;
            syn::parenthesized!(content in input);
            let items = Punctuated::<Path, Token![,]>::parse_terminated(&content)
                .map_err(|e| expected(spec, e.span()))?;
            Ok(Value::List(items.into_iter().collect()))
        }
        Form::Str | Form::Int | Form::Type => {
            if !input.peek(Token![=]) {
                return Err(expected(spec, input.span()));
            }
            input.parse::<Token![=]>()?;
            match spec.form {
                Form::Type => {
                    if input.peek(Lit) {
                        let lit: Lit = input.parse()?;
                        return Err(syn::Error::new_spanned(
                            lit,
                            format!("expected `{}`, found a literal", spec.syntax),
                        ));
                    }
                    let ty: Type = input.parse().map_err(|e| expected(spec, e.span()))?;
                    Ok(Value::Type(Box::new(ty)))
                }
                _ => {
                    let lit: Lit = input.parse().map_err(|e| expected(spec, e.span()))?;
                    match (spec.form, lit) {
                        (Form::Str, Lit::Str(s)) => Ok(Value::Str(s)),
                        (Form::Int, Lit::Int(i)) => Ok(Value::Int(i)),
                        (_, other) => Err(syn::Error::new_spanned(
                            other,
                            format!("expected `{}`", spec.syntax),
                        )),
                    }
                }
            }
        }
    }
}

/// Skips the value of an unknown key: `= <type or literal>`, `(..)` or nothing.
fn skip_value(input: ParseStream<'_>) -> syn::Result<()> {
    if input.peek(syn::token::Paren) {
        input.parse::<proc_macro2::TokenTree>()?;
    } else if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        // A type first, so `key = HashMap<K, V>` does not stop at its comma.
        if input.fork().parse::<Type>().is_ok() {
            input.parse::<Type>()?;
        } else {
            skip_to_comma(input);
        }
    }
    Ok(())
}

fn skip_to_comma(input: ParseStream<'_>) {
    let _: TokenStream = take_until_comma(input);
}

fn take_until_comma(input: ParseStream<'_>) -> TokenStream {
    let mut tokens = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        match input.parse::<proc_macro2::TokenTree>() {
            Ok(tt) => tt.to_tokens(&mut tokens),
            Err(_) => break,
        }
    }
    tokens
}

/// The accepted `name = ".."`, shared by every derive.
pub(crate) const NAME: Key = Key {
    name: "name",
    form: Form::Str,
    syntax: "name = \"<name>\"",
};

/// `allow_unknown_fields`, shared by `#[command]` and `#[query]`: dispatch
/// by name ignores body fields the type does not have, instead of refusing
/// them.
pub(crate) const ALLOW_UNKNOWN_FIELDS: Key = Key {
    name: "allow_unknown_fields",
    form: Form::Flag,
    syntax: "allow_unknown_fields",
};

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    const KEYS: &[Key] = &[
        NAME,
        Key {
            name: "version",
            form: Form::Int,
            syntax: "version = <integer >= 1>",
        },
        Key {
            name: "events",
            form: Form::List,
            syntax: "events(<event>, ..)",
        },
        Key {
            name: "output",
            form: Form::Type,
            syntax: "output = <type>",
        },
        Key {
            name: "async",
            form: Form::Flag,
            syntax: "async",
        },
    ];

    fn messages(attrs: &[Attribute]) -> (Vec<String>, usize) {
        let cx = Ctxt::new();
        let parsed = parse(&cx, attrs, "x", KEYS);
        let count = parsed.entries.len();
        let messages = match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (messages, count)
    }

    #[test]
    fn every_form_parses() {
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[x(name = "a", version = 2, events(A, b::B,), output = HashMap<K, V>)]),
            parse_quote!(#[x(async)]),
        ];
        assert_eq!(messages(&attrs), (vec![], 5));
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
                "unknown key `zzz` in `#[x(..)]`, expected `name`, `version`, `events`, `output` or `async`",
                "expected `events(<event>, ..)`",
            ]
        );
        assert_eq!(count, 1);
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
