//! Save and load (the `serde` feature): trained kernel models and finite networks as plain
//! data, written and read by any serde format.
//!
//! | what | save | load |
//! |---|---|---|
//! | [`KernelModel`] (NNGP/NTK regression) | [`KernelModel::saved`] → [`SavedKernelModel`] | [`SavedKernelModel::restore`]`(&net)` |
//! | [`FlowModel`] (NTK gradient flow) | [`FlowModel::saved`] → [`SavedFlowModel`] | [`SavedFlowModel::restore`]`(&net)` |
//! | [`FalkonModel`] (regression at scale) | [`FalkonModel::saved`] → [`SavedFalkonModel`] | [`SavedFalkonModel::restore`]`(&net)` |
//! | [`EnsembleModel`] (MSE ensembles, mean and covariance at any t) | [`EnsembleModel::saved`] → [`SavedEnsembleModel`] | [`SavedEnsembleModel::restore`]`(&net)` |
//! | [`FunctionSpaceModel`] (NTK-SGD, Adam-like limit) | [`FunctionSpaceModel::saved`]`?` → [`SavedFunctionSpaceModel`] | [`SavedFunctionSpaceModel::restore`]`::<R, _>(&net)` |
//! | [`FiniteNetwork`] | [`FiniteNetwork::saved`] → [`SavedFiniteNetwork`] | [`SavedFiniteNetwork::restore`]`()` |
//! | [`LinearizedNetwork`] | [`LinearizedNetwork::saved`] → [`SavedLinearizedNetwork`] | [`SavedLinearizedNetwork::restore`]`()` |
//!
//! **Kernel models need their declaration.** A model's kernels are Rust code that
//! `network!` generated for one declaration, not data. So a saved kernel model holds the
//! model's numbers (training inputs, coefficients, the kept Cholesky factor or
//! eigendecomposition) and a description of the declaration ([`SavedArchitecture`]), and
//! loading takes the network declared again: `restore(&net)` returns
//! [`Error::ArchitectureMismatch`] when `net` is another declaration (a width, a std, an
//! activation or a node that differs), naming the first difference. Nothing is refactorised
//! or recomputed on load: predictions and predictive variances are those of the saved model.
//!
//! **Finite networks are data**, unless they use a user activation (`act(path)`: a Rust type
//! named in the declaration, which a file cannot name). `restore()` rebuilds the graph from
//! the saved description and returns [`Error::UnrestorableActivation`] for a user
//! activation; `restore_with(&architecture)` takes the declaration instead (e.g.
//! `net.architecture()`), which works for every network and checks it is the saved one.
//!
//! **Exactness.** A restored model predicts bit for bit what the saved one did, provided
//! the format round-trips `f64` exactly: serde_json does with its `float_roundtrip` feature
//! (its default parser is off by an ulp for about one value in five); JSON has no NaN or ∞,
//! and none is ever saved (every saved number is finite).
//!
//! **A saved file is input.** `restore` checks everything it reads (the format version,
//! every shape against the others and the declaration, finiteness, the factor's triangle
//! and pivots, index ranges) and returns a typed [`Error`], never panics; a file the format
//! cannot parse (truncated, a string for a number) is the format's own error
//! (`serde_json::Error`). It cannot check that the numbers are the ones training produced:
//! an edited coefficient is a different model.
//!
//! **Training resumes exactly.** A saved [`FunctionSpaceModel`] holds its trainer's whole
//! state: the configuration, the train kernels and targets, every tracked iterate
//! (coefficients and training-set values of the last iterate, momentum, running mean, EMA),
//! the example order and the epoch and step counts. Continuing `fit` after `restore` gives
//! the epoch records (all but `seconds`) and predictions of the model that was never saved,
//! bit for bit. The shuffling RNG is not saved but replayed from the configuration's seed
//! (one shuffle per completed epoch: an epoch shuffles at its start and
//! [`Trainer::step`](crate::train::Trainer::step) does not touch the order, so there is no
//! mid-epoch order to keep). The rule is recorded by name ([`LimitRule::NAME`]) and
//! `restore::<R, _>` checks it. A model whose training diverged is not saved
//! ([`Error::Diverged`]): its state is not finite and every call on it fails anyway.
//!
//! **Ensembles keep what they have built.** An [`EnsembleModel`] builds its factorisations
//! (Cholesky for t = ∞, eigendecomposition for finite t) on first prediction; the saved file
//! holds those built so far, and saving builds none. A restored model builds the missing
//! ones from the same saved kernel when asked, as the saved model would have.
//!
//! Not saved: the Gram tiling parameters (those of the given network are used; they do not
//! change results).
//!
//! ```
//! use infw_runtime::finite::{FiniteNetwork, Parameterization};
//! use infw_runtime::persist::SavedFiniteNetwork;
//! use infw_runtime::{Activation, Architecture, Hidden};
//!
//! let h = Hidden { width: 8, w_std: 1.5, b_std: 0.1, activation: Activation::RELU };
//! let net = FiniteNetwork::new(&Architecture::chain(&[h], None, 1.0, 0.0), 3, 2, Parameterization::Ntk, 7)?;
//! let json = serde_json::to_string(&net.saved()).unwrap();
//! let back = serde_json::from_str::<SavedFiniteNetwork>(&json).unwrap().restore()?;
//! let x = ndarray::array![[1.0, 0.0, -1.0]];
//! assert_eq!(back.forward(x.view())?, net.forward(x.view())?);
//! # Ok::<(), infw_runtime::Error>(())
//! ```

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use std::sync::OnceLock;

use crate::arch::{Padding, SpatialInput};
use crate::finite::{FiniteNetwork, LinearizedNetwork, Model, Parameterization, Params};
use crate::solve::ensemble::Inner;
use crate::solve::{
    EnsembleModel, EnsembleOptions, Factors, Falkon, FalkonReport, GradientFlow, KernelRegression,
    NngpEnsemble, NtkEnsemble,
};
use crate::train::{
    replayed_order, AdamLimit, FunctionState, KernelSet, NtkSgd, TrainConfig, Trainer,
};
use crate::validate::{check_matrix, finite};
use crate::{
    Activation, Architecture, Error, FalkonModel, FlowModel, FunctionSpaceModel, KernelKind,
    KernelModel, KernelProgram, LimitRule, Loss, Network, Node, Readout, Result,
};

