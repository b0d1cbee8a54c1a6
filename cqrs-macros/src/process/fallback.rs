//! What `#[derive(ProcessManager)]` still generates next to its errors:
//! the `ProcessManager` impl and the `Issues` impls with `unreachable!()`
//! bodies, so the user's `Correlate`, `React`, `Recover` and `Timeout`
//! impls (and the `Reaction::send` calls in them) keep compiling and only
//! the mistake is reported.

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{GenericParam, Path, parse_quote};

use super::parse::Input;
use crate::check::ident_string;
use crate::diag::tokens_to_string;
use crate::runtime::{self, checked_alias};

/// The `ProcessManager` impl (with the input's own generics, if any) and
/// the `Issues` impls.
pub(crate) fn expand(input: &Input<'_>) -> TokenStream {
    if !crate::check::fallback_possible(input.original) {
        return TokenStream::new();
    }
    let krate = runtime::krate();
    let ident = input.ident;
    let name = input
        .name
        .as_ref()
        .map_or_else(|| ident_string(ident), syn::LitStr::value);
    let bounds = quote!(
        ::core::default::Default
            + #krate::__private::serde::Serialize
            + #krate::__private::serde::de::DeserializeOwned
            + ::core::marker::Send
            + ::core::marker::Sync
            + 'static
    );
    let generics = &input.original.generics;
    let (params, mut self_ty, where_clause) =
        crate::check::fallback_generics(generics, ident, bounds);
    // The type checked once, as in the full expansion, so a missing
    // `Default` or serde derive is one error; the impl sits on the checked
    // type (a failed build is not documented). A generic input's impl has
    // its bounds in its where clause instead.
    let mut checked_state = TokenStream::new();
    if generics.params.is_empty() && generics.where_clause.is_none() {
        let state = format_ident!("__CqrsSelf");
        checked_state = checked_alias(&state, ident, quote!(#krate::process::is_process_state));
        self_ty = quote!(#state);
    }
    let issues = issues(input);
    quote! {
        const _: () = {
            #checked_state
            #issues

            #[automatically_derived]
            impl #params #krate::process::ProcessManager for #self_ty #where_clause {
                const NAME: &'static ::core::primitive::str = #name;
                const EVENTS: &'static [&'static ::core::primitive::str] = &[];
                const COMMANDS: &'static [&'static ::core::primitive::str] = &[];

                fn route(
                    _: &::std::sync::Arc<#krate::RecordedEvent>,
                ) -> ::core::result::Result<
                    ::core::option::Option<#krate::process::Routed<Self>>,
                    #krate::DecodeError,
                > {
                    ::core::unreachable!()
                }

                fn on_deadline(
                    &mut self,
                    _: &#krate::process::Deadline,
                ) -> ::core::option::Option<#krate::process::Reaction<Self>> {
                    ::core::unreachable!()
                }
            }
        };
    }
}

/// What the reactions may send: one `Issues` impl per command listed in
/// `commands(..)` (each listed once, checked to be a command: a listed
/// type that is not one is reported there, once); every command when
/// the list is unknown (no attribute, a misspelt or malformed
/// `commands(..)`), so a `Reaction::send` in the user's impls is not
/// reported as unlisted because of another mistake; none when the
/// attribute was read whole and lists no commands.
fn issues(input: &Input<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let ident = input.ident;
    let generics = &input.original.generics;
    let (_, ty_generics, where_clause) = generics.split_for_impl();
    let body = |command: &TokenStream| {
        quote! {
            fn recover_from(
                &mut self,
                _: &#krate::process::Refused<#command>,
            ) -> ::core::option::Option<#krate::process::Reaction<Self>> {
                ::core::unreachable!()
            }
        }
    };
    let unknown = !input.has_attribute || input.incomplete || input.attempted.contains(&"commands");
    let listed: Vec<&Path> = match &input.commands {
        Some((_, commands)) => {
            let mut seen = BTreeSet::new();
            commands
                .iter()
                .filter(|path| seen.insert(tokens_to_string(path)))
                .collect()
        }
        None if unknown => {
            let mut with_command = generics.clone();
            with_command
                .params
                .push(GenericParam::Type(parse_quote!(__CqrsC: #krate::Command)));
            let (impl_generics, _, _) = with_command.split_for_impl();
            let body = body(&quote!(__CqrsC));
            return quote! {
                #[automatically_derived]
                impl #impl_generics #krate::process::Issues<__CqrsC> for #ident #ty_generics #where_clause {
                    #body
                }
            };
        }
        None => Vec::new(),
    };
    let (impl_generics, _, _) = generics.split_for_impl();
    listed
        .iter()
        .enumerate()
        .map(|(index, path)| {
            let alias = format_ident!("__CqrsCommand{index}");
            let checked = checked_alias(&alias, *path, quote!(#private::is_command));
            let body = body(&quote!(#alias));
            quote! {
                #checked

                #[automatically_derived]
                impl #impl_generics #krate::process::Issues<#alias> for #ident #ty_generics #where_clause {
                    #body
                }
            }
        })
        .collect()
}
