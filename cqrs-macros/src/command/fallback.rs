//! What `#[derive(Command)]` still generates next to its errors: the
//! `Command` impl with `unreachable!()` bodies, so the aggregate's
//! `commands(..)` and `impl Handle<..>` keep compiling and only the user's
//! mistake is reported. When the target aggregate is unknown (missing, or
//! not a plain type), it is an erroneous type, which matches any aggregate.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Type;

use super::parse::Input;
use crate::check::{self, ident_string};
use crate::diag::{Ctxt, Poison};
use crate::runtime;

/// The `Command` impl, if the input is a struct or an enum.
pub(crate) fn expand(input: &Input<'_>, poison: &Poison) -> TokenStream {
    if !check::fallback_possible(input.original) {
        return TokenStream::new();
    }
    let krate = runtime::krate();
    let ident = input.ident;
    // A known aggregate is checked as in the expansion: a type that is no
    // aggregate is then one error, not one per use.
    let (checked, aggregate) = match &input.aggregate {
        Some(ty) if is_plain(ty) => {
            let private = runtime::private();
            let alias = syn::Ident::new("__CqrsAggregate", proc_macro2::Span::call_site());
            (
                runtime::checked_alias(&alias, ty, quote!(#private::is_aggregate)),
                quote!(#alias),
            )
        }
        _ => (TokenStream::new(), poison.ty()),
    };
    let name = input
        .name
        .as_ref()
        .map_or_else(|| ident_string(ident), syn::LitStr::value);
    let bounds = quote!(::core::marker::Send + ::core::marker::Sync + 'static);
    let (params, self_ty, where_clause) =
        check::fallback_generics(&input.original.generics, ident, bounds);
    let unknown_type = poison.definition();
    quote! {
        const _: () = {
            #unknown_type
            #checked
            #[automatically_derived]
            impl #params #krate::Command for #self_ty #where_clause {
                const NAME: &'static ::core::primitive::str = #name;
                type Aggregate = #aggregate;

                fn aggregate_id(&self) -> ::std::string::String {
                    ::core::unreachable!()
                }

                fn dispatch<'a>(
                    _: &'a Self::Aggregate,
                    _: &'a Self,
                    _: &'a <Self::Aggregate as #krate::Aggregate>::Services,
                ) -> impl ::core::future::Future<
                    Output = ::core::result::Result<
                        #krate::Events<Self::Aggregate>,
                        <Self::Aggregate as #krate::Aggregate>::Error,
                    >,
                > + ::core::marker::Send
                       + 'a {
                    ::core::future::pending()
                }
            }
        };
    }
}

/// Whether `ty` passes the `aggregate = X` check, without reporting.
fn is_plain(ty: &Type) -> bool {
    let cx = Ctxt::new();
    let plain = check::plain_type(&cx, "aggregate", ty, "an aggregate type");
    let _ = cx.check();
    plain
}
