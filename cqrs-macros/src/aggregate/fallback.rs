//! What `#[derive(Aggregate)]` still generates next to its errors: the event
//! enum, its conversions and the trait impls with `unreachable!()` bodies, so
//! handlers, commands and `events![..]` keep compiling and only the user's
//! mistake is reported.
//!
//! Whatever could still be read is used (the valid items of a malformed
//! list, a misspelled key's value); a type that could not be read becomes an
//! erroneous type carrying the error already reported, so the user's own
//! types (a handler's error type) are never compared with a placeholder.

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::expand::{conversions_tokens, event_enum_tokens};
use super::parse::{Input, variant_of};
use super::validate::EventRef;
use crate::attr::listed_path_problem;
use crate::check::{self, ident_string};
use crate::diag::Poison;
use crate::runtime;

/// The items users refer to, built from whatever parsed.
pub(crate) fn expand(input: &Input<'_>, poison: &Poison) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let ident = input.ident;
    let event_enum = format_ident!("{}Event", ident, span = ident.span());
    // Distinct variants only: a duplicate may be the very mistake reported.
    let mut seen = BTreeSet::new();
    let events: Vec<EventRef<'_>> = input
        .events
        .iter()
        .flat_map(|list| &list.items)
        .filter(|path| listed_path_problem(path).is_none())
        .filter_map(|path| {
            Some(EventRef {
                path,
                variant: variant_of(path)?,
            })
        })
        .filter(|event| seen.insert(event.variant.to_string()))
        .collect();
    let enum_tokens = event_enum_tokens(ident, input.vis, &event_enum, &events);
    if !check::fallback_possible(input.original) {
        return enum_tokens;
    }
    let bounds =
        quote!(::core::default::Default + ::core::marker::Send + ::core::marker::Sync + 'static);
    let (params, self_ty, where_clause) =
        check::fallback_generics(&input.original.generics, ident, bounds);
    let conversions = conversions_tokens(&event_enum, &events);
    let name = input
        .name
        .as_ref()
        .map_or_else(|| ident_string(ident), syn::LitStr::value);
    let unknown = || poison.ty();
    let error_type = match &input.error {
        Some(ty) => quote!(#ty),
        None => unknown(),
    };
    let services = match &input.services {
        Some(ty) => quote!(#ty),
        None if input.attempted.contains(&"services") => unknown(),
        None => quote!(()),
    };
    let unknown_type = poison.definition();
    quote! {
        #enum_tokens
        const _: () = {
            #unknown_type
            #conversions

            #[automatically_derived]
            impl #krate::EventSet for #event_enum {
                const NAMES: &'static [&'static ::core::primitive::str] = &[];
                fn event_name(&self) -> &'static ::core::primitive::str {
                    ::core::unreachable!()
                }
                fn event_version(&self) -> ::core::primitive::u32 {
                    ::core::unreachable!()
                }
                fn encode(
                    &self,
                ) -> ::core::result::Result<::std::vec::Vec<::core::primitive::u8>, #private::serde_json::Error> {
                    ::core::unreachable!()
                }
                fn decode(
                    _: &::core::primitive::str,
                    _: ::core::primitive::u32,
                    _: &[::core::primitive::u8],
                ) -> ::core::result::Result<Self, #krate::DecodeError> {
                    ::core::unreachable!()
                }
            }

            #[automatically_derived]
            impl #private::serde::Serialize for #event_enum {
                fn serialize<__S: #private::serde::Serializer>(
                    &self,
                    _: __S,
                ) -> ::core::result::Result<__S::Ok, __S::Error> {
                    ::core::unreachable!()
                }
            }

            #[automatically_derived]
            impl<'de> #private::serde::Deserialize<'de> for #event_enum {
                fn deserialize<__D: #private::serde::Deserializer<'de>>(
                    _: __D,
                ) -> ::core::result::Result<Self, __D::Error> {
                    ::core::unreachable!()
                }
            }

            #[automatically_derived]
            impl #params #krate::Aggregate for #self_ty #where_clause {
                const NAME: &'static ::core::primitive::str = #name;
                const SNAPSHOT_EVERY: ::core::option::Option<::core::primitive::u64> = ::core::option::Option::None;
                type Event = #event_enum;
                type Error = #error_type;
                type Services = #services;
                fn apply_event(&mut self, _: &#event_enum) {
                    ::core::unreachable!()
                }
                fn encode_snapshot(
                    &self,
                ) -> ::core::option::Option<
                    ::core::result::Result<::std::vec::Vec<::core::primitive::u8>, #private::serde_json::Error>,
                > {
                    ::core::unreachable!()
                }
                fn decode_snapshot(
                    _: &[::core::primitive::u8],
                ) -> ::core::option::Option<::core::result::Result<Self, #krate::DecodeError>>
                {
                    ::core::unreachable!()
                }
            }
        };
    }
}
