//! What `#[derive(Query)]` still generates next to its errors: the `Query`
//! impl with an `unreachable!()` body, when projection and output are known,
//! so `engine.query(..)` calls keep compiling and only the user's mistake is
//! reported.

use proc_macro2::TokenStream;
use quote::quote;

use super::parse::Input;
use crate::check::ident_string;
use crate::diag::{Ctxt, Poison};
use crate::runtime;

/// The `Query` impl; a projection or output that is unknown (missing, or
/// reported) is an erroneous type, which matches whatever uses it.
pub(crate) fn expand(input: &Input<'_>, poison: &Poison) -> TokenStream {
    if !crate::check::fallback_possible(input.original) {
        return TokenStream::new();
    }
    let krate = runtime::krate();
    let ident = input.ident;
    let known = |ty: &Option<syn::Type>, key: &str, what: &str| match ty {
        Some(ty) if acceptable(ty, key, what) => quote!(#ty),
        _ => poison.ty(),
    };
    let projection = known(&input.projection, "projection", "a projection type");
    let output = known(&input.output, "output", "");
    let name = input
        .name
        .as_ref()
        .map_or_else(|| ident_string(ident), syn::LitStr::value);
    let bounds = quote!(::core::marker::Send + ::core::marker::Sync + 'static);
    let (params, self_ty, where_clause) =
        crate::check::fallback_generics(&input.original.generics, ident, bounds);
    let unknown_type = poison.definition();
    quote! {
        const _: () = {
            #unknown_type
            #[automatically_derived]
            impl #params #krate::Query for #self_ty #where_clause {
                const NAME: &'static ::core::primitive::str = #name;
                type Projection = #projection;
                type Output = #output;

                fn answer_from(_: &Self::Projection, _: &Self) -> Self::Output {
                    ::core::unreachable!()
                }
            }
        };
    }
}

/// Whether `ty` passes its key's check, without reporting.
fn acceptable(ty: &syn::Type, key: &str, what: &str) -> bool {
    let cx = Ctxt::new();
    let ok = if what.is_empty() {
        crate::check::concrete_type(&cx, key, ty)
    } else {
        crate::check::plain_type(&cx, key, ty, what)
    };
    let _ = cx.check();
    ok
}
