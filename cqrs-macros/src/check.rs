//! Validation rules shared by the derives: supported shapes, generics, names
//! and positive integers.

use syn::{Data, DeriveInput, Fields, Generics, Ident, LitInt, LitStr};

use crate::diag::Ctxt;

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
    }
    if let Some(where_clause) = &generics.where_clause {
        cx.error_spanned_by(
            where_clause,
            format!("`#[derive({derive})]` does not support where clauses"),
        );
    }
}

/// Whether a fallback impl can be generated for `input`: not for a generic
/// type, whose parameters are unknown, nor for a union, which meets none of
/// the traits' bounds (`Default`, serde), so its impl would only add errors.
pub(crate) fn fallback_possible(input: &DeriveInput) -> bool {
    let generics = &input.generics;
    generics.params.is_empty()
        && generics.where_clause.is_none()
        && !matches!(input.data, Data::Union(_))
}

/// A name is non-empty, without surrounding whitespace or control characters,
/// made of letters, digits, `.`, `-`, `_` and `/`; errors point at the literal.
pub(crate) fn name(cx: &Ctxt, lit: &LitStr) -> Option<String> {
    let value = lit.value();
    match name_problem(&value) {
        None => Some(value),
        Some(problem) => {
            cx.error_spanned_by(lit, problem);
            None
        }
    }
}

/// What is wrong with `value` as a name, if anything.
fn name_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("`name` must not be empty".to_owned());
    }
    if value.trim() != value {
        return Some("`name` must not start or end with whitespace".to_owned());
    }
    if value.chars().any(char::is_control) {
        return Some("`name` must not contain control characters".to_owned());
    }
    let bad = value
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')))?;
    let found = match bad {
        ' ' => "a space".to_owned(),
        other => format!("`{other}`"),
    };
    Some(format!(
        "`name` may contain only letters, digits, `.`, `-`, `_` and `/`, found {found}"
    ))
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

    #[test]
    fn names() {
        assert_eq!(name_problem("account.opened"), None);
        assert_eq!(name_problem("bank/account-v2_x"), None);
        assert_eq!(name_problem("compte.ouvert.é"), None);
        assert_eq!(
            name_problem("").as_deref(),
            Some("`name` must not be empty")
        );
        assert_eq!(
            name_problem(" a").as_deref(),
            Some("`name` must not start or end with whitespace")
        );
        assert_eq!(
            name_problem("a\u{7}b").as_deref(),
            Some("`name` must not contain control characters")
        );
        assert_eq!(
            name_problem("a b").as_deref(),
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
