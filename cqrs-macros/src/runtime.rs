//! The path generated code uses to reach the runtime.
//!
//! Always absolute (`::cqrs_core`), so the expansion works whatever the user
//! imported or shadowed; cqrs-core itself declares `extern crate self as
//! cqrs_core` so its own tests can use the derives.

use proc_macro2::{Delimiter, Group, TokenStream};
use quote::{ToTokens, quote};
use syn::Ident;

use crate::diag::{edge_spans, set_spans};

/// `::cqrs_core`.
pub(crate) fn krate() -> TokenStream {
    quote!(::cqrs_core)
}

/// `::cqrs_core::__private`, the helpers that are not public API.
pub(crate) fn private() -> TokenStream {
    quote!(::cqrs_core::__private)
}

/// `type <alias> = <T as Checked<{ check::<T>() }>>::Type;`: the check's
/// error lands on the user's `T`, which keeps its own spans; the glue around
/// it is spanned on `T` too.
pub(crate) fn checked_alias<T: ToTokens>(alias: &Ident, ty: &T, check: TokenStream) -> TokenStream {
    checked_alias_with(alias, ty, check, TokenStream::new())
}

/// [`checked_alias`] with more arguments to the check after `T`:
/// `check::<T, #more>()`.
pub(crate) fn checked_alias_with<T: ToTokens>(
    alias: &Ident,
    ty: &T,
    check: TokenStream,
    more: TokenStream,
) -> TokenStream {
    let private = private();
    let (start, end) = edge_spans(ty);
    let open = set_spans(quote!(<), start);
    let as_checked = set_spans(quote!(as #private::Checked), end);
    let call = set_spans(quote!(#check::<), end);
    let close = set_spans(quote!(#more >()), end);
    let mut body = Group::new(Delimiter::Brace, quote!(#call #ty #close));
    body.set_span(proc_macro2::Span::call_site().located_at(end));
    let tail = set_spans(quote!(>>::Type), end);
    let lt = set_spans(quote!(<), end);
    quote! {
        #[allow(non_camel_case_types)]
        type #alias = #open #ty #as_checked #lt #body #tail;
    }
}
