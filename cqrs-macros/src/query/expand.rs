//! The code `#[derive(Query)]` generates for a valid input.

use proc_macro2::TokenStream;
use quote::quote;

use super::validate::Query;
use crate::check::ident_string;
use crate::diag::{around, set_spans, spanned_as, tokens_to_string};
use crate::runtime;

/// `Query` and `Registered` impls and the inventory submission.
pub(crate) fn expand(query: &Query<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let Query {
        ident,
        name,
        projection,
        output,
        allow_unknown_fields,
    } = query;
    let rust_name = ident_string(ident);
    let output_name = tokens_to_string(output);
    // Both impls assume `P: Projection`, written `for<'__cqrs>` so it is not
    // a "trivially false" bound (rust-lang/rust#48214): when `P` is no
    // projection, the one error is the submission below, spanned on `P`.
    let assume_projection = spanned_as(
        quote!(for<'__cqrs> #projection: #krate::Projection),
        projection,
    );
    let submission = spanned_as(
        quote!(<#ident as #krate::Registered>::REGISTRATION),
        projection,
    );
    // The `answer` call is the check that `impl Answer<Q> for P` exists:
    // spanned on the `projection = P` value.
    let answer = around(
        quote!(<),
        projection,
        quote!(as #krate::Answer<Self>>::answer),
    );
    // Spanned on the type's name: `query_json` needs `Deserialize` on the
    // query and `Serialize` on its output.
    let entry = if *allow_unknown_fields {
        quote!(query_json_lenient)
    } else {
        quote!(query_json)
    };
    let query_json = set_spans(quote!(#private::#entry::<#ident>), ident.span());
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #krate::Query for #ident
            where
                #assume_projection
            {
                const NAME: &'static ::core::primitive::str = #name;
                type Projection = #projection;
                type Output = #output;

                fn answer_from(projection: &#projection, query: &Self) -> #output {
                    #answer(projection, query)
                }
            }

            #[automatically_derived]
            impl #krate::Registered for #ident
            where
                #assume_projection
            {
                const REGISTRATION: #krate::registry::Registration =
                    #krate::registry::Registration::Query(&#krate::registry::QueryDescriptor {
                        name: #name,
                        rust_type: ::core::concat!(::core::module_path!(), "::", #rust_name),
                        projection: <#projection as #krate::Projection>::NAME,
                        output_type: #output_name,
                        query_json: #query_json,
                    });
            }

            #private::inventory::submit! {
                #submission
            }
        };
    }
}
