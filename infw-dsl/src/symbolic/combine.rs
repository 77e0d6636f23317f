//! Sum and concat: the ends of `residual(…)` and `parallel(… | …)` (docs/math.md §8).
//!
//! ```text
//! sum:    Σ = Σ_a + Σ_b,  Θ = Θ_a + Θ_b        (the block's fresh weights: no cross terms)
//! concat: Σ = Σ_k (n_k/n) Σ_k,  Θ likewise      (n_k the branch widths, n their sum)
//! ```
//! Exact parallelism survives when every input is parallel with the same sign and equal
//! variances on both sides (then each input is the same multiple, 1).
use super::{q, Factor, PairVars, Walk};
use crate::ir::{Network, NodeId, Value};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Sum node `n`.
pub fn sum(w: &mut Walk, n: NodeId, inputs: &[NodeId]) -> PairVars {
    let ones = vec![Factor::Const(1.0); inputs.len()];
    weighted(w, n, inputs, &ones)
}

/// Concat node `n`: the kernels averaged with weights proportional to branch widths.
pub fn concat(w: &mut Walk, n: NodeId, inputs: &[NodeId]) -> PairVars {
    let weights = concat_weights(w.net, inputs);
    weighted(w, n, inputs, &weights)
}

/// The branches' width shares n_k/n of a concat reading `inputs`.
pub fn concat_weights(net: &Network, inputs: &[NodeId]) -> Vec<Factor> {
    let widths: Vec<&Value<usize>> = inputs
        .iter()
        .map(|&i| {
            net.width(i)
                .expect("lowering checked every branch has a width")
        })
        .collect();
    match widths
        .iter()
        .map(|v| v.literal())
        .collect::<Option<Vec<usize>>>()
    {
        Some(lits) => {
            let total: usize = lits.iter().sum();
            lits.iter()
                .map(|&k| Factor::Const(k as f64 / total as f64))
                .collect()
        }
        None => {
            let toks: Vec<TokenStream> = widths.iter().map(|v| usize_tokens(v)).collect();
            let total = quote!((#(#toks)+*) as f64);
            toks.iter()
                .map(|t| Factor::Tokens(quote!((#t as f64 / #total))))
                .collect()
        }
    }
}

fn usize_tokens(v: &Value<usize>) -> TokenStream {
    match v {
        Value::Literal(k) => {
            let l = proc_macro2::Literal::usize_unsuffixed(*k);
            quote!(#l)
        }
        Value::Expr { index, .. } => {
            let f = format_ident!("p{}", index);
            quote!(self.#f)
        }
    }
}

fn weighted(w: &mut Walk, n: NodeId, inputs: &[NodeId], weights: &[Factor]) -> PairVars {
    let qn = q(n);
    let point_terms: Vec<TokenStream> = inputs
        .iter()
        .zip(weights)
        .map(|(&i, k)| {
            let qi = q(i);
            k.times(quote!(#qi))
        })
        .collect();
    w.point.push(quote!(let #qn = #(#point_terms)+*;));
    let covs: Vec<TokenStream> = inputs
        .iter()
        .zip(weights)
        .map(|(&i, k)| k.times(w.vars[i].cov.clone()))
        .collect();
    let ntks: Vec<TokenStream> = inputs
        .iter()
        .zip(weights)
        .filter_map(|(&i, k)| w.vars[i].ntk.clone().map(|t| k.times(t)))
        .collect();
    let rt = w.rt.clone();
    let pars: Vec<TokenStream> = inputs.iter().map(|&i| w.vars[i].parallel.clone()).collect();
    let equal: Vec<TokenStream> = inputs
        .iter()
        .map(|&i| {
            let f = w.variance_field(i);
            quote!(#rt::dual::Real::all_eq(x.#f, t.#f))
        })
        .collect();
    let (cov, ntk, par) = (
        format_ident!("cov{}", n),
        format_ident!("ntk{}", n),
        format_ident!("par{}", n),
    );
    w.pair.push(quote!(let #cov = #(#covs)+*;));
    w.pair
        .push(quote!(let #par = #rt::Parallel::combine(&[#(#pars),*], #(#equal)&&*);));
    let ntk = if ntks.is_empty() {
        None
    } else {
        w.pair.push(quote!(let #ntk = #(#ntks)+*;));
        Some(quote!(#ntk))
    };
    PairVars {
        cov: quote!(#cov),
        ntk,
        parallel: quote!(#par),
    }
}
