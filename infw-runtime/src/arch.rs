//! The runtime description of a declared architecture (SPEC §2), emitted by `network!` as a
//! constant. The kernels never read it (they are compiled); finite networks and reports do.

/// An elementwise nonlinearity of the grammar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    /// `max(x, 0) + α·min(x, 0)`.
    LeakyRelu(f64),
    Abs,
    Erf,
}

impl Activation {
    /// φ(x), from the layer rule's own file (`dual/`), which also holds its kernels.
    #[inline]
    pub fn apply(self, x: f64) -> f64 {
        match self.rule() {
            Ok(pl) => pl.forward(x),
            Err(erf) => erf.forward(x),
        }
    }

    /// φ'(x), from the layer rule's own file. At the kink of a piecewise-linear φ the
    /// derivative is taken as 0 (as JAX does for relu), except for identity.
    #[inline]
    pub fn derivative(self, x: f64) -> f64 {
        match self.rule() {
            Ok(pl) => pl.derivative(x),
            Err(erf) => erf.derivative(x),
        }
    }

    /// The dual-activation rule that implements this activation.
    #[inline]
    fn rule(self) -> std::result::Result<crate::dual::PiecewiseLinear, crate::dual::Erf> {
        use crate::dual::{Erf, PiecewiseLinear};
        match self {
            Activation::Identity => Ok(PiecewiseLinear::IDENTITY),
            Activation::Relu => Ok(PiecewiseLinear::RELU),
            Activation::LeakyRelu(a) => Ok(PiecewiseLinear::leaky(a)),
            Activation::Abs => Ok(PiecewiseLinear::ABS),
            Activation::Erf => Err(Erf),
        }
    }

    /// The name used in the `network!` grammar.
    pub fn name(self) -> String {
        match self {
            Activation::Identity => "identity".into(),
            Activation::Relu => "relu".into(),
            Activation::LeakyRelu(a) => format!("leaky_relu({a})"),
            Activation::Abs => "abs".into(),
            Activation::Erf => "erf".into(),
        }
    }
}

/// A hidden block: `dense(width, w_std, b_std)` followed by an activation
/// (identity when two `dense` layers follow each other).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hidden {
    pub width: usize,
    pub w_std: f64,
    pub b_std: f64,
    pub activation: Activation,
}

/// The last dense layer. `outputs: None` means the implied readout: as many outputs as the
/// targets have columns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Readout {
    pub outputs: Option<usize>,
    pub w_std: f64,
    pub b_std: f64,
}

/// A normalised architecture: hidden blocks, then the readout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Architecture {
    pub hidden: &'static [Hidden],
    pub readout: Readout,
}

impl Architecture {
    /// The number of outputs for targets with `target_columns` columns; an error when the
    /// declaration fixed another number.
    pub fn outputs_for(&self, target_columns: usize) -> crate::Result<usize> {
        match self.readout.outputs {
            None => Ok(target_columns),
            Some(c) if c == target_columns => Ok(c),
            Some(c) => Err(crate::Error::Architecture(format!(
                "the declaration ends in dense({c}) but the targets have {target_columns} columns; \
                 drop the final dense to get an implied readout sized to the targets"
            ))),
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for h in self.hidden {
            write!(
                f,
                "dense({}, w_std = {}, b_std = {}) {} ",
                h.width,
                h.w_std,
                h.b_std,
                h.activation.name()
            )?;
        }
        match self.readout.outputs {
            Some(c) => write!(
                f,
                "dense({c}, w_std = {}, b_std = {})",
                self.readout.w_std, self.readout.b_std
            ),
            None => write!(
                f,
                "readout(w_std = {}, b_std = {})",
                self.readout.w_std, self.readout.b_std
            ),
        }
    }
}
