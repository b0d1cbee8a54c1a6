//! Derive macros for cqrs-core (placeholder while the crate is written).
use proc_macro::TokenStream;
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(_: TokenStream) -> TokenStream {
    TokenStream::new()
}
#[proc_macro_derive(Aggregate, attributes(aggregate))]
pub fn derive_aggregate(_: TokenStream) -> TokenStream {
    TokenStream::new()
}
#[proc_macro_derive(Command, attributes(command, id))]
pub fn derive_command(_: TokenStream) -> TokenStream {
    TokenStream::new()
}
#[proc_macro_derive(Projection, attributes(projection))]
pub fn derive_projection(_: TokenStream) -> TokenStream {
    TokenStream::new()
}
#[proc_macro_derive(Query, attributes(query))]
pub fn derive_query(_: TokenStream) -> TokenStream {
    TokenStream::new()
}
