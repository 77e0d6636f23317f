//! The runtime description of a declared architecture: a small graph of layers
//! (docs/math.md §2, §8), emitted by `network!`. The kernels never read it (they are
//! compiled); finite networks and reports do.

pub use infw_layers::conv::{ConvGeometry, Padding};
pub use infw_layers::Activation;

use crate::{Error, Result};

/// neural-tangents' `LayerNorm` epsilon, added to the variance before dividing.
pub const LAYER_NORM_EPS: f64 = 1e-12;

/// One node of the graph. Inputs are indices of earlier nodes, so the node list is in
/// topological order; a node used by several later nodes is a fan-out.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// The network input x (always node 0).
    Input,
    /// `dense(width, w_std, b_std)`: h = (σw/√n_in) W z + σb b.
    Dense {
        /// The node it reads.
        input: usize,
        /// Output width (for a finite network, before the width factor).
        width: usize,
        /// Weight standard deviation σw.
        w_std: f64,
        /// Bias standard deviation σb.
        b_std: f64,
    },
    /// An elementwise activation φ.
    Activation {
        /// The node it reads.
        input: usize,
        /// Which activation.
        activation: Activation,
    },
    /// `layer_norm` over the width, no learned scale (neural-tangents' `LayerNorm`).
    LayerNorm {
        /// The node it reads.
        input: usize,
    },
    /// The sum of inputs of equal width: the end of `residual(…)`.
    Sum {
        /// The summed nodes.
        inputs: Vec<usize>,
    },
    /// The concatenation of inputs along the width: the end of `parallel(… | …)`.
    Concat {
        /// The concatenated nodes, in declaration order.
        inputs: Vec<usize>,
    },
    /// `conv(channels, size, stride, padding, w_std, b_std)` on a spatial input
    /// (docs/math.md §9): h_p = (σw/√(kⁿ·C_in)) Σ_a W_a z_{p·s+a} + σb b.
    Conv {
        /// The node it reads.
        input: usize,
        /// Output channels (for a finite network, before the width factor).
        channels: usize,
        /// Window size k along each spatial axis.
        size: usize,
        /// Stride s along each spatial axis.
        stride: usize,
        /// `same`, `valid` or `circular`.
        padding: Padding,
        /// Weight standard deviation σw.
        w_std: f64,
        /// Bias standard deviation σb.
        b_std: f64,
    },
    /// The mean over all spatial positions: a spatial input becomes a vector of its channels.
    GlobalAvgPool {
        /// The node it reads.
        input: usize,
    },
    /// The channels-last flattening of a spatial input (positions × channels, C order).
    Flatten {
        /// The node it reads.
        input: usize,
    },
}

/// The spatial shape of a convolutional network's input: `input(s1[, s2], channels)`.
/// A row of X is the channels-last array flattened in C order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpatialInput {
    /// Sizes of the one or two spatial axes.
    pub shape: Vec<usize>,
    /// Channels per position.
    pub channels: usize,
}

impl SpatialInput {
    /// Spatial positions (the product of the sizes).
    pub fn positions(&self) -> usize {
        self.shape.iter().product()
    }

    /// The length of one row of X.
    pub fn row_len(&self) -> usize {
        self.positions() * self.channels
    }
}

impl Node {
    /// The nodes this one reads.
    pub fn inputs(&self) -> &[usize] {
        match self {
            Node::Input => &[],
            Node::Dense { input, .. }
            | Node::Activation { input, .. }
            | Node::LayerNorm { input }
            | Node::Conv { input, .. }
            | Node::GlobalAvgPool { input }
            | Node::Flatten { input } => std::slice::from_ref(input),
            Node::Sum { inputs } | Node::Concat { inputs } => inputs,
        }
    }
}

/// The last dense layer. `outputs: None` means the implied readout: as many outputs as the
/// targets have columns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Readout {
    /// The node it reads.
    pub input: usize,
    /// The declared number of outputs; `None` for the implied readout.
    pub outputs: Option<usize>,
    /// Weight standard deviation σw.
    pub w_std: f64,
    /// Bias standard deviation σb.
    pub b_std: f64,
}

/// A hidden block of a chain: `dense(width, w_std, b_std)` followed by an activation.
/// Only a convenience for building chains by hand ([`Architecture::chain`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hidden {
    /// The dense layer's width.
    pub width: usize,
    /// Its weight standard deviation σw.
    pub w_std: f64,
    /// Its bias standard deviation σb.
    pub b_std: f64,
    /// The activation after it.
    pub activation: Activation,
}

