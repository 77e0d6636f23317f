//! An activation node: any rule of the registry, or a user's `act(path)`. The rule's
//! mathematics lives in its own file of `infw-layers/src/rules/`; here it is only called:
//! once per point (`Dual::point`: E\[φ²\], E[φ'²] and what the pair pass needs) and once
//! per pair (`Dual::pair`: E\[φφ\], E[φ'φ'], S, D and parallelism; docs/math.md §3, §4).
use super::{lit, q, PairVars, Walk};
use crate::ir::{NodeId, Rule};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

/// The rule's type as generated code names it.
pub fn rule_type(rule: &Rule, rt: &TokenStream) -> TokenStream {
    match rule {
        Rule::Registry { entry, .. } => {
            let ty = format_ident!(
                "{}",
                infw_layers::activation::lookup(entry)
                    .expect("lowered from the registry")
                    .rust_type
            );
            quote!(#rt::dual::rules::#ty)
        }
        Rule::User(path) => {
            let p = &path.0;
            quote_spanned!(p.span()=> #rt::dual::rules::User<#p>)
        }
    }
}

/// An expression constructing the rule value (folded after inlining).
pub fn rule_value(rule: &Rule, rt: &TokenStream) -> TokenStream {
    let ty = rule_type(rule, rt);
    let params: Vec<TokenStream> = match rule {
        Rule::Registry { params, .. } => params.iter().map(|&p| lit(p)).collect(),
        Rule::User(_) => Vec::new(),
    };
    quote!(<#ty as #rt::dual::Rule>::from_params(&[#(#params),*]))
}

/// Activation node `n` reading the Gaussian node `input`.
pub fn node(w: &mut Walk, n: NodeId, input: NodeId, rule: &Rule) -> PairVars {
    let rt = w.rt.clone();
    let ty = rule_type(rule, &rt);
    let value = rule_value(rule, &rt);
    let (qn, qi) = (q(n), q(input));
    let (diag, pt, field) = (
        format_ident!("diag{}", n),
        format_ident!("pt{}", n),
        format_ident!("a{}", n),
    );
    w.point
        .push(quote!(let (#diag, #pt) = #rt::dual::Dual::point(&#value, #qi);));
    w.point.push(quote!(let #qn = #diag.phi;));
    w.field(field.clone(), Some(ty), quote!(#pt));
    let prev = w.vars[input].clone();
    let act = format_ident!("act{}", n);
    let (cov, par) = (&prev.cov, &prev.parallel);
    // E[φφ] is the next node's Σ: every kernel downstream needs it, whatever `want` asks.
    w.pair.push(quote!(
        let #act = #rt::dual::Dual::pair(
            &#value, &x.#field, &t.#field, #cov, #par, #rt::Want { nngp: true, ..want },
        );
    ));
    PairVars {
        cov: quote!(#act.phi),
        ntk: prev.ntk.map(|t| quote!(#act.dphi * #t)),
        parallel: quote!(#act.parallel),
    }
}
