//! The convolutional layers of the grammar (docs/math.md §9): `input(s1[, s2], channels)`,
//! `conv(channels, size, stride, padding, w_std, b_std)`, `global_avg_pool`, `flatten`.
//! Shapes are known here, so an impossible convolution is a compile error at its token.

use super::value::{self, Value};
use super::{nearest, no_args, Lowering, Node, NodeId, SpatialInput, DEFAULT_B_STD, DEFAULT_W_STD};
use crate::syntax::LayerCall;
use infw_layers::conv::{ConvGeometry, Padding, MAX_AXES};
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, Lit};

/// More positions than this would make the per-pair planes (positions²) unreasonable.
pub const MAX_POSITIONS: usize = 1 << 14;

/// neural-tangents' defaults for `conv` (docs/math.md §9).
pub const DEFAULT_SIZE: usize = 3;
pub const DEFAULT_STRIDE: usize = 1;

const CONV_PARAMS: &[&str] = &["channels", "size", "stride", "padding", "w_std", "b_std"];

/// A positive integer literal (a size that shapes the generated code).
fn count(expr: &Expr, what: &str) -> Result<usize, Error> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) if i.suffix().is_empty() || i.suffix() == "usize" => match i.base10_parse::<usize>() {
            Ok(0) | Err(_) => Err(Error::new(
                expr.span(),
                format!("{what} must be at least 1"),
            )),
            Ok(v) => Ok(v),
        },
        _ => Err(Error::new(
            expr.span(),
            format!("{what} must be an integer literal, e.g. `3`: it shapes the generated code"),
        )),
    }
}

/// `input(s1[, s2], channels)`: one or two spatial sizes, then the channels.
pub fn input_args(call: &LayerCall) -> Result<SpatialInput, Error> {
    let usage =
        "`input` takes the spatial sizes, then the channels: `input(40, 1)` or `input(8, 8, 1)`";
    let args = call
        .args
        .as_ref()
        .ok_or_else(|| Error::new(call.name.span(), usage))?;
    if args.list.len() < 2 || args.list.len() > MAX_AXES + 1 {
        return Err(Error::new(args.span, usage));
    }
    let mut values = Vec::with_capacity(args.list.len());
    for arg in &args.list {
        if let Some(key) = &arg.key {
            return Err(Error::new(key.span(), usage));
        }
        values.push(count(&arg.value, "a size")?);
    }
    let channels = values.pop().expect("two or more");
    let positions = values.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
    if positions.is_none_or(|p| p > MAX_POSITIONS) {
        return Err(Error::new(
            args.span,
            format!(
                "more than {MAX_POSITIONS} positions: the per-pair covariance planes would not fit"
            ),
        ));
    }
    Ok(SpatialInput {
        shape: values,
        channels,
    })
}

impl Lowering {
    /// Lowers a convolutional layer; `None` when `call` is not one.
    pub(super) fn spatial_layer(&mut self, call: &LayerCall, input: NodeId) -> Option<NodeId> {
        let name = call.name.to_string();
        let spatial = self.view().is_spatial(input);
        let needs_spatial = |what: &str| {
            Error::new(
                call.name.span(),
                format!("`{what}` needs a spatial input: declare `input(sizes…, channels)` first (e.g. `input(40, 1) conv(64, size = 5)`), and use it before `global_avg_pool` / `flatten`"),
            )
        };
        match name.as_str() {
            "input" => {
                self.errors.push(Error::new(
                    call.name.span(),
                    "`input(…)` declares the input shape: it must be the first layer",
                ));
                Some(input)
            }
            "global_avg_pool" | "flatten" => {
                if let Err(e) = no_args(call) {
                    self.errors.push(e);
                }
                if !spatial {
                    self.errors.push(needs_spatial(&name));
                    return Some(input);
                }
                Some(self.push(if name == "flatten" {
                    Node::Flatten { input }
                } else {
                    Node::GlobalAvgPool { input }
                }))
            }
            "conv" => {
                if !spatial {
                    self.errors.push(needs_spatial("conv"));
                    return Some(input);
                }
                match self.conv_node(call, input) {
                    Ok(node) => Some(self.push(node)),
                    Err(e) => {
                        self.errors.push(e);
                        // A stand-in of the same shape, so that the layers after it are
                        // judged as if it were right (no cascade of errors).
                        Some(self.push(Node::Conv {
                            input,
                            channels: Value::Literal(1),
                            size: 1,
                            stride: 1,
                            padding: Padding::Same,
                            w_std: Value::Literal(DEFAULT_W_STD),
                            b_std: Value::Literal(DEFAULT_B_STD),
                        }))
                    }
                }
            }
            _ => None,
        }
    }

