//! The convolutional front of a declaration with `input(…)` (docs/math.md §9), unrolled
//! node by node into calls of the runtime's plane operations with this declaration's
//! constant geometries and rule types: per point, the diagonal Σ_{p,p}(x,x) through the
//! layers (and each activation's per-position values); per pair, the planes Σ_{p,q},
//! Θ_{p,q} (all (p, q) before `global_avg_pool`, only p = q before `flatten`), pooled
//! into the dense part's input.

use super::activation::{rule_type, rule_value};
use crate::ir::value::Value;
use crate::ir::{Network, Node};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// The front's pieces, placed by `codegen` into the generated `SpatialProgram`.
pub struct Front {
    /// Fields of the per-point struct besides `row` and `head`: (name, type).
    pub point_fields: Vec<(Ident, TokenStream)>,
    /// Statements of the per-point pass over `row`, defining the point fields.
    pub point: Vec<TokenStream>,
    /// The pooled self-variance, after `point` (may call the pair front on the point).
    pub pooled_var: TokenStream,
    /// Statements of the pair front over `x`, `t`, `planes`, ending with `cov`, `ntk`.
    pub pair: Vec<TokenStream>,
    /// Program fields: (name, type, initialiser using the `p{i}` locals).
    pub tables: Vec<(Ident, TokenStream, TokenStream)>,
    /// The length of a row of X.
    pub row_len: usize,
}

/// The front of `net`, or `None` for a dense declaration.
pub fn front(net: &Network, rt: &TokenStream) -> Option<Front> {
    let spatial = net.spatial.as_ref()?;
    let pool = net.pool()?;
    let diagonal = matches!(net.nodes[pool], Node::Flatten { .. });
    let positions = spatial.sizes()[0] * spatial.sizes()[1];
    let channels = spatial.channels;
    let mut f = Front {
        point_fields: Vec::new(),
        point: vec![quote! {
            let mut diag = #rt::spatial::Diagonal::default();
            diag.input(row, #positions, #channels);
        }],
        pooled_var: quote!(),
        pair: vec![quote! {
            planes.input(&x.row, &t.row, #positions, #channels, #diagonal);
        }],
        tables: Vec::new(),
        row_len: spatial.row_len(),
    };
    for (n, node) in net.nodes.iter().enumerate().take(pool) {
        match node {
            Node::Input => {}
            Node::Conv { w_std, b_std, .. } => {
                let g = net.conv_geometry(n).expect("checked when lowered");
                let table = format_ident!("conv{}", n);
                let (w, b) = (value(w_std), value(b_std));
                let geometry = geometry_tokens(&g, rt);
                f.tables.push((
                    table.clone(),
                    quote!(#rt::spatial::ConvTable),
                    quote!(#rt::spatial::ConvTable::new(#geometry, #w, #b)),
                ));
                f.point.push(quote!(diag.conv(&self.#table);));
                f.pair.push(quote!(planes.conv(&self.#table, want.ntk);));
            }
            Node::Activation { rule, .. } => {
                let (ty, value) = (rule_type(rule, rt), rule_value(rule, rt));
                let field = format_ident!("a{}", n);
                f.point_fields.push((
                    field.clone(),
                    quote!(#rt::spatial::PositionPoints<
                        <#ty as #rt::dual::Dual>::Point<f64>,
                        <#ty as #rt::dual::Dual>::Point<#rt::dual::F64x4>,
                    >),
                ));
                f.point.push(quote!(let #field = diag.activation(&#value);));
                f.pair
                    .push(quote!(planes.activation(&#value, &x.#field, &t.#field, want.ntk);));
            }
            other => unreachable!("lowering admits no {other:?} before the pool"),
        }
    }
    f.pair.push(quote!(let (cov, ntk) = planes.pool();));
    f.pooled_var = if diagonal {
        quote!(diag.mean())
    } else {
        quote!(self.front(&point, &point, planes, #rt::Want::NNGP).0)
    };
    Some(f)
}

/// A value in the construction code: the literal, or the local `p{index}`.
fn value(v: &Value<f64>) -> TokenStream {
    match v {
        Value::Literal(x) => {
            let l = proc_macro2::Literal::f64_unsuffixed(*x);
            quote!(#l)
        }
        Value::Expr { index, .. } => {
            let p = format_ident!("p{}", index);
            quote!(#p)
        }
    }
}

fn geometry_tokens(g: &infw_layers::conv::ConvGeometry, rt: &TokenStream) -> TokenStream {
    let arr = |a: [usize; 2]| {
        let (a0, a1) = (a[0], a[1]);
        quote!([#a0, #a1])
    };
    let (input, output, size, stride, pad) = (
        arr(g.input),
        arr(g.output),
        arr(g.size),
        arr(g.stride),
        arr(g.pad_before),
    );
    let circular = g.circular;
    quote! {
        #rt::dual::ConvGeometry {
            input: #input,
            output: #output,
            size: #size,
            stride: #stride,
            pad_before: #pad,
            circular: #circular,
        }
    }
}
