//! Stage 2, IR: the validated architecture as a small graph (docs/math.md §2, §8).
//!
//! `lower` turns the syntax tree into nodes with inputs by id: input, dense, activation,
//! layer_norm, sum (the end of `residual`: fan-out → identity ∥ block → sum) and concat
//! (the end of `parallel(a | b)`: fan-out → branches → concat). A fan-out is a node read
//! by several later nodes; it needs no node of its own. The readout is the final `dense`,
//! an explicit `readout(..)`, or the implied one. Every mistake becomes a `syn::Error` at
//! the offending token; all of them are reported together.

mod spatial;
mod suggest;
pub mod value;

use crate::syntax::{Arg, Block, Item, LayerCall};
use infw_layers::activation::{lookup, Entry, REGISTRY};
use infw_layers::conv::{ConvGeometry, Padding};
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::Error;

pub use suggest::nearest;
pub use value::{Expressions, Value};

/// Index of a node in [`Network::nodes`].
pub type NodeId = usize;

/// The activation of an activation node.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// A registry rule with its (literal) parameters.
    Registry {
        /// The registry name (`leaky_relu`).
        entry: &'static str,
        /// Its parameter values, defaults filled in, in registry order.
        params: Vec<f64>,
    },
    /// `act(path)`: a type of the user's implementing `UserActivation`.
    User(UserPath),
}

/// A user activation's path, compared by its tokens.
#[derive(Clone)]
pub struct UserPath(pub syn::Path);

