//! layer_norm over the width, no learned scale (docs/math.md §3, §8; neural-tangents'
//! `LayerNorm`): Σ(x,x') and Θ(x,x') are divided by √((Σ(x,x)+ε)(Σ(x',x')+ε)), ε = 1e-12.
//! The factor 1/√(Σ+ε) is per point; positive scalings keep exact parallelism.
use super::{lit, q, PairVars, Walk};
use crate::ir::NodeId;
use quote::{format_ident, quote};

/// neural-tangents' epsilon.
pub const EPS: f64 = 1e-12;

/// layer_norm node `n` reading `input`.
pub fn node(w: &mut Walk, n: NodeId, input: NodeId) -> PairVars {
    let (qn, qi) = (q(n), q(input));
    let ln = format_ident!("ln{}", n);
    let eps = lit(EPS);
    w.point.push(quote!(let #ln = 1.0 / (#qi + #eps).sqrt();));
    w.point.push(quote!(let #qn = #qi * #ln * #ln;));
    w.field(ln.clone(), None, quote!(#ln));
    let prev = w.vars[input].clone();
    let cov = format_ident!("cov{}", n);
    let prev_cov = &prev.cov;
    w.pair.push(quote!(let #cov = #prev_cov * x.#ln * t.#ln;));
    let ntk = prev.ntk.map(|t| {
        let ntk = format_ident!("ntk{}", n);
        w.pair.push(quote!(let #ntk = #t * x.#ln * t.#ln;));
        quote!(#ntk)
    });
    PairVars {
        cov: quote!(#cov),
        ntk,
        parallel: prev.parallel,
    }
}
