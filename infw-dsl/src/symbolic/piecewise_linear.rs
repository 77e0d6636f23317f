//! relu, leaky_relu(α), abs, identity: cases of one piecewise-linear rule
//! φ(u) = p·max(u,0) + n·min(u,0), whose duals (SPEC §3–§4 tables) live in the runtime's
//! `dual::piecewise_linear`; the generated code names the constant slopes so they fold.
use crate::ir::Activation;
use proc_macro2::TokenStream;
use quote::quote;

/// The runtime dual rule of a piecewise-linear activation.
pub fn dual(activation: Activation, rt: &TokenStream) -> TokenStream {
    match activation {
        Activation::Relu => quote!(#rt::dual::PiecewiseLinear::RELU),
        Activation::Abs => quote!(#rt::dual::PiecewiseLinear::ABS),
        Activation::Identity => quote!(#rt::dual::PiecewiseLinear::IDENTITY),
        Activation::LeakyRelu(alpha) => {
            let a = super::lit(alpha);
            quote!(#rt::dual::PiecewiseLinear::leaky(#a))
        }
        Activation::Erf => unreachable!("erf is not piecewise linear"),
    }
}
