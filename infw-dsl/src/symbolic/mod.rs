//! Stage 3, symbolic derivation: docs/math.md §3, §4 and §8 unrolled for one graph.
//!
//! The derivation walks the nodes once in order and emits straight-line code, variables
//! named by node: a per-point pass (each node's variance Σ(x,x), what the activations
//! precompute, and the backward covariances of the Adam-like limit) and a fused per-pair
//! pass (covariances, NTK, parallelism, sign kernels, then R and H). Literal constants
//! (σw², σb², their products) are folded here; expressions become fields of the program.
//! One file per node kind: [`dense`] (also the readout, and everything that belongs to
//! weights, incl. the Adam-limit terms), [`activation`] (any registry rule or a user's),
//! [`layer_norm`], [`combine`] (sum and concat).

pub mod activation;
pub mod combine;
pub mod dense;
pub mod layer_norm;
pub mod spatial;

use crate::ir::{Network, Node, NodeId, Value};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// A field of the generated `Point<T>`: per-point data the pair pass reads.
pub struct PointField {
    /// The field's name (`q3`, …).
    pub name: Ident,
    /// `None`: a number (`T`); `Some(rule type)`: that rule's `Dual::Point<T>`.
    pub rule: Option<TokenStream>,
    /// The f64 value computed in the point pass.
    pub value: TokenStream,
}

/// The unrolled program, ready to be placed into an impl by `codegen`.
pub struct Derivation {
    /// The fields of the generated `Point<T>`.
    pub fields: Vec<PointField>,
    /// Statements of the per-point pass (locals `q{n}`, …).
    pub point: Vec<TokenStream>,
    /// Statements of the per-pair pass computing every node's covariance, NTK and duals.
    pub pair: Vec<TokenStream>,
    /// Expression of the readout NNGP.
    pub nngp: TokenStream,
    /// Expression of the readout NTK.
    pub ntk: TokenStream,
    /// The Adam-like limit, when derived for every node: R's expression and H's statements
    /// (ending in `let hidden = …;`).
    pub adam: Option<(TokenStream, Vec<TokenStream>)>,
    /// Whether R, respectively H, read S⁰ = ⟨x, sign x'⟩/d0.
    pub sign_dot: (bool, bool),
}

/// What the pair pass knows about a node's output.
#[derive(Clone)]
pub struct PairVars {
    /// The local holding the pair's covariance Σ(x, x').
    pub cov: TokenStream,
    /// `None` while no parameter lies upstream (the input): Θ = 0.
    pub ntk: Option<TokenStream>,
    /// The expression of the pair's exact parallelism (`Parallel`).
    pub parallel: TokenStream,
}

/// The state threaded through the walk.
pub struct Walk<'a> {
    /// The graph being derived.
    pub net: &'a Network,
    /// The path generated code reaches the runtime through (`::infw::__private`).
    pub rt: TokenStream,
    /// Point fields so far (see [`Derivation::fields`]).
    pub fields: Vec<PointField>,
    /// Point-pass statements so far.
    pub point: Vec<TokenStream>,
    /// Pair-pass statements so far.
    pub pair: Vec<TokenStream>,
    /// What the pair pass knows about each node walked so far, by node id.
    pub vars: Vec<PairVars>,
}

