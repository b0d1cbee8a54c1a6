//! The code `#[derive(Aggregate)]` generates for a valid input.
//!
//! Each listed type is checked once, on its token inside `events(..)` /
//! `commands(..)`: a type alias `__CqrsEvent0 = <E as Checked<{ is_event::<E>()
//! }>>::Type` is `E` when `E` is an event, and an error type after one error
//! ("`E` is not an event") when it is not, which silences every other use.
//! The `apply_event` arm for `Opened` is the check that `impl Apply<Opened>`
//! exists, spanned on `Opened`.
//!
//! Hygiene: only the tokens that carry a check get the user's span; the
//! bindings the generated code introduces and uses (`self`, `event`,
//! `serializer`) keep the call site's, so the expansion also compiles when
//! the listed types come from a `macro_rules!` macro's fragments.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Ident, Path};

use super::validate::{Aggregate, EventRef};
use crate::check::ident_string;
use crate::diag::{set_spans, spanned_over, tokens_to_string};
use crate::runtime;
use crate::runtime::{checked_alias, checked_alias_with};

/// The event enum at module level, everything else in a `const _` block.
pub(crate) fn expand(aggregate: &Aggregate<'_>) -> TokenStream {
    let event_enum = event_enum(aggregate);
    let checked = checked_events(&aggregate.events);
    let conversions = conversions_tokens(&aggregate.event_enum, &aggregate.events);
    let event_set = event_set(aggregate);
    let serde = serde_impls(aggregate);
    let aggregate_impl = aggregate_impl(aggregate);
    let registration = registration(aggregate);
    quote! {
        #event_enum
        const _: () = {
            #checked
            #conversions
            #event_set
            #serde
            #aggregate_impl
            #registration
        };
    }
}

/// The alias of the `index`th listed event, once checked.
pub(crate) fn event_alias(index: usize) -> Ident {
    format_ident!("__CqrsEvent{index}")
}

