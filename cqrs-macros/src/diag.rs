//! The error collector, "did you mean" hints and span helpers shared by every derive.

use std::cell::RefCell;
use std::fmt::Display;
use std::thread;

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};

/// Collects every mistake found while parsing and validating one input, so the
/// user sees all of them in one build.
///
/// Must be [`check`](Ctxt::check)ed before it is dropped: forgetting to look
/// at the errors is a bug in the macro, not in the user's code.
pub(crate) struct Ctxt {
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    /// An empty context.
    pub(crate) fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Records an error that underlines every token of `node`.
    pub(crate) fn error_spanned_by<T: ToTokens, M: Display>(&self, node: T, message: M) {
        self.syn_error(syn::Error::new_spanned(node.into_token_stream(), message));
    }

    /// Records an error at one span.
    pub(crate) fn error_at<M: Display>(&self, span: Span, message: M) {
        self.syn_error(syn::Error::new(span, message));
    }

    /// Records an error syn already built (a parse error).
    pub(crate) fn syn_error(&self, error: syn::Error) {
        if let Some(errors) = self.errors.borrow_mut().as_mut() {
            errors.push(error);
        }
    }

    /// How many errors were recorded so far.
    pub(crate) fn len(&self) -> usize {
        self.errors.borrow().as_ref().map_or(0, Vec::len)
    }

    /// Consumes the context: `Ok` if nothing was recorded, otherwise every
    /// error folded into one.
    pub(crate) fn check(self) -> Result<(), syn::Error> {
        let errors = self.errors.borrow_mut().take().unwrap_or_default();
        let mut errors = errors.into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for rest in errors {
            combined.combine(rest);
        }
        Err(combined)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !thread::panicking() && self.errors.borrow().is_some() {
            panic!("cqrs-macros: the error context was dropped without being checked");
        }
    }
}

