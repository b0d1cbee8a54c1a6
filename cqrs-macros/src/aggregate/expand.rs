//! The code `#[derive(Aggregate)]` generates for a valid input.
//!
//! Every expression that needs something of a listed type is spanned on that
//! type's token inside `events(..)` / `commands(..)`, so a missing impl is
//! reported there: the `apply_event` arm for `Opened` is the check that
//! `impl Apply<Opened>` exists.

use proc_macro2::TokenStream;
use quote::quote;

use super::validate::{Aggregate, EventRef};
use crate::check::ident_string;
use crate::diag::{around, set_spans, spanned_as, tokens_to_string};
use crate::runtime;

/// The event enum at module level, everything else in a `const _` block.
pub(crate) fn expand(aggregate: &Aggregate<'_>) -> TokenStream {
    let event_enum = event_enum(aggregate);
    let conversions = conversions(aggregate);
    let event_set = event_set(aggregate);
    let serde = serde_impls(aggregate);
    let aggregate_impl = aggregate_impl(aggregate);
    let registration = registration(aggregate);
    quote! {
        #event_enum
        const _: () = {
            #conversions
            #event_set
            #serde
            #aggregate_impl
            #registration
        };
    }
}

/// `<Ident>Event`: one variant per event, documented, with the aggregate's
/// visibility.
pub(crate) fn event_enum_tokens(
    aggregate: &syn::Ident,
    vis: &syn::Visibility,
    event_enum: &syn::Ident,
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

/// `From<E>` for the enum and `EventOf<Agg>` for each event.
pub(crate) fn conversions_tokens(
    aggregate: &syn::Ident,
    event_enum: &syn::Ident,
    events: &[EventRef<'_>],
) -> TokenStream {
    let krate = runtime::krate();
    events
        .iter()
        .map(|EventRef { path, variant }| {
            // Spanned on the event: "`E` is implemented for `EventOf<Agg>`"
            // hints then point at `events(..)`. The `for<'__cqrs>` bound keeps
            // a broken `Aggregate` impl (say, no `Default`) from failing here
            // too (rust-lang/rust#48214).
            let event_of = spanned_as(
                quote! {
                    impl #krate::EventOf<#aggregate> for #path
                    where
                        for<'__cqrs> #aggregate: #krate::Aggregate,
                    {}
                },
                *path,
            );
            quote! {
                #[automatically_derived]
                impl ::core::convert::From<#path> for #event_enum {
                    fn from(event: #path) -> Self {
                        Self::#variant(event)
                    }
                }
                #[automatically_derived]
                #event_of
            }
        })
        .collect()
}

fn conversions(aggregate: &Aggregate<'_>) -> TokenStream {
    conversions_tokens(aggregate.ident, &aggregate.event_enum, &aggregate.events)
}

/// `<E as Event>::NAME`, spanned on the event's token.
fn event_const(path: &syn::Path, constant: &str) -> TokenStream {
    let krate = runtime::krate();
    let constant = syn::Ident::new(constant, proc_macro2::Span::call_site());
    around(quote!(<), path, quote!(as #krate::Event>::#constant))
}

fn event_set(aggregate: &Aggregate<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let event_enum = &aggregate.event_enum;
    let names: Vec<_> = aggregate
        .events
        .iter()
        .map(|e| event_const(e.path, "NAME"))
        .collect();
    let versions = aggregate
        .events
        .iter()
        .map(|e| event_const(e.path, "VERSION"));
    let variants: Vec<_> = aggregate.events.iter().map(|e| e.variant).collect();
    // Spanned on each event, like every use of a listed type.
    let encodes = aggregate
        .events
        .iter()
        .map(|e| around(quote!(#private::encode_event::<), e.path, quote!(>(event))));
    let decodes = aggregate
        .events
        .iter()
        .map(|e| around(quote!(#private::decode_event::<), e.path, quote!(>)));
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
                    #(Self::#variants(event) => #encodes,)*
                }
            }

            fn decode(
                name: &::core::primitive::str,
                version: ::core::primitive::u32,
                payload: &[::core::primitive::u8],
            ) -> ::core::result::Result<Self, #krate::DecodeError> {
                #(
                    if name == #names {
                        return #decodes(name, version, payload)
                            .map(Self::#variants);
                    }
                )*
                ::core::result::Result::Err(#private::unknown_event(name))
            }
        }
    }
}

fn serde_impls(aggregate: &Aggregate<'_>) -> TokenStream {
    let private = runtime::private();
    let event_enum = &aggregate.event_enum;
    let variants = aggregate.events.iter().map(|e| e.variant);
    let serializes = aggregate.events.iter().map(|e| {
        around(
            quote!(#private::serialize_tagged::<__S,),
            e.path,
            quote!(>(serializer, event)),
        )
    });
    quote! {
        #[automatically_derived]
        impl #private::serde::Serialize for #event_enum {
            fn serialize<__S: #private::serde::Serializer>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                match self {
                    #(Self::#variants(event) => #serializes,)*
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
    // The arm for each event is the check that `impl Apply<E>` exists: spanned
    // on `E` inside `events(..)`, so `Apply`'s `on_unimplemented` message
    // underlines the user's token.
    let arms = aggregate.events.iter().map(|EventRef { path, variant }| {
        let call = around(
            quote!(<Self as #krate::Apply<),
            path,
            quote!(>>::apply(self, event)),
        );
        quote!(#event_enum::#variant(event) => #call,)
    });
    let (encode, decode) = match &aggregate.snapshot {
        // Spanned from `snapshot_every` to its value: that is what asks for
        // serde on the aggregate.
        Some(snapshot) => {
            let spanned = |function: &str| {
                let function = syn::Ident::new(function, proc_macro2::Span::call_site());
                let head = set_spans(quote!(#private::#function::<Self), snapshot.key.span());
                let tail = set_spans(quote!(>), snapshot.lit.span());
                quote!(#head #tail)
            };
            let (encode, decode) = (spanned("encode_snapshot"), spanned("decode_snapshot"));
            (
                quote!(::core::option::Option::Some(#encode(self))),
                quote!(::core::option::Option::Some(#decode(bytes))),
            )
        }
        None => (
            quote!(::core::option::Option::None),
            quote! {
                let _ = bytes;
                ::core::option::Option::None
            },
        ),
    };
    quote! {
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
            ) -> ::core::option::Option<::core::result::Result<Self, #private::serde_json::Error>>
            {
                #decode
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
    let events = aggregate.events.iter().map(|EventRef { path, variant }| {
        let fallback_rust_type = ident_string(variant);
        let registration = around(
            quote!(<),
            *path,
            quote!(as #krate::Registered>::REGISTRATION),
        );
        let name = event_const(path, "NAME");
        let version = event_const(path, "VERSION");
        quote! {
            match #registration {
                #krate::registry::Registration::Event(descriptor) => *descriptor,
                _ => #krate::registry::EventDescriptor {
                    name: #name,
                    version: #version,
                    rust_type: ::core::concat!(::core::module_path!(), "::", #fallback_rust_type),
                },
            }
        }
    });
    // Each command is checked to target this aggregate, on its token.
    let commands = aggregate.commands.iter().map(|path| {
        around(
            quote!(__cqrs_command_of_this_aggregate::<#ident,),
            *path,
            quote!(>()),
        )
    });
    quote! {
        /// The name of a command that targets aggregate `A`.
        const fn __cqrs_command_of_this_aggregate<A, C: #krate::Command<Aggregate = A>>() -> &'static ::core::primitive::str {
            <C as #krate::Command>::NAME
        }

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
