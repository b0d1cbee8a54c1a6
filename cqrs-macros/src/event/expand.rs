//! The code `#[derive(Event)]` generates for a valid input.
//!
//! An upcaster `upcast(from = N, with = f)` becomes a function
//! `__cqrs_upcast_N` on JSON that calls `f` (spanned on `f`, so a function
//! of the wrong signature is reported there). A typed one, `upcast(from =
//! N, shape = S)`, becomes `__cqrs_upcast_N`, which decodes `S`, and
//! `__cqrs_from_N`, which makes the next version of it with `impl
//! Upcast<S> for Next` (spanned on `S`) and hands it on to
//! `__cqrs_from_{N+1}`, until the event itself. `S` is checked once, in an
//! alias, so an unknown or non-`Deserialize` shape is one error.

use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

use super::validate::{Event, Step, Upcaster, alias_literals};
use crate::check::ident_string;
use crate::diag::{edge_spans, spanned_over};
use crate::runtime::{self, checked_alias};

/// `Event` and `Registered` impls, the upcasters, and the inventory
/// submission.
pub(crate) fn expand(event: &Event<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let Event {
        ident,
        name,
        version,
        aliases,
        upcasts,
        shape,
    } = event;
    let rust_name = ident_string(ident);
    let aliases = alias_literals(aliases);
    let froms: Vec<u32> = upcasts.iter().map(|u| u.from).collect();
    let steps = upcasts.iter().map(|u| {
        let function = format_ident!("__cqrs_upcast_{}", u.from);
        let from = u.from;
        match u.step {
            Step::Json(_) => quote!(#krate::Upcaster::json(#from, #function)),
            Step::Typed(_) => quote!(#krate::Upcaster::typed(#from, #function)),
        }
    });
    let functions: TokenStream = upcasts
        .iter()
        .map(|u| upcaster(ident, u, upcasts))
        .collect();
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #krate::Event for #ident {
                const NAME: &'static ::core::primitive::str = #name;
                const VERSION: ::core::primitive::u32 = #version;
                const ALIASES: &'static [&'static ::core::primitive::str] = &[#(#aliases),*];
                const UPCASTERS: &'static [#krate::Upcaster<Self>] = &[#(#steps),*];
                const SHAPE: &'static ::core::primitive::str = #shape;
            }

            #functions

            #[automatically_derived]
            impl #krate::Registered for #ident {
                const REGISTRATION: #krate::registry::Registration =
                    #krate::registry::Registration::Event(&#krate::registry::EventDescriptor {
                        name: #name,
                        version: #version,
                        rust_type: ::core::concat!(::core::module_path!(), "::", #rust_name),
                        aliases: &[#(#aliases),*],
                        upcasts: &[#(#froms),*],
                        shape: #shape,
                    });
            }
            #private::inventory::submit! {
                <#ident as #krate::Registered>::REGISTRATION
            }
        };
    }
}

/// The alias of the shape of version `from`, once checked.
fn shape_alias(from: u32) -> Ident {
    format_ident!("__CqrsShape{from}")
}

/// The functions of one upcaster (see the module docs).
fn upcaster(event: &Ident, upcaster: &Upcaster<'_>, all: &[Upcaster<'_>]) -> TokenStream {
    let private = runtime::private();
    let krate = runtime::krate();
    let from = upcaster.from;
    let function = format_ident!("__cqrs_upcast_{from}");
    match upcaster.step {
        Step::Json(path) => {
            // The whole call spans the path, so that a function of another
            // signature is reported under it; the path and `value` keep
            // their own hygiene.
            let call = spanned_over(quote!(#private::json_upcast), path);
            let mut args = Group::new(Delimiter::Parenthesis, quote!(#path, value));
            args.set_span(Span::call_site().located_at(edge_spans(path).1));
            quote! {
                fn #function(
                    value: #private::serde_json::Value,
                ) -> ::core::result::Result<#private::serde_json::Value, #krate::UpcastError> {
                    #call #args
                }
            }
        }
        Step::Typed(shape) => {
            let alias = shape_alias(from);
            let checked = checked_alias(&alias, shape, quote!(#private::is_shape));
            let onward = format_ident!("__cqrs_from_{from}");
            // The next version: the next upcaster's shape, or the event.
            let next_typed = all
                .iter()
                .any(|u| u.from == from + 1 && matches!(u.step, Step::Typed(_)));
            let next = if next_typed {
                let next = shape_alias(from + 1);
                quote!(#next)
            } else {
                quote!(#event)
            };
            let upcast = spanned_over(quote!(<#next as #krate::Upcast<#alias>>::upcast), shape);
            let body = if next_typed {
                let next_onward = format_ident!("__cqrs_from_{}", from + 1);
                quote!(#next_onward(#upcast(old)))
            } else {
                quote!(#upcast(old))
            };
            quote! {
                #checked

                fn #function(
                    value: #private::serde_json::Value,
                ) -> ::core::result::Result<#event, #private::serde_json::Error> {
                    let old = #private::decode_shape::<#alias>(value)?;
                    ::core::result::Result::Ok(#onward(old))
                }

                fn #onward(old: #alias) -> #event {
                    #body
                }
            }
        }
    }
}
