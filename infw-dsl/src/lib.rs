//! The `network!` compiler as an ordinary library: grammar → IR → symbolic derivation →
//! code generation. `infw-macros` is a thin shell over [`expand`]; everything here can be
//! unit- and snapshot-tested without a compiler round-trip.
//!
//! # Grammar (EBNF)
//!
//! ```text
//! network    = layer { layer } ;                      (* separated by whitespace *)
//! layer      = dense | activation | readout ;
//! dense      = "dense" "(" width [ "," std { "," std } ] ")" ;
//! width      = positive integer | "width" "=" positive integer ;
//! std        = ( "w_std" | "b_std" ) "=" number ;     (* ≥ 0; defaults 1.0 and 0.0 *)
//! activation = "relu" | "erf" | "identity" | "abs" | "leaky_relu" "(" number ")" ;
//! readout    = "readout" [ "(" std { "," std } ")" ] ;   (* last layer only *)
//! ```
//!
//! Every activation follows a `dense`. Two `dense` in a row have an identity between them.
//! A network that ends in `dense(C, ..)` has C outputs; otherwise an implied readout
//! `dense` with as many outputs as the targets have columns is appended (w_std 1, b_std 0,
//! neural-tangents' defaults), and `readout(w_std = …, b_std = …)` sets its stds.
//! Widths are kept for the finite network; the infinite-width kernels do not depend on them.

pub mod codegen;
pub mod ir;
pub mod symbolic;
pub mod syntax;

use proc_macro2::TokenStream;
use quote::quote;

/// The path through which generated code reaches the runtime.
pub fn runtime_path() -> TokenStream {
    quote!(::infw::__private)
}

/// Parses and validates a `network!` body into its IR.
pub fn compile(input: TokenStream) -> syn::Result<ir::Network> {
    ir::lower(&syntax::parse(input)?)
}

/// Expands a `network!` body: the generated program, or the errors at their tokens
/// followed by a well-typed stub (one error for the user, not a cascade).
pub fn expand(input: TokenStream) -> TokenStream {
    let rt = runtime_path();
    match compile(input) {
        Ok(net) => codegen::generate(&net, &rt),
        Err(e) => {
            let errors = e.to_compile_error();
            quote! {{
                #errors
                #rt::Network::new(#rt::program::CompileErrorStub)
            }}
        }
    }
}
