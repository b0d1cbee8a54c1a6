//! What `#[derive(Projection)]` still generates next to its errors: the
//! `Projection` impl with an `unreachable!()` body, so queries on it keep
//! compiling and only the user's mistake is reported.

use proc_macro2::TokenStream;
use quote::quote;

use super::parse::Input;
use crate::check::ident_string;
use crate::runtime;

/// The `Projection` impl (with the input's own generics, if it has any).
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
    let bounds =
        quote!(::core::default::Default + ::core::marker::Send + ::core::marker::Sync + 'static);
    let (params, self_ty, where_clause) =
        crate::check::fallback_generics(&input.original.generics, ident, bounds);
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #params #krate::Projection for #self_ty #where_clause {
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
