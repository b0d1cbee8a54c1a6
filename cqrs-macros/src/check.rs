//! Validation rules shared by the derives: supported shapes, generics, names
//! and positive integers.

use proc_macro2::Span;
use syn::{Data, DeriveInput, Fields, Generics, Ident, LitInt, LitStr, Type};

use crate::diag::{Ctxt, tokens_to_string};

/// Which struct shapes a derive accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Structs {
    /// Named, tuple and unit structs.
    Any,
    /// Named-field and unit structs.
    NamedOrUnit,
}

/// Only structs: an enum or union is reported at its `enum` / `union` keyword.
pub(crate) fn struct_shape(cx: &Ctxt, input: &DeriveInput, derive: &str, accepted: Structs) {
    match &input.data {
        Data::Struct(data) => {
            if accepted == Structs::NamedOrUnit
                && let Fields::Unnamed(fields) = &data.fields
            {
                cx.error_spanned_by(
                    fields,
                    format!(
                        "`#[derive({derive})]` needs a struct with named fields or a unit struct, not a tuple struct"
                    ),
                );
            }
        }
        Data::Enum(data) => cx.error_spanned_by(
            data.enum_token,
            format!("`#[derive({derive})]` supports structs only, not enums"),
        ),
        Data::Union(data) => cx.error_spanned_by(
            data.union_token,
            format!("`#[derive({derive})]` supports structs only, not unions"),
        ),
    }
}

/// No generics: the registry needs one concrete type per name, so type,
/// lifetime and const parameters and where clauses are reported on themselves.
pub(crate) fn no_generics(cx: &Ctxt, generics: &Generics, derive: &str) {
    if !generics.params.is_empty() {
        cx.error_spanned_by(
            generics,
            format!("`#[derive({derive})]` does not support generic parameters"),
        );
        // Its where clause is part of the same mistake.
        return;
    }
    if let Some(where_clause) = &generics.where_clause {
        cx.error_spanned_by(
            where_clause,
            format!("`#[derive({derive})]` does not support where clauses"),
        );
    }
}

/// Whether a fallback impl can be generated for `input`: not for a union,
/// which meets none of the traits' bounds (`Default`, serde), so its impl
/// would only add errors. A generic input gets its impls with its own
/// generics (see [`fallback_generics`]).
pub(crate) fn fallback_possible(input: &DeriveInput) -> bool {
    !matches!(input.data, Data::Union(_))
}

