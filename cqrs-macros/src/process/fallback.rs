//! What `#[derive(ProcessManager)]` still generates next to its errors:
//! the `ProcessManager` impl with `unreachable!()` bodies, so the user's
//! `React` and `Correlate` impls keep compiling and only the mistake is
//! reported.

use proc_macro2::TokenStream;
use quote::quote;

use super::parse::Input;
use crate::check::ident_string;
use crate::runtime;

/// The `ProcessManager` impl (with the input's own generics, if any).
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
    let bounds = quote!(
        ::core::default::Default
            + #krate::__private::serde::Serialize
            + #krate::__private::serde::de::DeserializeOwned
            + ::core::marker::Send
            + ::core::marker::Sync
            + 'static
    );
    let (params, self_ty, where_clause) =
        crate::check::fallback_generics(&input.original.generics, ident, bounds);
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #params #krate::process::ProcessManager for #self_ty #where_clause {
                const NAME: &'static ::core::primitive::str = #name;
                const EVENTS: &'static [&'static ::core::primitive::str] = &[];
                const COMMANDS: &'static [&'static ::core::primitive::str] = &[];

                fn route(
                    _: &::std::sync::Arc<#krate::RecordedEvent>,
                ) -> ::core::result::Result<
                    ::core::option::Option<#krate::process::Routed<Self>>,
                    #krate::DecodeError,
                > {
                    ::core::unreachable!()
                }

                fn on_deadline(
                    &mut self,
                    _: &#krate::process::Deadline,
                ) -> ::core::option::Option<#krate::process::Reaction<Self>> {
                    ::core::unreachable!()
                }
            }
        };
    }
}
