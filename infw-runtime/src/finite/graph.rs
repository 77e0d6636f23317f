//! The graph a finite network runs (docs/math.md §2, §8, §9): the declared [`Architecture`]
//! checked and compiled into one [`Op`] per node plus the readout, with every node's width,
//! and the reusable [`Buffers`] a block of rows needs to go through it.
//!
//! Parameters are one (W, b) per dense or conv node in node order, the readout last; the
//! rule is `h = a_w · z Wᵀ + a_b · b` with NTK (`a_w = σw/√n_in`, `a_b = σb`, N(0,1)
//! parameters) or standard (`a_w = a_b = 1`, scales in the initial variance) scales, where
//! n_in is the width of the dense node's input node, or a conv's fan-in kⁿ·C_in: its W is
//! C_out × (kⁿ·C_in) and z its patches (docs/math.md §9, `conv.rs`).

use ndarray::Array2;

use super::conv::ConvShape;
use super::network::Parameterization;
use super::params::Params;
use crate::arch::{Architecture, Node};
use crate::{Activation, Error, Result};

/// One node as the finite code runs it. Inputs are indices of earlier ops; op 0 is the
/// input x and the last op is the readout (a dense node).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Op {
    Input,
    /// `param` indexes [`Params`]' tensors.
    Dense {
        input: usize,
        param: usize,
        w_scale: f64,
        b_scale: f64,
    },
    Activation {
        input: usize,
        activation: Activation,
    },
    LayerNorm {
        input: usize,
    },
    Sum {
        inputs: Vec<usize>,
    },
    /// (input, first column of it in the output), in order.
    Concat {
        parts: Vec<(usize, usize)>,
    },
    /// A convolution (docs/math.md §9): `param` indexes [`Params`]' tensors, W is
    /// C_out × (kⁿ·C_in).
    Conv {
        input: usize,
        param: usize,
        w_scale: f64,
        b_scale: f64,
        shape: ConvShape,
    },
    /// The mean over the `positions` of a spatial input, per channel.
    GlobalAvgPool {
        input: usize,
        positions: usize,
    },
    /// The identity on the channels-last row: a spatial node seen as a flat one.
    Flatten {
        input: usize,
    },
}

/// A checked, compiled architecture for one input dimension, output count and width factor.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Graph {
    pub ops: Vec<Op>,
    /// The output width of every op (op 0: d0; the last: C).
    pub widths: Vec<usize>,
    /// Whether an op's value depends on parameters: only those carry a backward signal
    /// (delta) and a tangent.
    pub trainable: Vec<bool>,
    /// The op (dense or conv) of each parameter tensor pair, readout last.
    pub param_ops: Vec<usize>,
    /// (w_std, b_std) of each parameter tensor pair (the standard parameterization's
    /// initial scales).
    pub stds: Vec<(f64, f64)>,
}

fn check_std(v: f64, name: &'static str) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name,
            value: v.to_string(),
            reason: "standard deviations must be finite and ≥ 0".into(),
        })
    }
}

/// A typed error unless every node reads earlier nodes and node 0 (only) is the input, so
/// that [`Architecture::widths`] can index safely. The fields are public: user input.
fn check_structure(arch: &Architecture) -> Result<()> {
    let bad = |msg: String| Err(Error::Architecture(msg));
    if arch.nodes.first() != Some(&Node::Input) {
        return bad("node 0 of the graph must be the input".into());
    }
    for (i, node) in arch.nodes.iter().enumerate().skip(1) {
        let inputs = match node {
            Node::Input => return bad(format!("node {i} is a second input; only node 0 is")),
            _ => node.inputs(),
        };
        if inputs.is_empty() {
            return bad(format!("node {i} combines no inputs"));
        }
        if let Some(&j) = inputs.iter().find(|&&j| j >= i) {
            return bad(format!(
                "node {i} reads node {j}: nodes must be in topological order (read earlier nodes only)"
            ));
        }
    }
    if arch.readout.input >= arch.nodes.len() {
        return bad(format!(
            "the readout reads node {} but the graph has {} nodes",
            arch.readout.input,
            arch.nodes.len()
        ));
    }
    Ok(())
}