impl Walk<'_> {
    /// Adds a point field (once).
    pub fn field(&mut self, name: Ident, rule: Option<TokenStream>, value: TokenStream) {
        if !self.fields.iter().any(|f| f.name == name) {
            self.fields.push(PointField { name, rule, value });
        }
    }

    /// The per-point variance of node `n` as a field of both points (for parallelism and
    /// Gaussian sign kernels).
    pub fn variance_field(&mut self, n: NodeId) -> Ident {
        let q = q(n);
        self.field(q.clone(), None, quote!(#q));
        q
    }
}

/// The local holding Σ(x,x) of node `n` in the point pass.
pub fn q(n: NodeId) -> Ident {
    format_ident!("q{}", n)
}

/// Literal of an f64 folded at compile time.
pub fn lit(v: f64) -> TokenStream {
    let l = proc_macro2::Literal::f64_unsuffixed(v);
    quote!(#l)
}

/// A value's square: folded for a literal, `(self.p * self.p)` for an expression.
pub fn square(v: &Value<f64>) -> Factor {
    match v {
        Value::Literal(x) => Factor::Const(x * x),
        Value::Expr { .. } => {
            let t = crate::ir::value::f64_tokens(v);
            Factor::Tokens(quote!((#t * #t)))
        }
    }
}

/// A value as a factor.
pub fn factor(v: &Value<f64>) -> Factor {
    match v {
        Value::Literal(x) => Factor::Const(*x),
        Value::Expr { .. } => Factor::Tokens(crate::ir::value::f64_tokens(v)),
    }
}

/// A multiplier or addend that is either a folded constant or runtime tokens.
#[derive(Clone)]
pub enum Factor {
    /// A constant folded at compile time.
    Const(f64),
    /// Tokens evaluated at run time (a hyper-parameter expression).
    Tokens(TokenStream),
}

impl Factor {
    /// `expr * self`, dropping a product by exactly 1 (constants on the right, so the
    /// same code serves `f64` and lanes).
    pub fn times(&self, expr: TokenStream) -> TokenStream {
        match self {
            Factor::Const(c) if *c == 1.0 => expr,
            Factor::Const(c) => {
                let c = lit(*c);
                quote!(#expr * #c)
            }
            Factor::Tokens(t) => quote!(#expr * #t),
        }
    }

    /// `expr + self`, dropping a sum with exactly 0.
    pub fn plus(&self, expr: TokenStream) -> TokenStream {
        match self {
            Factor::Const(c) if *c == 0.0 => expr,
            Factor::Const(c) => {
                let c = lit(*c);
                quote!(#expr + #c)
            }
            Factor::Tokens(t) => quote!(#expr + #t),
        }
    }

    /// Whether it is the constant 0.
    pub fn is_zero(&self) -> bool {
        matches!(self, Factor::Const(c) if *c == 0.0)
    }
}

/// Derives the per-point and per-pair programs of `net`.
pub fn derive(net: &Network, rt: &TokenStream) -> Derivation {
    let mut w = Walk {
        net,
        rt: rt.clone(),
        fields: Vec::new(),
        point: Vec::new(),
        pair: Vec::new(),
        vars: Vec::with_capacity(net.nodes.len()),
    };
    // A convolutional network: the front (docs/math.md §9, `spatial`) hands the dense part
    // the pooled Σ, Θ and parallelism as its input, and the pooled variance per point.
    let pool = net.pool();
    for (n, node) in net.nodes.iter().enumerate() {
        if pool.is_some_and(|p| n < p) {
            w.vars.push(PairVars {
                cov: quote!(),
                ntk: None,
                parallel: quote!(),
            });
            continue;
        }
        let vars = match node {
            Node::GlobalAvgPool { .. } | Node::Flatten { .. } => {
                let qn = q(n);
                w.point.push(quote!(let #qn = sq_norm;));
                PairVars {
                    cov: quote!(input.dot),
                    ntk: Some(quote!(input.ntk)),
                    parallel: quote!(input.parallel),
                }
            }
            Node::Conv { .. } => unreachable!("a conv node lies before the pool"),
            Node::Input => {
                w.point.push(quote!(let q0 = sq_norm;));
                PairVars {
                    cov: quote!(input.dot),
                    ntk: None,
                    parallel: quote!(input.parallel),
                }
            }
            Node::Dense {
                input,
                w_std,
                b_std,
                ..
            } => dense::hidden(&mut w, n, *input, w_std, b_std),
            Node::Activation { input, rule } => activation::node(&mut w, n, *input, rule),
            Node::LayerNorm { input } => layer_norm::node(&mut w, n, *input),
            Node::Sum { inputs } => combine::sum(&mut w, n, inputs),
            Node::Concat { inputs } => combine::concat(&mut w, n, inputs),
        };
        w.vars.push(vars);
    }
    let (nngp, ntk) = dense::readout(&w);
    let adam = net
        .adam_limit()
        .ok()
        .map(|back| dense::adam_limit(&mut w, &back));
    fn reads_input(net: &Network, n: NodeId) -> bool {
        match &net.nodes[n] {
            Node::Input => true,
            Node::Concat { inputs } => inputs.iter().any(|&i| reads_input(net, i)),
            _ => false,
        }
    }
    let reads_input = |n: NodeId| reads_input(net, n);
    let sign_dot = (
        reads_input(net.readout.input),
        net.nodes
            .iter()
            .any(|n| matches!(n, Node::Dense { input, .. } if reads_input(*input))),
    );
    Derivation {
        fields: w.fields,
        point: w.point,
        pair: w.pair,
        nngp,
        ntk,
        adam,
        sign_dot,
    }
}
