//! Stage 3, symbolic derivation: SPEC §3–§4 unrolled for one architecture.
//!
//! The derivation walks the layers once, threading a [`State`] that names the variables
//! holding the current layer's quantities, and emits straight-line code: a per-point pass
//! (Σˡ(x,x), and the backward covariances Πˡ(x,x) of SPEC §4) and a fused per-pair pass
//! (covariances, NTK, sign kernels, then R and H). Constants (σw², σb², products of
//! them) are folded here, at compile time. One file per layer rule:
//! [`dense`] (the affine maps and everything that belongs to weights) and the activation
//! rules [`piecewise_linear`] (relu, leaky_relu, abs, identity) and [`erf`].

pub mod dense;
pub mod erf;
pub mod piecewise_linear;

use crate::ir::{Activation, Network};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// The unrolled program, ready to be placed into an impl by `codegen`.
pub struct Derivation {
    /// L, the number of hidden blocks.
    pub hidden_layers: usize,
    /// Statements of the per-point pass; they end with the point value.
    pub point: Vec<TokenStream>,
    /// Statements of the per-pair pass computing every layer's covariance, NTK and duals.
    pub pair_forward: Vec<TokenStream>,
    /// Expressions of the readout NNGP and NTK.
    pub nngp: TokenStream,
    pub ntk: TokenStream,
    /// Expression of R (SPEC §4).
    pub readout_part: TokenStream,
    /// Statements computing `hidden`, H (SPEC §4).
    pub hidden_part: Vec<TokenStream>,
}

/// The variables that hold the current layer's quantities as the derivation walks.
#[derive(Clone)]
pub struct State {
    /// 1-based index of the dense layer about to be applied.
    pub layer: usize,
    /// Per-point pass: the expression of E[φ(u)²] of the previous layer (‖x‖²/d0 at the input).
    pub point_phi: TokenStream,
    /// Per-pair pass: the expression of E[φ(u)φ(v)] of the previous layer (⟨x,x'⟩/d0 at the input).
    pub pair_phi: TokenStream,
    /// The expression of the previous layer's parallelism.
    pub pair_parallel: TokenStream,
    /// The previous layer's dual (None at the input).
    pub previous: Option<Ident>,
    /// The hidden runtime path.
    pub rt: TokenStream,
}

/// Literal of an f64 folded at compile time.
pub fn lit(v: f64) -> TokenStream {
    let l = proc_macro2::Literal::f64_unsuffixed(v);
    quote!(#l)
}

/// `factor * expr`, dropping the product when the factor is exactly 1.
/// The constant goes on the right so the same code serves `f64` and lanes.
pub fn scaled(factor: f64, expr: TokenStream) -> TokenStream {
    if factor == 1.0 {
        expr
    } else {
        let f = lit(factor);
        quote!(#expr * #f)
    }
}

/// `expr + term`, dropping the sum when the term is exactly 0.
pub fn plus(expr: TokenStream, term: f64) -> TokenStream {
    if term == 0.0 {
        expr
    } else {
        let t = lit(term);
        quote!(#expr + #t)
    }
}

/// The runtime expression of an activation's dual rule.
fn dual_rule(activation: Activation, rt: &TokenStream) -> TokenStream {
    match activation {
        Activation::Erf => erf::dual(rt),
        other => piecewise_linear::dual(other, rt),
    }
}

/// Derives the per-point and per-pair programs of `net`.
pub fn derive(net: &Network, rt: &TokenStream) -> Derivation {
    let mut point = Vec::new();
    let mut pair_forward = Vec::new();
    let mut state = State {
        layer: 1,
        point_phi: quote!(sq_norm),
        pair_phi: quote!(input.dot),
        pair_parallel: quote!(input.parallel),
        previous: None,
        rt: rt.clone(),
    };
    let mut sigmas = Vec::new();
    for block in &net.hidden {
        let l = state.layer;
        let (p, q) = dense::hidden(block.w_std, block.b_std, &state);
        point.extend(p);
        pair_forward.extend(q);
        let rule = dual_rule(block.activation, rt);
        let sigma = format_ident!("sigma{}", l);
        let phi = format_ident!("phi{}", l);
        let cov = format_ident!("cov{}", l);
        let par = format_ident!("par{}", l);
        let act = format_ident!("act{}", l);
        let idx = proc_macro2::Literal::usize_unsuffixed(l - 1);
        point.push(quote!(let #phi = #rule.diag(#sigma);));
        pair_forward
            .push(quote!(let #act = #rule.pair(x.var[#idx], t.var[#idx], #cov, #par, want);));
        sigmas.push(sigma);
        state = State {
            layer: l + 1,
            point_phi: quote!(#phi.phi),
            pair_phi: quote!(#act.phi),
            pair_parallel: quote!(#act.parallel),
            previous: Some(act),
            rt: rt.clone(),
        };
    }
    let (nngp, ntk, readout_part) = dense::readout(net.readout.w_std, net.readout.b_std, &state);
    let (pi_point, pi_names) = dense::backward_point(net);
    point.extend(pi_point);
    point.push(quote! {
        Point { var: [#(#rt::dual::Var::new(#sigmas)),*], inv_sqrt_pi: [#(#rt::dual::inv_sqrt_or_zero(#pi_names)),*] }
    });
    let hidden_part = dense::hidden_part(net);
    Derivation {
        hidden_layers: net.hidden.len(),
        point,
        pair_forward,
        nngp,
        ntk,
        readout_part,
        hidden_part,
    }
}