impl std::fmt::Debug for UserPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`", quote::ToTokens::to_token_stream(&self.0))
    }
}

impl PartialEq for UserPath {
    fn eq(&self, other: &Self) -> bool {
        quote::ToTokens::to_token_stream(&self.0).to_string()
            == quote::ToTokens::to_token_stream(&other.0).to_string()
    }
}

impl Rule {
    /// The registry row of a registry rule.
    pub fn entry(&self) -> Option<&'static Entry> {
        match self {
            Rule::Registry { entry, .. } => lookup(entry),
            Rule::User(_) => None,
        }
    }
}

/// One node of the graph; inputs are earlier nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// The network's input (node 0).
    Input,
    /// `dense(width, w_std, b_std)`.
    Dense {
        /// The node it reads.
        input: NodeId,
        /// Output width.
        width: Value<usize>,
        /// Weight standard deviation σw.
        w_std: Value<f64>,
        /// Bias standard deviation σb.
        b_std: Value<f64>,
    },
    /// An elementwise activation.
    Activation {
        /// The node it reads.
        input: NodeId,
        /// Which activation.
        rule: Rule,
    },
    /// `layer_norm`.
    LayerNorm {
        /// The node it reads.
        input: NodeId,
    },
    /// The end of a `residual`: the sum of its inputs.
    Sum {
        /// The summed nodes (the stream and the block's end).
        inputs: Vec<NodeId>,
    },
    /// The end of a `parallel`: its branches concatenated.
    Concat {
        /// The branches' last nodes, in declaration order.
        inputs: Vec<NodeId>,
    },
    /// `conv(channels, size, stride, padding, w_std, b_std)` (docs/math.md §9); the
    /// window and stride shape the generated code, so they are literals.
    Conv {
        /// The node it reads.
        input: NodeId,
        /// Output channels.
        channels: Value<usize>,
        /// Window size along each spatial axis.
        size: usize,
        /// Stride along each spatial axis.
        stride: usize,
        /// `same`, `valid` or `circular`.
        padding: Padding,
        /// Weight standard deviation σw.
        w_std: Value<f64>,
        /// Bias standard deviation σb.
        b_std: Value<f64>,
    },
    /// `global_avg_pool`: the mean over positions.
    GlobalAvgPool {
        /// The node it reads.
        input: NodeId,
    },
    /// `flatten`: positions × channels as one feature vector.
    Flatten {
        /// The node it reads.
        input: NodeId,
    },
}

impl Node {
    /// The nodes this one reads.
    pub fn inputs(&self) -> Vec<NodeId> {
        match self {
            Node::Input => vec![],
            Node::Dense { input, .. }
            | Node::Activation { input, .. }
            | Node::LayerNorm { input }
            | Node::Conv { input, .. }
            | Node::GlobalAvgPool { input }
            | Node::Flatten { input } => {
                vec![*input]
            }
            Node::Sum { inputs } | Node::Concat { inputs } => inputs.clone(),
        }
    }
}

/// The backward signal g = ∂f/∂z of a node in the Adam-like limit, given the forward pass
/// (docs/math.md §8): g = G0 + φ'_m(u_m)·G1, with G0 and G1 Gaussian of deterministic
/// covariances and u_m the input of activation m. Contributions of several readers add
/// (the paths part through fresh weights, so the cross terms vanish).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backward {
    /// Whether G0 is present: a path back from a dense layer or the readout through
    /// layer_norm, sums and concatenations only.
    pub direct: bool,
    /// The activation m whose derivative gates G1, when present.
    pub gated: Option<NodeId>,
}

impl Backward {
    /// Adds a reader's contribution.
    fn merge(&mut self, other: Backward) -> Result<(), &'static str> {
        self.direct |= other.direct;
        match (self.gated, other.gated) {
            (Some(a), Some(b)) if a != b => Err("a signal whose gradient passes two different activations without a dense layer between has no closed-form backward sign kernel (docs/math.md §8)"),
            (None, g) => {
                self.gated = g;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The final dense layer; `outputs: None` is the implied readout (as many outputs as the
/// targets have columns).
#[derive(Clone, Debug, PartialEq)]
pub struct Readout {
    /// The node it reads.
    pub input: NodeId,
    /// The declared number of outputs, or `None` for the implied readout.
    pub outputs: Option<Value<usize>>,
    /// Weight standard deviation σw.
    pub w_std: Value<f64>,
    /// Bias standard deviation σb.
    pub b_std: Value<f64>,
}

/// A validated architecture.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// The nodes in evaluation order; node 0 is the input.
    pub nodes: Vec<Node>,
    /// The final dense layer.
    pub readout: Readout,
    /// How many hyper-parameters are expressions (fields `p0 …` of the program).
    pub expressions: usize,
    /// `input(s1[, s2], channels)`: a convolutional network's input shape.
    pub spatial: Option<SpatialInput>,
}

impl Network {
    /// The Adam-like limit's plan (docs/math.md §8): for every node, the form of its
    /// backward signal, or why the limit is not built for this declaration.
    ///
    /// Built: dense layers, activations of Gaussian nodes, layer_norm, residual sums and
    /// concatenations, with these limits: the sign kernel S of a dense layer's input needs
    /// that input to be the network's input, an activation's output, a Gaussian node, or a
    /// concatenation of such (a residual stream that is a post-activation signal plus a
    /// block is not Gaussian: its S is a 2-D integral); a dense output read both by an
    /// activation and by a skip connection needs a piecewise-linear activation there (four
    /// orthants; a smooth φ needs a 2-D integral); an activation may not read a
    /// concatenation (its units follow their branches' kernels, not the average).
    pub fn adam_limit(&self) -> Result<Vec<Backward>, &'static str> {
        if self.spatial.is_some() {
            return Err("a convolution has no closed-form sign kernel: the sign of a sum over positions of products does not factorise (docs/math.md §9)");
        }
        let mut back = vec![Backward::default(); self.nodes.len()];
        back[self.readout.input].direct = true;
        for m in (1..self.nodes.len()).rev() {
            let here = back[m];
            match &self.nodes[m] {
                Node::Dense { input, .. } => back[*input].direct = true,
                Node::Activation { input, .. } => {
                    if matches!(self.nodes[*input], Node::Concat { .. }) {
                        return Err("an activation of a concatenation: each unit follows its own branch's kernel, so the backward sign kernel needs the branches, not the averaged kernel (docs/math.md §8)");
                    }
                    if here.gated.is_some() {
                        return Err("an activation whose output's gradient already passes another activation without a dense layer between has no closed-form backward sign kernel (docs/math.md §8)");
                    }
                    back[*input].merge(Backward {
                        direct: false,
                        gated: Some(m),
                    })?;
                }
                Node::LayerNorm { input } => back[*input].merge(here)?,
                Node::Sum { inputs } | Node::Concat { inputs } => {
                    for &i in inputs {
                        back[i].merge(here)?;
                    }
                }
                Node::Input
                | Node::Conv { .. }
                | Node::GlobalAvgPool { .. }
                | Node::Flatten { .. } => {}
            }
        }
        let mut sign_inputs = vec![self.readout.input];
        for (d, node) in self.nodes.iter().enumerate() {
            let Node::Dense { input, .. } = node else {
                continue;
            };
            sign_inputs.push(*input);
            if let (true, Some(m)) = (back[d].direct, back[d].gated) {
                if self.slopes(m).is_none() {
                    return Err("a dense output read both by a smooth activation and by a skip connection: its backward sign kernel is a 2-D integral with no closed form (docs/math.md §8); a piecewise-linear activation (relu, leaky_relu, abs, identity) has one");
                }
            }
        }
        for n in sign_inputs {
            self.sign_kernel_exists(n)?;
        }
        Ok(back)
    }

    /// Whether S(x,x') = E[z(x) sign z(x')] of node `n` has a closed form here.
    fn sign_kernel_exists(&self, n: NodeId) -> Result<(), &'static str> {
        match &self.nodes[n] {
            Node::Input | Node::Activation { .. } => Ok(()),
            Node::Concat { inputs } => inputs.iter().try_for_each(|&i| self.sign_kernel_exists(i)),
            _ if self.gaussian(n) => Ok(()),
            _ => Err("a dense layer reads a residual stream that is not Gaussian (a post-activation signal plus a block): its sign kernel is a 2-D integral with no closed form (docs/math.md §8)"),
        }
    }

    /// The slopes of activation node `m` when its rule is piecewise linear.
    pub fn slopes(&self, m: NodeId) -> Option<(f64, f64)> {
        match &self.nodes[m] {
            Node::Activation {
                rule: rule @ Rule::Registry { params, .. },
                ..
            } => rule.entry().and_then(|e| (e.slopes)(params)),
            _ => None,
        }
    }

    /// The nodes that read node `id` (the readout is not a node).
    pub fn readers(&self, id: NodeId) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&j| self.nodes[j].inputs().contains(&id))
            .collect()
    }

    /// Whether a node's output is a centred Gaussian process at infinite width.
    pub fn gaussian(&self, id: NodeId) -> bool {
        match &self.nodes[id] {
            Node::Dense { .. } | Node::Conv { .. } => true,
            Node::GlobalAvgPool { input } | Node::Flatten { input } => self.gaussian(*input),
            Node::Input | Node::Activation { .. } => false,
            Node::LayerNorm { input } => self.gaussian(*input),
            Node::Sum { inputs } | Node::Concat { inputs } => {
                inputs.iter().all(|&i| self.gaussian(i))
            }
        }
    }

    /// Whether a node's output is centred and uncorrelated with every node up to `since`:
    /// it ends in weights created after `since` (a dense, or a layer_norm/sum/concat of
    /// such), so adding it to a stream at `since` adds kernels with no cross terms. Nodes
    /// are numbered in creation order, so a dense numbered ≤ `since` is not fresh: in
    /// `dense residual(layer_norm)` the block's output is a function of the stream itself.
    pub fn fresh(&self, id: NodeId, since: NodeId) -> bool {
        match &self.nodes[id] {
            Node::Dense { .. } | Node::Conv { .. } => id > since,
            Node::GlobalAvgPool { input } | Node::Flatten { input } | Node::LayerNorm { input } => {
                self.fresh(*input, since)
            }
            Node::Input | Node::Activation { .. } => false,
            Node::Sum { inputs } | Node::Concat { inputs } => {
                inputs.iter().all(|&i| self.fresh(i, since))
            }
        }
    }

    /// The width of a node's output, when the declaration fixes it (the input's does not).
    pub fn width(&self, id: NodeId) -> Option<&Value<usize>> {
        match &self.nodes[id] {
            Node::Input => None,
            Node::Dense { width, .. } => Some(width),
            Node::Activation { input, .. } | Node::LayerNorm { input } => self.width(*input),
            Node::Sum { inputs } => inputs.iter().find_map(|&i| self.width(i)),
            Node::Concat { .. } | Node::Flatten { .. } => None,
            Node::Conv { channels, .. } => Some(channels),
            Node::GlobalAvgPool { input } => self.width(*input),
        }
    }

    /// Whether node `id`'s output is spatial (positions × channels): the input of a
    /// convolutional network and everything before its `global_avg_pool` / `flatten`.
    pub fn is_spatial(&self, id: NodeId) -> bool {
        match &self.nodes[id] {
            Node::Input => self.spatial.is_some(),
            Node::Conv { .. } => true,
            Node::GlobalAvgPool { .. } | Node::Flatten { .. } | Node::Dense { .. } => false,
            other => other.inputs().first().is_some_and(|&i| self.is_spatial(i)),
        }
    }

    /// The `global_avg_pool` or `flatten` node that ends the spatial part, if any.
    pub fn pool(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .position(|n| matches!(n, Node::GlobalAvgPool { .. } | Node::Flatten { .. }))
    }

    /// The spatial sizes of a spatial node's output (`[s1, 1]` in 1-D).
    pub fn shape(&self, id: NodeId) -> Option<[usize; 2]> {
        match &self.nodes[id] {
            Node::Input => self.spatial.as_ref().map(|s| s.sizes()),
            Node::Conv {
                input,
                size,
                stride,
                padding,
                ..
            } => {
                let axes = self.spatial.as_ref()?.shape.len();
                let shape = self.shape(*input)?;
                ConvGeometry::new(&shape[..axes], *size, *stride, *padding)
                    .ok()
                    .map(|g| g.output)
            }
            Node::GlobalAvgPool { .. } | Node::Flatten { .. } | Node::Dense { .. } => None,
            other => other.inputs().first().and_then(|&i| self.shape(i)),
        }
    }

    /// The geometry of convolution node `id`.
    pub fn conv_geometry(&self, id: NodeId) -> Option<ConvGeometry> {
        match &self.nodes[id] {
            Node::Conv {
                input,
                size,
                stride,
                padding,
                ..
            } => {
                let axes = self.spatial.as_ref()?.shape.len();
                ConvGeometry::new(&self.shape(*input)?[..axes], *size, *stride, *padding).ok()
            }
            _ => None,
        }
    }
}

/// `input(s1[, s2], channels)` as declared.
#[derive(Clone, Debug, PartialEq)]
pub struct SpatialInput {
    /// The spatial sizes (one or two axes).
    pub shape: Vec<usize>,
    /// Channels per position.
    pub channels: usize,
}

impl SpatialInput {
    /// The sizes as two axes (`[s1, 1]` in 1-D).
    pub fn sizes(&self) -> [usize; 2] {
        [self.shape[0], self.shape.get(1).copied().unwrap_or(1)]
    }

    /// Positions × channels: the length of a row of X.
    pub fn row_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.channels
    }
}

/// The default weight standard deviation, neural-tangents' (docs/math.md §2).
pub const DEFAULT_W_STD: f64 = 1.0;
/// The default bias standard deviation, neural-tangents' (docs/math.md §2).
pub const DEFAULT_B_STD: f64 = 0.0;

/// Layer names of the grammar that are not activations.
const STRUCTURAL: &[&str] = &[
    "dense",
    "readout",
    "layer_norm",
    "act",
    "residual",
    "parallel",
    "input",
    "conv",
    "global_avg_pool",
    "flatten",
];

/// Layers of the neural-tangents vocabulary that infw does not compile yet.
const PLANNED: &[(&str, &str)] = &[(
    "batch_norm",
    "batch normalisation couples examples and has no per-pair kernel",
)];

/// Every name the grammar accepts (for suggestions).
fn all_names() -> Vec<&'static str> {
    STRUCTURAL
        .iter()
        .copied()
        .chain(REGISTRY.iter().map(|e| e.name))
        .collect()
}

/// Collects errors so that all mistakes are reported at once.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, e: Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
}

/// The lowering state: the graph so far and the errors found.
struct Lowering {
    nodes: Vec<Node>,
    spatial: Option<SpatialInput>,
    errors: Errors,
    exprs: Expressions,
    readout: Option<Readout>,
}

/// Validates and lowers the parsed body.
pub fn lower(items: &[Item]) -> Result<Network, Error> {
    if items.is_empty() {
        return Err(Error::new(
            Span::call_site(),
            "an empty network: declare at least one layer, e.g. `network!{ dense(512) relu }`",
        ));
    }
    let mut l = Lowering {
        nodes: vec![Node::Input],
        spatial: None,
        errors: Errors::default(),
        exprs: Expressions::default(),
        readout: None,
    };
    // A final top-level `dense` is the readout.
    let (body, last_dense) = match items.last() {
        Some(Item::Layer(call)) if call.name == "dense" => (&items[..items.len() - 1], Some(call)),
        _ => (items, None),
    };
    // `input(…)` first declares a convolutional network's input shape.
    let body = match body.first() {
        Some(Item::Layer(call)) if call.name == "input" => {
            match spatial::input_args(call) {
                Ok(s) => l.spatial = Some(s),
                Err(e) => l.errors.push(e),
            }
            &body[1..]
        }
        _ => body,
    };
    let current = l.sequence(body, 0, true);
    if l.view().is_spatial(current) {
        let span = items
            .last()
            .map(|i| match i {
                Item::Layer(c) => c.name.span(),
                Item::Block(b) => b.name.span(),
            })
            .unwrap_or_else(Span::call_site);
        l.errors.push(Error::new(
            span,
            "the readout needs a flat input: end the convolutional part with `global_avg_pool` or `flatten`, e.g. `… relu global_avg_pool dense(10)`",
        ));
    }
    if l.readout.is_none() {
        let readout = match last_dense {
            Some(call) => match l.dense_args(call) {
                Ok((width, w_std, b_std)) => Readout {
                    input: current,
                    outputs: Some(width),
                    w_std,
                    b_std,
                },
                Err(e) => {
                    l.errors.push(e);
                    default_readout(current)
                }
            },
            None => default_readout(current),
        };
        l.readout = Some(readout);
    }
    if let Some(e) = l.errors.0 {
        return Err(e);
    }
    Ok(Network {
        nodes: l.nodes,
        readout: l.readout.expect("set above"),
        expressions: l.exprs.count,
        spatial: l.spatial,
    })
}

fn default_readout(input: NodeId) -> Readout {
    Readout {
        input,
        outputs: None,
        w_std: Value::Literal(DEFAULT_W_STD),
        b_std: Value::Literal(DEFAULT_B_STD),
    }
}

impl Lowering {
    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn gaussian(&self, id: NodeId) -> bool {
        self.view().gaussian(id)
    }

    fn fresh(&self, id: NodeId, since: NodeId) -> bool {
        self.view().fresh(id, since)
    }

    /// A read-only network over the nodes so far, for the node predicates.
    fn view(&self) -> Network {
        Network {
            nodes: self.nodes.clone(),
            readout: default_readout(0),
            expressions: 0,
            spatial: self.spatial.clone(),
        }
    }

    /// Lowers a sequence reading `input`; returns the node of its output.
    fn sequence(&mut self, items: &[Item], mut current: NodeId, top: bool) -> NodeId {
        for (k, item) in items.iter().enumerate() {
            if self.readout.is_some() {
                let span = match item {
                    Item::Layer(c) => c.name.span(),
                    Item::Block(b) => b.name.span(),
                };
                self.errors.push(Error::new(
                    span,
                    "nothing may follow `readout(..)`: it is the last layer",
                ));
                return current;
            }
            current = match item {
                Item::Layer(call) => self.layer(call, current, top, k == items.len() - 1),
                Item::Block(block) => self.block(block, current),
            };
        }
        current
    }

    fn layer(&mut self, call: &LayerCall, input: NodeId, top: bool, last: bool) -> NodeId {
        let name = call.name.to_string();
        if let Some(id) = self.spatial_layer(call, input) {
            return id;
        }
        match name.as_str() {
            "dense" if self.view().is_spatial(input) => {
                self.errors.push(Error::new(
                    call.name.span(),
                    "`dense` needs a flat input: end the convolutional part with `global_avg_pool` or `flatten` first",
                ));
                input
            }
            "dense" => match self.dense_args(call) {
                Ok((width, w_std, b_std)) => self.push(Node::Dense {
                    input,
                    width,
                    w_std,
                    b_std,
                }),
                Err(e) => {
                    self.errors.push(e);
                    self.push(Node::Dense {
                        input,
                        width: Value::Literal(1),
                        w_std: Value::Literal(DEFAULT_W_STD),
                        b_std: Value::Literal(DEFAULT_B_STD),
                    })
                }
            },
            "readout" => {
                if !top || !last {
                    self.errors.push(Error::new(
                        call.name.span(),
                        if top {
                            "nothing may follow `readout(..)`: it is the last layer"
                        } else {
                            "`readout(..)` is the network's last layer; it cannot stand inside a block"
                        },
                    ));
                    return input;
                }
                match self.readout_args(call) {
                    Ok((w_std, b_std)) => {
                        self.readout = Some(Readout {
                            input,
                            outputs: None,
                            w_std,
                            b_std,
                        })
                    }
                    Err(e) => self.errors.push(e),
                }
                input
            }
            "residual" | "parallel" => {
                self.errors.push(Error::new(
                    call.name.span(),
                    format!("`{name}` needs its layers in parentheses, e.g. `{name}(dense(512) relu dense(512))`"),
                ));
                input
            }
            "layer_norm" if self.view().is_spatial(input) => {
                self.errors.push(Error::new(
                    call.name.span(),
                    "`layer_norm` on positions × channels is not supported yet: place it after `global_avg_pool` or `flatten`",
                ));
                input
            }
            "layer_norm" => {
                if let Err(e) = no_args(call) {
                    self.errors.push(e);
                }
                if !self.gaussian(input) {
                    self.errors.push(self.needs_gaussian(call, input));
                }
                self.push(Node::LayerNorm { input })
            }
            "act" => {
                let rule = match user_path(call) {
                    Ok(p) => Rule::User(UserPath(p)),
                    Err(e) => {
                        self.errors.push(e);
                        return input;
                    }
                };
                self.activation(call, input, rule)
            }
            other if PLANNED.iter().any(|(n, _)| *n == other) => {
                let why = PLANNED
                    .iter()
                    .find(|(n, _)| *n == other)
                    .map(|(_, w)| *w)
                    .unwrap_or("");
                self.errors.push(Error::new(
                    call.name.span(),
                    format!("`{other}` is not supported yet: {why}"),
                ));
                input
            }
            other => match lookup(other) {
                Some(entry) => match activation_params(call, entry) {
                    Ok(params) => self.activation(
                        call,
                        input,
                        Rule::Registry {
                            entry: entry.name,
                            params,
                        },
                    ),
                    Err(e) => {
                        self.errors.push(e);
                        input
                    }
                },
                None => {
                    self.errors.push(unknown_layer(call.name.span(), other));
                    input
                }
            },
        }
    }

    fn activation(&mut self, call: &LayerCall, input: NodeId, rule: Rule) -> NodeId {
        if !self.gaussian(input) {
            self.errors.push(self.needs_gaussian(call, input));
        }
        self.push(Node::Activation { input, rule })
    }

    fn needs_gaussian(&self, call: &LayerCall, input: NodeId) -> Error {
        let name = &call.name;
        let msg = match &self.nodes[input] {
            Node::Input if self.spatial.is_some() => format!(
                "`{name}` needs a convolution before it: the input is not Gaussian; write `conv(channels) {name}`"
            ),
            Node::Input => format!(
                "`{name}` needs a dense layer before it: the input is not Gaussian; write `dense(width) {name}`"
            ),
            Node::Activation { .. } if name != "layer_norm" => {
                format!("two activations in a row: insert a `dense(width)` before `{name}`")
            }
            _ => format!(
                "`{name}` needs a Gaussian input (a dense layer, or a residual/layer_norm of one); insert a `dense(width)` before it"
            ),
        };
        Error::new(name.span(), msg)
    }

    fn block(&mut self, block: &Block, input: NodeId) -> NodeId {
        let kind = block.name.to_string();
        if self.view().is_spatial(input) {
            self.errors.push(Error::new(
                block.name.span(),
                format!("`{kind}` on positions × channels is not supported yet: place it after `global_avg_pool` or `flatten`"),
            ));
            return input;
        }
        if block.branches.iter().all(|b| b.is_empty()) {
            self.errors.push(Error::new(
                block.span,
                format!(
                    "an empty `{kind}`: give it layers, e.g. `{kind}(dense(512) relu dense(512))`"
                ),
            ));
            return input;
        }
        match kind.as_str() {
            "residual" => {
                if block.branches.len() > 1 {
                    self.errors.push(Error::new(
                        block.span,
                        "`residual` takes one block; `|` separates the branches of `parallel(… | …)`",
                    ));
                }
                let end = self.sequence(&block.branches[0], input, false);
                if !self.fresh(end, input) {
                    self.errors.push(Error::new(
                        block.name.span(),
                        "a residual block must end in a dense layer of its own (or a layer_norm of one): its output is then independent of the stream, and the kernels add (docs/math.md §8)",
                    ));
                }
                self.check_same_width(block, &[input, end]);
                self.push(Node::Sum {
                    inputs: vec![input, end],
                })
            }
            "parallel" => {
                if block.branches.len() < 2 {
                    self.errors.push(Error::new(
                        block.span,
                        "`parallel` needs two or more branches separated by `|`: `parallel(dense(256) relu | dense(256) erf)`",
                    ));
                }
                let ends: Vec<NodeId> = block
                    .branches
                    .iter()
                    .map(|b| self.sequence(b, input, false))
                    .collect();
                if ends.iter().any(|&e| self.view().width(e).is_none()) {
                    self.errors.push(Error::new(
                        block.span,
                        "every branch of `parallel` must have a declared width (start it with a dense layer): the concatenation weights each branch's kernel by its width",
                    ));
                }
                self.push(Node::Concat { inputs: ends })
            }
            _ => unreachable!("syntax only builds blocks named in BLOCKS"),
        }
    }

    /// A residual adds equal widths: literal widths that differ are an error here.
    fn check_same_width(&mut self, block: &Block, ids: &[NodeId]) {
        let view = self.view();
        let lits: Vec<usize> = ids
            .iter()
            .filter_map(|&i| view.width(i).and_then(|w| w.literal()))
            .collect();
        if lits.windows(2).any(|w| w[0] != w[1]) {
            self.errors.push(Error::new(
                block.name.span(),
                format!(
                    "the residual block's output width {} differs from the stream's {}: a sum needs equal widths",
                    lits[1], lits[0]
                ),
            ));
        }
    }

    /// `dense`'s width, w_std and b_std.
    #[allow(clippy::type_complexity)] // three named values, read once by the caller
    fn dense_args(
        &mut self,
        call: &LayerCall,
    ) -> Result<(Value<usize>, Value<f64>, Value<f64>), Error> {
        let missing = || Error::new(call.name.span(), "`dense` needs a width: `dense(512)`");
        let args = call.args.as_ref().ok_or_else(missing)?;
        let (mut width, mut w_std, mut b_std) = (None, None, None);
        for (k, arg) in args.list.iter().enumerate() {
            match &arg.key {
                None if k == 0 => width = Some(value::width_value(&arg.value, &mut self.exprs)?),
                None => {
                    return Err(Error::new(
                        arg.value.span(),
                        "`dense` takes one positional argument, the width; name the others: `w_std = …`, `b_std = …`",
                    ))
                }
                Some(key) if key == "width" => {
                    if width.is_some() {
                        return Err(Error::new(key.span(), "the width is given twice"));
                    }
                    width = Some(value::width_value(&arg.value, &mut self.exprs)?);
                }
                Some(key) => self.stds(arg, key, &mut w_std, &mut b_std, &["width", "w_std", "b_std"])?,
            }
        }
        let width =
            width.ok_or_else(|| Error::new(args.span, "`dense` needs a width: `dense(512)`"))?;
        Ok((
            width,
            w_std.unwrap_or(Value::Literal(DEFAULT_W_STD)),
            b_std.unwrap_or(Value::Literal(DEFAULT_B_STD)),
        ))
    }

    fn readout_args(&mut self, call: &LayerCall) -> Result<(Value<f64>, Value<f64>), Error> {
        let (mut w_std, mut b_std) = (None, None);
        for arg in call.args.iter().flat_map(|a| &a.list) {
            match &arg.key {
                None => {
                    return Err(Error::new(
                        arg.value.span(),
                        "`readout` takes no width: it has as many outputs as the targets have columns \
                         (write a final `dense(C, ..)` to fix C); name its parameters: `w_std = …`, `b_std = …`",
                    ))
                }
                Some(key) => self.stds(arg, key, &mut w_std, &mut b_std, &["w_std", "b_std"])?,
            }
        }
        Ok((
            w_std.unwrap_or(Value::Literal(DEFAULT_W_STD)),
            b_std.unwrap_or(Value::Literal(DEFAULT_B_STD)),
        ))
    }

    /// Named `w_std` / `b_std` arguments shared by `dense` and `readout`.
    fn stds(
        &mut self,
        arg: &Arg,
        key: &syn::Ident,
        w_std: &mut Option<Value<f64>>,
        b_std: &mut Option<Value<f64>>,
        allowed: &[&str],
    ) -> Result<(), Error> {
        let slot = match key.to_string().as_str() {
            "w_std" => w_std,
            "b_std" => b_std,
            other => {
                let hint = nearest(other, allowed)
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                return Err(Error::new(
                    key.span(),
                    format!(
                        "unknown parameter `{other}`; expected one of {}{hint}",
                        allowed.join(", ")
                    ),
                ));
            }
        };
        if slot.is_some() {
            return Err(Error::new(key.span(), format!("`{key}` is given twice")));
        }
        *slot = Some(value::std_value(
            &arg.value,
            &key.to_string(),
            &mut self.exprs,
        )?);
        Ok(())
    }
}

fn unknown_layer(span: Span, name: &str) -> Error {
    let names = all_names();
    let mut msg = format!("unknown layer `{name}`");
    if let Some(best) = nearest(name, &names) {
        msg.push_str(&format!("; did you mean `{best}`?"));
    } else {
        msg.push_str(&format!("; the layers are {}", names.join(", ")));
    }
    Error::new(span, msg)
}

fn no_args(call: &LayerCall) -> Result<(), Error> {
    match &call.args {
        Some(args) if !args.list.is_empty() => Err(Error::new(
            args.span,
            format!("`{}` takes no arguments", call.name),
        )),
        _ => Ok(()),
    }
}

/// `act(path)`: exactly one positional path.
fn user_path(call: &LayerCall) -> Result<syn::Path, Error> {
    let usage = "`act` names a type implementing `infw::UserActivation`: `act(my_crate::Swish)`";
    let args = call
        .args
        .as_ref()
        .ok_or_else(|| Error::new(call.name.span(), usage))?;
    match args.list.as_slice() {
        [Arg {
            key: None,
            value: syn::Expr::Path(p),
        }] if p.qself.is_none() => Ok(p.path.clone()),
        [arg] => Err(Error::new(arg.value.span(), format!("not a path: {usage}"))),
        _ => Err(Error::new(args.span, usage)),
    }
}

/// The literal parameters of a registry activation, in its declared order.
fn activation_params(call: &LayerCall, entry: &Entry) -> Result<Vec<f64>, Error> {
    let name = entry.name;
    let list = call.args.as_ref().map(|a| a.list.as_slice()).unwrap_or(&[]);
    let mut values: Vec<Option<f64>> = vec![None; entry.params.len()];
    for (k, arg) in list.iter().enumerate() {
        let slot = match &arg.key {
            None => k,
            Some(key) => {
                let names: Vec<&str> = entry.params.iter().map(|p| p.name).collect();
                match names.iter().position(|n| key == n) {
                    Some(i) => i,
                    None => {
                        let hint = nearest(&key.to_string(), &names)
                            .map(|n| format!("; did you mean `{n}`?"))
                            .unwrap_or_default();
                        let expected = if names.is_empty() {
                            format!("`{name}` takes no arguments")
                        } else {
                            format!("expected {}", names.join(", "))
                        };
                        return Err(Error::new(
                            key.span(),
                            format!("unknown parameter `{key}`; {expected}{hint}"),
                        ));
                    }
                }
            }
        };
        if slot >= values.len() {
            let msg = if entry.params.is_empty() {
                format!("`{name}` takes no arguments")
            } else {
                format!("`{name}` takes {} argument(s)", entry.params.len())
            };
            return Err(Error::new(arg.value.span(), msg));
        }
        if values[slot].is_some() {
            return Err(Error::new(
                arg.value.span(),
                "this parameter is given twice",
            ));
        }
        values[slot] = Some(value::number(&arg.value, entry.params[slot].name)?);
    }
    let mut out = Vec::with_capacity(values.len());
    for (v, p) in values.iter().zip(entry.params) {
        match v.or(p.default) {
            Some(v) => out.push(v),
            None => {
                return Err(Error::new(
                    call.args
                        .as_ref()
                        .map(|a| a.span)
                        .unwrap_or(call.name.span()),
                    format!(
                        "`{name}` needs its parameter `{}`: e.g. `{name}(0.1)`",
                        p.name
                    ),
                ))
            }
        }
    }
    (entry.check)(&out).map_err(|msg| {
        Error::new(
            call.args
                .as_ref()
                .map(|a| a.span)
                .unwrap_or(call.name.span()),
            format!("`{name}`: {msg}"),
        )
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests;