/// The most parameters a finite network may have: 2³¹ (16 GiB as f64; training also keeps
/// their gradient and, for Adam, two moments: 64 GiB), far beyond what CPU training here is
/// for. Checked before anything is allocated, so an absurd width or width factor is a
/// typed error instead of an allocation abort (a width of 2³² once asked for 103 GB).
pub const MAX_PARAMETERS: usize = 1 << 31;

fn too_many(what: String) -> Error {
    Error::Architecture(format!(
        "{what}: more than the {MAX_PARAMETERS} (2^31) parameters a finite network may have; \
         use smaller widths or a smaller width factor"
    ))
}

/// Elements of one tensor (`rows × (n_in + 1)`, weights and bias), or a typed error when
/// it overflows or exceeds [`MAX_PARAMETERS`].
fn tensor_len(rows: usize, n_in: usize) -> Result<usize> {
    n_in.checked_add(1)
        .and_then(|cols| rows.checked_mul(cols))
        .filter(|&n| n <= MAX_PARAMETERS)
        .ok_or_else(|| too_many(format!("a {rows} × {n_in} weight matrix with its bias")))
}

impl Graph {
    /// Checks and compiles `arch` with every dense width and conv channel count multiplied
    /// by `factor` (the readout's width is `outputs`), before anything is allocated. For a
    /// convolutional declaration `input_dim` must be the row length of its `input(…)`.
    pub fn new(
        arch: &Architecture,
        factor: usize,
        input_dim: usize,
        outputs: usize,
        param: Parameterization,
    ) -> Result<Graph> {
        check_structure(arch)?;
        if let Some(sp) = &arch.spatial {
            if input_dim != sp.row_len() {
                return Err(Error::ShapeMismatch {
                    what: format!(
                        "input dimension vs the declared input({:?}, {}) (positions × channels)",
                        sp.shape, sp.channels
                    ),
                    expected: sp.row_len(),
                    found: input_dim,
                });
            }
        }
        let shapes = arch.spatial_shapes()?;
        let positions = |i: usize| shapes[i].map(|s| s[0] * s[1]).unwrap_or(1);
        let mut widths = arch.widths(input_dim, factor)?;
        let n = arch.nodes.len();
        let mut ops = Vec::with_capacity(n + 1);
        let mut trainable = Vec::with_capacity(n + 1);
        let mut param_ops = Vec::new();
        let mut stds = Vec::new();
        let mut total = 0usize;
        // Registers the (W, b) of op `op` (W: n_out × n_in): its index and (a_w, a_b).
        let mut tensor = |op: usize,
                          n_out: usize,
                          n_in: usize,
                          w_std: f64,
                          b_std: f64|
         -> Result<(usize, f64, f64)> {
            check_std(w_std, "w_std")?;
            check_std(b_std, "b_std")?;
            if n_out == 0 {
                return Err(Error::Architecture(format!("node {op} has width 0")));
            }
            let len = tensor_len(n_out, n_in)?;
            total = total
                .checked_add(len)
                .filter(|&t| t <= MAX_PARAMETERS)
                .ok_or_else(|| too_many("the parameters of all layers together".into()))?;
            let (w_scale, b_scale) = match param {
                Parameterization::Ntk => (w_std / (n_in as f64).sqrt(), b_std),
                Parameterization::Standard => (1.0, 1.0),
            };
            param_ops.push(op);
            stds.push((w_std, b_std));
            Ok((param_ops.len() - 1, w_scale, b_scale))
        };
        let spatial_refused = |what: &str| {
            Err(Error::Architecture(format!(
                "{what} of a spatial node has no finite rule (docs/math.md §9): add \
                 global_avg_pool or flatten before it"
            )))
        };
        for (i, node) in arch.nodes.iter().enumerate() {
            match node {
                Node::Input => ops.push(Op::Input),
                &Node::Dense {
                    input,
                    w_std,
                    b_std,
                    ..
                } => {
                    let (param, w_scale, b_scale) =
                        tensor(i, widths[i], widths[input], w_std, b_std)?;
                    ops.push(Op::Dense {
                        input,
                        param,
                        w_scale,
                        b_scale,
                    });
                }
                &Node::Activation { input, activation } => {
                    ops.push(Op::Activation { input, activation })
                }
                &Node::LayerNorm { input } => {
                    if shapes[input].is_some() {
                        return spatial_refused("layer_norm");
                    }
                    ops.push(Op::LayerNorm { input })
                }
                Node::Sum { inputs } => ops.push(Op::Sum {
                    inputs: inputs.clone(),
                }),
                Node::Concat { inputs } => {
                    if inputs.iter().any(|&j| shapes[j].is_some()) {
                        return spatial_refused("a concatenation");
                    }
                    let mut off = 0;
                    let parts = inputs
                        .iter()
                        .map(|&j| {
                            off += widths[j];
                            (j, off - widths[j])
                        })
                        .collect();
                    ops.push(Op::Concat { parts });
                }
                &Node::Conv {
                    input,
                    w_std,
                    b_std,
                    ..
                } => {
                    let geometry = arch.conv_geometry(i)?.ok_or_else(|| {
                        Error::Architecture(format!("node {i}: no convolution geometry"))
                    })?;
                    let c_in = widths[input] / positions(input);
                    let c_out = widths[i] / positions(i);
                    let k = geometry.window();
                    let patch_len = k.checked_mul(c_in).ok_or_else(|| {
                        Error::Architecture(format!("conv node {i}: window overflows"))
                    })?;
                    // One row's patches (the smallest chunk) must fit, and so must the index
                    // table of (output position, window offset): at most 2^28 entries.
                    tensor_len(geometry.output_positions(), patch_len)?;
                    if tensor_len(geometry.output_positions(), k)? > 1 << 28 {
                        return Err(Error::Architecture(format!(
                            "conv node {i}: {} output positions × a window of {k} positions \
                             is too large a convolution",
                            geometry.output_positions()
                        )));
                    }
                    let (param, w_scale, b_scale) = tensor(i, c_out, patch_len, w_std, b_std)?;
                    ops.push(Op::Conv {
                        input,
                        param,
                        w_scale,
                        b_scale,
                        shape: ConvShape::new(&geometry, c_in, c_out),
                    });
                }
                &Node::GlobalAvgPool { input } => ops.push(Op::GlobalAvgPool {
                    input,
                    positions: positions(input),
                }),
                &Node::Flatten { input } => ops.push(Op::Flatten { input }),
            }
            trainable.push(match node {
                Node::Input => false,
                Node::Dense { .. } | Node::Conv { .. } => true,
                Node::Activation { .. }
                | Node::LayerNorm { .. }
                | Node::Sum { .. }
                | Node::Concat { .. }
                | Node::GlobalAvgPool { .. }
                | Node::Flatten { .. } => node.inputs().iter().any(|&j| trainable[j]),
            });
        }
        let r = &arch.readout;
        let (param, w_scale, b_scale) =
            tensor(ops.len(), outputs, widths[r.input], r.w_std, r.b_std)?;
        ops.push(Op::Dense {
            input: r.input,
            param,
            w_scale,
            b_scale,
        });
        widths.push(outputs);
        trainable.push(true);
        Ok(Graph {
            ops,
            widths,
            trainable,
            param_ops,
            stds,
        })
    }

