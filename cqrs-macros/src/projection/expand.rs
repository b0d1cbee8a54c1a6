//! The code `#[derive(Projection)]` generates for a valid input.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Type};

use super::validate::{Projection, Tables};
use crate::check::ident_string;
use crate::diag::spanned_over;
use crate::runtime::{self, checked_alias};

/// `Projection` and `Registered` impls and the inventory submission.
pub(crate) fn expand(projection: &Projection<'_>) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let Projection {
        ident,
        name,
        events,
        documents,
        tables,
        skip_unknown,
    } = projection;
    let collections = document_collections(documents);
    let rust_name = ident_string(ident);
    // Each event checked once, on its token (see `aggregate::expand`).
    let aliases: Vec<Ident> = (0..events.len())
        .map(|index| format_ident!("__CqrsEvent{index}"))
        .collect();
    let checked: TokenStream = events
        .iter()
        .zip(&aliases)
        .map(|(path, alias)| checked_alias(alias, *path, quote!(#private::is_event)))
        .collect();
    let names: Vec<_> = aliases
        .iter()
        .map(|alias| quote!(#private::event_name::<#alias>()))
        .collect();
    // The `project` call for each event is the check that `impl Project<E>`
    // exists: spanned on `E` inside `events(..)`. A projection kept in
    // tables projects nothing in memory: its rows are written below.
    let branches: Vec<TokenStream> = match tables {
        Some(_) => Vec::new(),
        None => events
            .iter()
            .zip(&aliases)
            .map(|(path, alias)| {
                let project =
                    spanned_over(quote!(<Self as #krate::Project<#alias>>::project), *path);
                let decode = quote!(#krate::Envelope::<#alias>::decode);
                quote! {
                    if #private::is_stored_name::<#alias>(&record.event_name) {
                        let envelope = #decode(record)?;
                        #project(self, &envelope);
                        return ::core::result::Result::Ok(());
                    }
                }
            })
            .collect(),
    };
    let rows = tables.map(|(kind, _)| rows_impl(ident, kind, events, &aliases));
    let descriptors = events.iter().zip(&aliases).map(|(path, alias)| {
        let rust_type = crate::diag::tokens_to_string(*path);
        quote! {
            #private::event_descriptor::<#alias>(
                ::core::concat!(::core::module_path!(), "::", #rust_type),
            )
        }
    });
    let unknown_events = if *skip_unknown {
        quote!(#krate::UnknownEvents::Skip)
    } else {
        quote!(#krate::UnknownEvents::Fail)
    };
    // The start function's bound (`SqliteTables` / `PostgresTables`) is
    // checked on the `tables = ..` value.
    let start_inline = match tables {
        None => quote!(::core::option::Option::Some(#private::start_inline_projection::<#ident>)),
        Some(_) => quote!(::core::option::Option::None),
    };
    let start = match tables {
        None => quote!(#private::start_projection::<#ident>),
        Some((Tables::Sqlite, ty)) => spanned_over(
            quote!(#krate::projection::start_sqlite_tables::<#ident>),
            *ty,
        ),
        Some((Tables::Postgres, ty)) => spanned_over(
            quote!(#krate::projection::start_postgres_tables::<#ident>),
            *ty,
        ),
    };
    quote! {
        const _: () = {
            #checked

            #[automatically_derived]
            impl #krate::Projection for #ident {
                const NAME: &'static ::core::primitive::str = #name;
                const EVENTS: &'static [&'static ::core::primitive::str] = &[#(#names),*];
                const UNKNOWN_EVENTS: #krate::UnknownEvents = #unknown_events;
                const EVENT_DESCRIPTORS: &'static [#krate::registry::EventDescriptor] = &[#(#descriptors),*];

                fn project_recorded(
                    &mut self,
                    record: &::std::sync::Arc<#krate::RecordedEvent>,
                ) -> ::core::result::Result<(), #krate::DecodeError> {
                    #(#branches)*
                    ::core::result::Result::Ok(())
                }

                #collections
            }

            #rows

            #[automatically_derived]
            impl #krate::Registered for #ident {
                const REGISTRATION: #krate::registry::Registration =
                    #krate::registry::Registration::Projection(
                        &#krate::registry::ProjectionDescriptor {
                            name: #name,
                            rust_type: ::core::concat!(::core::module_path!(), "::", #rust_name),
                            events: <#ident as #krate::Projection>::EVENTS,
                            start: #start,
                            start_inline: #start_inline,
                        },
                    );
            }

            #private::inventory::submit! {
                <#ident as #krate::Registered>::REGISTRATION
            }
        };
    }
}

/// The dispatch of a projection kept in tables: `SqliteRows` or
/// `PostgresRows`, each event's write spanned on its token in `events(..)`
/// (the check that `impl ProjectSqlite<E>` / `ProjectPostgres<E>` exists).
fn rows_impl(ident: &Ident, kind: Tables, events: &[&syn::Path], aliases: &[Ident]) -> TokenStream {
    let krate = runtime::krate();
    let private = runtime::private();
    let branches = events.iter().zip(aliases).map(|(path, alias)| {
        let write = match kind {
            Tables::Sqlite => spanned_over(
                quote!(#krate::projection::write_sqlite::<Self, #alias>),
                *path,
            ),
            Tables::Postgres => spanned_over(
                quote!(#krate::projection::write_postgres::<Self, #alias>),
                *path,
            ),
        };
        quote! {
            if #private::is_stored_name::<#alias>(&record.event_name) {
                return #write(self, record, db);
            }
        }
    });
    match kind {
        Tables::Sqlite => quote! {
            #[automatically_derived]
            impl #krate::projection::SqliteRows for #ident {
                fn write_rows(
                    &mut self,
                    record: &::std::sync::Arc<#krate::RecordedEvent>,
                    db: &#krate::rusqlite::Connection,
                ) -> ::core::result::Result<(), #krate::projection::RowsError> {
                    #(#branches)*
                    ::core::result::Result::Ok(())
                }
            }
        },
        Tables::Postgres => quote! {
            #[automatically_derived]
            impl #krate::projection::PostgresRows for #ident {
                fn write_rows<'a>(
                    &'a mut self,
                    record: &'a ::std::sync::Arc<#krate::RecordedEvent>,
                    db: &'a #krate::tokio_postgres::Transaction<'_>,
                ) -> #krate::BoxFuture<'a, ::core::result::Result<(), #krate::projection::RowsError>> {
                    #(#branches)*
                    ::std::boxed::Box::pin(::core::future::ready(::core::result::Result::Ok(())))
                }
            }
        },
    }
}

/// `document_collections`, listing the `#[document]` fields; the coercion to
/// `&mut dyn DocumentCollection` is the check of each field's type, spanned
/// on that type.
fn document_collections(documents: &[(&Ident, &Type)]) -> TokenStream {
    if documents.is_empty() {
        return TokenStream::new();
    }
    let krate = runtime::krate();
    // The field's type as written is the check's type argument, so the
    // error lands on it; `self` keeps the call site's span (hygiene).
    let entries = documents.iter().map(|(field, ty)| {
        let name = field.to_string();
        let call = quote_spanned!(ty.span()=> __cqrs_collection::<);
        quote! { (#name, #call #ty>(&mut self.#field)) }
    });
    quote! {
        fn document_collections(
            &mut self,
        ) -> ::std::vec::Vec<(&'static ::core::primitive::str, &mut dyn #krate::projection::DocumentCollection)> {
            fn __cqrs_collection<'a, T: #krate::projection::DocumentCollection + 'a>(
                collection: &'a mut T,
            ) -> &'a mut (dyn #krate::projection::DocumentCollection + 'a) {
                collection
            }
            ::std::vec![#(#entries),*]
        }
    }
}
