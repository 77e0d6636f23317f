//! erf: its duals (SPEC §3–§4 tables) live in the runtime's `dual::erf`.
use proc_macro2::TokenStream;
use quote::quote;

/// The runtime dual rule of erf.
pub fn dual(rt: &TokenStream) -> TokenStream {
    quote!(#rt::dual::Erf)
}