    /// The op whose value is the network output.
    pub fn output(&self) -> usize {
        self.ops.len() - 1
    }

    /// d0.
    pub fn input_dim(&self) -> usize {
        self.widths[0]
    }

    /// C.
    pub fn outputs(&self) -> usize {
        self.widths[self.output()]
    }

    /// (n_out, n_in) of parameter tensor `k`'s W: (width, input width) for a dense op,
    /// (C_out, kⁿ·C_in) for a conv.
    pub fn shape(&self, k: usize) -> (usize, usize) {
        let i = self.param_ops[k];
        match &self.ops[i] {
            Op::Dense { input, .. } => (self.widths[i], self.widths[*input]),
            Op::Conv { shape, .. } => (shape.c_out, shape.patch_len()),
            Op::Input
            | Op::Activation { .. }
            | Op::LayerNorm { .. }
            | Op::Sum { .. }
            | Op::Concat { .. }
            | Op::GlobalAvgPool { .. }
            | Op::Flatten { .. } => unreachable!("param_ops holds dense and conv ops only"),
        }
    }

    /// The (rows, columns) of op `i`'s value, delta and tangent buffers for `cap` rows,
    /// and whether it keeps per-row layer-norm scales. Op 0's value is x itself, and ops
    /// that do not depend on parameters carry no delta or tangent: 0 columns.
    fn layout(&self, i: usize) -> (usize, usize, bool) {
        let val = if i == 0 { 0 } else { self.widths[i] };
        let delta = if self.trainable[i] { self.widths[i] } else { 0 };
        (val, delta, matches!(self.ops[i], Op::LayerNorm { .. }))
    }

