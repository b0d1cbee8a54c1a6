//! What `#[derive(Query)]` still generates next to its errors: the `Query`
//! impl with an `unreachable!()` body, when projection and output are known,
//! so `engine.query(..)` calls keep compiling and only the user's mistake is
//! reported.

use proc_macro2::TokenStream;
use quote::quote;

use super::parse::Input;
use crate::check::ident_string;
use crate::runtime;

/// The `Query` impl, if the input names its projection and output and is
/// not generic.
pub(crate) fn expand(input: &Input<'_>) -> TokenStream {
    let (Some(projection), Some(output)) = (&input.projection, &input.output) else {
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
            impl #krate::Query for #ident {
                const NAME: &'static ::core::primitive::str = #name;
                type Projection = #projection;
                type Output = #output;

                fn answer_from(_: &#projection, _: &Self) -> #output {
                    ::core::unreachable!()
                }
            }
        };
    }
}