/// `type __CqrsEvent<i> = <E as Checked<{ is_event::<E>() }>>::Type;` for
/// each event, spanned on it.
pub(crate) fn checked_events(events: &[EventRef<'_>]) -> TokenStream {
    let private = runtime::private();
    events
        .iter()
        .enumerate()
        .map(|(index, EventRef { path, .. })| {
            let alias = event_alias(index);
            checked_alias(&alias, path, quote!(#private::is_event))
        })
        .collect()
}

/// `<Ident>Event`: one variant per event, documented, with the aggregate's
/// visibility.
pub(crate) fn event_enum_tokens(
    aggregate: &Ident,
    vis: &syn::Visibility,
    event_enum: &Ident,
    events: &[EventRef<'_>],
) -> TokenStream {
    let doc = format!(" The events of aggregate [`{}`].", ident_string(aggregate));
    let variants = events.iter().map(|EventRef { path, variant }| {
        let doc = format!(" [`{}`]", tokens_to_string(path));
        quote!(#[doc = #doc] #variant(#path))
    });
    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        // Variants are named after the user's event types, which often share
        // the aggregate's name as a prefix.
        #[allow(clippy::enum_variant_names)]
        #vis enum #event_enum {
            #(#variants,)*
        }
    }
}

fn event_enum(aggregate: &Aggregate<'_>) -> TokenStream {
    event_enum_tokens(
        aggregate.ident,
        aggregate.vis,
        &aggregate.event_enum,
        &aggregate.events,
    )
}

/// `From<E>` for the enum, for each event (cqrs-core makes each one an
/// `EventOf<Agg>`, so `events![..]` accepts it). Spanned at the call site:
/// spanned on the event, an unknown type would also get a second error
/// suggesting a type parameter for the impl.
pub(crate) fn conversions_tokens(event_enum: &Ident, events: &[EventRef<'_>]) -> TokenStream {
    events
        .iter()
        .map(|EventRef { path, variant }| {
            quote! {
                #[automatically_derived]
                impl ::core::convert::From<#path> for #event_enum {
                    fn from(event: #path) -> Self {
                        Self::#variant(event)
                    }
                }
            }
        })
        .collect()
}

/// `event_name::<alias>()` (or `event_version`), see `__private::event_name`.
fn event_const(alias: &Ident, constant: &str) -> TokenStream {
    let private = runtime::private();
    let function = Ident::new(constant, Span::call_site());
    quote!(#private::#function::<#alias>())
}

fn aliases(events: &[EventRef<'_>]) -> Vec<Ident> {
    (0..events.len()).map(event_alias).collect()
}

fn event_set(aggregate: &Aggregate<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let event_enum = &aggregate.event_enum;
    let aliases = aliases(&aggregate.events);
    let names: Vec<_> = aliases
        .iter()
        .map(|a| event_const(a, "event_name"))
        .collect();
    let versions = aliases.iter().map(|a| event_const(a, "event_version"));
    let variants: Vec<_> = aggregate.events.iter().map(|e| e.variant).collect();
    quote! {
        #[automatically_derived]
        impl #krate::EventSet for #event_enum {
            const NAMES: &'static [&'static ::core::primitive::str] = &[#(#names),*];

            fn event_name(&self) -> &'static ::core::primitive::str {
                match self {
                    #(Self::#variants(_) => #names,)*
                }
            }

            fn event_version(&self) -> ::core::primitive::u32 {
                match self {
                    #(Self::#variants(_) => #versions,)*
                }
            }

            fn encode(
                &self,
            ) -> ::core::result::Result<::std::vec::Vec<::core::primitive::u8>, #private::serde_json::Error> {
                match self {
                    #(Self::#variants(event) => #private::encode_event::<#aliases>(event),)*
                }
            }

            fn decode(
                name: &::core::primitive::str,
                version: ::core::primitive::u32,
                payload: &[::core::primitive::u8],
            ) -> ::core::result::Result<Self, #krate::DecodeError> {
                #(
                    if #private::is_stored_name::<#aliases>(name) {
                        return #private::decode_event::<#aliases>(name, version, payload)
                            .map(Self::#variants);
                    }
                )*
                ::core::result::Result::Err(#private::unknown_event(name, version))
            }
        }
    }
}

fn serde_impls(aggregate: &Aggregate<'_>) -> TokenStream {
    let private = runtime::private();
    let event_enum = &aggregate.event_enum;
    let variants = aggregate.events.iter().map(|e| e.variant);
    let aliases = aliases(&aggregate.events);
    quote! {
        #[automatically_derived]
        impl #private::serde::Serialize for #event_enum {
            fn serialize<__S: #private::serde::Serializer>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                match self {
                    #(Self::#variants(event) => #private::serialize_tagged::<__S, #aliases>(serializer, event),)*
                }
            }
        }
        #[automatically_derived]
        impl<'de> #private::serde::Deserialize<'de> for #event_enum {
            fn deserialize<__D: #private::serde::Deserializer<'de>>(
                deserializer: __D,
            ) -> ::core::result::Result<Self, __D::Error> {
                #private::deserialize_tagged(deserializer)
            }
        }
    }
}

