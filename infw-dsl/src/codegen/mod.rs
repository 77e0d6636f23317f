//! Stage 4, code generation: the derivation placed into a `KernelProgram` impl, plus the
//! architecture constant, as one block expression that evaluates to a `Network`.
use crate::ir::{Activation, Network};
use crate::symbolic::{derive, lit};
use proc_macro2::TokenStream;
use quote::quote;

/// The block `network!` expands to. `rt` is the hidden runtime path (`::infw::__private`).
pub fn generate(net: &Network, rt: &TokenStream) -> TokenStream {
    let d = derive(net, rt);
    let l = proc_macro2::Literal::usize_unsuffixed(d.hidden_layers);
    let architecture = architecture(net, rt);
    let point = &d.point;
    let forward = &d.pair_forward;
    let (nngp, ntk, readout) = (&d.nngp, &d.ntk, &d.readout_part);
    let hidden = &d.hidden_part;
    quote! {
        {
            #[derive(Clone, Copy, Debug, Default)]
            struct Point<T> {
                var: [#rt::dual::Var<T>; #l],
                inv_sqrt_pi: [T; #l],
            }
            #[derive(Clone, Copy, Debug)]
            struct Program;
            // The folded constants are the user's numbers (e.g. w_std = 1.4142135623730951)
            // and their products: lints about them would point into the declaration.
            #[allow(clippy::all)]
            impl #rt::KernelProgram for Program {
                type Point<T: #rt::dual::Real> = Point<T>;
                fn architecture(&self) -> &'static #rt::Architecture {
                    static ARCHITECTURE: #rt::Architecture = #architecture;
                    &ARCHITECTURE
                }
                #[inline(always)]
                fn point(&self, sq_norm: f64) -> Point<f64> {
                    use #rt::dual::Dual as _;
                    #(#point)*
                }
                #[inline(always)]
                fn gather(&self, points: [&Point<f64>; 4]) -> Point<#rt::dual::F64x4> {
                    Point {
                        var: #rt::dual::gather_vars(points.map(|p| &p.var)),
                        inv_sqrt_pi: #rt::dual::gather_values(points.map(|p| &p.inv_sqrt_pi)),
                    }
                }
                #[inline(always)]
                fn splat(&self, point: &Point<f64>) -> Point<#rt::dual::F64x4> {
                    Point {
                        var: #rt::dual::splat_vars(&point.var),
                        inv_sqrt_pi: #rt::dual::splat_values(&point.inv_sqrt_pi),
                    }
                }
                #[inline(always)]
                fn pair<T: #rt::dual::Real>(
                    &self,
                    x: &Point<T>,
                    t: &Point<T>,
                    input: #rt::PairInputs<T>,
                    want: #rt::Want,
                ) -> #rt::PairKernels<T> {
                    use #rt::dual::Dual as _;
                    #(#forward)*
                    let nngp = #nngp;
                    let ntk = #ntk;
                    let mut out = #rt::PairKernels { nngp, ntk, readout: T::splat(0.0), hidden: T::splat(0.0) };
                    if want.readout {
                        out.readout = #readout;
                    }
                    if want.hidden {
                        #(#hidden)*
                        out.hidden = hidden;
                    }
                    out
                }
            }
            #rt::Network::new(Program)
        }
    }
}

fn architecture(net: &Network, rt: &TokenStream) -> TokenStream {
    let hidden = net.hidden.iter().map(|h| {
        let (width, w, b) = (proc_macro2::Literal::usize_unsuffixed(h.width), lit(h.w_std), lit(h.b_std));
        let act = match h.activation {
            Activation::Identity => quote!(Identity),
            Activation::Relu => quote!(Relu),
            Activation::LeakyRelu(a) => {
                let a = lit(a);
                quote!(LeakyRelu(#a))
            }
            Activation::Abs => quote!(Abs),
            Activation::Erf => quote!(Erf),
        };
        quote!(#rt::Hidden { width: #width, w_std: #w, b_std: #b, activation: #rt::Activation::#act })
    });
    let r = &net.readout;
    let outputs = match r.outputs {
        Some(c) => {
            let c = proc_macro2::Literal::usize_unsuffixed(c);
            quote!(::core::option::Option::Some(#c))
        }
        None => quote!(::core::option::Option::None),
    };
    let (w, b) = (lit(r.w_std), lit(r.b_std));
    quote! {
        #rt::Architecture {
            hidden: &[#(#hidden),*],
            readout: #rt::Readout { outputs: #outputs, w_std: #w, b_std: #b },
        }
    }
}
