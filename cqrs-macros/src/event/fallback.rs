//! What `#[derive(Event)]` still generates next to its errors, so other derives
//! that list this event do not fail too.

use proc_macro2::TokenStream;
use quote::quote;

use super::parse::Input;
use crate::check::ident_string;
use crate::runtime;

/// The `Event` impl, with the name and version as written (or the defaults);
/// nothing for a generic type, whose parameters are unknown.
pub(crate) fn expand(input: &Input<'_>) -> TokenStream {
    if !crate::check::fallback_possible(input.original) {
        return TokenStream::new();
    }
    let krate = runtime::krate();
    let ident = input.ident;
    let name = input
        .name
        .as_ref()
        .map_or_else(|| ident_string(ident), syn::LitStr::value);
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #krate::Event for #ident {
                const NAME: &'static ::core::primitive::str = #name;
                const VERSION: ::core::primitive::u32 = 1;
            }
        };
    }
}