/// The accepted name closest to `unknown`, if one is close enough to be a typo
/// (Jaro-Winkler similarity above 0.8, as darling does).
pub(crate) fn did_you_mean<'a>(
    unknown: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(unknown, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// "`a`, `b` and `c`": a list of accepted names for a message.
pub(crate) fn one_of<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The spans of the first and last token of `node`.
///
/// Generated code that starts at the first and ends at the second makes the
/// compiler underline the whole node: on stable a plain `Span` covers one
/// token only (the trick `syn::Error::new_spanned` uses).
pub(crate) fn edge_spans<T: ToTokens>(node: &T) -> (Span, Span) {
    let mut tokens = node.to_token_stream().into_iter();
    let Some(first) = tokens.next() else {
        return (Span::call_site(), Span::call_site());
    };
    let last = tokens.last().unwrap_or_else(|| first.clone());
    (first.span(), last.span())
}

/// Every token of `tokens`, nested ones included, located at `span` but
/// resolved at the call site: errors on them point at the user's token,
/// while their names live in the derive's own hygiene context (a generated
/// `self` or `event` still finds its binding when the user's token came
/// from a `macro_rules!` fragment), and the compiler sees them as generated
/// code, not as code to suggest edits in.
pub(crate) fn set_spans(tokens: TokenStream, span: Span) -> TokenStream {
    let span = Span::call_site().located_at(span);
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Group(group) => {
                let mut respanned = Group::new(group.delimiter(), set_spans(group.stream(), span));
                respanned.set_span(span);
                TokenTree::Group(respanned)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

/// `tokens` spanned over `node`: the first token at the node's first token,
/// every other at its last, so an error on the expression underlines the
/// whole node (see [`edge_spans`]). The compiler reports some errors on a
/// path segment (`Apply` in `<Self as Apply<E>>::apply`), so those segments
/// sit on the node's last token, its type name, rather than on a leading
/// `crate`.
pub(crate) fn spanned_over<T: ToTokens>(tokens: TokenStream, node: &T) -> TokenStream {
    let (start, end) = edge_spans(node);
    let mut tokens = set_spans(tokens, end).into_iter();
    let first = tokens
        .next()
        .map(|first| set_spans(TokenStream::from(first), start));
    quote!(#first #(#tokens)*)
}

/// The tokens of a type or path as a user would write them, for names in
/// descriptors and messages: `Option<u64>`, not `Option < u64 >`.
pub(crate) fn tokens_to_string<T: ToTokens>(node: &T) -> String {
    let raw = node.to_token_stream().to_string();
    let mut out = String::with_capacity(raw.len());
    let chars: Vec<char> = raw.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = if i > 0 { chars[i - 1] } else { ' ' };
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            let tight_after = matches!(prev, '<' | '&' | ':' | '(' | '[' | '\'');
            let tight_before = matches!(next, '<' | '>' | ',' | ':' | ')' | ']' | ';');
            if tight_after || tight_before {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The type a fallback uses where the user's type is unknown (the key is
/// missing or its value is a mistake): an alias of `[(); compile_error!(..)]`
/// carrying the first error, which is then emitted there instead of beside
/// the fallback. The compiler treats the type as erroneous, so nothing that
/// uses it (a handler returning the user's own error type, a command naming
/// its aggregate) reports a mismatch with a placeholder.
pub(crate) struct Poison {
    error: syn::Error,
    used: std::cell::Cell<bool>,
}

impl Poison {
    /// The erroneous type, by the name [`Poison::definition`] defines.
    pub(crate) fn ty(&self) -> TokenStream {
        self.used.set(true);
        quote!(__CqrsUnknown)
    }

    /// The alias, if [`Poison::ty`] was used; place it beside the uses.
    pub(crate) fn definition(&self) -> TokenStream {
        if !self.used.get() {
            return TokenStream::new();
        }
        let error = self.error.to_compile_error();
        quote! {
            #[allow(non_camel_case_types)]
            type __CqrsUnknown = [(); #error];
        }
    }
}

/// Ends a derive: the expansion when nothing was reported, otherwise every
/// error next to the fallback expansion, which still defines what users
/// refer to so one mistake does not cascade.
pub(crate) fn finish<M>(
    cx: Ctxt,
    model: Option<M>,
    expand: impl FnOnce(&M) -> TokenStream,
    fallback: impl FnOnce(&Poison) -> TokenStream,
) -> TokenStream {
    match (cx.check(), model) {
        (Ok(()), Some(model)) => expand(&model),
        // A rule returned nothing without saying why: a bug in this crate,
        // reported rather than expanded silently.
        (Ok(()), None) => {
            let error = syn::Error::new(
                Span::call_site(),
                "cqrs-macros: internal error, validation failed without a message; please report it",
            );
            with_fallback(vec![error], fallback)
        }
        (Err(errors), _) => with_fallback(errors.into_iter().collect(), fallback),
    }
}

/// The errors and the fallback; the first error goes into the fallback's
/// erroneous type when it has one, so it is shown once.
fn with_fallback(
    errors: Vec<syn::Error>,
    fallback: impl FnOnce(&Poison) -> TokenStream,
) -> TokenStream {
    let mut errors = errors.into_iter();
    let Some(first) = errors.next() else {
        return TokenStream::new();
    };
    let poison = Poison {
        error: first.clone(),
        used: std::cell::Cell::new(false),
    };
    let fallback = fallback(&poison);
    let mut tokens = if poison.used.get() {
        TokenStream::new()
    } else {
        first.to_compile_error()
    };
    tokens.extend(errors.map(|e| e.to_compile_error()));
    tokens.extend(fallback);
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_closest_key() {
        let keys = ["name", "events", "commands", "error"];
        assert_eq!(did_you_mean("evnts", keys), Some("events"));
        assert_eq!(did_you_mean("event", keys), Some("events"));
        assert_eq!(did_you_mean("command", keys), Some("commands"));
        assert_eq!(did_you_mean("zzz", keys), None);
    }

    #[test]
    fn lists_read_as_a_sentence() {
        assert_eq!(one_of(["a"]), "`a`");
        assert_eq!(one_of(["a", "b", "c"]), "`a`, `b` or `c`");
    }

    #[test]
    fn type_names_print_without_token_spacing() {
        let ty: syn::Type = syn::parse_quote!(Option<std::collections::HashMap<String, u64>>);
        assert_eq!(
            tokens_to_string(&ty),
            "Option<std::collections::HashMap<String, u64>>"
        );
        let unit: syn::Type = syn::parse_quote!(());
        assert_eq!(tokens_to_string(&unit), "()");
        let r: syn::Type = syn::parse_quote!(&'static [u8]);
        assert_eq!(tokens_to_string(&r), "&'static [u8]");
    }

    #[test]
    fn errors_are_folded_together() {
        let cx = Ctxt::new();
        cx.error_at(Span::call_site(), "first");
        cx.error_at(Span::call_site(), "second");
        let error = cx.check().unwrap_err();
        assert_eq!(error.into_iter().count(), 2);
    }
}