/// The `impl<..>` parameters, the type's arguments and the where clause of
/// a fallback impl for a generic input, with `Self` bounded by what the
/// runtime's traits need, so the impl is well-formed whatever the user wrote
/// and only the "no generics" error is reported. Lifetimes become
/// `'static` in the type's arguments: the traits need `'static` types.
pub(crate) fn fallback_generics(
    generics: &Generics,
    ident: &Ident,
    bounds: proc_macro2::TokenStream,
) -> (
    proc_macro2::TokenStream,
    proc_macro2::TokenStream,
    proc_macro2::TokenStream,
) {
    use quote::quote;
    if generics.params.is_empty() && generics.where_clause.is_none() {
        return (quote!(), quote!(#ident), quote!());
    }
    let types: Vec<_> = generics
        .params
        .iter()
        .filter_map(|param| match param {
            syn::GenericParam::Type(t) => Some(&t.ident),
            _ => None,
        })
        .collect();
    let consts: Vec<_> = generics
        .params
        .iter()
        .filter_map(|param| match param {
            syn::GenericParam::Const(c) => Some((&c.ident, &c.ty)),
            _ => None,
        })
        .collect();
    let args = generics.params.iter().map(|param| match param {
        syn::GenericParam::Lifetime(_) => quote!('static),
        syn::GenericParam::Type(t) => {
            let ident = &t.ident;
            quote!(#ident)
        }
        syn::GenericParam::Const(c) => {
            let ident = &c.ident;
            quote!(#ident)
        }
    });
    let const_params = consts.iter().map(|(ident, ty)| quote!(const #ident: #ty));
    let params = quote!(<#(#types,)* #(#const_params,)*>);
    let self_ty = quote!(#ident<#(#args),*>);
    let mut predicates: Vec<proc_macro2::TokenStream> = Vec::new();
    if let Some(clause) = &generics.where_clause {
        predicates.extend(clause.predicates.iter().map(|p| quote!(#p)));
    }
    predicates.push(quote!(for<'__cqrs> #self_ty: #bounds));
    (params, self_ty, quote!(where #(#predicates),*))
}

/// A name is non-empty, without surrounding whitespace or control characters,
/// made of letters, digits, `.`, `-`, `_` and `/`; errors point at the literal.
pub(crate) fn name(cx: &Ctxt, lit: &LitStr) -> Option<String> {
    name_as(cx, lit, "`name`")
}

/// [`name`] for a name given under another key (`what`: "an alias").
pub(crate) fn name_as(cx: &Ctxt, lit: &LitStr, what: &str) -> Option<String> {
    let value = lit.value();
    match name_problem(&value, what) {
        None => Some(value),
        Some(problem) => {
            cx.error_spanned_by(lit, problem);
            None
        }
    }
}

/// What is wrong with `value` as a name, if anything.
fn name_problem(value: &str, what: &str) -> Option<String> {
    if value.is_empty() {
        return Some(format!("{what} must not be empty"));
    }
    if value.trim().is_empty() {
        return Some(format!("{what} must not be blank"));
    }
    if value.trim() != value {
        return Some(format!("{what} must not start or end with whitespace"));
    }
    if value.chars().any(char::is_control) {
        return Some(format!("{what} must not contain control characters"));
    }
    let Some(bad) = value
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')))
    else {
        return (!value.chars().any(char::is_alphanumeric))
            .then(|| format!("{what} must contain a letter or a digit"));
    };
    let found = match bad {
        ' ' => "a space".to_owned(),
        other => format!("`{other}`"),
    };
    Some(format!(
        "{what} may contain only letters, digits, `.`, `-`, `_` and `/`, found {found}"
    ))
}

/// `key = T` names a type by a plain path, such as `aggregate = Account`:
/// `Self` (the deriving type itself), references, trait objects and other
/// kinds of types are reported on the value; `what` is "an aggregate type".
pub(crate) fn plain_type(cx: &Ctxt, key: &str, ty: &Type, what: &str) -> bool {
    let found = match ty {
        Type::Path(p) if p.qself.is_none() => {
            if p.path.segments.iter().any(|s| s.ident == "Self") {
                cx.error_spanned_by(
                    ty,
                    format!(
                        "expected `{key} = <type>`: `Self` is the type being derived here; name {what}"
                    ),
                );
                return false;
            }
            return true;
        }
        Type::Group(g) => return plain_type(cx, key, &g.elem, what),
        Type::Paren(p) => return plain_type(cx, key, &p.elem, what),
        Type::Reference(_) => "a reference",
        Type::TraitObject(_) => "a trait object",
        Type::ImplTrait(_) => "`impl Trait`",
        Type::Ptr(_) => "a pointer",
        Type::Tuple(_) => "a tuple",
        Type::Array(_) | Type::Slice(_) => "an array",
        _ => "another kind of type",
    };
    cx.error_spanned_by(
        ty,
        format!(
            "expected {what} in `{key} = ..`, found {found}: `{}`",
            tokens_to_string(ty)
        ),
    );
    false
}

/// `key = T` where `T` must be a type a value can have: `impl Trait` and the
/// inferred type `_` are reported on the value.
pub(crate) fn concrete_type(cx: &Ctxt, key: &str, ty: &Type) -> bool {
    let found = match ty {
        Type::ImplTrait(_) => "`impl Trait`",
        Type::Infer(_) => "`_`",
        _ => return true,
    };
    cx.error_spanned_by(ty, format!("expected `{key} = <type>`, found {found}"));
    false
}

/// The required keys: one error naming every missing one (`(key, syntax,
/// what it is for)`), on the attribute's path, unless the attribute could
/// not be read whole.
pub(crate) fn required_keys(
    cx: &Ctxt,
    attr: &str,
    span: Span,
    mentioned: &[&'static str],
    incomplete: bool,
    keys: &[(&str, &str, &str)],
) {
    if incomplete {
        return;
    }
    let missing: Vec<&(&str, &str, &str)> = keys
        .iter()
        .filter(|(key, _, _)| !mentioned.contains(key))
        .collect();
    match missing.as_slice() {
        [] => {}
        [(_, syntax, what)] => {
            cx.error_at(
                span,
                format!("missing `{syntax}` in `#[{attr}(..)]`: {what}"),
            );
        }
        several => {
            let syntaxes: Vec<String> = several.iter().map(|(_, s, _)| format!("`{s}`")).collect();
            let (last, init) = syntaxes.split_last().expect("several");
            cx.error_at(
                span,
                format!("missing {} and {last} in `#[{attr}(..)]`", init.join(", ")),
            );
        }
    }
}

/// The valid name or the default (the type's ident, raw prefix removed).
pub(crate) fn name_or_ident(cx: &Ctxt, lit: Option<&LitStr>, ident: &Ident) -> Option<String> {
    match lit {
        Some(lit) => name(cx, lit),
        None => Some(ident_string(ident)),
    }
}

/// `ident` as text, without a `r#` prefix.
pub(crate) fn ident_string(ident: &Ident) -> String {
    let text = ident.to_string();
    text.strip_prefix("r#").map(str::to_owned).unwrap_or(text)
}

/// A positive integer that fits `T`: `0` and overflow point at the literal,
/// with the key's syntax, e.g. "expected `version = <integer >= 1>`".
pub(crate) fn positive<T>(cx: &Ctxt, lit: &LitInt, syntax: &str) -> Option<T>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
    T::Err: std::fmt::Display,
{
    match lit.base10_parse::<T>() {
        Ok(value) if value >= T::from(1) => return Some(value),
        Ok(_) => cx.error_spanned_by(lit, format!("expected `{syntax}`, found 0")),
        Err(_) => cx.error_spanned_by(lit, format!("expected `{syntax}`, this is too large")),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_problem_of(value: &str) -> Option<String> {
        name_problem(value, "`name`")
    }

    #[test]
    fn names() {
        assert_eq!(name_problem_of("account.opened"), None);
        assert_eq!(name_problem_of("bank/account-v2_x"), None);
        assert_eq!(name_problem_of("compte.ouvert.é"), None);
        assert_eq!(
            name_problem_of("").as_deref(),
            Some("`name` must not be empty")
        );
        assert_eq!(
            name_problem_of(" a").as_deref(),
            Some("`name` must not start or end with whitespace")
        );
        assert_eq!(
            name_problem_of("a\u{7}b").as_deref(),
            Some("`name` must not contain control characters")
        );
        assert_eq!(
            name_problem_of("a b").as_deref(),
            Some("`name` may contain only letters, digits, `.`, `-`, `_` and `/`, found a space")
        );
    }

    #[test]
    fn positive_integers() {
        let cx = Ctxt::new();
        let one: LitInt = syn::parse_quote!(1);
        let zero: LitInt = syn::parse_quote!(0);
        let huge: LitInt = syn::parse_quote!(99999999999);
        assert_eq!(positive::<u32>(&cx, &one, "v = <n>"), Some(1));
        assert_eq!(positive::<u32>(&cx, &zero, "v = <n>"), None);
        assert_eq!(positive::<u32>(&cx, &huge, "v = <n>"), None);
        let messages: Vec<String> = cx
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            messages,
            [
                "expected `v = <n>`, found 0",
                "expected `v = <n>`, this is too large"
            ]
        );
    }
}
