//! The dense rule: everything that belongs to a layer's weights (SPEC §2–§4).
//!
//! ```text
//! Forward:  Σˡ = σw_l² E[φφ]ˡ⁻¹ + σb_l²            (SPEC §3)
//! NTK:      Θˡ = Σˡ + σw_l² Σ̇ˡ⁻¹ Θˡ⁻¹,  Θ¹ = Σ¹   (SPEC §3)
//! Readout:  R = σw_{L+1} Sᴸ + σb_{L+1}              (SPEC §4)
//! Hidden:   H = Σ_l (σw_l Sˡ⁻¹ + σb_l) · √(2/π) Πˡ(x,x')/√Πˡ(x',x') · Dˡ,
//!           Πᴸ = σw_{L+1}², Πˡ⁻¹ = σw_l² Σ̇ˡ Πˡ      (SPEC §4)
//! ```
use super::{lit, plus, scaled, State};
use crate::ir::Network;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// √(2/π), folded into the constants of H.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

/// A hidden dense layer: per-point Σˡ(x,x); per-pair Σˡ(x,x'), its parallelism and Θˡ.
pub fn hidden(w_std: f64, b_std: f64, s: &State) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let l = s.layer;
    let (w2, b2) = (w_std * w_std, b_std * b_std);
    let sigma = format_ident!("sigma{}", l);
    let cov = format_ident!("cov{}", l);
    let par = format_ident!("par{}", l);
    let ntk = format_ident!("ntk{}", l);
    let sigma_expr = plus(scaled(w2, s.point_phi.clone()), b2);
    let cov_expr = plus(scaled(w2, s.pair_phi.clone()), b2);
    let prev_par = &s.pair_parallel;
    let idx = proc_macro2::Literal::usize_unsuffixed(l - 1);
    let par_expr = if b2 == 0.0 {
        quote!(#prev_par)
    } else {
        {
            let rt = &s.rt;
            quote!(#prev_par.after_dense(false, #rt::dual::Real::all_eq(x.var[#idx].var, t.var[#idx].var)))
        }
    };
    let ntk_expr = match &s.previous {
        None => quote!(#cov),
        Some(act) => {
            let prev_ntk = format_ident!("ntk{}", l - 1);
            let term = scaled(w2, quote!(#act.dphi * #prev_ntk));
            quote!(#cov + #term)
        }
    };
    (
        vec![quote!(let #sigma = #sigma_expr;)],
        vec![
            quote!(let #cov = #cov_expr;),
            quote!(let #par = #par_expr;),
            quote!(let #ntk = #ntk_expr;),
        ],
    )
}

/// The readout dense layer: NNGP, NTK and R.
pub fn readout(w_std: f64, b_std: f64, s: &State) -> (TokenStream, TokenStream, TokenStream) {
    let (w2, b2) = (w_std * w_std, b_std * b_std);
    let nngp = plus(scaled(w2, s.pair_phi.clone()), b2);
    let ntk = match &s.previous {
        None => quote!(nngp),
        Some(act) => {
            let prev_ntk = format_ident!("ntk{}", s.layer - 1);
            let term = scaled(w2, quote!(#act.dphi * #prev_ntk));
            quote!(nngp + #term)
        }
    };
    let sign = match &s.previous {
        None => quote!(input.sign_dot),
        Some(act) => quote!(#act.sign),
    };
    let r = plus(scaled(w_std, sign), b_std);
    (nngp, ntk, r)
}

/// Per-point backward covariances Πˡ(x,x), l = L..1, from the readout down.
pub fn backward_point(net: &Network) -> (Vec<TokenStream>, Vec<proc_macro2::Ident>) {
    let big_l = net.hidden.len();
    let mut stmts = Vec::new();
    let mut names = Vec::new();
    for l in (1..=big_l).rev() {
        let pi = format_ident!("pi{}", l);
        if l == big_l {
            let c = lit(net.readout.w_std * net.readout.w_std);
            stmts.push(quote!(let #pi = #c;));
        } else {
            let next = format_ident!("pi{}", l + 1);
            let phi = format_ident!("phi{}", l + 1);
            let w2 = net.hidden[l].w_std * net.hidden[l].w_std;
            let e = scaled(w2, quote!(#phi.dphi * #next));
            stmts.push(quote!(let #pi = #e;));
        }
        names.push(pi);
    }
    names.reverse();
    (stmts, names)
}

/// Statements computing `hidden` (H of SPEC §4) in the pair pass.
pub fn hidden_part(net: &Network) -> Vec<TokenStream> {
    let big_l = net.hidden.len();
    if big_l == 0 {
        return vec![quote!(let hidden = T::splat(0.0);)];
    }
    let mut stmts = Vec::new();
    let mut terms = Vec::new();
    for l in (1..=big_l).rev() {
        let pi = format_ident!("scaled_pi{}", l);
        let act = format_ident!("act{}", l);
        // scaled_piˡ = √(2/π)·Πˡ(x,x'): the constant of B folded in.
        if l == big_l {
            let c = lit(SQRT_2_OVER_PI * net.readout.w_std * net.readout.w_std);
            stmts.push(quote!(let #pi = #c;));
        } else {
            let next = format_ident!("scaled_pi{}", l + 1);
            let next_act = format_ident!("act{}", l + 1);
            let w2 = net.hidden[l].w_std * net.hidden[l].w_std;
            let e = scaled(w2, quote!(#next_act.dphi * #next));
            stmts.push(quote!(let #pi = #e;));
        }
        let h = &net.hidden[l - 1];
        let forward_sign = if l == 1 {
            quote!(input.sign_dot)
        } else {
            let prev = format_ident!("act{}", l - 1);
            quote!(#prev.sign)
        };
        let forward = plus(scaled(h.w_std, forward_sign), h.b_std);
        let idx = proc_macro2::Literal::usize_unsuffixed(l - 1);
        terms.push(quote!((#forward) * (t.inv_sqrt_pi[#idx] * #pi * #act.dsign)));
    }
    stmts.push(quote!(let hidden = #(#terms)+*;));
    stmts
}
