//! What `#[derive(Command)]` still generates next to its errors: the
//! `Command` impl with `unreachable!()` bodies, when the target aggregate is
//! known, so the aggregate's `commands(..)` and `impl Handle<..>` keep
//! compiling and only the user's mistake is reported.

use proc_macro2::TokenStream;
use quote::quote;

use super::parse::Input;
use crate::check::ident_string;
use crate::runtime;

/// The `Command` impl, if the input names an aggregate and is not generic.
pub(crate) fn expand(input: &Input<'_>) -> TokenStream {
    let Some(aggregate) = &input.aggregate else {
        return TokenStream::new();
    };
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
            impl #krate::Command for #ident {
                const NAME: &'static ::core::primitive::str = #name;
                type Aggregate = #aggregate;

                fn aggregate_id(&self) -> ::std::string::String {
                    ::core::unreachable!()
                }

                fn dispatch<'a>(
                    _: &'a #aggregate,
                    _: &'a Self,
                    _: &'a <#aggregate as #krate::Aggregate>::Services,
                ) -> impl ::core::future::Future<
                    Output = ::core::result::Result<
                        #krate::Events<#aggregate>,
                        <#aggregate as #krate::Aggregate>::Error,
                    >,
                > + ::core::marker::Send
                       + 'a {
                    ::core::future::pending()
                }
            }
        };
    }
}
