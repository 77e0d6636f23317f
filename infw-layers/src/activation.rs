//! The registry: every activation of the grammar, listed once.
//!
//! `activations!` turns the list into the runtime value [`Activation`] (what a declaration
//! holds, dispatched by exhaustive matches: a rule added to the list is handled everywhere
//! or the crate does not compile) and into [`REGISTRY`], the table the compiler parses
//! names and parameters from. Adding an activation: one file in `rules/`, one line below.

use crate::rule::{Param, Rule};
use crate::rules::*;

/// One registry row, as the compiler sees it.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The name in the grammar (`leaky_relu`).
    pub name: &'static str,
    /// The rule's type in `infw_layers::rules` (`LeakyRelu`), named by the generated code.
    pub rust_type: &'static str,
    /// Its parameters in grammar order (`alpha` for `leaky_relu(alpha)`).
    pub params: &'static [Param],
    /// One line for error messages and docs: what the activation computes.
    pub summary: &'static str,
    /// Checks parameter values; the message says what is wrong.
    pub check: fn(&[f64]) -> Result<(), String>,
    /// The slopes of a piecewise-linear rule at parameter values ([`Rule::slopes`]).
    pub slopes: fn(&[f64]) -> Option<(f64, f64)>,
}

/// A user's activation as the runtime sees it (finite networks call φ and φ').
#[derive(Clone, Copy, Debug)]
pub struct UserFunction {
    /// The path as written in the declaration.
    pub name: &'static str,
    /// φ, the type's `UserActivation::value`.
    pub value: fn(f64) -> f64,
    /// φ', the type's `UserActivation::derivative`.
    pub derivative: fn(f64) -> f64,
}

/// Two user functions are the same when they are named by the same path.
impl PartialEq for UserFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

