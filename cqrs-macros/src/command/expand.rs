//! The code `#[derive(Command)]` generates for a valid input.

use proc_macro2::TokenStream;
use quote::quote;

use super::validate::Command;
use crate::check::ident_string;
use crate::diag::{around, edge_spans, set_spans, spanned_as};
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
        allow_unknown_fields,
        id,
    } = command;
    let rust_name = ident_string(ident);
    // Both impls assume `X: Aggregate`. Written `for<'__cqrs>` so it is not a
    // "trivially false" bound (rust-lang/rust#48214): when `X` is no
    // aggregate, the impls are unusable and the one error is the submission
    // below, spanned on `X`, not one error per use of `X` in the signatures.
    let assume_aggregate = spanned_as(
        quote!(for<'__cqrs> #aggregate: #krate::Aggregate),
        aggregate,
    );
    let submission = spanned_as(
        quote!(<#ident as #krate::Registered>::REGISTRATION),
        aggregate,
    );
    // Spanned on the field's type, call included: a type without `Display`
    // is reported there and nowhere else.
    let stream_id = {
        let member = &id.member;
        let call = set_spans(quote!(#private::stream_id), edge_spans(id.ty).0);
        let field = spanned_as(quote!(&self.#member), id.ty);
        quote!(#call(#field))
    };
    // The handler call is the check that the handler exists: spanned on
    // `async` for async commands, on the `aggregate = X` value otherwise.
    let signature = |services: TokenStream| {
        quote! {
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
                   + 'a
        }
    };
    let dispatch = match is_async {
        // The whole method is spanned on `async`: the returned future is the
        // handler's, so a missing impl is also reported on the signature,
        // and that report must be identical to the call's to be shown once.
        Some(flag) => {
            let signature = signature(quote!(services));
            set_spans(
                quote! {
                    #signature {
                        <#aggregate as #krate::HandleAsync<Self>>::handle(state, command, services)
                    }
                },
                flag.span(),
            )
        }
        None => {
            let signature = signature(quote!(_services));
            let call = around(
                quote!(<),
                aggregate,
                quote!(as #krate::Handle<Self>>::handle),
            );
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
            #[automatically_derived]
            impl #krate::Command for #ident
            where
                #assume_aggregate
            {
                const NAME: &'static ::core::primitive::str = #name;
                type Aggregate = #aggregate;

                fn aggregate_id(&self) -> ::std::string::String {
                    #stream_id
                }

                #dispatch
            }

            #[automatically_derived]
            impl #krate::Registered for #ident
            where
                #assume_aggregate
            {
                const REGISTRATION: #krate::registry::Registration =
                    #krate::registry::Registration::Command(&#krate::registry::CommandDescriptor {
                        name: #name,
                        rust_type: ::core::concat!(::core::module_path!(), "::", #rust_name),
                        aggregate: <#aggregate as #krate::Aggregate>::NAME,
                        execute_json: #execute_json,
                    });
            }

            #private::inventory::submit! {
                #submission
            }
        };
    }
}
