//! The code `#[derive(Command)]` generates for a valid input.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

use super::validate::Command;
use crate::check::ident_string;
use crate::diag::{edge_spans, set_spans, spanned_over};
use crate::runtime::{self, checked_alias};

/// `Command` and `Registered` impls and the inventory submission.
pub(crate) fn expand(command: &Command<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let Command {
        ident,
        aggregate,
        name,
        is_async,
        allow_unknown_fields,
        id,
        schema,
    } = command;
    let rust_name = ident_string(ident);
    // `X`, once checked to be an aggregate: on `X` when it is not, and then
    // an error type that silences every other use of it (the handler check,
    // the user's `impl Handle<Self> for ..`, the aggregate's `commands(..)`).
    let alias = Ident::new("__CqrsAggregate", Span::call_site());
    let checked = checked_alias(&alias, aggregate, quote!(#private::is_aggregate));
    // Spanned on the field's type: a type without `Display` is reported
    // there and nowhere else.
    let stream_id = {
        let member = &id.member;
        let ty = id.ty;
        let call = set_spans(quote!(#private::stream_id::<), edge_spans(ty).0);
        quote!(#call #ty>(&self.#member))
    };
    // The handler call is the check that the handler exists: spanned on
    // `async` for async commands, on the `aggregate = X` value otherwise.
    let signature = |services: TokenStream| {
        quote! {
            fn dispatch<'a>(
                state: &'a #alias,
                command: &'a Self,
                #services: &'a <#alias as #krate::Aggregate>::Services,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<
                    #krate::Events<#alias>,
                    <#alias as #krate::Aggregate>::Error,
                >,
            > + ::core::marker::Send
                   + 'a
        }
    };
    let dispatch = match is_async {
        // The whole method is spanned on `async`: the returned future is the
        // handler's, so a missing impl is also reported on the signature,
        // and that report must be identical to the call's to be shown once.
        // Its bindings share that one span, so they still resolve.
        Some(flag) => {
            let signature = signature(quote!(services));
            set_spans(
                quote! {
                    #signature {
                        <#alias as #krate::HandleAsync<Self>>::handle(state, command, services)
                    }
                },
                flag.span(),
            )
        }
        None => {
            let signature = signature(quote!(_services));
            let call = spanned_over(quote!(<#alias as #krate::Handle<Self>>::handle), aggregate);
            quote! {
                #signature {
                    ::core::future::ready(#call(state, command))
                }
            }
        }
    };
    // Spanned on the type's name: `execute_json` needs `Deserialize`.
    let entry = if *allow_unknown_fields {
        quote!(execute_json_lenient)
    } else {
        quote!(execute_json)
    };
    let execute_json = set_spans(quote!(#private::#entry::<#ident>), ident.span());
    quote! {
        const _: () = {
            #checked

            #[automatically_derived]
            impl #krate::Command for #ident {
                const NAME: &'static ::core::primitive::str = #name;
                type Aggregate = #alias;

                fn aggregate_id(&self) -> ::std::string::String {
                    #stream_id
                }

                #dispatch
            }

            #[automatically_derived]
            impl #krate::Registered for #ident {
                const REGISTRATION: #krate::registry::Registration =
                    #krate::registry::Registration::Command(&#krate::registry::CommandDescriptor {
                        name: #name,
                        rust_type: ::core::concat!(::core::module_path!(), "::", #rust_name),
                        aggregate: <#alias as #krate::Aggregate>::NAME,
                        execute_json: #execute_json,
                        body_schema: #schema,
                        error_json: #private::error_json::<#alias>,
                    });
            }

            #private::inventory::submit! {
                <#ident as #krate::Registered>::REGISTRATION
            }
        };
    }
}
