//! The code `#[derive(ProcessManager)]` generates for a valid input.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use super::validate::Process;
use crate::check::ident_string;
use crate::diag::{edge_spans, set_spans, spanned_over};
use crate::runtime::{self, checked_alias, checked_alias_with};

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
    // The type is checked once to be `Default`, `Serialize` and
    // `Deserialize`, on its name; the impl assumes it (a bound under a
    // binder is not checked where it is written), and what needs the impl
    // goes through the checked type: a missing derive is one error, not
    // one per supertrait and item.
    let state = format_ident!("__CqrsSelf");
    let checked_state = checked_alias(&state, *ident, quote!(#krate::process::is_process_state));
    let assumed_state = quote! {
        where
            for<'__cqrs> #ident: ::core::default::Default
                + #private::serde::Serialize
                + #private::serde::de::DeserializeOwned
    };
    let command_names: Vec<_> = command_aliases
        .iter()
        .map(|alias| quote!(<#alias as #krate::Command>::NAME))
        .collect();
    // Each event is checked to have its `impl Correlate<E>`, then the
    // `route` call checks `impl React<E>`: both spanned on `E` inside
    // `events(..)`, and an event without either impl is one error (the
    // route of an event without `Correlate` takes the error type).
    let routed_aliases: Vec<Ident> = (0..events.len())
        .map(|index| format_ident!("__CqrsRouted{index}"))
        .collect();
    let checked_routed: TokenStream = events
        .iter()
        .zip(&event_aliases)
        .zip(&routed_aliases)
        .map(|((path, alias), routed)| {
            let event = set_spans(quote!(#alias), edge_spans(*path).1);
            checked_alias_with(
                routed,
                &event,
                quote!(#krate::process::is_correlated),
                quote!(, #ident),
            )
        })
        .collect();
    let branches = events
        .iter()
        .zip(&event_aliases)
        .zip(&routed_aliases)
        .map(|((path, alias), routed)| {
            let route = spanned_over(quote!(#private::route::<Self, #routed>), *path);
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
            #checked_state
            #checked_events
            #checked_routed
            #checked_commands

            #[automatically_derived]
            impl #krate::process::ProcessManager for #ident #assumed_state {
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
                            events: <#state as #krate::process::ProcessManager>::EVENTS,
                            commands: <#state as #krate::process::ProcessManager>::COMMANDS,
                            start: #private::start_process::<#state>,
                        },
                    );
            }

            #private::inventory::submit! {
                <#ident as #krate::Registered>::REGISTRATION
            }
        };
    }
}
