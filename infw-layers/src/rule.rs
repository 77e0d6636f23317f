//! What every activation rule provides: its name and parameters in the grammar, its finite
//! forward map and derivative, and (through [`Dual`]) its kernels. One type per rule, one
//! file per rule or family; the registry (`activation.rs`) lists them once.

use crate::dual::Dual;

/// A parameter of an activation in the grammar: `leaky_relu(alpha = 0.1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Param {
    /// The name in the grammar (`alpha`).
    pub name: &'static str,
    /// `None`: the parameter must be given.
    pub default: Option<f64>,
}

/// An elementwise activation φ with its dual kernels.
pub trait Rule: Dual + Copy + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// The name in the `network!` grammar.
    const NAME: &'static str;
    /// Its parameters, in positional order.
    const PARAMS: &'static [Param] = &[];
    /// One line for the layer table: the formula of φ and how its kernels are computed.
    const SUMMARY: &'static str;

    /// Checks parameter values (in [`Rule::PARAMS`] order); the message says what is wrong.
    fn check(_params: &[f64]) -> Result<(), String> {
        Ok(())
    }
    /// The rule for checked parameter values (in [`Rule::PARAMS`] order).
    fn from_params(params: &[f64]) -> Self;
    /// The parameter values, in [`Rule::PARAMS`] order.
    fn params(&self) -> Vec<f64> {
        Vec::new()
    }
    /// φ(u).
    fn forward(&self, u: f64) -> f64;
    /// φ'(u) (at a kink: the convention of the rule's file).
    fn derivative(&self, u: f64) -> f64;
    /// The slopes (φ' on u > 0, on u < 0) of a piecewise-linear φ at these parameter values,
    /// `None` otherwise. The Adam-like limit through a skip connection beside the
    /// activation needs them: its backward sign kernel is then a four-orthant sum, a 2-D
    /// integral for a smooth φ (docs/math.md §8).
    fn slopes(_params: &[f64]) -> Option<(f64, f64)> {
        None
    }
}

/// A user's activation, named by path in a declaration: `act(my_crate::Swish)`.
/// Its kernels are integrated numerically (docs/math.md §6).
///
/// ```
/// #[derive(Clone, Copy, Debug, Default, PartialEq)]
/// struct Cube;
/// impl infw_layers::UserActivation for Cube {
///     fn value(u: f64) -> f64 { u * u * u }
///     fn derivative(u: f64) -> f64 { 3.0 * u * u }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a user activation",
    label = "`act(…)` needs a type implementing `infw::UserActivation`",
    note = "implement `fn value(u: f64) -> f64` and `fn derivative(u: f64) -> f64` for it (derive Clone, Copy, Debug, Default, PartialEq)"
)]
pub trait UserActivation:
    Copy + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static
{
    /// φ(u).
    fn value(u: f64) -> f64;
    /// φ'(u).
    fn derivative(u: f64) -> f64;
}
