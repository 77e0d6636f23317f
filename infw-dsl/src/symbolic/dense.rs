//! The dense rule: everything that belongs to a layer's weights (docs/math.md §2–§4, §8).
//!
//! ```text
//! Forward:  Σ = σw² Σ_in + σb²                         (§3)
//! NTK:      Θ = Σ + σw² Θ_in                           (§3; Θ_in = 0 at the input)
//! Readout:  R = σw_R S_r + σb_R                        (§4; r = the readout's input)
//! Hidden:   H = Σ_dense (σw S_in + σb) · B_out         (§4, §8)
//!           B_out = [D of the reader if it is an activation] · √(2/π) P(x,x')/√P(x',x')
//!           P = backward covariance: σw_R² at the readout's input; through a dense
//!           σw² P; through an activation Σ̇ P; through layer_norm P/√(Σ(x,x)Σ(x',x')).
//!           S of a Gaussian node = √(2/π) Σ(x,x')/√Σ(x',x'); of an activation, its S.
//! ```
use super::{factor, lit, q, square, PairVars, Walk};
use crate::ir::{Node, NodeId, Value};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// √(2/π), folded into the constants of B (the one definition, shared with the runtime).
use infw_layers::SQRT_2_OVER_PI;

/// A hidden dense node `n` reading `input`.
pub fn hidden(
    w: &mut Walk,
    n: NodeId,
    input: NodeId,
    w_std: &Value<f64>,
    b_std: &Value<f64>,
) -> PairVars {
    let (w2, b2) = (square(w_std), square(b_std));
    let (qn, qi) = (q(n), q(input));
    let point = b2.plus(w2.times(quote!(#qi)));
    w.point.push(quote!(let #qn = #point;));
    let prev = w.vars[input].clone();
    let cov = format_ident!("cov{}", n);
    let par = format_ident!("par{}", n);
    let ntk = format_ident!("ntk{}", n);
    let cov_expr = b2.plus(w2.times(prev.cov.clone()));
    let prev_par = &prev.parallel;
    let rt = w.rt.clone();
    let par_expr = match &b2 {
        super::Factor::Const(c) if *c == 0.0 => quote!(#prev_par),
        b => {
            let qf = w.variance_field(n);
            let bias_free = match b {
                super::Factor::Const(_) => quote!(false),
                super::Factor::Tokens(t) => quote!(#t == 0.0),
            };
            quote!(#prev_par.after_dense(#bias_free, #rt::dual::Real::all_eq(x.#qf, t.#qf)))
        }
    };
    let ntk_expr = match &prev.ntk {
        None => quote!(#cov),
        Some(prev_ntk) => {
            let term = w2.times(prev_ntk.clone());
            quote!(#cov + #term)
        }
    };
    w.pair.push(quote!(let #cov = #cov_expr;));
    w.pair.push(quote!(let #par = #par_expr;));
    w.pair.push(quote!(let #ntk = #ntk_expr;));
    PairVars {
        cov: quote!(#cov),
        ntk: Some(quote!(#ntk)),
        parallel: quote!(#par),
    }
}

/// The readout's NNGP and NTK expressions.
pub fn readout(w: &Walk) -> (TokenStream, TokenStream) {
    let r = &w.net.readout;
    let (w2, b2) = (square(&r.w_std), square(&r.b_std));
    let prev = &w.vars[r.input];
    let nngp = b2.plus(w2.times(prev.cov.clone()));
    let ntk = match &prev.ntk {
        None => quote!(nngp),
        Some(t) => {
            let term = w2.times(t.clone());
            quote!(nngp + #term)
        }
    };
    (nngp, ntk)
}

/// S(x, x') = E[z(x) sign z(x')] of node `n`'s output, as a pair expression.
fn sign_kernel(w: &mut Walk, n: NodeId) -> TokenStream {
    match &w.net.nodes[n] {
        Node::Input => quote!(input.sign_dot),
        Node::Activation { .. } => {
            let act = format_ident!("act{}", n);
            quote!(#act.sign)
        }
        // A Gaussian node: √(2/π) Σ(x,x')/√Σ(x',x').
        Node::Dense { .. }
        | Node::LayerNorm { .. }
        | Node::Sum { .. }
        | Node::Concat { .. }
        | Node::Conv { .. }
        | Node::GlobalAvgPool { .. }
        | Node::Flatten { .. } => {
            let isq = format_ident!("isq{}", n);
            let qn = q(n);
            let rt = &w.rt;
            w.field(isq.clone(), None, quote!(#rt::dual::inv_sqrt_or_zero(#qn)));
            let cov = w.vars[n].cov.clone();
            let c = lit(SQRT_2_OVER_PI);
            quote!(#cov * t.#isq * #c)
        }
    }
}

/// R's expression and H's statements (docs/math.md §4, §8), for graphs whose every node
/// has exactly one reader (checked by `Network::adam_limit`).
pub fn adam_limit(w: &mut Walk) -> (TokenStream, Vec<TokenStream>) {
    let net = w.net;
    let r = &net.readout;
    let readout_part = {
        let s = sign_kernel(w, r.input);
        factor(&r.b_std).plus(factor(&r.w_std).times(s))
    };
    // The reader of every node (a chain: at most one), `None` for the readout's input.
    let reader = |n: NodeId| -> Option<NodeId> {
        (n + 1..net.nodes.len()).find(|&m| net.nodes[m].inputs().contains(&n))
    };
    // Backward covariances from the readout down: point `bp{n}` (f64, unscaled) and pair
    // `sp{n}` = √(2/π)·P(x,x').
    let mut stmts = Vec::new();
    let wr2 = square(&r.w_std);
    for n in (0..net.nodes.len()).rev() {
        if !on_path(net, n) {
            continue;
        }
        let (bp, sp) = (format_ident!("bp{}", n), format_ident!("sp{}", n));
        let (point, pair) = match reader(n) {
            None => match &wr2 {
                super::Factor::Const(c) => (lit(*c), lit(c * SQRT_2_OVER_PI)),
                super::Factor::Tokens(t) => {
                    let k = lit(SQRT_2_OVER_PI);
                    (quote!(#t), quote!(#t * #k))
                }
            },
            Some(m) => {
                let (bpm, spm) = (format_ident!("bp{}", m), format_ident!("sp{}", m));
                match &net.nodes[m] {
                    Node::Dense { w_std, .. } => {
                        let w2 = square(w_std);
                        (w2.times(quote!(#bpm)), w2.times(quote!(#spm)))
                    }
                    Node::Activation { .. } => {
                        let (diag, act) = (format_ident!("diag{}", m), format_ident!("act{}", m));
                        (quote!(#diag.dphi * #bpm), quote!(#act.dphi * #spm))
                    }
                    Node::LayerNorm { .. } => {
                        let ln = format_ident!("ln{}", m);
                        (quote!(#bpm * #ln * #ln), quote!(#spm * x.#ln * t.#ln))
                    }
                    Node::Input
                    | Node::Sum { .. }
                    | Node::Concat { .. }
                    | Node::Conv { .. }
                    | Node::GlobalAvgPool { .. }
                    | Node::Flatten { .. } => {
                        unreachable!(
                            "adam_limit() admits chains of dense, activation and layer_norm only"
                        )
                    }
                }
            }
        };
        w.point.push(quote!(let #bp = #point;));
        stmts.push(quote!(let #sp = #pair;));
    }
    let rt = w.rt.clone();
    let mut terms = Vec::new();
    for n in (0..net.nodes.len()).rev() {
        let Node::Dense {
            input,
            w_std,
            b_std,
            ..
        } = &net.nodes[n]
        else {
            continue;
        };
        let forward = {
            let s = sign_kernel(w, *input);
            factor(b_std).plus(factor(w_std).times(s))
        };
        // B of the dense output: the Gaussian backward factor lives at the activation
        // that reads it, if one does.
        let (gauss, dsign) = match reader(n) {
            Some(m) if matches!(net.nodes[m], Node::Activation { .. }) => {
                let act = format_ident!("act{}", m);
                (m, Some(quote!(#act.dsign)))
            }
            _ => (n, None),
        };
        let (bp, sp, ip) = (
            format_ident!("bp{}", gauss),
            format_ident!("sp{}", gauss),
            format_ident!("ip{}", gauss),
        );
        w.field(ip.clone(), None, quote!(#rt::dual::inv_sqrt_or_zero(#bp)));
        let b = match dsign {
            Some(d) => quote!(t.#ip * #sp * #d),
            None => quote!(t.#ip * #sp),
        };
        terms.push(quote!((#forward) * (#b)));
    }
    if terms.is_empty() {
        stmts.push(quote!(let hidden = T::splat(0.0);));
    } else {
        stmts.push(quote!(let hidden = #(#terms)+*;));
    }
    (readout_part, stmts)
}

/// Whether node `n` lies on the path the backward signal takes (everything but the input).
fn on_path(_net: &crate::ir::Network, n: NodeId) -> bool {
    n > 0
}