/// The version of the saved formats this build writes and reads (the `format` field of
/// every saved struct); another version is [`Error::InvalidSaved`].
pub const FORMAT_VERSION: u32 = 1;

// ---------------------------------------------------------------------------------------
// The declaration as data
// ---------------------------------------------------------------------------------------

/// A declared [`Architecture`] as data: what a saved model was trained with. A user
/// activation is kept by its path (`act(my_crate::Swish)`), which can be compared with a
/// declaration but not turned back into code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedArchitecture {
    spatial: Option<SavedSpatial>,
    nodes: Vec<SavedNode>,
    readout: SavedReadout,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SavedSpatial {
    shape: Vec<usize>,
    channels: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SavedReadout {
    input: usize,
    outputs: Option<usize>,
    w_std: f64,
    b_std: f64,
}

/// [`Node`], one variant each (an exhaustive match converts: a node kind added to
/// [`Node`] does not compile until it is saved too). Externally tagged enums, so that
/// formats that are not self-describing (bincode) read them too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SavedNode {
    Input,
    Dense {
        input: usize,
        width: usize,
        w_std: f64,
        b_std: f64,
    },
    Activation {
        input: usize,
        activation: SavedActivation,
    },
    LayerNorm {
        input: usize,
    },
    Sum {
        inputs: Vec<usize>,
    },
    Concat {
        inputs: Vec<usize>,
    },
    Conv {
        input: usize,
        channels: usize,
        size: usize,
        stride: usize,
        /// `same`, `valid` or `circular`.
        padding: String,
        w_std: f64,
        b_std: f64,
    },
    GlobalAvgPool {
        input: usize,
    },
    Flatten {
        input: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SavedActivation {
    /// A registry activation: its grammar name and every parameter, in the rule's order.
    Registry { name: String, params: Vec<f64> },
    /// `act(path)`: the path as written in the declaration.
    User { path: String },
}

impl From<&Activation> for SavedActivation {
    fn from(a: &Activation) -> Self {
        match (a.registry_parts(), a) {
            (Some((name, params)), _) => SavedActivation::Registry {
                name: name.into(),
                params,
            },
            (None, Activation::User(f)) => SavedActivation::User {
                path: f.name.into(),
            },
            (None, other) => unreachable!("every registry activation has parts: {other:?}"),
        }
    }
}

impl From<&Node> for SavedNode {
    fn from(node: &Node) -> Self {
        match *node {
            Node::Input => SavedNode::Input,
            Node::Dense {
                input,
                width,
                w_std,
                b_std,
            } => SavedNode::Dense {
                input,
                width,
                w_std,
                b_std,
            },
            Node::Activation {
                input,
                ref activation,
            } => SavedNode::Activation {
                input,
                activation: activation.into(),
            },
            Node::LayerNorm { input } => SavedNode::LayerNorm { input },
            Node::Sum { ref inputs } => SavedNode::Sum {
                inputs: inputs.clone(),
            },
            Node::Concat { ref inputs } => SavedNode::Concat {
                inputs: inputs.clone(),
            },
            Node::Conv {
                input,
                channels,
                size,
                stride,
                padding,
                w_std,
                b_std,
            } => SavedNode::Conv {
                input,
                channels,
                size,
                stride,
                padding: padding.name().into(),
                w_std,
                b_std,
            },
            Node::GlobalAvgPool { input } => SavedNode::GlobalAvgPool { input },
            Node::Flatten { input } => SavedNode::Flatten { input },
        }
    }
}

impl From<&Architecture> for SavedArchitecture {
    fn from(arch: &Architecture) -> Self {
        let r = &arch.readout;
        SavedArchitecture {
            spatial: arch.spatial.as_ref().map(|s| SavedSpatial {
                shape: s.shape.clone(),
                channels: s.channels,
            }),
            nodes: arch.nodes.iter().map(SavedNode::from).collect(),
            readout: SavedReadout {
                input: r.input,
                outputs: r.outputs,
                w_std: r.w_std,
                b_std: r.b_std,
            },
        }
    }
}

fn invalid(what: &str, reason: impl Into<String>) -> Error {
    Error::InvalidSaved {
        what: what.into(),
        reason: reason.into(),
    }
}

impl SavedNode {
    fn to_node(&self, id: usize) -> Result<Node> {
        Ok(match self {
            SavedNode::Input => Node::Input,
            &SavedNode::Dense {
                input,
                width,
                w_std,
                b_std,
            } => Node::Dense {
                input,
                width,
                w_std,
                b_std,
            },
            SavedNode::Activation { input, activation } => Node::Activation {
                input: *input,
                activation: match activation {
                    SavedActivation::Registry { name, params } => {
                        Activation::from_registry(name, params)
                            .map_err(|e| invalid("architecture", format!("node {id}: {e}")))?
                    }
                    SavedActivation::User { path } => {
                        return Err(Error::UnrestorableActivation {
                            activation: format!("act({path})"),
                        })
                    }
                },
            },
            &SavedNode::LayerNorm { input } => Node::LayerNorm { input },
            SavedNode::Sum { inputs } => Node::Sum {
                inputs: inputs.clone(),
            },
            SavedNode::Concat { inputs } => Node::Concat {
                inputs: inputs.clone(),
            },
            SavedNode::Conv {
                input,
                channels,
                size,
                stride,
                padding,
                w_std,
                b_std,
            } => Node::Conv {
                input: *input,
                channels: *channels,
                size: *size,
                stride: *stride,
                padding: [Padding::Same, Padding::Valid, Padding::Circular]
                    .into_iter()
                    .find(|p| p.name() == padding)
                    .ok_or_else(|| {
                        invalid(
                            "architecture",
                            format!(
                                "node {id}: unknown padding `{padding}` (same, valid or circular)"
                            ),
                        )
                    })?,
                w_std: *w_std,
                b_std: *b_std,
            },
            &SavedNode::GlobalAvgPool { input } => Node::GlobalAvgPool { input },
            &SavedNode::Flatten { input } => Node::Flatten { input },
        })
    }
}

impl SavedArchitecture {
    /// The described architecture. Errors: [`Error::UnrestorableActivation`] for a user
    /// activation (use the declaration itself), [`Error::InvalidSaved`] for an unknown
    /// activation or padding. The graph is not validated here (its fields are public, so
    /// every consumer checks it: [`FiniteNetwork::new`] does).
    pub fn to_architecture(&self) -> Result<Architecture> {
        let nodes = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| n.to_node(i))
            .collect::<Result<Vec<_>>>()?;
        let r = &self.readout;
        Ok(Architecture {
            spatial: self.spatial.as_ref().map(|s| SpatialInput {
                shape: s.shape.clone(),
                channels: s.channels,
            }),
            nodes,
            readout: Readout {
                input: r.input,
                outputs: r.outputs,
                w_std: r.w_std,
                b_std: r.b_std,
            },
        })
    }

    /// `Ok` when `arch` is the described declaration (every node, width, std and
    /// activation equal; a user activation by its path), else
    /// [`Error::ArchitectureMismatch`] naming the first difference.
    pub fn check_matches(&self, arch: &Architecture) -> Result<()> {
        let given = SavedArchitecture::from(arch);
        let mismatch =
            |saved: String, given: String| Err(Error::ArchitectureMismatch { saved, given });
        if self.spatial != given.spatial {
            return mismatch(
                format!("input {:?}", self.spatial),
                format!("input {:?}", given.spatial),
            );
        }
        let node = |nodes: &[SavedNode], i: usize| match nodes.get(i) {
            Some(n) => format!("node {i} {n:?}"),
            None => format!("no node {i} ({} nodes)", nodes.len()),
        };
        for i in 0..self.nodes.len().max(given.nodes.len()) {
            if self.nodes.get(i) != given.nodes.get(i) {
                return mismatch(node(&self.nodes, i), node(&given.nodes, i));
            }
        }
        if self.readout != given.readout {
            return mismatch(
                format!("readout {:?}", self.readout),
                format!("readout {:?}", given.readout),
            );
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Checks of saved values
// ---------------------------------------------------------------------------------------

fn check_format(what: &str, format: u32) -> Result<()> {
    if format == FORMAT_VERSION {
        Ok(())
    } else {
        Err(invalid(
            what,
            format!("format version {format}; this build reads version {FORMAT_VERSION}"),
        ))
    }
}

fn dim(what: &str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what: what.into(),
            expected,
            found,
        })
    }
}

/// A finite, non-empty rows × (any) matrix.
fn matrix(what: &str, a: ArrayView2<f64>, rows: usize) -> Result<()> {
    check_matrix(what, a)?;
    dim(&format!("rows of {what}"), rows, a.nrows())
}

/// A non-negative (or, with `positive`, positive) finite scalar.
fn scalar(what: &str, name: &str, v: f64, positive: bool) -> Result<()> {
    if v.is_finite() && (v > 0.0 || (!positive && v == 0.0)) {
        Ok(())
    } else {
        let range = if positive { "> 0" } else { "≥ 0" };
        Err(invalid(
            what,
            format!("{name} = {v}, not finite and {range}"),
        ))
    }
}

/// The training (or centre) inputs: non-empty, finite, and as wide as a convolutional
/// declaration's rows.
fn inputs(what: &str, x: ArrayView2<f64>, arch: &Architecture) -> Result<()> {
    check_matrix(what, x)?;
    match &arch.spatial {
        Some(s) => dim(
            &format!("columns of {what} (the row length of the declared input(…))"),
            s.row_len(),
            x.ncols(),
        ),
        None => Ok(()),
    }
}

/// L of a kept Cholesky factorisation: n × n, finite, exactly zero above the diagonal,
/// positive pivots. `model` names what is restored.
fn cholesky_factor(model: &str, l: ArrayView2<f64>, n: usize) -> Result<()> {
    const WHAT: &str = "the saved Cholesky factor";
    dim(&format!("rows of {WHAT}"), n, l.nrows())?;
    dim(&format!("columns of {WHAT}"), n, l.ncols())?;
    finite(WHAT, l)?;
    for i in 0..n {
        if l[[i, i]] <= 0.0 {
            return Err(invalid(
                model,
                format!(
                    "pivot {i} of the Cholesky factor is {}, not positive",
                    l[[i, i]]
                ),
            ));
        }
        if let Some(j) = (i + 1..n).find(|&j| l[[i, j]] != 0.0) {
            return Err(invalid(
                model,
                format!(
                    "the Cholesky factor is not lower triangular: entry ({i}, {j}) = {}",
                    l[[i, j]]
                ),
            ));
        }
    }
    Ok(())
}

/// A kept symmetric eigendecomposition of an n × n kernel: n × n finite eigenvectors, n
/// finite eigenvalues, non-negative and non-decreasing (as [`GradientFlow`] keeps them).
/// `model` names what is restored.
fn eigendecomposition(
    model: &str,
    eigenvalues: &Array1<f64>,
    eigenvectors: ArrayView2<f64>,
    n: usize,
) -> Result<()> {
    matrix("the saved eigenvectors", eigenvectors, n)?;
    dim("columns of the saved eigenvectors", n, eigenvectors.ncols())?;
    dim("length of the saved eigenvalues", n, eigenvalues.len())?;
    finite(
        "the saved eigenvalues",
        eigenvalues.view().insert_axis(ndarray::Axis(1)),
    )?;
    if let Some((i, l)) = eigenvalues.iter().enumerate().find(|(_, &l)| l < 0.0) {
        return Err(invalid(model, format!("eigenvalue {i} is {l}, negative")));
    }
    if let Some(i) = (1..n).find(|&i| eigenvalues[i] < eigenvalues[i - 1]) {
        return Err(invalid(
            model,
            format!("the eigenvalues are not non-decreasing at {i}"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Kernel models
// ---------------------------------------------------------------------------------------

/// A trained [`KernelModel`] as data ([`KernelModel::saved`]): the declaration, the kernel,
/// the ridge λ, the training inputs, the coefficients (K + λI)⁻¹Y and the lower Cholesky
/// factor L of K + λI, so that predictions and the predictive covariance need no
/// refactorisation after [`restore`](Self::restore).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedKernelModel {
    format: u32,
    architecture: SavedArchitecture,
    kind: KernelKind,
    ridge: f64,
    x_train: Array2<f64>,
    coefficients: Array2<f64>,
    cholesky_factor: Array2<f64>,
}

impl<K: KernelProgram + Clone> KernelModel<K> {
    /// The model as data, for any serde format (the `serde` feature; module
    /// [`persist`](crate::persist)). Copies the training inputs, the coefficients and the
    /// N×N factor.
    pub fn saved(&self) -> SavedKernelModel {
        let f = self.solver.factor.as_ref();
        SavedKernelModel {
            format: FORMAT_VERSION,
            architecture: self.net.architecture().into(),
            kind: self.kind,
            ridge: self.solver.ridge,
            x_train: self.x_train.clone(),
            coefficients: self.solver.alpha.clone(),
            cholesky_factor: Array2::from_shape_fn((f.nrows(), f.ncols()), |(i, j)| f[(i, j)]),
        }
    }
}

impl SavedKernelModel {
    /// The declaration the model was trained with.
    pub fn architecture(&self) -> &SavedArchitecture {
        &self.architecture
    }

    /// The model again, with its kernels from `net`, which must be the saved declaration
    /// ([`Error::ArchitectureMismatch`] otherwise). Nothing is recomputed: predictions are
    /// those of the saved model, bit for bit. Errors for a saved state that is not
    /// consistent (typed, see the [module docs](crate::persist)).
    pub fn restore<K: KernelProgram + Clone>(self, net: &Network<K>) -> Result<KernelModel<K>> {
        check_format("kernel model", self.format)?;
        let arch = net.architecture();
        self.architecture.check_matches(arch)?;
        scalar("kernel model", "ridge", self.ridge, false)?;
        inputs("the saved training inputs", self.x_train.view(), arch)?;
        let n = self.x_train.nrows();
        matrix("the saved coefficients", self.coefficients.view(), n)?;
        arch.outputs_for(self.coefficients.ncols())?;
        cholesky_factor("kernel model", self.cholesky_factor.view(), n)?;
        let solver = KernelRegression {
            factor: crate::solve::check::to_faer(self.cholesky_factor.view()),
            alpha: self.coefficients,
            ridge: self.ridge,
        };
        Ok(KernelModel {
            net: net.clone(),
            kind: self.kind,
            x_train: self.x_train,
            solver,
        })
    }
}

/// A prepared [`FlowModel`] as data ([`FlowModel::saved`]): the declaration, the learning
/// rate, the training inputs and the kept eigendecomposition of Θ(X, X) with the projected
/// residual, so that predictions at every time need no new decomposition after
/// [`restore`](Self::restore).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedFlowModel {
    format: u32,
    architecture: SavedArchitecture,
    learning_rate: f64,
    ridge: f64,
    threshold: f64,
    x_train: Array2<f64>,
    eigenvalues: Array1<f64>,
    eigenvectors: Array2<f64>,
    projected_residual: Array2<f64>,
    initial_train: Option<Array2<f64>>,
}

impl<K: KernelProgram + Clone> FlowModel<K> {
    /// The model as data, for any serde format (the `serde` feature; module
    /// [`persist`](crate::persist)). Copies the training inputs and the N×N eigenvectors.
    pub fn saved(&self) -> SavedFlowModel {
        let f = &self.flow;
        SavedFlowModel {
            format: FORMAT_VERSION,
            architecture: self.net.architecture().into(),
            learning_rate: f.learning_rate,
            ridge: f.ridge,
            threshold: f.threshold,
            x_train: self.x_train.clone(),
            eigenvalues: f.eigvals.clone(),
            eigenvectors: f.eigvecs.clone(),
            projected_residual: f.projected.clone(),
            initial_train: f.f0_train.clone(),
        }
    }
}

impl SavedFlowModel {
    /// The declaration the model was trained with.
    pub fn architecture(&self) -> &SavedArchitecture {
        &self.architecture
    }

    /// The model again, with its kernels from `net`, which must be the saved declaration
    /// ([`Error::ArchitectureMismatch`] otherwise). Predictions at every time are those of
    /// the saved model, bit for bit. Errors for a saved state that is not consistent
    /// (typed, see the [module docs](crate::persist)).
    pub fn restore<K: KernelProgram + Clone>(self, net: &Network<K>) -> Result<FlowModel<K>> {
        const WHAT: &str = "gradient-flow model";
        check_format(WHAT, self.format)?;
        let arch = net.architecture();
        self.architecture.check_matches(arch)?;
        scalar(WHAT, "learning_rate", self.learning_rate, true)?;
        scalar(WHAT, "ridge", self.ridge, false)?;
        scalar(WHAT, "threshold", self.threshold, false)?;
        inputs("the saved training inputs", self.x_train.view(), arch)?;
        let n = self.x_train.nrows();
        eigendecomposition(WHAT, &self.eigenvalues, self.eigenvectors.view(), n)?;
        let r = &self.projected_residual;
        matrix("the saved projected residual", r.view(), n)?;
        arch.outputs_for(r.ncols())?;
        if let Some(f0) = &self.initial_train {
            matrix("the saved initial function", f0.view(), n)?;
            dim(
                "columns of the saved initial function",
                r.ncols(),
                f0.ncols(),
            )?;
        }
        let flow = GradientFlow {
            eigvecs: self.eigenvectors,
            eigvals: self.eigenvalues,
            projected: self.projected_residual,
            f0_train: self.initial_train,
            learning_rate: self.learning_rate,
            threshold: self.threshold,
            ridge: self.ridge,
        };
        Ok(FlowModel {
            net: net.clone(),
            x_train: self.x_train,
            flow,
        })
    }
}

/// A fitted [`FalkonModel`] as data ([`FalkonModel::saved`]): the declaration, the kernel,
/// the centres (and which training rows they are), the coefficients on them, the ridge,
/// the CG report and the block size. No N×N (or N×M) matrix: the file is O(M·(d + C)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedFalkonModel {
    format: u32,
    architecture: SavedArchitecture,
    kind: KernelKind,
    ridge: f64,
    n_train: usize,
    block_rows: usize,
    centres: Array2<f64>,
    centre_rows: Vec<usize>,
    coefficients: Array2<f64>,
    report: FalkonReport,
}

impl<K: KernelProgram + Clone> FalkonModel<K> {
    /// The model as data, for any serde format (the `serde` feature; module
    /// [`persist`](crate::persist)). Copies the centres and the coefficients.
    pub fn saved(&self) -> SavedFalkonModel {
        SavedFalkonModel {
            format: FORMAT_VERSION,
            architecture: self.net.architecture().into(),
            kind: self.kind,
            ridge: self.solver.ridge,
            n_train: self.n_train,
            block_rows: self.block_rows,
            centres: self.centres.clone(),
            centre_rows: self.centre_rows.clone(),
            coefficients: self.solver.alpha.clone(),
            report: self.solver.report.clone(),
        }
    }
}

impl SavedFalkonModel {
    /// The declaration the model was trained with.
    pub fn architecture(&self) -> &SavedArchitecture {
        &self.architecture
    }

    /// The model again, with its kernels from `net`, which must be the saved declaration
    /// ([`Error::ArchitectureMismatch`] otherwise). Predictions are those of the saved
    /// model, bit for bit; [`FalkonModel::uncertainty`] needs the training inputs, as
    /// before saving. Errors for a saved state that is not consistent (typed, see the
    /// [module docs](crate::persist)).
    pub fn restore<K: KernelProgram + Clone>(self, net: &Network<K>) -> Result<FalkonModel<K>> {
        const WHAT: &str = "Falkon model";
        check_format(WHAT, self.format)?;
        let arch = net.architecture();
        self.architecture.check_matches(arch)?;
        scalar(WHAT, "ridge", self.ridge, true)?;
        if self.block_rows == 0 {
            return Err(invalid(WHAT, "block_rows = 0"));
        }
        inputs("the saved centres", self.centres.view(), arch)?;
        let m = self.centres.nrows();
        matrix("the saved coefficients", self.coefficients.view(), m)?;
        arch.outputs_for(self.coefficients.ncols())?;
        dim("number of saved centre rows", m, self.centre_rows.len())?;
        dim("centres in the saved report", m, self.report.centres)?;
        if let Some(i) = (0..m).find(|&i| {
            self.centre_rows[i] >= self.n_train
                || (i > 0 && self.centre_rows[i] <= self.centre_rows[i - 1])
        }) {
            return Err(invalid(
                WHAT,
                format!(
                    "centre row {i} is {}: the rows must increase and be below n_train = {}",
                    self.centre_rows[i], self.n_train
                ),
            ));
        }
        let solver = Falkon {
            alpha: self.coefficients,
            ridge: self.ridge,
            report: self.report,
        };
        Ok(FalkonModel {
            net: net.clone(),
            kind: self.kind,
            centres: self.centres,
            centre_rows: self.centre_rows,
            block_rows: self.block_rows,
            n_train: self.n_train,
            solver,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Function-space training
// ---------------------------------------------------------------------------------------

/// The rules a saved function-space model may name ([`LimitRule::NAME`]).
const RULES: [&str; 2] = [NtkSgd::NAME, AdamLimit::NAME];

/// One tracked iterate of a trainer: a coefficient matrix per kernel block (N×C) and its
/// values on the training set (N×C, f_0 included).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SavedFunctionState {
    coefficients: Vec<Array2<f64>>,
    train_values: Array2<f64>,
}

impl From<&FunctionState> for SavedFunctionState {
    fn from(s: &FunctionState) -> Self {
        SavedFunctionState {
            coefficients: s.coef.clone(),
            train_values: s.train.clone(),
        }
    }
}

impl SavedFunctionState {
    /// The state, checked: `blocks` coefficient matrices and the train values, each n × c
    /// and finite.
    fn restore(self, name: &str, blocks: usize, n: usize, c: usize) -> Result<FunctionState> {
        dim(
            &format!("number of coefficient matrices of the saved {name}"),
            blocks,
            self.coefficients.len(),
        )?;
        let shaped = |what: String, a: &Array2<f64>| {
            matrix(&what, a.view(), n)?;
            dim(&format!("columns of {what}"), c, a.ncols())
        };
        for (j, a) in self.coefficients.iter().enumerate() {
            shaped(format!("the saved {name}: coefficients {j}"), a)?;
        }
        shaped(
            format!("the saved {name}: training-set values"),
            &self.train_values,
        )?;
        Ok(FunctionState {
            coef: self.coefficients,
            train: self.train_values,
        })
    }
}

/// A [`FunctionSpaceModel`] as data ([`FunctionSpaceModel::saved`]): the declaration, the
/// update rule by name, the configuration, the training inputs, targets and kernels, and the
/// trainer's whole state (every tracked iterate, the example order, the epoch and step
/// counts), so that after [`restore`](Self::restore) training continues exactly where it
/// stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedFunctionSpaceModel {
    format: u32,
    architecture: SavedArchitecture,
    rule: String,
    config: TrainConfig,
    x_train: Array2<f64>,
    targets: Array2<f64>,
    /// Block j, row b: K_j(X, x_b), the trainer's layout (one per block of the rule).
    kernel_columns: Vec<Array2<f64>>,
    /// Whether training started from a given f_0 (then predictions need f_0 at the test
    /// points, as before saving).
    initial_function: bool,
    last: SavedFunctionState,
    momentum: Option<SavedFunctionState>,
    running_mean: Option<SavedFunctionState>,
    ema: Option<SavedFunctionState>,
    /// The example order of the last epoch (checked against the seed's replay on restore).
    order: Vec<usize>,
    epochs_done: usize,
    steps_done: u64,
}

impl<R: LimitRule, K: KernelProgram + Clone> FunctionSpaceModel<R, K> {
    /// The model as data, for any serde format (the `serde` feature; module
    /// [`persist`](crate::persist)): everything its trainer holds, so that training resumes
    /// bit for bit. Copies the training inputs and the N×N kernels (one per kernel block).
    /// A model whose training diverged is not saved (its state is not finite): that is
    /// [`Error::Diverged`], as every other call on it.
    pub fn saved(&self) -> Result<SavedFunctionSpaceModel> {
        let t = &self.trainer;
        t.check_usable()?;
        Ok(SavedFunctionSpaceModel {
            format: FORMAT_VERSION,
            architecture: self.net.architecture().into(),
            rule: R::NAME.into(),
            config: t.config.clone(),
            x_train: self.x_train.clone(),
            targets: t.targets.clone(),
            kernel_columns: t.columns.clone(),
            initial_function: t.has_f0,
            last: (&t.last).into(),
            momentum: t.momentum.as_ref().map(Into::into),
            running_mean: t.mean.as_ref().map(Into::into),
            ema: t.ema.as_ref().map(Into::into),
            order: t.order.clone(),
            epochs_done: t.epochs_done,
            steps_done: t.steps_done,
        })
    }
}

impl SavedFunctionSpaceModel {
    /// The declaration the model was trained with.
    pub fn architecture(&self) -> &SavedArchitecture {
        &self.architecture
    }

    /// The update rule's name ([`LimitRule::NAME`]: `ntk_sgd` or `adam_limit`): the `R`
    /// to [`restore`](Self::restore) it as.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The model again, with its kernels from `net`, which must be the saved declaration
    /// ([`Error::ArchitectureMismatch`] otherwise), and the rule `R` it was trained with
    /// (another rule, or a name this build does not know, is [`Error::InvalidSaved`]). The
    /// trainer is the saved one: `fit` continues bit for bit as the saved model would have,
    /// and predictions are the same. Only the shuffling RNG is rebuilt, by replaying its
    /// seeded shuffles (one per completed epoch, O(epochs·N)), and checked against the saved
    /// order. Errors for a saved state that is not consistent (typed, see the
    /// [module docs](crate::persist)).
    pub fn restore<R: LimitRule + Default, K: KernelProgram + Clone>(
        self,
        net: &Network<K>,
    ) -> Result<FunctionSpaceModel<R, K>> {
        const WHAT: &str = "function-space model";
        check_format(WHAT, self.format)?;
        let arch = net.architecture();
        self.architecture.check_matches(arch)?;
        if self.rule != R::NAME {
            let reason = if RULES.contains(&self.rule.as_str()) {
                format!(
                    "it was trained with the rule `{}`, not `{}`: restore it with that rule",
                    self.rule,
                    R::NAME
                )
            } else {
                format!("unknown rule `{}` (one of {})", self.rule, RULES.join(", "))
            };
            return Err(invalid(WHAT, reason));
        }
        let config = self.config;
        config
            .validate()
            .map_err(|e| invalid(WHAT, format!("its configuration: {e}")))?;
        inputs("the saved training inputs", self.x_train.view(), arch)?;
        let n = self.x_train.nrows();
        matrix("the saved targets", self.targets.view(), n)?;
        let c = self.targets.ncols();
        arch.outputs_for(c)?;
        if config.loss == Loss::CrossEntropy && c < 2 {
            return Err(invalid(
                WHAT,
                "cross-entropy with fewer than 2 target columns",
            ));
        }
        let blocks = <R::Kernels as KernelSet>::BLOCKS;
        dim(
            "number of saved kernel blocks",
            blocks.len(),
            self.kernel_columns.len(),
        )?;
        for (k, name) in self.kernel_columns.iter().zip(blocks) {
            let what = format!("the saved {name}");
            matrix(&what, k.view(), n)?;
            dim(&format!("columns of {what}"), n, k.ncols())?;
        }
        let last = self.last.restore("last iterate", blocks.len(), n, c)?;
        let tracked = |name: &str, saved: Option<SavedFunctionState>, configured: bool| match (
            saved, configured,
        ) {
            (Some(s), true) => s.restore(name, blocks.len(), n, c).map(Some),
            (None, false) => Ok(None),
            (Some(_), false) => Err(invalid(
                WHAT,
                format!("a saved {name}, which its configuration does not track"),
            )),
            (None, true) => Err(invalid(
                WHAT,
                format!("no saved {name}, which its configuration tracks"),
            )),
        };
        let momentum = tracked("momentum", self.momentum, config.momentum.is_some())?;
        let mean = tracked("running mean", self.running_mean, config.running_mean)?;
        let ema = tracked("EMA", self.ema, config.ema.is_some())?;
        if self.steps_done < (self.epochs_done as u64).saturating_mul(n as u64) {
            return Err(invalid(
                WHAT,
                format!(
                    "{} steps done, fewer than {} epochs of N = {n}",
                    self.steps_done, self.epochs_done
                ),
            ));
        }
        dim("length of the saved example order", n, self.order.len())?;
        let (order, rng) = replayed_order(n, &config, self.epochs_done);
        if order != self.order {
            return Err(invalid(
                WHAT,
                format!(
                    "the example order is not the one seed {} gives after {} epochs",
                    config.seed, self.epochs_done
                ),
            ));
        }
        let trainer = Trainer {
            rule: R::default(),
            config,
            columns: self.kernel_columns,
            targets: self.targets,
            has_f0: self.initial_function,
            last,
            momentum,
            mean,
            ema,
            chi: vec![0.0; c],
            fb: vec![0.0; c],
            u: vec![0.0; blocks.len() * c],
            order,
            rng,
            epochs_done: self.epochs_done,
            steps_done: self.steps_done,
            failure: None,
        };
        Ok(FunctionSpaceModel {
            net: net.clone(),
            x_train: self.x_train,
            trainer,
        })
    }
}

// ---------------------------------------------------------------------------------------
// MSE ensembles
// ---------------------------------------------------------------------------------------

/// A kept Cholesky factorisation of K + rI and the coefficients (K + rI)⁻¹Y: the t = ∞
/// route of an ensemble.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SavedCholesky {
    coefficients: Array2<f64>,
    cholesky_factor: Array2<f64>,
}

/// A kept eigendecomposition of K + rI and the projected targets Vᵀ Y: the finite-t route
/// of an ensemble.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SavedEigen {
    eigenvalues: Array1<f64>,
    eigenvectors: Array2<f64>,
    projected_residual: Array2<f64>,
    threshold: f64,
}

/// An [`EnsembleModel`] as data ([`EnsembleModel::saved`]): the declaration, the kind, the
/// options, the training inputs and targets, the training kernels (the factorised one, Σ
/// or Θ, and Σ(X, X) beside Θ for the NTK) and whichever factorisations the model has
/// built so far (Cholesky for t = ∞, eigendecomposition for finite t). A factorisation not
/// built yet is built on first use after [`restore`](Self::restore), from the same saved
/// kernel, as the saved model would have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedEnsembleModel {
    format: u32,
    architecture: SavedArchitecture,
    kind: KernelKind,
    options: EnsembleOptions,
    x_train: Array2<f64>,
    targets: Array2<f64>,
    /// Σ(X, X) for the NNGP, Θ(X, X) for the NTK: the kernel the ridge goes on.
    train_kernel: Array2<f64>,
    /// Σ(X, X), for the NTK only.
    nngp_train: Option<Array2<f64>>,
    cholesky: Option<SavedCholesky>,
    eigen: Option<SavedEigen>,
}

impl<K: KernelProgram + Clone> EnsembleModel<K> {
    /// The model as data, for any serde format (the `serde` feature; module
    /// [`persist`](crate::persist)). Copies the training inputs, the N×N training kernels
    /// and the factorisations built so far; saving builds none (a model saved before its
    /// first prediction has none, and the restored model builds them when asked).
    pub fn saved(&self) -> SavedEnsembleModel {
        let (factors, nngp_train) = match &self.inner {
            Inner::Nngp(e) => (&e.factors, None),
            Inner::Ntk(e) => (&e.factors, Some(e.nngp_train.clone())),
        };
        SavedEnsembleModel {
            format: FORMAT_VERSION,
            architecture: self.net.architecture().into(),
            kind: self.kind(),
            options: factors.options,
            x_train: self.x_train.clone(),
            targets: factors.y.clone(),
            train_kernel: factors.k_train.clone(),
            nngp_train,
            cholesky: factors.cholesky.get().map(|c| SavedCholesky {
                coefficients: c.alpha.clone(),
                cholesky_factor: crate::solve::check::from_faer(c.factor.as_ref()),
            }),
            eigen: factors.flow.get().map(|f| SavedEigen {
                eigenvalues: f.eigvals.clone(),
                eigenvectors: f.eigvecs.clone(),
                projected_residual: f.projected.clone(),
                threshold: f.threshold,
            }),
        }
    }
}

/// A saved training kernel: n × n, finite and symmetric (to the solvers' tolerance).
fn train_kernel(model: &str, what: &str, k: ArrayView2<f64>, n: usize) -> Result<()> {
    matrix(what, k, n)?;
    dim(&format!("columns of {what}"), n, k.ncols())?;
    crate::solve::check::symmetric("k", k).map_err(|e| match e {
        Error::InvalidArgument { value, .. } => {
            invalid(model, format!("{what} is not symmetric: {value}"))
        }
        other => other,
    })
}

impl SavedEnsembleModel {
    /// The declaration the model was trained with.
    pub fn architecture(&self) -> &SavedArchitecture {
        &self.architecture
    }

    /// Which ensemble this is.
    pub fn kind(&self) -> KernelKind {
        self.kind
    }

    /// The model again, with its kernels from `net`, which must be the saved declaration
    /// ([`Error::ArchitectureMismatch`] otherwise). The saved factorisations are used as
    /// they are: means and covariances at every time are those of the saved model, bit for
    /// bit. Errors for a saved state that is not consistent (typed, see the
    /// [module docs](crate::persist)).
    pub fn restore<K: KernelProgram + Clone>(self, net: &Network<K>) -> Result<EnsembleModel<K>> {
        const WHAT: &str = "ensemble model";
        check_format(WHAT, self.format)?;
        let arch = net.architecture();
        self.architecture.check_matches(arch)?;
        let options = self.options;
        scalar(WHAT, "learning_rate", options.learning_rate, true)?;
        inputs("the saved training inputs", self.x_train.view(), arch)?;
        let n = self.x_train.nrows();
        matrix("the saved targets", self.targets.view(), n)?;
        let c = self.targets.ncols();
        arch.outputs_for(c)?;
        train_kernel(
            WHAT,
            "the saved training kernel",
            self.train_kernel.view(),
            n,
        )?;
        let ridge = options
            .ridge
            .resolve(self.train_kernel.view())
            .map_err(|e| invalid(WHAT, e.to_string()))?;
        let nngp_train = match (self.kind, self.nngp_train) {
            (KernelKind::Ntk, Some(k)) => {
                train_kernel(WHAT, "the saved NNGP training kernel", k.view(), n)?;
                Some(k)
            }
            (KernelKind::Nngp, None) => None,
            (KernelKind::Ntk, None) => {
                return Err(invalid(
                    WHAT,
                    "an NTK ensemble without its NNGP training kernel Σ(X, X)",
                ))
            }
            (KernelKind::Nngp, Some(_)) => {
                return Err(invalid(
                    WHAT,
                    "an NNGP ensemble with a second training kernel",
                ))
            }
        };
        let cholesky = match self.cholesky {
            Some(s) => {
                matrix("the saved coefficients", s.coefficients.view(), n)?;
                dim(
                    "columns of the saved coefficients",
                    c,
                    s.coefficients.ncols(),
                )?;
                cholesky_factor(WHAT, s.cholesky_factor.view(), n)?;
                OnceLock::from(KernelRegression {
                    factor: crate::solve::check::to_faer(s.cholesky_factor.view()),
                    alpha: s.coefficients,
                    ridge,
                })
            }
            None => OnceLock::new(),
        };
        let flow = match self.eigen {
            Some(s) => {
                scalar(WHAT, "threshold", s.threshold, false)?;
                eigendecomposition(WHAT, &s.eigenvalues, s.eigenvectors.view(), n)?;
                let r = &s.projected_residual;
                matrix("the saved projected residual", r.view(), n)?;
                dim("columns of the saved projected residual", c, r.ncols())?;
                OnceLock::from(GradientFlow {
                    eigvecs: s.eigenvectors,
                    eigvals: s.eigenvalues,
                    projected: s.projected_residual,
                    f0_train: None,
                    learning_rate: options.learning_rate,
                    threshold: s.threshold,
                    ridge,
                })
            }
            None => OnceLock::new(),
        };
        let factors = Factors {
            k_train: self.train_kernel,
            y: self.targets,
            ridge,
            options,
            cholesky,
            flow,
        };
        let inner = match nngp_train {
            None => Inner::Nngp(NngpEnsemble { factors }),
            Some(nngp_train) => Inner::Ntk(NtkEnsemble {
                factors,
                nngp_train,
            }),
        };
        Ok(EnsembleModel {
            net: net.clone(),
            x_train: self.x_train,
            inner,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Finite networks
// ---------------------------------------------------------------------------------------

/// A [`FiniteNetwork`] as data ([`FiniteNetwork::saved`]): the declaration, the width
/// factor, the input dimension, the number of outputs, the parameterization and the
/// parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedFiniteNetwork {
    format: u32,
    architecture: SavedArchitecture,
    width_factor: usize,
    input_dim: usize,
    outputs: usize,
    parameterization: Parameterization,
    params: Params,
}

impl FiniteNetwork {
    /// The network as data, for any serde format (the `serde` feature; module
    /// [`persist`](crate::persist)). Copies the parameters.
    pub fn saved(&self) -> SavedFiniteNetwork {
        SavedFiniteNetwork {
            format: FORMAT_VERSION,
            architecture: (&self.arch).into(),
            width_factor: self.factor,
            input_dim: self.input_dim(),
            outputs: self.outputs(),
            parameterization: self.param,
            params: self.params.clone(),
        }
    }
}

/// Every scalar of `params` finite, else [`Error::NonFinite`] naming the tensor.
fn finite_params(what: &str, params: &Params) -> Result<()> {
    for (k, w) in params.weights.iter().enumerate() {
        finite(&format!("{what}: weight matrix {k}"), w.view())?;
    }
    for (k, b) in params.biases.iter().enumerate() {
        finite(
            &format!("{what}: bias {k}"),
            b.view().insert_axis(ndarray::Axis(1)),
        )?;
    }
    Ok(())
}

impl SavedFiniteNetwork {
    /// The declaration the network was built from.
    pub fn architecture(&self) -> &SavedArchitecture {
        &self.architecture
    }

    /// The network again, its graph rebuilt from the saved declaration: it computes what
    /// the saved one did, bit for bit. [`Error::UnrestorableActivation`] when the
    /// declaration has a user activation (use [`restore_with`](Self::restore_with)); other
    /// typed errors for a saved state that is not consistent.
    pub fn restore(self) -> Result<FiniteNetwork> {
        check_format("finite network", self.format)?;
        let arch = self.architecture.to_architecture()?;
        self.build(&arch)
    }

    /// Like [`restore`](Self::restore), with the declaration given (e.g.
    /// `net.architecture()` of the network declared again): works with user activations,
    /// and is [`Error::ArchitectureMismatch`] when `arch` is not the saved declaration.
    pub fn restore_with(self, arch: &Architecture) -> Result<FiniteNetwork> {
        check_format("finite network", self.format)?;
        self.architecture.check_matches(arch)?;
        self.build(arch)
    }

    fn build(self, arch: &Architecture) -> Result<FiniteNetwork> {
        if self.width_factor == 0 {
            return Err(invalid("finite network", "width_factor = 0"));
        }
        if self.input_dim == 0 {
            return Err(invalid("finite network", "input_dim = 0"));
        }
        finite_params("the saved parameters", &self.params)?;
        FiniteNetwork::from_parts(
            arch,
            self.width_factor,
            self.input_dim,
            self.outputs,
            self.parameterization,
            self.params,
        )
    }
}

/// A [`LinearizedNetwork`] as data ([`LinearizedNetwork::saved`]): the network at θ0, the
/// trained displacement Δ = θ − θ0 and whether it is centred.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedLinearizedNetwork {
    format: u32,
    base: SavedFiniteNetwork,
    displacement: Params,
    centered: bool,
}

impl LinearizedNetwork {
    /// The linearized network as data, for any serde format (the `serde` feature; module
    /// [`persist`](crate::persist)). Copies θ0 and Δ.
    pub fn saved(&self) -> SavedLinearizedNetwork {
        SavedLinearizedNetwork {
            format: FORMAT_VERSION,
            base: self.net0.saved(),
            displacement: self.delta.clone(),
            centered: self.centered,
        }
    }
}

impl SavedLinearizedNetwork {
    /// The declaration the network was built from.
    pub fn architecture(&self) -> &SavedArchitecture {
        &self.base.architecture
    }

    /// The linearized network again (see [`SavedFiniteNetwork::restore`]; the same errors,
    /// and a displacement not shaped like θ0 is [`Error::ShapeMismatch`]).
    pub fn restore(self) -> Result<LinearizedNetwork> {
        check_format("linearized network", self.format)?;
        let base = self.base.restore()?;
        Self::with_base(base, self.displacement, self.centered)
    }

    /// Like [`restore`](Self::restore), with the declaration given (see
    /// [`SavedFiniteNetwork::restore_with`]).
    pub fn restore_with(self, arch: &Architecture) -> Result<LinearizedNetwork> {
        check_format("linearized network", self.format)?;
        let base = self.base.restore_with(arch)?;
        Self::with_base(base, self.displacement, self.centered)
    }

    fn with_base(
        base: FiniteNetwork,
        displacement: Params,
        centered: bool,
    ) -> Result<LinearizedNetwork> {
        base.params
            .check_same_shape(&displacement, "the saved displacement θ − θ0")?;
        finite_params("the saved displacement θ − θ0", &displacement)?;
        Ok(LinearizedNetwork {
            net0: base,
            delta: displacement,
            centered,
        })
    }
}

#[cfg(test)]
mod tests;
