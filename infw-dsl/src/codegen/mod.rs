//! Stage 4, code generation: the derivation placed into a `KernelProgram` impl, plus the
//! architecture value, as one block expression that evaluates to a `Network` (or, when a
//! hyper-parameter is an expression, to a `Result` checked when the value is built).
use crate::ir::value::{f64_tokens, Value};
use crate::ir::{Network, Node};
use crate::symbolic::activation::rule_value;
use crate::symbolic::derive;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

/// The block `network!` expands to. `rt` is the hidden runtime path (`::infw::__private`).
pub fn generate(net: &Network, rt: &TokenStream) -> TokenStream {
    let d = derive(net, rt);
    let point = &d.point;
    let pair = &d.pair;
    let (nngp, ntk) = (&d.nngp, &d.ntk);

    let field_decls = d.fields.iter().map(|f| {
        let name = &f.name;
        match &f.rule {
            None => quote!(#name: T),
            Some(ty) => quote!(#name: <#ty as #rt::dual::Dual>::Point<T>),
        }
    });
    let field_values = d.fields.iter().map(|f| {
        let (name, value) = (&f.name, &f.value);
        quote!(#name: #value)
    });
    let field_gathers = d.fields.iter().map(|f| {
        let name = &f.name;
        match &f.rule {
            None => quote!(#name: #rt::dual::F64x4([p[0].#name, p[1].#name, p[2].#name, p[3].#name])),
            Some(ty) => quote!(#name: <#ty as #rt::dual::Dual>::gather([&p[0].#name, &p[1].#name, &p[2].#name, &p[3].#name])),
        }
    });
    let field_splats = d.fields.iter().map(|f| {
        let name = &f.name;
        match &f.rule {
            None => quote!(#name: <#rt::dual::F64x4 as #rt::dual::Real>::splat(p.#name)),
            Some(ty) => quote!(#name: <#ty as #rt::dual::Dual>::splat(&p.#name)),
        }
    });

    let (adam_impl, adam_code) = match &d.adam {
        Some((readout, hidden)) => (
            quote!(impl #rt::AdamLimitProgram for Program {}),
            quote! {
                if want.readout {
                    out.readout = #readout;
                }
                if want.hidden {
                    #(#hidden)*
                    out.hidden = hidden;
                }
            },
        ),
        None => (quote!(), quote!()),
    };
    let (sd_readout, sd_hidden) = d.sign_dot;
    let has_adam = d.adam.is_some();
    let refusal = match net.adam_limit() {
        Ok(_) => quote!(::core::option::Option::None),
        Err(why) => quote!(::core::option::Option::Some(#why)),
    };

    // The nodes whose variance Σ(x,x) the point pass computes (all but a conv front's),
    // checked in order by `non_finite_node` to name where an overflow starts.
    let pool = net.pool();
    let checked = (0..net.nodes.len()).filter(|&n| pool.is_none_or(|p| n >= p));
    let variance_checks = checked.map(|n| {
        let qn = crate::symbolic::q(n);
        quote!(if !#qn.is_finite() { return ::core::option::Option::Some(#n); })
    });

    let params = parameters(net);
    let param_fields = params.iter().map(|(i, ty, _)| {
        let f = format_ident!("p{}", i);
        quote!(#f: #ty)
    });
    let param_lets = params.iter().map(|(i, ty, expr)| {
        let f = format_ident!("p{}", i);
        quote_spanned!(expr.span()=> let #f: #ty = #expr;)
    });
    let param_inits = params.iter().map(|(i, _, _)| format_ident!("p{}", i));
    let architecture = architecture(net, rt);
    let (spatial_items, program_value) = match crate::symbolic::spatial::front(net, rt) {
        None => (quote!(), quote!(program)),
        Some(f) => spatial_items(&f, rt),
    };
    let construct = if params.is_empty() {
        quote!(#rt::Network::new(#program_value))
    } else {
        quote!(#rt::Network::try_new(#program_value))
    };

    quote! {
        {
            #[derive(Clone, Copy, Debug, Default)]
            struct Point<T: #rt::dual::Real> {
                #(#field_decls,)*
                _lanes: ::core::marker::PhantomData<T>,
            }
            #[derive(Clone, Debug)]
            struct Program {
                architecture: #rt::Architecture,
                #(#param_fields,)*
            }
            // The folded constants are the user's numbers (e.g. w_std = 1.4142135623730951)
            // and their products: lints about them would point into the declaration.
            #[allow(clippy::all, unused_variables, unused_parens)]
            impl #rt::PairProgram for Program {
                type Point<T: #rt::dual::Real> = Point<T>;
                fn architecture(&self) -> &#rt::Architecture {
                    &self.architecture
                }
                fn needs_sign_dot(&self, want: #rt::Want) -> bool {
                    (want.readout && #sd_readout) || (want.hidden && #sd_hidden)
                }
                fn has_adam_limit(&self) -> bool {
                    #has_adam
                }
                fn adam_limit_refusal(&self) -> ::core::option::Option<&'static str> {
                    #refusal
                }
                #[inline(always)]
                fn point(&self, sq_norm: f64) -> Point<f64> {
                    #(#point)*
                    Point { #(#field_values,)* _lanes: ::core::marker::PhantomData }
                }
                fn non_finite_node(&self, sq_norm: f64) -> ::core::option::Option<usize> {
                    #(#point)*
                    #(#variance_checks)*
                    ::core::option::Option::None
                }
                #[inline(always)]
                fn gather(&self, p: [&Point<f64>; 4]) -> Point<#rt::dual::F64x4> {
                    Point { #(#field_gathers,)* _lanes: ::core::marker::PhantomData }
                }
                #[inline(always)]
                fn splat(&self, p: &Point<f64>) -> Point<#rt::dual::F64x4> {
                    Point { #(#field_splats,)* _lanes: ::core::marker::PhantomData }
                }
                #[inline(always)]
                fn pair<T: #rt::dual::Real>(
                    &self,
                    x: &Point<T>,
                    t: &Point<T>,
                    input: #rt::PairInputs<T>,
                    want: #rt::Want,
                ) -> #rt::PairKernels<T> {
                    #(#pair)*
                    let nngp = #nngp;
                    let ntk = #ntk;
                    let mut out = #rt::PairKernels { nngp, ntk, readout: T::splat(0.0), hidden: T::splat(0.0) };
                    #adam_code
                    out
                }
            }
            #adam_impl
            #spatial_items
            #(#param_lets)*
            let program = Program {
                architecture: #architecture,
                #(#param_inits,)*
            };
            #construct
        }
    }
}

/// The declaration's expressions in index order: (index, type, expression).
fn parameters(net: &Network) -> Vec<(usize, TokenStream, syn::Expr)> {
    let mut out = Vec::new();
    let f64v = |v: &Value<f64>, out: &mut Vec<(usize, TokenStream, syn::Expr)>| {
        if let Value::Expr { index, expr } = v {
            out.push((*index, quote!(f64), (**expr).clone()));
        }
    };
    let usizev = |v: &Value<usize>, out: &mut Vec<(usize, TokenStream, syn::Expr)>| {
        if let Value::Expr { index, expr } = v {
            out.push((*index, quote!(usize), (**expr).clone()));
        }
    };
    for n in &net.nodes {
        if let Node::Dense {
            width,
            w_std,
            b_std,
            ..
        }
        | Node::Conv {
            channels: width,
            w_std,
            b_std,
            ..
        } = n
        {
            usizev(width, &mut out);
            f64v(w_std, &mut out);
            f64v(b_std, &mut out);
        }
    }
    let r = &net.readout;
    if let Some(o) = &r.outputs {
        usizev(o, &mut out);
    }
    f64v(&r.w_std, &mut out);
    f64v(&r.b_std, &mut out);
    out.sort_by_key(|(i, _, _)| *i);
    out
}

fn usize_value(v: &Value<usize>) -> TokenStream {
    match v {
        Value::Literal(k) => {
            let l = proc_macro2::Literal::usize_unsuffixed(*k);
            quote!(#l)
        }
        Value::Expr { index, .. } => {
            let f = format_ident!("p{}", index);
            quote!(#f)
        }
    }
}

/// A value in the construction code: the literal, or the local `p{index}`.
fn f64_value(v: &Value<f64>) -> TokenStream {
    match v {
        Value::Literal(_) => f64_tokens(v),
        Value::Expr { index, .. } => {
            let f = format_ident!("p{}", index);
            quote!(#f)
        }
    }
}

fn architecture(net: &Network, rt: &TokenStream) -> TokenStream {
    let nodes = net.nodes.iter().map(|n| match n {
        Node::Input => quote!(#rt::Node::Input),
        Node::Dense {
            input,
            width,
            w_std,
            b_std,
        } => {
            let (width, w, b) = (usize_value(width), f64_value(w_std), f64_value(b_std));
            quote!(#rt::Node::Dense { input: #input, width: #width, w_std: #w, b_std: #b })
        }
        Node::Activation { input, rule } => {
            let activation = match rule {
                crate::ir::Rule::Registry { entry, .. } => {
                    let variant = format_ident!(
                        "{}",
                        infw_layers::activation::lookup(entry)
                            .expect("lowered from the registry")
                            .rust_type
                    );
                    let value = rule_value(rule, rt);
                    quote!(#rt::Activation::#variant(#value))
                }
                crate::ir::Rule::User(path) => {
                    let p = &path.0;
                    let name = quote::ToTokens::to_token_stream(p)
                        .to_string()
                        .replace(' ', "");
                    quote_spanned! {p.span()=>
                        #rt::Activation::User(#rt::dual::UserFunction {
                            name: #name,
                            value: <#p as #rt::dual::UserActivation>::value,
                            derivative: <#p as #rt::dual::UserActivation>::derivative,
                        })
                    }
                }
            };
            quote!(#rt::Node::Activation { input: #input, activation: #activation })
        }
        Node::LayerNorm { input } => quote!(#rt::Node::LayerNorm { input: #input }),
        Node::Sum { inputs } => quote!(#rt::Node::Sum { inputs: ::std::vec![#(#inputs),*] }),
        Node::Concat { inputs } => quote!(#rt::Node::Concat { inputs: ::std::vec![#(#inputs),*] }),
        Node::Conv {
            input,
            channels,
            size,
            stride,
            padding,
            w_std,
            b_std,
        } => {
            let (channels, w, b) = (usize_value(channels), f64_value(w_std), f64_value(b_std));
            let padding = format_ident!("{}", format!("{padding:?}"));
            quote!(#rt::Node::Conv {
                input: #input,
                channels: #channels,
                size: #size,
                stride: #stride,
                padding: #rt::dual::Padding::#padding,
                w_std: #w,
                b_std: #b,
            })
        }
        Node::GlobalAvgPool { input } => quote!(#rt::Node::GlobalAvgPool { input: #input }),
        Node::Flatten { input } => quote!(#rt::Node::Flatten { input: #input }),
    });
    let spatial = match &net.spatial {
        None => quote!(::core::option::Option::None),
        Some(s) => {
            let (shape, channels) = (&s.shape, s.channels);
            quote!(::core::option::Option::Some(#rt::arch::SpatialInput {
                shape: ::std::vec![#(#shape),*],
                channels: #channels,
            }))
        }
    };
    let r = &net.readout;
    let input = r.input;
    let outputs = match &r.outputs {
        Some(c) => {
            let c = usize_value(c);
            quote!(::core::option::Option::Some(#c))
        }
        None => quote!(::core::option::Option::None),
    };
    let (w, b) = (f64_value(&r.w_std), f64_value(&r.b_std));
    quote! {
        #rt::Architecture {
            spatial: #spatial,
            nodes: ::std::vec![#(#nodes),*],
            readout: #rt::Readout { input: #input, outputs: #outputs, w_std: #w, b_std: #b },
        }
    }
}

/// The items of a convolutional declaration (docs/math.md §9): the per-point struct, the
/// front's program around the dense part's `Program`, and its `SpatialProgram` impl;
/// returns them with the expression of the value `Network` wraps.
fn spatial_items(
    f: &crate::symbolic::spatial::Front,
    rt: &TokenStream,
) -> (TokenStream, TokenStream) {
    let field_decls = f.point_fields.iter().map(|(n, ty)| quote!(#n: #ty));
    let field_names: Vec<_> = f.point_fields.iter().map(|(n, _)| n.clone()).collect();
    let table_decls = f.tables.iter().map(|(n, ty, _)| quote!(#n: #ty));
    let table_inits = f.tables.iter().map(|(n, _, init)| quote!(#n: #init));
    let (point, pair, pooled, row_len) = (&f.point, &f.pair, &f.pooled_var, f.row_len);
    let items = quote! {
        #[derive(Clone, Debug)]
        struct SpatialPoint {
            row: ::std::vec::Vec<f64>,
            head: Point<f64>,
            #(#field_decls,)*
        }
        #[derive(Clone, Debug)]
        struct Spatial {
            head: Program,
            #(#table_decls,)*
        }
        #[allow(clippy::all, unused_variables, unused_parens)]
        impl Spatial {
            /// The pooled (Σ, Θ) of a pair.
            #[inline(always)]
            fn front(
                &self,
                x: &SpatialPoint,
                t: &SpatialPoint,
                planes: &mut #rt::spatial::Planes,
                want: #rt::Want,
            ) -> (f64, f64) {
                #(#pair)*
                (cov, ntk)
            }
        }
        #[allow(clippy::all, unused_variables, unused_parens)]
        impl #rt::spatial::SpatialProgram for Spatial {
            type Point = SpatialPoint;
            fn architecture(&self) -> &#rt::Architecture {
                &self.head.architecture
            }
            fn row_len(&self) -> usize {
                #row_len
            }
            fn point(&self, row: &[f64], planes: &mut #rt::spatial::Planes) -> SpatialPoint {
                #(#point)*
                let mut point = SpatialPoint {
                    row: row.to_vec(),
                    head: ::core::default::Default::default(),
                    #(#field_names,)*
                };
                let pooled = #pooled;
                point.head = #rt::PairProgram::point(&self.head, pooled);
                point
            }
            #[inline(always)]
            fn pair(
                &self,
                x: &SpatialPoint,
                t: &SpatialPoint,
                planes: &mut #rt::spatial::Planes,
                want: #rt::Want,
            ) -> #rt::PairKernels<f64> {
                let (cov, ntk) = self.front(x, t, planes, want);
                let parallel = if x.row == t.row {
                    #rt::Parallel::Positive
                } else {
                    #rt::Parallel::Unknown
                };
                let inputs = #rt::PairInputs { dot: cov, sign_dot: 0.0, ntk, parallel };
                #rt::PairProgram::pair(&self.head, &x.head, &t.head, inputs, want)
            }
        }
    };
    let value = quote! {
        #rt::spatial::Convolutional(Spatial {
            head: program,
            #(#table_inits,)*
        })
    };
    (items, value)
}
