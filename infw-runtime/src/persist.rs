//! Save and load (the `serde` feature): trained kernel models and finite networks as plain
//! data, written and read by any serde format.
//!
//! | what | save | load |
//! |---|---|---|
//! | [`KernelModel`] (NNGP/NTK regression) | [`KernelModel::saved`] → [`SavedKernelModel`] | [`SavedKernelModel::restore`]`(&net)` |
//! | [`FlowModel`] (NTK gradient flow) | [`FlowModel::saved`] → [`SavedFlowModel`] | [`SavedFlowModel::restore`]`(&net)` |
//! | [`FalkonModel`] (regression at scale) | [`FalkonModel::saved`] → [`SavedFalkonModel`] | [`SavedFalkonModel::restore`]`(&net)` |
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
//! Not saved: the Gram tiling parameters (those of the given network are used; they do not
//! change results), and [`FunctionSpaceModel`](crate::FunctionSpaceModel) and
//! [`EnsembleModel`](crate::solve::EnsembleModel), whose trainers are not covered yet.
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

use crate::arch::{Padding, SpatialInput};
use crate::finite::{FiniteNetwork, LinearizedNetwork, Model, Parameterization, Params};
use crate::solve::{Falkon, FalkonReport, GradientFlow, KernelRegression};
use crate::validate::{check_matrix, finite};
use crate::{
    Activation, Architecture, Error, FalkonModel, FlowModel, KernelKind, KernelModel,
    KernelProgram, Network, Node, Readout, Result,
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
/// positive pivots.
fn cholesky_factor(l: ArrayView2<f64>, n: usize) -> Result<()> {
    const WHAT: &str = "the saved Cholesky factor";
    dim(&format!("rows of {WHAT}"), n, l.nrows())?;
    dim(&format!("columns of {WHAT}"), n, l.ncols())?;
    finite(WHAT, l)?;
    for i in 0..n {
        if l[[i, i]] <= 0.0 {
            return Err(invalid(
                "kernel model",
                format!(
                    "pivot {i} of the Cholesky factor is {}, not positive",
                    l[[i, i]]
                ),
            ));
        }
        if let Some(j) = (i + 1..n).find(|&j| l[[i, j]] != 0.0) {
            return Err(invalid(
                "kernel model",
                format!(
                    "the Cholesky factor is not lower triangular: entry ({i}, {j}) = {}",
                    l[[i, j]]
                ),
            ));
        }
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
        cholesky_factor(self.cholesky_factor.view(), n)?;
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
        matrix("the saved eigenvectors", self.eigenvectors.view(), n)?;
        dim(
            "columns of the saved eigenvectors",
            n,
            self.eigenvectors.ncols(),
        )?;
        dim("length of the saved eigenvalues", n, self.eigenvalues.len())?;
        finite(
            "the saved eigenvalues",
            self.eigenvalues.view().insert_axis(ndarray::Axis(1)),
        )?;
        if let Some((i, l)) = self.eigenvalues.iter().enumerate().find(|(_, &l)| l < 0.0) {
            return Err(invalid(WHAT, format!("eigenvalue {i} is {l}, negative")));
        }
        if let Some(i) = (1..n).find(|&i| self.eigenvalues[i] < self.eigenvalues[i - 1]) {
            return Err(invalid(
                WHAT,
                format!("the eigenvalues are not non-decreasing at {i}"),
            ));
        }
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
