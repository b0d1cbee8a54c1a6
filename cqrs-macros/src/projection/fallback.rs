//! What `#[derive(Projection)]` still generates next to its errors: the
//! `Projection` impl with an `unreachable!()` body, so queries on it keep
//! compiling and only the user's mistake is reported.

use proc_macro2::TokenStream;
use quote::quote;

use super::parse::Input;
use crate::check::ident_string;
use crate::runtime;

/// The `Projection` impl, if the input is not generic.
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
            impl #krate::Projection for #ident {
                const NAME: &'static ::core::primitive::str = #name;
                const EVENTS: &'static [&'static ::core::primitive::str] = &[];

                fn project_recorded(
                    &mut self,
                    _: &::std::sync::Arc<#krate::RecordedEvent>,
                ) -> ::core::result::Result<(), #krate::DecodeError> {
                    ::core::unreachable!()
                }
            }
        };
    }
}
