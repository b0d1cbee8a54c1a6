//! The code `#[derive(Query)]` generates for a valid input.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

use super::validate::Query;
use crate::check::ident_string;
use crate::diag::{set_spans, spanned_over, tokens_to_string};
use crate::runtime::{self, checked_alias};

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
        schema,
    } = query;
    let output_schema = crate::json_schema::of_type(output);
    let rust_name = ident_string(ident);
    let output_name = tokens_to_string(output);
    // `P`, once checked to be a projection: one error on `P` when it is
    // not, and then an error type that silences the other uses of it.
    let alias = Ident::new("__CqrsProjection", Span::call_site());
    let checked = checked_alias(&alias, projection, quote!(#private::is_projection));
    // The `answer` call is the check that `impl Answer<Q> for P` exists:
    // spanned on the `projection = P` value.
    let answer = spanned_over(quote!(<#alias as #krate::Answer<Self>>::answer), projection);
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
            #checked

            #[automatically_derived]
            impl #krate::Query for #ident {
                const NAME: &'static ::core::primitive::str = #name;
                type Projection = #alias;
                type Output = #output;

                fn answer_from(projection: &#alias, query: &Self) -> #output {
                    #answer(projection, query)
                }
            }

            #[automatically_derived]
            impl #krate::Registered for #ident {
                const REGISTRATION: #krate::registry::Registration =
                    #krate::registry::Registration::Query(&#krate::registry::QueryDescriptor {
                        name: #name,
                        rust_type: ::core::concat!(::core::module_path!(), "::", #rust_name),
                        projection: <#alias as #krate::Projection>::NAME,
                        output_type: #output_name,
                        query_json: #query_json,
                        body_schema: #schema,
                        output_schema: #output_schema,
                    });
            }

            #private::inventory::submit! {
                <#ident as #krate::Registered>::REGISTRATION
            }
        };
    }
}
