//! The code `#[derive(Query)]` generates for a valid input.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::validate::Query;
use crate::check::ident_string;
use crate::diag::{edge_spans, respan, tokens_to_string};
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
    } = query;
    let rust_name = ident_string(ident);
    let output_name = tokens_to_string(output);
    // The `answer` call is the check that `impl Answer<Q> for P` exists:
    // spanned on the `projection = P` value.
    let spans = edge_spans(projection);
    let answer = respan(
        quote_spanned!(spans.0=> <#projection as #krate::Answer<Self>>::answer),
        spans,
    );
    // Spanned on the type's name: `query_json` needs `Deserialize` on the
    // query and `Serialize` on its output.
    let query_json = quote_spanned!(ident.span()=> #private::query_json::<#ident>);
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #krate::Query for #ident {
                const NAME: &'static str = #name;
                type Projection = #projection;
                type Output = #output;

                fn answer_from(projection: &#projection, query: &Self) -> #output {
                    #answer(projection, query)
                }
            }

            #[automatically_derived]
            impl #krate::Registered for #ident {
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
                <#ident as #krate::Registered>::REGISTRATION
            }
        };
    }
}
