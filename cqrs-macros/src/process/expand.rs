//! The code `#[derive(ProcessManager)]` generates for a valid input.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use super::validate::Process;
use crate::check::ident_string;
use crate::diag::spanned_over;
use crate::runtime::{self, checked_alias};

/// `ProcessManager`, `Issues` and `Registered` impls and the inventory
/// submission.
pub(crate) fn expand(process: &Process<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let Process {
        ident,
        name,
        events,
        commands,
    } = process;
    let rust_name = ident_string(ident);
    let event_aliases: Vec<Ident> = (0..events.len())
        .map(|index| format_ident!("__CqrsEvent{index}"))
        .collect();
    let command_aliases: Vec<Ident> = (0..commands.len())
        .map(|index| format_ident!("__CqrsCommand{index}"))
        .collect();
    let checked_events: TokenStream = events
        .iter()
        .zip(&event_aliases)
        .map(|(path, alias)| checked_alias(alias, *path, quote!(#private::is_event)))
        .collect();
    let checked_commands: TokenStream = commands
        .iter()
        .zip(&command_aliases)
        .map(|(path, alias)| checked_alias(alias, *path, quote!(#private::is_command)))
        .collect();
    let event_names: Vec<_> = event_aliases
        .iter()
        .map(|alias| quote!(#private::event_name::<#alias>()))
        .collect();
    let command_names: Vec<_> = command_aliases
        .iter()
        .map(|alias| quote!(<#alias as #krate::Command>::NAME))
        .collect();
    // The `route` call for each event is the check that `impl Correlate<E>`
    // and `impl React<E>` exist: spanned on `E` inside `events(..)`.
    let branches = events.iter().zip(&event_aliases).map(|(path, alias)| {
        let route = spanned_over(quote!(#private::route::<Self, #alias>), *path);
        quote! {
            if #private::is_stored_name::<#alias>(&record.event_name) {
                let envelope = #krate::Envelope::<#alias>::decode(record)?;
                return ::core::result::Result::Ok(::core::option::Option::Some(#route(envelope)));
            }
        }
    });
    let descriptors = events.iter().zip(&event_aliases).map(|(path, alias)| {
        let rust_type = crate::diag::tokens_to_string(*path);
        quote! {
            #private::event_descriptor::<#alias>(
                ::core::concat!(::core::module_path!(), "::", #rust_type),
            )
        }
    });
    let issues = command_aliases.iter().map(|alias| {
        quote! {
            #[automatically_derived]
            impl #krate::process::Issues<#alias> for #ident {
                fn recover_from(
                    &mut self,
                    refused: &#krate::process::Refused<#alias>,
                ) -> ::core::option::Option<#krate::process::Reaction<Self>> {
                    #[allow(unused_imports)]
                    use #private::{NoRecover as _, ViaRecover as _};
                    let probe = #private::RecoverProbe::<Self, #alias>(::core::marker::PhantomData);
                    (&probe).recover_fn().map(|recover| recover(self, refused))
                }
            }
        }
    });
    quote! {
        const _: () = {
            #checked_events
            #checked_commands

            #[automatically_derived]
            impl #krate::process::ProcessManager for #ident {
                const NAME: &'static ::core::primitive::str = #name;
                const EVENTS: &'static [&'static ::core::primitive::str] = &[#(#event_names),*];
                const COMMANDS: &'static [&'static ::core::primitive::str] = &[#(#command_names),*];
                const EVENT_DESCRIPTORS: &'static [#krate::registry::EventDescriptor] = &[#(#descriptors),*];

                fn route(
                    record: &::std::sync::Arc<#krate::RecordedEvent>,
                ) -> ::core::result::Result<
                    ::core::option::Option<#krate::process::Routed<Self>>,
                    #krate::DecodeError,
                > {
                    #(#branches)*
                    ::core::result::Result::Ok(::core::option::Option::None)
                }

                fn on_deadline(
                    &mut self,
                    deadline: &#krate::process::Deadline,
                ) -> ::core::option::Option<#krate::process::Reaction<Self>> {
                    #[allow(unused_imports)]
                    use #private::{NoTimeout as _, ViaTimeout as _};
                    let probe = #private::Probe::<Self>(::core::marker::PhantomData);
                    (&probe).timeout_fn().map(|timeout| timeout(self, deadline))
                }
            }

            #(#issues)*

            #[automatically_derived]
            impl #krate::Registered for #ident {
                const REGISTRATION: #krate::registry::Registration =
                    #krate::registry::Registration::Process(
                        &#krate::registry::ProcessDescriptor {
                            name: #name,
                            rust_type: ::core::concat!(::core::module_path!(), "::", #rust_name),
                            events: <#ident as #krate::process::ProcessManager>::EVENTS,
                            commands: <#ident as #krate::process::ProcessManager>::COMMANDS,
                            start: #private::start_process::<#ident>,
                        },
                    );
            }

            #private::inventory::submit! {
                <#ident as #krate::Registered>::REGISTRATION
            }
        };
    }
}
