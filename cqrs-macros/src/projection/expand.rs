//! The code `#[derive(Projection)]` generates for a valid input.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::validate::Projection;
use crate::check::ident_string;
use crate::diag::{edge_spans, respan};
use crate::runtime;

/// `Projection` and `Registered` impls and the inventory submission.
pub(crate) fn expand(projection: &Projection<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let Projection {
        ident,
        name,
        events,
    } = projection;
    let rust_name = ident_string(ident);
    let names: Vec<_> = events
        .iter()
        .map(|path| {
            let spans = edge_spans(path);
            respan(
                quote_spanned!(spans.0=> <#path as #krate::Event>::NAME),
                spans,
            )
        })
        .collect();
    // The `project` call for each event is the check that `impl Project<E>`
    // exists: spanned on `E` inside `events(..)`.
    let branches = events.iter().zip(&names).map(|(path, name)| {
        let spans = edge_spans(path);
        let project = respan(
            quote_spanned!(spans.0=> <Self as #krate::Project<#path>>::project),
            spans,
        );
        quote! {
            if record.event_name == #name {
                let envelope = #krate::Envelope::<#path>::decode(record)?;
                #project(self, &envelope);
                return ::core::result::Result::Ok(());
            }
        }
    });
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #krate::Projection for #ident {
                const NAME: &'static str = #name;
                const EVENTS: &'static [&'static str] = &[#(#names),*];

                fn project_recorded(
                    &mut self,
                    record: &::std::sync::Arc<#krate::RecordedEvent>,
                ) -> ::core::result::Result<(), #krate::DecodeError> {
                    #(#branches)*
                    ::core::result::Result::Ok(())
                }
            }

            #[automatically_derived]
            impl #krate::Registered for #ident {
                const REGISTRATION: #krate::registry::Registration =
                    #krate::registry::Registration::Projection(
                        &#krate::registry::ProjectionDescriptor {
                            name: #name,
                            rust_type: ::core::concat!(::core::module_path!(), "::", #rust_name),
                            events: <#ident as #krate::Projection>::EVENTS,
                            start: #private::start_projection::<#ident>,
                        },
                    );
            }

            #private::inventory::submit! {
                <#ident as #krate::Registered>::REGISTRATION
            }
        };
    }
}
