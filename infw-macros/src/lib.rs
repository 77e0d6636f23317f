//! The `network!` macro: parse, hand to infw-dsl, return its tokens.
#![deny(missing_docs)]

use proc_macro::TokenStream;

/// Declares an architecture and compiles its kernels. See the `infw` crate docs.
#[proc_macro]
pub fn network(input: TokenStream) -> TokenStream {
    infw_dsl::expand(input.into()).into()
}