    fn conv_node(&mut self, call: &LayerCall, input: NodeId) -> Result<Node, Error> {
        let missing = || {
            Error::new(
                call.name.span(),
                "`conv` needs its channel count: `conv(64, size = 5)`",
            )
        };
        let args = call.args.as_ref().ok_or_else(missing)?;
        let (mut channels, mut size, mut stride, mut padding) = (None, None, None, None);
        let (mut w_std, mut b_std) = (None, None);
        for (k, arg) in args.list.iter().enumerate() {
            let key = match &arg.key {
                None if k == 0 => {
                    channels = Some(value::width_value(&arg.value, &mut self.exprs)?);
                    continue;
                }
                None => {
                    return Err(Error::new(
                        arg.value.span(),
                        "`conv` takes one positional argument, the channels; name the others: `size = 5`, `stride = 2`, `padding = valid`, `w_std = …`, `b_std = …`",
                    ))
                }
                Some(key) => key,
            };
            let twice = || Error::new(key.span(), format!("`{key}` is given twice"));
            match key.to_string().as_str() {
                "channels" if channels.is_none() => {
                    channels = Some(value::width_value(&arg.value, &mut self.exprs)?)
                }
                "size" if size.is_none() => size = Some(count(&arg.value, "the window size")?),
                "stride" if stride.is_none() => stride = Some(count(&arg.value, "the stride")?),
                "padding" if padding.is_none() => padding = Some(padding_value(&arg.value)?),
                "channels" | "size" | "stride" | "padding" => return Err(twice()),
                "w_std" | "b_std" => self.stds(arg, key, &mut w_std, &mut b_std, CONV_PARAMS)?,
                other => {
                    let hint = nearest(other, CONV_PARAMS)
                        .map(|n| format!("; did you mean `{n}`?"))
                        .unwrap_or_default();
                    return Err(Error::new(
                        key.span(),
                        format!(
                            "unknown parameter `{other}`; expected one of {}{hint}",
                            CONV_PARAMS.join(", ")
                        ),
                    ));
                }
            }
        }
        let channels = channels.ok_or_else(missing)?;
        let (size, stride) = (
            size.unwrap_or(DEFAULT_SIZE),
            stride.unwrap_or(DEFAULT_STRIDE),
        );
        let padding = padding.unwrap_or_default();
        let view = self.view();
        let axes = view.spatial.as_ref().map(|s| s.shape.len()).unwrap_or(1);
        let shape = view.shape(input).ok_or_else(|| {
            Error::new(
                call.name.span(),
                "the shape before this convolution is unknown",
            )
        })?;
        ConvGeometry::new(&shape[..axes], size, stride, padding).map_err(|e| {
            let sizes: Vec<String> = shape[..axes].iter().map(|n| n.to_string()).collect();
            Error::new(
                args.span,
                format!("{e} (the input here has {} positions)", sizes.join(" × ")),
            )
        })?;
        Ok(Node::Conv {
            input,
            channels,
            size,
            stride,
            padding,
            w_std: w_std.unwrap_or(Value::Literal(DEFAULT_W_STD)),
            b_std: b_std.unwrap_or(Value::Literal(DEFAULT_B_STD)),
        })
    }
}

/// `same`, `valid` or `circular`.
fn padding_value(expr: &Expr) -> Result<Padding, Error> {
    const NAMES: &[&str] = &["same", "valid", "circular"];
    let name = match expr {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(|i| i.to_string()),
        _ => None,
    };
    match name.as_deref().and_then(Padding::from_name) {
        Some(p) => Ok(p),
        None => {
            let hint = name
                .as_deref()
                .and_then(|n| nearest(n, NAMES))
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            Err(Error::new(
                expr.span(),
                format!("the padding is `same`, `valid` or `circular`{hint}"),
            ))
        }
    }
}
