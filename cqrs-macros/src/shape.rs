//! The shape of a struct's JSON as the schema lock records it: its fields,
//! their types as written and the serde attributes that change the JSON,
//! in one canonical text (fields of a named struct sorted by name, since
//! their order does not change the JSON; attribute items sorted too).
//!
//! ```text
//! #[serde(rename_all = "camelCase")]
//! {
//!     amount: u64,
//!     #[serde(default)] currency: String,
//! }
//! ```
//!
//! A tuple struct is `(` its types in order `)`, a unit struct `unit`.

use syn::punctuated::Punctuated;
use syn::{Attribute, Data, DeriveInput, Fields, Meta, Token};

use crate::check::ident_string;
use crate::diag::tokens_to_string;

/// Serde keys that do not change the JSON: trait bounds, the path to
/// serde, the "expecting" text of errors, borrowing.
const NO_CHANGE: &[&str] = &["bound", "crate", "expecting", "borrow"];

/// The canonical shape of `input` (empty for what is not a struct, which
/// the derives refuse anyway).
pub(crate) fn of(input: &DeriveInput) -> String {
    let DeriveInput { attrs, data, .. } = input;
    let Data::Struct(data) = data else {
        return String::new();
    };
    let mut out = String::new();
    let container = serde_items(attrs);
    if !container.is_empty() {
        out.push_str(&format!("#[serde({})]\n", container.join(", ")));
    }
    match &data.fields {
        Fields::Unit => out.push_str("unit"),
        Fields::Named(named) if named.named.is_empty() => out.push_str("{}"),
        Fields::Unnamed(unnamed) if unnamed.unnamed.is_empty() => out.push_str("()"),
        Fields::Named(named) => {
            let mut fields: Vec<(String, String)> = named
                .named
                .iter()
                .map(|field| {
                    let name = field.ident.as_ref().map(ident_string).unwrap_or_default();
                    let line = format!(
                        "    {}{name}: {},",
                        field_attrs(&field.attrs),
                        tokens_to_string(&field.ty)
                    );
                    (name, line)
                })
                .collect();
            fields.sort();
            out.push_str("{\n");
            for (_, line) in fields {
                out.push_str(&line);
                out.push('\n');
            }
            out.push('}');
        }
        Fields::Unnamed(unnamed) => {
            out.push_str("(\n");
            for field in &unnamed.unnamed {
                out.push_str(&format!(
                    "    {}{},\n",
                    field_attrs(&field.attrs),
                    tokens_to_string(&field.ty)
                ));
            }
            out.push(')');
        }
    }
    out
}

/// `#[serde(..)] ` with the field's items, or nothing.
fn field_attrs(attrs: &[Attribute]) -> String {
    let items = serde_items(attrs);
    if items.is_empty() {
        String::new()
    } else {
        format!("#[serde({})] ", items.join(", "))
    }
}

/// The items of every `#[serde(..)]` among `attrs` that change the JSON,
/// each as written, sorted.
fn serde_items(attrs: &[Attribute]) -> Vec<String> {
    let mut items = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        match attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            Ok(metas) => items.extend(
                metas
                    .iter()
                    .filter(|meta| !NO_CHANGE.iter().any(|key| meta.path().is_ident(key)))
                    .map(tokens_to_string),
            ),
            // Not serde's syntax (serde reports it): kept whole.
            Err(_) => match &attr.meta {
                Meta::List(list) => items.push(tokens_to_string(&list.tokens)),
                other => items.push(tokens_to_string(other)),
            },
        }
    }
    items.sort();
    items
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    #[test]
    fn named_fields_are_sorted_with_their_serde_attributes() {
        let input: DeriveInput = parse_quote!(
            /// Docs do not count.
            #[derive(Serialize)]
            #[serde(rename_all = "camelCase", bound = "T: X")]
            #[serde(deny_unknown_fields)]
            pub struct Deposited {
                /// Neither do these.
                pub r#type: Option<std::collections::HashMap<String, u64>>,
                #[serde(rename = "amt")]
                #[serde(default)]
                amount: u64,
            }
        );
        assert_eq!(
            of(&input),
            "#[serde(deny_unknown_fields, rename_all = \"camelCase\")]\n{\n    \
             #[serde(default, rename = \"amt\")] amount: u64,\n    \
             type: Option<std::collections::HashMap<String, u64>>,\n}"
        );
    }

    #[test]
    fn field_order_does_not_matter_in_named_structs_but_does_in_tuples() {
        let a: DeriveInput = parse_quote!(
            struct A {
                x: u8,
                y: u16,
            }
        );
        let b: DeriveInput = parse_quote!(
            struct B {
                y: u16,
                x: u8,
            }
        );
        assert_eq!(of(&a), of(&b));
        let c: DeriveInput = parse_quote!(
            struct C(u8, u16);
        );
        let d: DeriveInput = parse_quote!(
            struct D(u16, u8);
        );
        assert_ne!(of(&c), of(&d));
        assert_eq!(of(&c), "(\n    u8,\n    u16,\n)");
    }

    #[test]
    fn every_kind_of_struct_has_its_own_shape() {
        let unit: DeriveInput = parse_quote!(
            struct U;
        );
        let empty_named: DeriveInput = parse_quote!(
            struct N {}
        );
        let empty_tuple: DeriveInput = parse_quote!(
            struct T();
        );
        assert_eq!(of(&unit), "unit");
        assert_eq!(of(&empty_named), "{}");
        assert_eq!(of(&empty_tuple), "()");
    }

    #[test]
    fn a_changed_rename_changes_the_shape() {
        let a: DeriveInput = parse_quote!(
            struct A {
                #[serde(rename = "a")]
                x: u8,
            }
        );
        let b: DeriveInput = parse_quote!(
            struct A {
                #[serde(rename = "b")]
                x: u8,
            }
        );
        assert_ne!(of(&a), of(&b));
    }
}
