//! Hyper-parameter values: a literal, checked and folded at compile time, or a Rust
//! expression, evaluated when the network value is built (and checked then).

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, ExprUnary, Lit, UnOp};

/// The largest standard deviation accepted: its square, folded into the kernels, must
/// stay finite with room for the sums of a recursion.
pub const MAX_STD: f64 = 1e150;
/// The largest width accepted for a `dense` layer.
pub const MAX_WIDTH: u64 = 1 << 32;

/// A literal or an expression of the user's (`sigma`, `2f64.sqrt()`).
#[derive(Clone)]
pub enum Value<T> {
    /// A number written in the declaration, checked at compile time.
    Literal(T),
    /// A Rust expression, evaluated and checked when the network is built.
    Expr {
        /// Index among the declaration's expressions: the field `p{index}` of the program.
        index: usize,
        /// The expression as written.
        expr: Box<Expr>,
    },
}

impl<T: Copy> Value<T> {
    /// The literal, if it is one.
    pub fn literal(&self) -> Option<T> {
        match self {
            Value::Literal(v) => Some(*v),
            Value::Expr { .. } => None,
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Literal(v) => write!(f, "{v:?}"),
            Value::Expr { index, expr } => {
                write!(f, "p{index} = `{}`", expr.to_token_stream())
            }
        }
    }
}

impl<T: PartialEq> PartialEq for Value<T> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Literal(a), Value::Literal(b)) => a == b,
            (Value::Expr { index: a, .. }, Value::Expr { index: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// Numbers the expressions of one declaration as they are found.
#[derive(Default)]
pub struct Expressions {
    /// How many have been numbered so far (the next one gets this index).
    pub count: usize,
}

impl Expressions {
    fn next(&mut self, expr: &Expr) -> (usize, Box<Expr>) {
        self.count += 1;
        (self.count - 1, Box::new(expr.clone()))
    }
}

/// A literal number (optionally negated) with no type suffix other than f64/f32-free
/// integers and floats; `None` when `expr` is not a literal at all.
fn literal_number(expr: &Expr, what: &str) -> Option<Result<f64, Error>> {
    let (negative, lit) = match expr {
        Expr::Lit(ExprLit { lit, .. }) => (false, lit),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match &**expr {
            Expr::Lit(ExprLit { lit, .. }) => (true, lit),
            _ => return None,
        },
        _ => return None,
    };
    let parsed = match lit {
        Lit::Float(f) if f.suffix().is_empty() || f.suffix() == "f64" => f.base10_parse::<f64>(),
        Lit::Int(i) if i.suffix().is_empty() || i.suffix() == "f64" => i.base10_parse::<f64>(),
        Lit::Float(f) => Err(Error::new(
            f.span(),
            format!(
                "{what} is an f64: drop the suffix `{}` and write `{}`",
                f.suffix(),
                f.base10_digits()
            ),
        )),
        Lit::Int(i) => Err(Error::new(
            i.span(),
            format!(
                "{what} is an f64: drop the suffix `{}` and write `{}`",
                i.suffix(),
                i.base10_digits()
            ),
        )),
        _ => Err(Error::new(
            lit.span(),
            format!("{what} must be a number, e.g. `1.5`, or an f64 expression"),
        )),
    };
    Some(parsed.and_then(|v| {
        if v.is_finite() {
            Ok(if negative { -v } else { v })
        } else {
            Err(Error::new(lit.span(), format!("{what} must be finite")))
        }
    }))
}

/// A number that must be a literal (activation parameters).
pub fn number(expr: &Expr, what: &str) -> Result<f64, Error> {
    literal_number(expr, what).unwrap_or_else(|| {
        Err(Error::new(
            expr.span(),
            format!("{what} must be a number literal, e.g. `0.1`"),
        ))
    })
}

/// A standard deviation: a literal in [0, MAX_STD], or an f64 expression.
pub fn std_value(expr: &Expr, key: &str, exprs: &mut Expressions) -> Result<Value<f64>, Error> {
    match literal_number(expr, key) {
        Some(v) => {
            let v = v?;
            if v < 0.0 {
                Err(Error::new(
                    expr.span(),
                    format!("{key} must be ≥ 0 (it is a standard deviation); found {v}"),
                ))
            } else if v > MAX_STD {
                Err(Error::new(
                    expr.span(),
                    format!("{key} = {v:e} is too large: its square σ² is folded into the kernels and must stay finite (at most {MAX_STD:e})"),
                ))
            } else {
                Ok(Value::Literal(v))
            }
        }
        None => {
            let (index, expr) = exprs.next(expr);
            Ok(Value::Expr { index, expr })
        }
    }
}

/// A width: a positive integer literal (no suffix but `usize`), or a usize expression.
pub fn width_value(expr: &Expr, exprs: &mut Expressions) -> Result<Value<usize>, Error> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => {
            if !(i.suffix().is_empty() || i.suffix() == "usize") {
                return Err(Error::new(
                    i.span(),
                    format!(
                        "a width is a usize: drop the suffix `{}` and write `{}`",
                        i.suffix(),
                        i.base10_digits()
                    ),
                ));
            }
            match i.base10_parse::<u64>() {
                Ok(0) => Err(Error::new(expr.span(), "the width must be at least 1")),
                Ok(w) if w > MAX_WIDTH => Err(Error::new(
                    expr.span(),
                    format!("a width of {w} is beyond what a finite network can allocate (at most {MAX_WIDTH})"),
                )),
                Ok(w) => Ok(Value::Literal(w as usize)),
                Err(_) => Err(Error::new(
                    expr.span(),
                    "the width must be a positive integer, e.g. `dense(512)`",
                )),
            }
        }
        Expr::Lit(_) | Expr::Unary(_) => Err(Error::new(
            expr.span(),
            "the width must be a positive integer, e.g. `dense(512)`",
        )),
        _ => {
            let (index, expr) = exprs.next(expr);
            Ok(Value::Expr { index, expr })
        }
    }
}

/// Tokens of a value in generated code: the literal, or the program's field.
pub fn f64_tokens(v: &Value<f64>) -> TokenStream {
    match v {
        Value::Literal(x) => {
            let l = proc_macro2::Literal::f64_unsuffixed(*x);
            quote::quote!(#l)
        }
        Value::Expr { index, .. } => {
            let f = quote::format_ident!("p{}", index);
            quote::quote!(self.#f)
        }
    }
}

/// The span to report a value's problems at.
pub fn span_of<T>(v: &Value<T>) -> Span {
    match v {
        Value::Literal(_) => Span::call_site(),
        Value::Expr { expr, .. } => expr.span(),
    }
}
