//! The `network!` compiler as an ordinary library: grammar → IR → symbolic derivation →
//! code generation. `infw-macros` is a thin shell over [`expand`]; everything here can be
//! unit- and snapshot-tested without a compiler round-trip.
//!
//! # Grammar (EBNF)
//!
//! ```text
//! network    = item { item } ;                           (* separated by whitespace *)
//! item       = dense | activation | "layer_norm" | residual | parallel | readout ;
//! dense      = "dense" "(" width { "," std } ")" ;
//! width      = integer | "width" "=" integer | expr ;       (* 1 ≤ width ≤ 2^32 *)
//! std        = ( "w_std" | "b_std" ) "=" ( number | expr ) ;  (* ≥ 0; defaults 1.0, 0.0 *)
//! activation = name [ "(" number { "," number } ")" ]      (* the registry: relu, gelu, … *)
//!            | "act" "(" path ")" ;                        (* a type implementing UserActivation *)
//! residual   = "residual" "(" item { item } ")" ;          (* x + block(x) *)
//! parallel   = "parallel" "(" branch "|" branch { "|" branch } ")" ;   (* concatenation *)
//! branch     = item { item } ;
//! readout    = "readout" [ "(" std { "," std } ")" ] ;     (* last item only *)
//! expr       = a Rust expression of type f64 (stds) or usize (widths) ;
//! ```
//!
//! An activation or `layer_norm` needs a Gaussian input (a `dense`, or a residual/
//! layer_norm of one); a residual block ends in a `dense` as wide as its stream; every
//! `parallel` branch has a declared width. A body that does not end in `dense` gets an
//! implied readout with as many outputs as the targets have columns. Literal numbers are
//! folded at compile time and give a `Network`; a declaration with an expression gives a
//! `Result<Network, Error>`, checked when it is built.

#![deny(missing_docs)]

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
