//! Stage 2, IR: the validated, normalised architecture (SPEC §2).
//!
//! `lower` turns layer calls into hidden blocks (a `dense` with its activation; identity
//! when two `dense` follow each other) and a readout (the final `dense`, an explicit
//! `readout(..)`, or the implied one). Every mistake becomes a `syn::Error` at the
//! offending token; all of them are reported together.

mod suggest;

use crate::syntax::{Arg, LayerCall};
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, ExprUnary, Lit, UnOp};

pub use suggest::nearest;

/// An elementwise activation with a closed-form kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    /// max(u,0) + α·min(u,0).
    LeakyRelu(f64),
    Abs,
    Erf,
}

/// `dense(width, w_std, b_std)` followed by its activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hidden {
    pub width: usize,
    pub w_std: f64,
    pub b_std: f64,
    pub activation: Activation,
}

/// The final dense layer; `outputs: None` is the implied readout (as many outputs as the
/// targets have columns).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Readout {
    pub outputs: Option<usize>,
    pub w_std: f64,
    pub b_std: f64,
}

/// A validated architecture.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub hidden: Vec<Hidden>,
    pub readout: Readout,
}

/// neural-tangents' defaults (SPEC §2).
pub const DEFAULT_W_STD: f64 = 1.0;
pub const DEFAULT_B_STD: f64 = 0.0;

/// Layer names the grammar accepts.
pub const LAYERS: &[&str] = &[
    "dense",
    "relu",
    "erf",
    "identity",
    "leaky_relu",
    "abs",
    "readout",
];
/// Layers of the neural-tangents vocabulary that infw does not compile yet.
const PLANNED: &[(&str, &str)] = &[
    (
        "gelu",
        "its kernel needs numerical integration (SPEC §6), which is not implemented yet",
    ),
    ("sin", "its closed form is not implemented yet"),
    (
        "tanh",
        "its kernel needs numerical integration (SPEC §6), which is not implemented yet",
    ),
    (
        "softplus",
        "its kernel needs numerical integration (SPEC §6), which is not implemented yet",
    ),
    ("layer_norm", "layer_norm is not implemented yet"),
    ("residual", "residual blocks are not implemented yet"),
];

struct Dense {
    width: usize,
    w_std: f64,
    b_std: f64,
}