fn aggregate_impl(aggregate: &Aggregate<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let Aggregate {
        ident,
        event_enum,
        name,
        error,
        ..
    } = aggregate;
    let services = services_type(aggregate);
    let snapshot_every = snapshot_every(aggregate);
    // The arm for each event is the check that `impl Apply<E>` exists: the
    // path spanned on `E` inside `events(..)`, so `Apply`'s
    // `on_unimplemented` message underlines the user's token.
    let arms = aggregate
        .events
        .iter()
        .enumerate()
        .map(|(index, EventRef { path, variant })| {
            let alias = event_alias(index);
            let apply = spanned_over(quote!(<Self as #krate::Apply<#alias>>::apply), *path);
            quote!(#event_enum::#variant(event) => #apply(self, event),)
        });
    let (checked_state, encode, decode) = match &aggregate.snapshot {
        // Checked once, on `snapshot_every`: that is what asks for serde on
        // the aggregate.
        Some(snapshot) => {
            let alias = Ident::new("__CqrsSnapshotState", Span::call_site());
            let check = set_spans(quote!(#private::is_snapshot_state), snapshot.key.span());
            let state = set_spans(quote!(#ident), snapshot.key.span());
            let checked = checked_alias(&alias, &state, check);
            let shape = &snapshot.state_shape;
            // The fingerprint of the state's shape travels with each
            // snapshot: one taken by another shape is not decoded.
            let checked = quote! {
                #checked
                const __CQRS_STATE_SHAPE: ::core::primitive::u64 = #private::fingerprint(#shape);
            };
            (
                checked,
                quote!(::core::option::Option::Some(#private::encode_snapshot::<#alias>(self, __CQRS_STATE_SHAPE))),
                quote!(::core::option::Option::Some(#private::decode_snapshot::<#alias>(
                    <Self as #krate::Aggregate>::NAME,
                    bytes,
                    __CQRS_STATE_SHAPE,
                ))),
            )
        }
        None => (
            TokenStream::new(),
            quote!(::core::option::Option::None),
            quote! {
                let _ = bytes;
                ::core::option::Option::None
            },
        ),
    };
    quote! {
        #checked_state

        #[automatically_derived]
        impl #krate::Aggregate for #ident {
            const NAME: &'static ::core::primitive::str = #name;
            const SNAPSHOT_EVERY: ::core::option::Option<::core::primitive::u64> = #snapshot_every;
            type Event = #event_enum;
            type Error = #error;
            type Services = #services;

            fn apply_event(&mut self, event: &#event_enum) {
                match event {
                    #(#arms)*
                }
            }

            fn encode_snapshot(
                &self,
            ) -> ::core::option::Option<
                ::core::result::Result<::std::vec::Vec<::core::primitive::u8>, #private::serde_json::Error>,
            > {
                #encode
            }

            fn decode_snapshot(
                bytes: &[::core::primitive::u8],
            ) -> ::core::option::Option<::core::result::Result<Self, #krate::DecodeError>>
            {
                #decode
            }

            fn error_json(
                error: &#error,
            ) -> ::core::option::Option<#private::serde_json::Value> {
                #[allow(unused_imports)]
                use #private::{NoErrorJson as _, ViaErrorJson as _};
                (&#private::ErrorProbe::<#error>(::core::marker::PhantomData)).error_json(error)
            }
        }
    }
}

fn services_type(aggregate: &Aggregate<'_>) -> TokenStream {
    match aggregate.services {
        Some(ty) => quote!(#ty),
        None => quote!(()),
    }
}

fn snapshot_every(aggregate: &Aggregate<'_>) -> TokenStream {
    match &aggregate.snapshot {
        Some(snapshot) => {
            let every = snapshot.every;
            quote!(::core::option::Option::Some(#every))
        }
        None => quote!(::core::option::Option::None),
    }
}

/// The alias of the `index`th listed command, once checked.
fn command_alias(index: usize) -> Ident {
    format_ident!("__CqrsCommand{index}")
}

fn registration(aggregate: &Aggregate<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let Aggregate { ident, name, .. } = aggregate;
    let rust_name = ident_string(ident);
    let services = services_type(aggregate);
    let services_name = aggregate
        .services
        .map_or_else(|| "()".to_owned(), tokens_to_string);
    let snapshot_every = snapshot_every(aggregate);
    // The descriptor each event's own derive registered (its Rust path is
    // where the event is defined, which the aggregate cannot know).
    let events = aggregate
        .events
        .iter()
        .enumerate()
        .map(|(index, EventRef { variant, .. })| {
            let alias = event_alias(index);
            let fallback_rust_type = ident_string(variant);
            quote! {
                #private::event_descriptor::<#alias>(
                    ::core::concat!(::core::module_path!(), "::", #fallback_rust_type),
                )
            }
        });
    // Each command is checked, on its token, to be a command of this
    // aggregate.
    let checked_commands: TokenStream = aggregate
        .commands
        .iter()
        .enumerate()
        .map(|(index, path)| checked_command(&command_alias(index), path, ident))
        .collect();
    let commands = (0..aggregate.commands.len()).map(|index| {
        let alias = command_alias(index);
        quote!(<#alias as #krate::Command>::NAME)
    });
    quote! {
        #checked_commands

        const __CQRS_DESCRIPTOR: #krate::registry::AggregateDescriptor =
            #krate::registry::AggregateDescriptor {
                name: #name,
                rust_type: ::core::concat!(::core::module_path!(), "::", #rust_name),
                events: &[#(#events),*],
                commands: &[#(#commands),*],
                snapshot_every: #snapshot_every,
                services_type: #services_name,
                services_type_id: #private::type_id_of::<#services>,
            };

        #[automatically_derived]
        impl #krate::Registered for #ident {
            const REGISTRATION: #krate::registry::Registration =
                #krate::registry::Registration::Aggregate(&__CQRS_DESCRIPTOR);
        }

        #private::inventory::submit! {
            <#ident as #krate::Registered>::REGISTRATION
        }
    }
}

/// `type <alias> = <C as Checked<{ is_command_of::<C, Agg>() }>>::Type;`.
fn checked_command(alias: &Ident, path: &Path, aggregate: &Ident) -> TokenStream {
    let private = runtime::private();
    checked_alias_with(
        alias,
        path,
        quote!(#private::is_command_of),
        quote!(, #aggregate),
    )
}