macro_rules! activations {
    ($( $(#[$doc:meta])* $variant:ident ),* $(,)?) => {
        /// An elementwise activation of a declaration, with its parameters.
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum Activation {
            $( $(#[$doc])* $variant($variant), )*
            /// A user's function, `act(path)`: numerical kernels (docs/math.md §6).
            User(UserFunction),
        }

        impl Activation {
            /// φ(u).
            #[inline]
            pub fn forward(&self, u: f64) -> f64 {
                match self {
                    $( Activation::$variant(r) => r.forward(u), )*
                    Activation::User(f) => (f.value)(u),
                }
            }

            /// φ'(u).
            #[inline]
            pub fn derivative(&self, u: f64) -> f64 {
                match self {
                    $( Activation::$variant(r) => r.derivative(u), )*
                    Activation::User(f) => (f.derivative)(u),
                }
            }

            /// The name as written in a declaration, with its parameters.
            pub fn name(&self) -> String {
                let (name, params) = match self {
                    $( Activation::$variant(r) => (<$variant as Rule>::NAME, r.params()), )*
                    Activation::User(f) => return format!("act({})", f.name),
                };
                if params.is_empty() {
                    name.to_string()
                } else {
                    let p: Vec<String> = params.iter().map(|v| v.to_string()).collect();
                    format!("{name}({})", p.join(", "))
                }
            }

            /// The registry name and parameter values (in the rule's order) of a registry
            /// activation; `None` for a user function, which data cannot name.
            pub fn registry_parts(&self) -> Option<(&'static str, Vec<f64>)> {
                match self {
                    $( Activation::$variant(r) => Some((<$variant as Rule>::NAME, r.params())), )*
                    Activation::User(_) => None,
                }
            }

            /// The registry activation `name` with parameter values `params` (every one,
            /// in the rule's order): the inverse of [`registry_parts`](Self::registry_parts).
            /// `Err` says why not: an unknown name, a wrong number of values, or values the
            /// rule rejects.
            pub fn from_registry(name: &str, params: &[f64]) -> Result<Activation, String> {
                $( if name == <$variant as Rule>::NAME {
                    let expected = <$variant as Rule>::PARAMS.len();
                    if params.len() != expected {
                        return Err(format!(
                            "`{name}` takes {expected} parameter(s), {} given",
                            params.len()
                        ));
                    }
                    <$variant as Rule>::check(params)?;
                    return Ok(Activation::$variant(<$variant as Rule>::from_params(params)));
                } )*
                Err(format!("`{name}` is not an activation of the registry"))
            }
        }

        /// Every activation of the grammar, in the order of the layer table.
        pub const REGISTRY: &[Entry] = &[
            $( Entry {
                name: <$variant as Rule>::NAME,
                rust_type: stringify!($variant),
                params: <$variant as Rule>::PARAMS,
                summary: <$variant as Rule>::SUMMARY,
                check: <$variant as Rule>::check,
                slopes: <$variant as Rule>::slopes,
            }, )*
        ];
    };
}

activations! {
    /// relu: max(u, 0).
    Relu,
    /// leaky_relu(α): max(u, 0) + α·min(u, 0).
    LeakyRelu,
    /// abs: |u|.
    Abs,
    /// identity: u.
    Identity,
    /// erf: the error function.
    Erf,
    /// gelu: u·Φ(u), the exact (not tanh-approximated) form.
    Gelu,
    /// sin.
    Sin,
    /// cos.
    Cos,
    /// tanh (numerical kernels, docs/math.md §6).
    Tanh,
    /// softplus: ln(1 + e^u) (numerical kernels).
    Softplus,
    /// silu: u·σ(u) (numerical kernels).
    Silu,
    /// sigmoid: 1/(1 + e^−u) (numerical kernels).
    Sigmoid,
}

/// Shorthands for building declarations by hand.
impl Activation {
    /// relu: max(u, 0).
    pub const RELU: Activation = Activation::Relu(Relu);
    /// abs: |u|.
    pub const ABS: Activation = Activation::Abs(Abs);
    /// identity: u (a linear layer).
    pub const IDENTITY: Activation = Activation::Identity(Identity);
    /// erf: the error function.
    pub const ERF: Activation = Activation::Erf(Erf);

    /// leaky_relu(α).
    pub const fn leaky_relu(alpha: f64) -> Activation {
        Activation::LeakyRelu(LeakyRelu { alpha })
    }
}

/// The registry row of a grammar name.
pub fn lookup(name: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_dispatch_reaches_each_rule() {
        for (i, e) in REGISTRY.iter().enumerate() {
            assert!(
                REGISTRY[i + 1..].iter().all(|o| o.name != e.name),
                "{}",
                e.name
            );
        }
        let leaky = Activation::LeakyRelu(LeakyRelu { alpha: 0.25 });
        assert_eq!(leaky.forward(-2.0), -0.5);
        assert_eq!(leaky.name(), "leaky_relu(0.25)");
        assert_eq!(Activation::Erf(Erf).forward(0.0), 0.0);
    }

    #[test]
    fn every_registry_activation_is_rebuilt_from_its_name_and_parameters() {
        for e in REGISTRY {
            let params: Vec<f64> = e.params.iter().map(|p| p.default.unwrap_or(0.25)).collect();
            let a = Activation::from_registry(e.name, &params).unwrap();
            let (name, back) = a.registry_parts().unwrap();
            assert_eq!((name, back.as_slice()), (e.name, params.as_slice()));
            assert_eq!(Activation::from_registry(name, &back), Ok(a));
        }
        assert!(Activation::from_registry("leaky_relu", &[]).is_err());
        assert!(Activation::from_registry("leaky_relu", &[f64::NAN]).is_err());
        assert!(Activation::from_registry("swish", &[]).is_err());
        let user = Activation::User(UserFunction {
            name: "my::Cube",
            value: |u| u * u * u,
            derivative: |u| 3.0 * u * u,
        });
        assert_eq!(user.registry_parts(), None);
    }
}
