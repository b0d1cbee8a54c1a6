//! The code `#[derive(Command)]` generates for a valid input.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::validate::Command;
use crate::check::ident_string;
use crate::diag::{edge_spans, respan};
use crate::runtime;

/// `Command` and `Registered` impls and the inventory submission.
pub(crate) fn expand(command: &Command<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let Command {
        ident,
        aggregate,
        name,
        is_async,
        id,
    } = command;
    let rust_name = ident_string(ident);
    let member = &id.member;
    // Spanned on the field's type: a type without `Display` is reported there.
    let id_spans = edge_spans(id.ty);
    let id_to_string = respan(
        quote_spanned!(id_spans.0=> __cqrs_id_to_string(&self.#member)),
        id_spans,
    );
    // The handler call is the check that the handler exists: spanned on
    // `async` for async commands, on the `aggregate = X` value otherwise.
    let (services, dispatch) = match is_async {
        Some(flag) => {
            let call = respan(
                quote_spanned!(flag.span()=> <#aggregate as #krate::HandleAsync<Self>>::handle),
                (flag.span(), flag.span()),
            );
            (quote!(services), quote!(#call(state, command, services)))
        }
        None => {
            let spans = edge_spans(aggregate);
            let call = respan(
                quote_spanned!(spans.0=> <#aggregate as #krate::Handle<Self>>::handle),
                spans,
            );
            (
                quote!(_services),
                quote!(::core::future::ready(#call(state, command))),
            )
        }
    };
    // Spanned on the type's name: `execute_json` needs `Deserialize`.
    let execute_json = quote_spanned!(ident.span()=> #private::execute_json::<#ident>);
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #krate::Command for #ident {
                const NAME: &'static str = #name;
                type Aggregate = #aggregate;

                fn aggregate_id(&self) -> ::std::string::String {
                    fn __cqrs_id_to_string<T: ?::core::marker::Sized + ::core::fmt::Display>(
                        id: &T,
                    ) -> ::std::string::String {
                        ::std::string::ToString::to_string(id)
                    }
                    #id_to_string
                }

                fn dispatch<'a>(
                    state: &'a #aggregate,
                    command: &'a Self,
                    #services: &'a <#aggregate as #krate::Aggregate>::Services,
                ) -> impl ::core::future::Future<
                    Output = ::core::result::Result<
                        #krate::Events<#aggregate>,
                        <#aggregate as #krate::Aggregate>::Error,
                    >,
                > + ::core::marker::Send
                       + 'a {
                    #dispatch
                }
            }

            #[automatically_derived]
            impl #krate::Registered for #ident {
                const REGISTRATION: #krate::registry::Registration =
                    #krate::registry::Registration::Command(&#krate::registry::CommandDescriptor {
                        name: #name,
                        rust_type: ::core::concat!(::core::module_path!(), "::", #rust_name),
                        aggregate: <#aggregate as #krate::Aggregate>::NAME,
                        execute_json: #execute_json,
                    });
            }

            #private::inventory::submit! {
                <#ident as #krate::Registered>::REGISTRATION
            }
        };
    }
}