/// A validated architecture: the graph, then the readout.
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    /// `Some` for a convolutional network (`input(…)` declared): the input's spatial shape.
    pub spatial: Option<SpatialInput>,
    /// The nodes in topological order; node 0 is the input.
    pub nodes: Vec<Node>,
    /// The final dense layer.
    pub readout: Readout,
}

/// A number as a user would write it: `1e100`, not a hundred digits.
fn short(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

impl Architecture {
    /// Node `id` as a user wrote it, for messages: `node 3, dense(16, w_std = 1e100, …)`;
    /// `id == nodes.len()` is the readout.
    pub fn describe_node(&self, id: usize) -> String {
        let what = match self.nodes.get(id) {
            None => {
                let r = &self.readout;
                return format!(
                    "the readout (w_std = {}, b_std = {})",
                    short(r.w_std),
                    short(r.b_std)
                );
            }
            Some(Node::Input) => "the input kernel ‖x‖²/d".to_string(),
            Some(Node::Dense {
                width,
                w_std,
                b_std,
                ..
            }) => format!(
                "dense({width}, w_std = {}, b_std = {})",
                short(*w_std),
                short(*b_std)
            ),
            Some(Node::Activation { activation, .. }) => activation.name(),
            Some(Node::LayerNorm { .. }) => "layer_norm".into(),
            Some(Node::Sum { .. }) => "the sum ending a residual block".into(),
            Some(Node::Concat { .. }) => "the concatenation ending a parallel block".into(),
            Some(Node::Conv {
                channels,
                w_std,
                b_std,
                ..
            }) => format!(
                "conv({channels}, …, w_std = {}, b_std = {})",
                short(*w_std),
                short(*b_std)
            ),
            Some(Node::GlobalAvgPool { .. }) => "global_avg_pool".into(),
            Some(Node::Flatten { .. }) => "flatten".into(),
        };
        format!("node {id}, {what}")
    }

    /// A chain of hidden blocks and a readout (`outputs: None`: sized to the targets).
    ///
    /// ```
    /// use infw_runtime::{Activation, Architecture, Hidden};
    /// let relu = Hidden { width: 8, w_std: 1.0, b_std: 0.1, activation: Activation::RELU };
    /// let arch = Architecture::chain(&[relu, relu], None, 1.0, 0.0);
    /// assert_eq!(arch.nodes.len(), 5);
    /// assert!(arch.is_chain());
    /// ```
    pub fn chain(hidden: &[Hidden], outputs: Option<usize>, w_std: f64, b_std: f64) -> Self {
        let mut nodes = vec![Node::Input];
        for h in hidden {
            let input = nodes.len() - 1;
            nodes.push(Node::Dense {
                input,
                width: h.width,
                w_std: h.w_std,
                b_std: h.b_std,
            });
            nodes.push(Node::Activation {
                input: input + 1,
                activation: h.activation,
            });
        }
        let readout = Readout {
            input: nodes.len() - 1,
            outputs,
            w_std,
            b_std,
        };
        Architecture {
            spatial: None,
            nodes,
            readout,
        }
    }

    /// The number of outputs for targets with `target_columns` columns; an error when the
    /// declaration fixed another number.
    pub fn outputs_for(&self, target_columns: usize) -> Result<usize> {
        match self.readout.outputs {
            None => Ok(target_columns),
            Some(c) if c == target_columns => Ok(c),
            Some(c) => Err(Error::Architecture(format!(
                "the declaration ends in dense({c}) but the targets have {target_columns} columns; \
                 drop the final dense to get an implied readout sized to the targets"
            ))),
        }
    }

    /// Checks what a declaration with expressions could only learn when its value was
    /// built: every std finite, ≥ 0 and at most 1e150 (its square enters the kernels), every
    /// width between 1 and 2³².
    pub fn validate(&self) -> Result<()> {
        let std = |name: &'static str, v: f64| {
            if v.is_finite() && (0.0..=1e150).contains(&v) {
                Ok(())
            } else {
                Err(Error::InvalidArgument {
                    name,
                    value: v.to_string(),
                    reason: "a standard deviation must be finite, ≥ 0 and at most 1e150".into(),
                })
            }
        };
        let width = |w: usize| {
            if (1..=1usize << 32).contains(&w) {
                Ok(())
            } else {
                Err(Error::InvalidArgument {
                    name: "width",
                    value: w.to_string(),
                    reason: "a dense width must be between 1 and 2^32".into(),
                })
            }
        };
        for node in &self.nodes {
            match node {
                Node::Dense {
                    width: w,
                    w_std,
                    b_std,
                    ..
                }
                | Node::Conv {
                    channels: w,
                    w_std,
                    b_std,
                    ..
                } => {
                    width(*w)?;
                    std("w_std", *w_std)?;
                    std("b_std", *b_std)?;
                }
                _ => {}
            }
        }
        self.spatial_shapes()?;
        if let Some(c) = self.readout.outputs {
            width(c)?;
        }
        std("w_std", self.readout.w_std)?;
        std("b_std", self.readout.b_std)
    }

    /// The dense layers before the readout, in order.
    pub fn dense_layers(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n, Node::Dense { .. }))
    }

    /// The spatial sizes of every node's output (`[s1, 1]` in 1-D), `None` for a flat one
    /// (every node of a network without `input(…)`); an error for an impossible
    /// convolution shape or a spatial node in a flat network.
    pub fn spatial_shapes(&self) -> Result<Vec<Option<[usize; 2]>>> {
        let mut shapes: Vec<Option<[usize; 2]>> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let shape = match node {
                Node::Input => match &self.spatial {
                    None => None,
                    Some(s) => Some(
                        ConvGeometry::new(&s.shape, 1, 1, Padding::Valid)
                            .map_err(|e| Error::Architecture(format!("input(…): {e}")))?
                            .input,
                    ),
                },
                Node::Conv {
                    input,
                    size,
                    stride,
                    padding,
                    ..
                } => {
                    let g = self.conv_geometry_at(&shapes, *input, *size, *stride, *padding)?;
                    Some(g.output)
                }
                Node::GlobalAvgPool { input } | Node::Flatten { input } => {
                    if shapes[*input].is_none() {
                        return Err(Error::Architecture(
                            "global_avg_pool and flatten need a spatial input (declare `input(…)` first)".into(),
                        ));
                    }
                    None
                }
                Node::Dense { input, .. } => {
                    if shapes[*input].is_some() {
                        return Err(Error::Architecture(
                            "a dense layer needs a flat input: add global_avg_pool or flatten before it".into(),
                        ));
                    }
                    None
                }
                other => {
                    let ins = other.inputs();
                    let Some(&i0) = ins.first() else {
                        return Err(Error::Architecture(
                            "a sum or concatenation of nothing".into(),
                        ));
                    };
                    let first = shapes[i0];
                    if ins.iter().any(|&i| shapes[i] != first) {
                        return Err(Error::Architecture(
                            "the inputs of a sum or concatenation must have the same spatial shape"
                                .into(),
                        ));
                    }
                    first
                }
            };
            shapes.push(shape);
        }
        if shapes[self.readout.input].is_some() {
            return Err(Error::Architecture(
                "the readout needs a flat input: add global_avg_pool or flatten before it".into(),
            ));
        }
        Ok(shapes)
    }

    fn conv_geometry_at(
        &self,
        shapes: &[Option<[usize; 2]>],
        input: usize,
        size: usize,
        stride: usize,
        padding: Padding,
    ) -> Result<ConvGeometry> {
        let spatial = self.spatial.as_ref().map(|s| s.shape.len()).unwrap_or(0);
        let Some(shape) = shapes[input] else {
            return Err(Error::Architecture(
                "a convolution needs a spatial input: declare `input(s1, [s2,] channels)` first"
                    .into(),
            ));
        };
        ConvGeometry::new(&shape[..spatial.max(1)], size, stride, padding)
            .map_err(|e| Error::Architecture(format!("conv: {e}")))
    }

    /// The geometry of the convolution at node `node` (`None` if it is not one).
    pub fn conv_geometry(&self, node: usize) -> Result<Option<ConvGeometry>> {
        match self.nodes.get(node) {
            Some(&Node::Conv {
                input,
                size,
                stride,
                padding,
                ..
            }) => {
                let shapes = self.spatial_shapes()?;
                self.conv_geometry_at(&shapes, input, size, stride, padding)
                    .map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The width of every node's output for inputs of dimension `input_dim`, with every
    /// dense width and conv channel count multiplied by `factor`; an error for overflowing
    /// or mismatched widths. A spatial node's width is positions × channels (its
    /// channels-last flattening).
    pub fn widths(&self, input_dim: usize, factor: usize) -> Result<Vec<usize>> {
        let shapes = self.spatial_shapes()?;
        let positions = |i: usize| shapes[i].map(|s| s[0] * s[1]).unwrap_or(1);
        let mut widths: Vec<usize> = Vec::with_capacity(self.nodes.len());
        for (n, node) in self.nodes.iter().enumerate() {
            let w = match node {
                Node::Conv { channels, .. } => channels
                    .checked_mul(factor)
                    .and_then(|c| c.checked_mul(positions(n)))
                    .ok_or_else(|| {
                        Error::Architecture(format!(
                            "conv channels {channels} × factor {factor} overflow"
                        ))
                    })?,
                Node::GlobalAvgPool { input } => widths[*input] / positions(*input),
                Node::Flatten { input } => widths[*input],
                Node::Input => input_dim,
                Node::Dense { width, .. } => width.checked_mul(factor).ok_or_else(|| {
                    Error::Architecture(format!("dense width {width} × factor {factor} overflows"))
                })?,
                Node::Activation { input, .. } | Node::LayerNorm { input } => widths[*input],
                Node::Sum { inputs } => {
                    let w = widths[inputs[0]];
                    if let Some(&other) = inputs.iter().find(|&&i| widths[i] != w) {
                        return Err(Error::Architecture(format!(
                            "a residual sum adds widths {w} and {}: the block must end in a \
                             dense layer as wide as its input",
                            widths[other]
                        )));
                    }
                    w
                }
                Node::Concat { inputs } => inputs
                    .iter()
                    .try_fold(0usize, |acc, &i| acc.checked_add(widths[i]))
                    .ok_or_else(|| Error::Architecture("concatenated width overflows".into()))?,
            };
            widths.push(w);
        }
        Ok(widths)
    }

    /// Whether the graph is a chain (no fan-out, sum or concat).
    pub fn is_chain(&self) -> bool {
        self.nodes.iter().enumerate().all(|(i, n)| match n {
            Node::Input => i == 0,
            Node::Sum { .. } | Node::Concat { .. } => false,
            other => other.inputs() == [i - 1],
        }) && self.readout.input + 1 == self.nodes.len()
    }
}

impl std::fmt::Display for Architecture {
    /// The declaration, spelled out (blocks as nodes: `n3 = sum(n1, n2)`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chain = self.is_chain();
        if let Some(s) = &self.spatial {
            let sizes: Vec<String> = s.shape.iter().map(|n| n.to_string()).collect();
            write!(f, "input({}, {}) ", sizes.join(", "), s.channels)?;
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let text = match node {
                Node::Input => continue,
                Node::Dense {
                    width,
                    w_std,
                    b_std,
                    ..
                } => format!("dense({width}, w_std = {w_std}, b_std = {b_std})"),
                Node::Activation { activation, .. } => activation.name(),
                Node::LayerNorm { .. } => "layer_norm".into(),
                Node::Sum { inputs } => format!("sum({})", names(inputs)),
                Node::Concat { inputs } => format!("concat({})", names(inputs)),
                Node::Conv {
                    channels,
                    size,
                    stride,
                    padding,
                    w_std,
                    b_std,
                    ..
                } => format!(
                    "conv({channels}, size = {size}, stride = {stride}, padding = {}, w_std = {w_std}, b_std = {b_std})",
                    padding.name()
                ),
                Node::GlobalAvgPool { .. } => "global_avg_pool".into(),
                Node::Flatten { .. } => "flatten".into(),
            };
            match node {
                _ if chain => write!(f, "{text} ")?,
                Node::Sum { .. } | Node::Concat { .. } => write!(f, "n{i} = {text}; ")?,
                _ => write!(f, "n{i} = {text}({}); ", names(node.inputs()))?,
            }
        }
        let r = &self.readout;
        match r.outputs {
            Some(c) => write!(f, "dense({c}, w_std = {}, b_std = {})", r.w_std, r.b_std),
            None => write!(f, "readout(w_std = {}, b_std = {})", r.w_std, r.b_std),
        }
    }
}

fn names(ids: &[usize]) -> String {
    ids.iter()
        .map(|i| format!("n{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
