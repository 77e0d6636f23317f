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
use crate::ir::{Backward, Node, NodeId, Value};
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

/// S(x, x') = E[z(x) sign z(x')] of node `n`'s output, as a pair expression
/// (`Network::adam_limit` checked that it has a closed form).
fn sign_kernel(w: &mut Walk, n: NodeId) -> TokenStream {
    match &w.net.nodes[n] {
        Node::Input => quote!(input.sign_dot),
        Node::Activation { .. } => {
            let act = format_ident!("act{}", n);
            quote!(#act.sign)
        }
        // Each unit is one branch's: the average of the branches' S, by width.
        Node::Concat { inputs } => {
            let weights = super::combine::concat_weights(w.net, inputs);
            let terms: Vec<TokenStream> = inputs
                .iter()
                .zip(&weights)
                .map(|(&i, k)| {
                    let s = sign_kernel(w, i);
                    k.times(quote!((#s)))
                })
                .collect();
            quote!((#(#terms)+*))
        }
        // A Gaussian node: √(2/π) Σ(x,x')/√Σ(x',x').
        Node::Dense { .. }
        | Node::LayerNorm { .. }
        | Node::Sum { .. }
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

/// A sum of terms, `None` when empty.
fn sum_of(terms: Vec<TokenStream>) -> Option<TokenStream> {
    (!terms.is_empty()).then(|| quote!((#(#terms)+*)))
}

/// R's expression and H's statements (docs/math.md §4, §8) for the plan `back` of
/// `Network::adam_limit`.
///
/// Every node n's backward signal is g = G0 + φ'_m(u_m)·G1 given the forward pass; its
/// covariances live in locals named by node: point `bd{n}`, pair `pd{n}` for G0 and
/// `bg{n}`, `pg{n}` for G1. They are summed over the node's readers, from the readout down:
/// the readout and a dense reader m add σw² Π̄_m to G0 (Π̄ = P0 + E[φ'φ'] P1, the
/// covariance averaged over the gate); an activation reader m moves m's G0 into G1;
/// layer_norm scales by 1/√(Σ(x,x)Σ(x',x')), a concatenation by the branch's width share.
pub fn adam_limit(w: &mut Walk, back: &[Backward]) -> (TokenStream, Vec<TokenStream>) {
    let net = w.net;
    let r = &net.readout;
    let readout_part = {
        let s = sign_kernel(w, r.input);
        factor(&r.b_std).plus(factor(&r.w_std).times(s))
    };
    let names = |n: NodeId| {
        (
            format_ident!("bd{}", n),
            format_ident!("pd{}", n),
            format_ident!("bg{}", n),
            format_ident!("pg{}", n),
        )
    };
    // Π̄ of node m (point, pair): what a dense layer reading into m passes back.
    let averaged = |m: NodeId| -> (TokenStream, TokenStream) {
        let (bd, pd, bg, pg) = names(m);
        let mut point = Vec::new();
        let mut pair = Vec::new();
        if back[m].direct {
            point.push(quote!(#bd));
            pair.push(quote!(#pd));
        }
        if let Some(g) = back[m].gated {
            let (diag, act) = (format_ident!("diag{}", g), format_ident!("act{}", g));
            point.push(quote!(#diag.dphi * #bg));
            pair.push(quote!(#act.dphi * #pg));
        }
        (
            sum_of(point).expect("a dense layer's output reaches the readout"),
            sum_of(pair).expect("a dense layer's output reaches the readout"),
        )
    };
    let mut stmts = Vec::new();
    let wr2 = square(&r.w_std);
    for n in (1..net.nodes.len()).rev() {
        let mut contributions: [(Vec<TokenStream>, Vec<TokenStream>); 2] = Default::default();
        if n == r.input {
            let (point, pair) = match &wr2 {
                super::Factor::Const(c) => {
                    let c = lit(*c);
                    (quote!(#c), quote!(T::splat(#c)))
                }
                super::Factor::Tokens(t) => (quote!(#t), quote!(T::splat(#t))),
            };
            contributions[0].0.push(point);
            contributions[0].1.push(pair);
        }
        for (m, node) in net.nodes.iter().enumerate().skip(n + 1) {
            let (bd, pd, bg, pg) = names(m);
            for (position, _) in node.inputs().iter().enumerate().filter(|(_, &i)| i == n) {
                match node {
                    Node::Dense { w_std, .. } => {
                        let w2 = square(w_std);
                        let (point, pair) = averaged(m);
                        contributions[0].0.push(w2.times(point));
                        contributions[0].1.push(w2.times(pair));
                    }
                    Node::Activation { .. } => {
                        contributions[1].0.push(quote!(#bd));
                        contributions[1].1.push(quote!(#pd));
                    }
                    Node::LayerNorm { .. } | Node::Sum { .. } | Node::Concat { .. } => {
                        let (point_scale, pair_scale) = match node {
                            Node::LayerNorm { .. } => {
                                let ln = format_ident!("ln{}", m);
                                (quote!(* #ln * #ln), quote!(* x.#ln * t.#ln))
                            }
                            Node::Concat { inputs } => {
                                let k = &super::combine::concat_weights(net, inputs)[position];
                                let k = k.times(quote!(1.0));
                                (quote!(* #k), quote!(* #k))
                            }
                            _ => (quote!(), quote!()),
                        };
                        if back[m].direct {
                            contributions[0].0.push(quote!(#bd #point_scale));
                            contributions[0].1.push(quote!(#pd #pair_scale));
                        }
                        if back[m].gated.is_some() {
                            contributions[1].0.push(quote!(#bg #point_scale));
                            contributions[1].1.push(quote!(#pg #pair_scale));
                        }
                    }
                    Node::Input
                    | Node::Conv { .. }
                    | Node::GlobalAvgPool { .. }
                    | Node::Flatten { .. } => {
                        unreachable!("adam_limit() refuses convolutional networks")
                    }
                }
            }
        }
        let (bd, pd, bg, pg) = names(n);
        let [(direct_point, direct_pair), (gated_point, gated_pair)] = contributions;
        if let (Some(point), Some(pair)) = (sum_of(direct_point), sum_of(direct_pair)) {
            w.point.push(quote!(let #bd = #point;));
            stmts.push(quote!(let #pd = #pair;));
        }
        if let (Some(point), Some(pair)) = (sum_of(gated_point), sum_of(gated_pair)) {
            w.point.push(quote!(let #bg = #point;));
            stmts.push(quote!(let #pg = #pair;));
        }
    }
    let rt = w.rt.clone();
    let k = lit(SQRT_2_OVER_PI);
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
        let (bd, pd, bg, pg) = names(n);
        let (ib, ig) = (format_ident!("ib{}", n), format_ident!("ig{}", n));
        // B of the dense output: √(2/π) E_fwd[Cov(g, g' | fwd) / √Var(g' | fwd)].
        let b = match (back[n].direct, back[n].gated) {
            (true, None) => {
                w.field(ib.clone(), None, quote!(#rt::dual::inv_sqrt_or_zero(#bd)));
                quote!(#pd * t.#ib * #k)
            }
            (false, Some(m)) => {
                w.field(ig.clone(), None, quote!(#rt::dual::inv_sqrt_or_zero(#bg)));
                let act = format_ident!("act{}", m);
                quote!(#act.dsign * #pg * t.#ig * #k)
            }
            (true, Some(m)) => {
                w.field(bd.clone(), None, quote!(#bd));
                w.field(bg.clone(), None, quote!(#bg));
                let (pos, neg) = net.slopes(m).expect("adam_limit() checked the slopes");
                let (pos, neg) = (lit(pos), lit(neg));
                let Node::Activation { input: u, .. } = &net.nodes[m] else {
                    unreachable!("a gate is an activation")
                };
                let (cov, par) = (&w.vars[*u].cov, &w.vars[*u].parallel);
                let a = format_ident!("a{}", m);
                quote!(#rt::dual::rules::piecewise_linear::mixed_backward_sign(
                    #rt::dual::rules::PiecewiseLinear { pos: #pos, neg: #neg },
                    &x.#a, &t.#a, #cov, #par, [#pd, #pg], [t.#bd, t.#bg],
                ) * #k)
            }
            (false, None) => unreachable!("a dense layer's output reaches the readout"),
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
