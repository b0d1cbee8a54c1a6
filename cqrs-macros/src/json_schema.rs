//! The JSON Schema of a command's or query's body, and of a query's
//! output, from the types as written: what the HTTP adapter's OpenAPI
//! document shows.
//!
//! Common types map to their JSON: strings, integers (unsigned ones with
//! `minimum: 0`), numbers, booleans, `Option<T>` (the field is then not
//! required), sequences and sets as arrays, maps as objects. Any other
//! type is described as `{}` (any JSON) with its Rust name, and a struct
//! whose serde attributes change its JSON beyond `rename`, `default`,
//! `skip` and `alias` of a field is described only as an object: the
//! schema never claims a shape it does not know.

use syn::{Data, DeriveInput, Fields, GenericArgument, PathArguments, Type};

use crate::check::ident_string;
use crate::diag::tokens_to_string;

/// The schema of `input`'s JSON, as JSON text.
pub(crate) fn of(input: &DeriveInput) -> String {
    let Data::Struct(data) = &input.data else {
        return String::from("{}");
    };
    if input.attrs.iter().any(|a| a.path().is_ident("serde")) {
        return object_unknown();
    }
    match &data.fields {
        Fields::Unit => String::from(r#"{"type":"null"}"#),
        Fields::Unnamed(fields) if fields.unnamed.len() == 1 => of_type(&fields.unnamed[0].ty),
        Fields::Unnamed(_) => String::from(r#"{"type":"array"}"#),
        Fields::Named(fields) => {
            let mut properties = Vec::new();
            let mut required = Vec::new();
            for field in &fields.named {
                let Some(ident) = &field.ident else { continue };
                let mut name = ident_string(ident);
                let mut optional = option_inner(&field.ty).is_some();
                for attr in field.attrs.iter().filter(|a| a.path().is_ident("serde")) {
                    let mut known = true;
                    let mut skip = false;
                    let parsed = attr.parse_nested_meta(|meta| {
                        if meta.path.is_ident("rename") {
                            let lit: syn::LitStr = meta.value()?.parse()?;
                            name = lit.value();
                        } else if meta.path.is_ident("default") {
                            optional = true;
                            if meta.input.peek(syn::Token![=]) {
                                let _: syn::LitStr = meta.value()?.parse()?;
                            }
                        } else if meta.path.is_ident("skip")
                            || meta.path.is_ident("skip_deserializing")
                        {
                            skip = true;
                        } else if meta.path.is_ident("alias")
                            || meta.path.is_ident("skip_serializing_if")
                        {
                            let _: syn::LitStr = meta.value()?.parse()?;
                        } else if meta.path.is_ident("skip_serializing") {
                        } else {
                            known = false;
                            if meta.input.peek(syn::Token![=]) {
                                let _: syn::Expr = meta.value()?.parse()?;
                            }
                        }
                        Ok(())
                    });
                    if parsed.is_err() || !known {
                        return object_unknown();
                    }
                    if skip {
                        name.clear();
                    }
                }
                if name.is_empty() {
                    continue;
                }
                let ty = option_inner(&field.ty).unwrap_or(&field.ty);
                properties.push(format!("{}:{}", quoted(&name), of_type(ty)));
                if !optional {
                    required.push(quoted(&name));
                }
            }
            format!(
                r#"{{"type":"object","properties":{{{}}},"required":[{}],"additionalProperties":false}}"#,
                properties.join(","),
                required.join(",")
            )
        }
    }
}

/// The schema of a value of type `ty`.
pub(crate) fn of_type(ty: &Type) -> String {
    match ty {
        Type::Reference(r) => of_type(&r.elem),
        Type::Paren(p) => of_type(&p.elem),
        Type::Group(g) => of_type(&g.elem),
        Type::Tuple(t) if t.elems.is_empty() => String::from(r#"{"type":"null"}"#),
        Type::Array(a) => format!(r#"{{"type":"array","items":{}}}"#, of_type(&a.elem)),
        Type::Slice(s) => format!(r#"{{"type":"array","items":{}}}"#, of_type(&s.elem)),
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return any(ty);
            };
            let args: Vec<&Type> = match &last.arguments {
                PathArguments::AngleBracketed(a) => a
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        GenericArgument::Type(t) => Some(t),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            match (last.ident.to_string().as_str(), args.as_slice()) {
                ("String" | "str" | "char" | "PathBuf" | "Cow", _) => {
                    String::from(r#"{"type":"string"}"#)
                }
                ("Uuid", []) => String::from(r#"{"type":"string","format":"uuid"}"#),
                ("u8" | "u16" | "u32" | "u64" | "u128" | "usize", []) => {
                    String::from(r#"{"type":"integer","minimum":0}"#)
                }
                ("i8" | "i16" | "i32" | "i64" | "i128" | "isize", []) => {
                    String::from(r#"{"type":"integer"}"#)
                }
                ("f32" | "f64", []) => String::from(r#"{"type":"number"}"#),
                ("bool", []) => String::from(r#"{"type":"boolean"}"#),
                ("Option", [inner]) => {
                    format!(r#"{{"anyOf":[{},{{"type":"null"}}]}}"#, of_type(inner))
                }
                ("Box" | "Arc" | "Rc", [inner]) => of_type(inner),
                ("Vec" | "VecDeque" | "HashSet" | "BTreeSet", [inner]) => {
                    format!(r#"{{"type":"array","items":{}}}"#, of_type(inner))
                }
                ("HashMap" | "BTreeMap", [_, value]) => format!(
                    r#"{{"type":"object","additionalProperties":{}}}"#,
                    of_type(value)
                ),
                ("Value", []) => String::from("{}"),
                _ => any(ty),
            }
        }
        _ => any(ty),
    }
}

/// `T` when `ty` is `Option<T>`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    match &last.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

fn any(ty: &Type) -> String {
    format!(
        r#"{{"description":{}}}"#,
        quoted(&format!("the Rust type `{}`", tokens_to_string(ty)))
    )
}

fn object_unknown() -> String {
    String::from(
        r#"{"type":"object","description":"its serde attributes change its JSON: see the Rust type"}"#,
    )
}

/// `text` as a JSON string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_struct_lists_its_fields_and_which_are_required() {
        let input: DeriveInput = syn::parse_quote! {
            struct Deposit {
                #[id] account: String,
                amount: u64,
                note: Option<String>,
                #[serde(rename = "when")] at: i64,
                #[serde(default)] tags: Vec<String>,
                #[serde(skip)] cache: u8,
            }
        };
        assert_eq!(
            of(&input),
            concat!(
                r#"{"type":"object","properties":{"account":{"type":"string"},"#,
                r#""amount":{"type":"integer","minimum":0},"note":{"type":"string"},"#,
                r#""when":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}}},"#,
                r#""required":["account","amount","when"],"additionalProperties":false}"#
            )
        );
    }

    #[test]
    fn what_it_cannot_describe_it_does_not_claim() {
        let renamed: DeriveInput = syn::parse_quote! {
            #[serde(rename_all = "camelCase")]
            struct Q { some_field: u8 }
        };
        assert!(of(&renamed).contains("serde attributes"));
        let flattened: DeriveInput = syn::parse_quote! {
            struct Q { #[serde(flatten)] rest: Other }
        };
        assert!(of(&flattened).contains("serde attributes"));
        let ty: Type = syn::parse_quote!(crate::money::Cents);
        assert_eq!(
            of_type(&ty),
            r#"{"description":"the Rust type `crate::money::Cents`"}"#
        );
        let map: Type = syn::parse_quote!(BTreeMap<String, Option<u64>>);
        assert_eq!(
            of_type(&map),
            r#"{"type":"object","additionalProperties":{"anyOf":[{"type":"integer","minimum":0},{"type":"null"}]}}"#
        );
        let unit: DeriveInput = syn::parse_quote!(
            struct AllAccounts;
        );
        assert_eq!(of(&unit), r#"{"type":"null"}"#);
    }
}