    /// The patch scratch a block of `cap` rows needs: the largest conv's chunk.
    fn scratch_len(&self, cap: usize) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Conv { shape, .. } => shape.scratch_len(cap),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }
}

/// Buffers for one block of at most `cap` rows: every op's value, backward signal and (for
/// the linearized model) tangent, layer norm's per-row scales, a chunk of conv patches,
/// plus a gradient accumulator.
#[derive(Debug)]
pub(crate) struct Buffers {
    pub cap: usize,
    /// Op values (cap × width); op 0's is empty (x is read in place), the last is f.
    pub val: Vec<Array2<f64>>,
    /// ∂(χ·f)/∂(op value); the last holds χ. Empty for ops without parameters upstream.
    pub delta: Vec<Array2<f64>>,
    /// Tangents of op values (no ops at all unless tangents were asked for).
    pub tval: Vec<Array2<f64>>,
    /// 1/√(var + eps) per row, for layer-norm ops (empty for the others).
    pub inv_std: Vec<Vec<f64>>,
    /// One chunk of conv patches U or of their backward signal, shared by the conv ops
    /// (`conv.rs`; empty without convs).
    pub scratch: Vec<f64>,
    /// Backward bookkeeping: whether an op's delta has received its first contribution
    /// (fan-outs add the later ones).
    pub written: Vec<bool>,
    /// Gradient accumulator of this block's worker (allocated on first use).
    pub grad: Option<Params>,
    /// Row scratch for the loss (C entries each).
    pub frow: Vec<f64>,
    pub yrow: Vec<f64>,
    pub chirow: Vec<f64>,
}

impl Buffers {
    pub fn new(g: &Graph, cap: usize, tangents: bool) -> Buffers {
        let n = g.ops.len();
        let c = g.outputs();
        let mk = |cols: usize| Array2::zeros((if cols == 0 { 0 } else { cap }, cols));
        let layouts: Vec<_> = (0..n).map(|i| g.layout(i)).collect();
        Buffers {
            cap,
            val: layouts.iter().map(|l| mk(l.0)).collect(),
            delta: layouts.iter().map(|l| mk(l.1)).collect(),
            tval: if tangents {
                layouts.iter().map(|l| mk(l.1)).collect()
            } else {
                Vec::new()
            },
            inv_std: layouts
                .iter()
                .map(|l| if l.2 { vec![0.0; cap] } else { Vec::new() })
                .collect(),
            scratch: vec![0.0; g.scratch_len(cap)],
            written: vec![false; n],
            grad: None,
            frow: vec![0.0; c],
            yrow: vec![0.0; c],
            chirow: vec![0.0; c],
        }
    }

    /// True when these buffers fit `g` with at least `cap` rows (and tangents if asked).
    pub fn fits(&self, g: &Graph, cap: usize, tangents: bool) -> bool {
        let n = g.ops.len();
        self.cap >= cap
            && self.val.len() == n
            && self.scratch.len() >= g.scratch_len(self.cap)
            && (0..n).all(|i| {
                let (v, d, ln) = g.layout(i);
                self.val[i].ncols() == v
                    && self.delta[i].ncols() == d
                    && self.inv_std[i].is_empty() != ln
                    && (!tangents || self.tval[i].ncols() == d)
            })
            && (!tangents || self.tval.len() == n)
    }
}
