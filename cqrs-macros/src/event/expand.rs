//! The code `#[derive(Event)]` generates for a valid input.

use proc_macro2::TokenStream;
use quote::quote;

use super::validate::Event;
use crate::check::ident_string;
use crate::runtime;

/// `Event` and `Registered` impls and the inventory submission.
pub(crate) fn expand(event: &Event<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let Event {
        ident,
        name,
        version,
    } = event;
    let rust_name = ident_string(ident);
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #krate::Event for #ident {
                const NAME: &'static ::core::primitive::str = #name;
                const VERSION: ::core::primitive::u32 = #version;
            }
            #[automatically_derived]
            impl #krate::Registered for #ident {
                const REGISTRATION: #krate::registry::Registration =
                    #krate::registry::Registration::Event(&#krate::registry::EventDescriptor {
                        name: #name,
                        version: #version,
                        rust_type: ::core::concat!(::core::module_path!(), "::", #rust_name),
                    });
            }
            #private::inventory::submit! {
                <#ident as #krate::Registered>::REGISTRATION
            }
        };
    }
}
