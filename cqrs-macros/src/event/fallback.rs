//! What `#[derive(Event)]` still generates next to its errors, so other derives
//! that list this event do not fail too.

use proc_macro2::TokenStream;
use quote::quote;

use super::parse::Input;
use crate::check::{self, ident_string};
use crate::runtime;

/// The `Event` and `Registered` impls, with the name and version as written
/// when they are valid (or the defaults); a generic event gets them with its
/// own generics.
pub(crate) fn expand(input: &Input<'_>) -> TokenStream {
    if !check::fallback_possible(input.original) {
        return TokenStream::new();
    }
    let krate = runtime::krate();
    let ident = input.ident;
    let name = input
        .name
        .as_ref()
        .map_or_else(|| ident_string(ident), syn::LitStr::value);
    let version = input
        .version
        .as_ref()
        .and_then(|lit| lit.base10_parse::<u32>().ok())
        .filter(|version| *version >= 1)
        .unwrap_or(1);
    let rust_name = ident_string(ident);
    // The aliases as written, for the other derives that read them; no
    // upcasters (their types or functions may be the mistake).
    let aliases = &input.aliases;
    let shape = crate::shape::of(input.original);
    let bounds = quote!(
        #krate::__private::serde::Serialize
            + #krate::__private::serde::de::DeserializeOwned
            + ::core::clone::Clone
            + ::core::fmt::Debug
            + ::core::cmp::PartialEq
            + ::core::marker::Send
            + ::core::marker::Sync
            + 'static
    );
    let (params, self_ty, where_clause) =
        check::fallback_generics(&input.original.generics, ident, bounds);
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #params #krate::Event for #self_ty #where_clause {
                const NAME: &'static ::core::primitive::str = #name;
                const VERSION: ::core::primitive::u32 = #version;
                const ALIASES: &'static [&'static ::core::primitive::str] = &[#(#aliases),*];
                const SHAPE: &'static ::core::primitive::str = #shape;
            }
            #[automatically_derived]
            impl #params #krate::Registered for #self_ty #where_clause {
                const REGISTRATION: #krate::registry::Registration =
                    #krate::registry::Registration::Event(&#krate::registry::EventDescriptor {
                        name: #name,
                        version: #version,
                        rust_type: ::core::concat!(::core::module_path!(), "::", #rust_name),
                        aliases: &[#(#aliases),*],
                        upcasts: &[],
                        shape: #shape,
                    });
            }
        };
    }
}