impl Dense {
    /// This dense layer followed by `activation`.
    fn then(self, activation: Activation) -> Hidden {
        Hidden {
            width: self.width,
            w_std: self.w_std,
            b_std: self.b_std,
            activation,
        }
    }
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

/// Validates and normalises the parsed layers.
pub fn lower(layers: &[LayerCall]) -> Result<Network, Error> {
    let mut errors = Errors::default();
    if layers.is_empty() {
        return Err(Error::new(
            Span::call_site(),
            "an empty network: declare at least one layer, e.g. `network!{ dense(512) relu }`",
        ));
    }
    let mut hidden = Vec::new();
    let mut pending: Option<Dense> = None;
    let mut readout: Option<Readout> = None;
    let mut previous_was_activation = false;
    for (i, call) in layers.iter().enumerate() {
        let name = call.name.to_string();
        if readout.is_some() {
            errors.push(Error::new(
                call.name.span(),
                "nothing may follow `readout(..)`: it is the last layer",
            ));
            continue;
        }
        let activation = match name.as_str() {
            "dense" => {
                if let Some(d) = pending.take() {
                    hidden.push(d.then(Activation::Identity));
                }
                match lower_dense(call) {
                    Ok(d) => pending = Some(d),
                    Err(e) => {
                        errors.push(e);
                        pending = Some(Dense {
                            width: 1,
                            w_std: DEFAULT_W_STD,
                            b_std: DEFAULT_B_STD,
                        });
                    }
                }
                previous_was_activation = false;
                continue;
            }
            "readout" => {
                if let Some(d) = pending.take() {
                    hidden.push(d.then(Activation::Identity));
                }
                match lower_readout(call) {
                    Ok(r) => readout = Some(r),
                    Err(e) => {
                        errors.push(e);
                        readout = Some(Readout {
                            outputs: None,
                            w_std: DEFAULT_W_STD,
                            b_std: DEFAULT_B_STD,
                        });
                    }
                }
                continue;
            }
            "relu" | "erf" | "identity" | "abs" => no_args(call).map(|_| match name.as_str() {
                "relu" => Activation::Relu,
                "erf" => Activation::Erf,
                "identity" => Activation::Identity,
                _ => Activation::Abs,
            }),
            "leaky_relu" => lower_leaky(call),
            other => Err(unknown_layer(call, other)),
        };
        match (activation, pending.take()) {
            (Ok(activation), Some(d)) => {
                hidden.push(d.then(activation));
            }
            (Err(e), _) => errors.push(e),
            (Ok(_), None) => errors.push(Error::new(
                call.name.span(),
                if i == 0 {
                    format!("`{name}` needs a dense layer before it: the input is not Gaussian; write `dense(width) {name}`")
                } else if previous_was_activation {
                    format!("two activations in a row: insert a `dense(width)` before `{name}`")
                } else {
                    format!("`{name}` must follow a dense layer")
                },
            )),
        }
        previous_was_activation = true;
    }
    if let Some(e) = errors.0 {
        return Err(e);
    }
    let readout = match (readout, pending) {
        (Some(r), _) => r,
        (None, Some(d)) => Readout {
            outputs: Some(d.width),
            w_std: d.w_std,
            b_std: d.b_std,
        },
        (None, None) => Readout {
            outputs: None,
            w_std: DEFAULT_W_STD,
            b_std: DEFAULT_B_STD,
        },
    };
    Ok(Network { hidden, readout })
}

fn unknown_layer(call: &LayerCall, name: &str) -> Error {
    if let Some((_, why)) = PLANNED.iter().find(|(n, _)| *n == name) {
        return Error::new(
            call.name.span(),
            format!("`{name}` is not supported yet: {why}"),
        );
    }
    let mut msg = format!("unknown layer `{name}`");
    if let Some(best) = nearest(name, LAYERS) {
        msg.push_str(&format!("; did you mean `{best}`?"));
    } else {
        msg.push_str(&format!("; the layers are {}", LAYERS.join(", ")));
    }
    Error::new(call.name.span(), msg)
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

/// Reads a number literal (optionally negated); anything else is an error at its span.
fn number(expr: &Expr, what: &str) -> Result<f64, Error> {
    let (negative, lit) = match expr {
        Expr::Lit(ExprLit { lit, .. }) => (false, lit),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match &**expr {
            Expr::Lit(ExprLit { lit, .. }) => (true, lit),
            _ => {
                return Err(Error::new(
                    expr.span(),
                    format!("{what} must be a number literal"),
                ))
            }
        },
        _ => {
            return Err(Error::new(
                expr.span(),
                format!("{what} must be a number literal, e.g. `1.5`"),
            ))
        }
    };
    let value = match lit {
        Lit::Float(f) => f.base10_parse::<f64>()?,
        Lit::Int(i) => i.base10_parse::<f64>()?,
        _ => {
            return Err(Error::new(
                lit.span(),
                format!("{what} must be a number literal, e.g. `1.5`"),
            ))
        }
    };
    if !value.is_finite() {
        return Err(Error::new(lit.span(), format!("{what} must be finite")));
    }
    Ok(if negative { -value } else { value })
}

fn std_value(arg: &Arg, key: &str) -> Result<f64, Error> {
    let v = number(&arg.value, key)?;
    if v < 0.0 {
        return Err(Error::new(
            arg.value.span(),
            format!("{key} must be ≥ 0 (it is a standard deviation); found {v}"),
        ));
    }
    Ok(v)
}

fn width_value(expr: &Expr) -> Result<usize, Error> {
    let bad = || {
        Error::new(
            expr.span(),
            "the width must be a positive integer, e.g. `dense(512)`",
        )
    };
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => match i.base10_parse::<usize>() {
            Ok(0) => Err(Error::new(expr.span(), "the width must be at least 1")),
            Ok(w) => Ok(w),
            Err(_) => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// Named `w_std` / `b_std` arguments shared by `dense` and `readout`.
fn stds(
    arg: &Arg,
    key: &syn::Ident,
    w_std: &mut Option<f64>,
    b_std: &mut Option<f64>,
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
    *slot = Some(std_value(arg, &key.to_string())?);
    Ok(())
}

fn lower_dense(call: &LayerCall) -> Result<Dense, Error> {
    let missing = || Error::new(call.name.span(), "`dense` needs a width: `dense(512)`");
    let args = call.args.as_ref().ok_or_else(missing)?;
    let (mut width, mut w_std, mut b_std) = (None, None, None);
    for (k, arg) in args.list.iter().enumerate() {
        match &arg.key {
            None if k == 0 => width = Some(width_value(&arg.value)?),
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
                width = Some(width_value(&arg.value)?);
            }
            Some(key) => stds(arg, key, &mut w_std, &mut b_std, &["width", "w_std", "b_std"])?,
        }
    }
    let width =
        width.ok_or_else(|| Error::new(args.span, "`dense` needs a width: `dense(512)`"))?;
    Ok(Dense {
        width,
        w_std: w_std.unwrap_or(DEFAULT_W_STD),
        b_std: b_std.unwrap_or(DEFAULT_B_STD),
    })
}

fn lower_readout(call: &LayerCall) -> Result<Readout, Error> {
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
            Some(key) => stds(arg, key, &mut w_std, &mut b_std, &["w_std", "b_std"])?,
        }
    }
    Ok(Readout {
        outputs: None,
        w_std: w_std.unwrap_or(DEFAULT_W_STD),
        b_std: b_std.unwrap_or(DEFAULT_B_STD),
    })
}

fn lower_leaky(call: &LayerCall) -> Result<Activation, Error> {
    let missing = || {
        Error::new(
            call.name.span(),
            "`leaky_relu` needs its negative slope: `leaky_relu(0.1)`",
        )
    };
    let args = call.args.as_ref().ok_or_else(missing)?;
    match args.list.as_slice() {
        [arg] => {
            if let Some(key) = &arg.key {
                if key != "alpha" {
                    let hint = nearest(&key.to_string(), &["alpha"])
                        .map(|n| format!("; did you mean `{n}`?"))
                        .unwrap_or_default();
                    return Err(Error::new(
                        key.span(),
                        format!("unknown parameter `{key}`; expected `alpha`{hint}"),
                    ));
                }
            }
            Ok(Activation::LeakyRelu(number(&arg.value, "the slope α")?))
        }
        [] => Err(Error::new(
            args.span,
            "`leaky_relu` needs its negative slope: `leaky_relu(0.1)`",
        )),
        [_, extra, ..] => Err(Error::new(
            extra.value.span(),
            "`leaky_relu` takes one argument, the negative slope",
        )),
    }
}

#[cfg(test)]
mod tests;
