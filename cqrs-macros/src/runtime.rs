//! The path generated code uses to reach the runtime.
//!
//! Always absolute (`::cqrs_core`), so the expansion works whatever the user
//! imported or shadowed; cqrs-core itself declares `extern crate self as
//! cqrs_core` so its own tests can use the derives.

use proc_macro2::TokenStream;
use quote::quote;

/// `::cqrs_core`.
pub(crate) fn krate() -> TokenStream {
    quote!(::cqrs_core)
}

/// `::cqrs_core::__private`, the helpers that are not public API.
pub(crate) fn private() -> TokenStream {
    quote!(::cqrs_core::__private)
}
