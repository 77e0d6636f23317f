//! Optimizers on [`Params`] with per-tensor learning-rate multipliers: SGD with momentum,
//! Adam, and sign descent (Adam's β1 = β2 = 0, ε → 0 limit; docs/math.md §4).

use ndarray::Zip;

use super::network::sign;
use super::params::{Params, TensorRates};
use crate::{Error, Result};

/// One parameter update from a gradient.
pub trait Optimizer {
    /// θ ← update(θ, g). Errors on shape mismatch (state is sized on the first step).
    fn step(&mut self, params: &mut Params, grad: &Params) -> Result<()>;

    /// The base learning rate (before per-tensor multipliers), for the epoch records.
    fn learning_rate(&self) -> f64;
}

fn check_lr(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name,
            value: v.to_string(),
            reason: "must be finite and ≥ 0".into(),
        })
    }
}

/// The multiplier of tensor `k` (weights first when `weight`), 1 when no rates were set.
fn rate(rates: &Option<TensorRates>, weight: bool, k: usize) -> f64 {
    match rates {
        None => 1.0,
        Some(r) if weight => r.weights[k],
        Some(r) => r.biases[k],
    }
}

fn check_state(
    state: &mut Option<Params>,
    rates: &Option<TensorRates>,
    params: &Params,
    grad: &Params,
) -> Result<()> {
    params.check_same_shape(grad, "gradient vs parameters")?;
    if let Some(r) = rates {
        r.check(params)?;
    }
    match state {
        Some(s) if s.same_shape(params) => {}
        _ => *state = Some(params.zeros_like()),
    }
    Ok(())
}

/// Heavy-ball SGD: v ← μ v + g, θ ← θ − η·r_p·v (r_p the tensor's multiplier).
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Learning rate η ≥ 0 (finite).
    pub learning_rate: f64,
    /// Momentum μ (0: plain SGD).
    pub momentum: f64,
    /// Per-tensor multipliers r_p (`None`: all 1).
    pub rates: Option<TensorRates>,
    velocity: Option<Params>,
}

impl Sgd {
    /// SGD with multipliers 1 on every tensor.
    pub fn new(learning_rate: f64, momentum: f64) -> Result<Self> {
        check_lr("learning_rate", learning_rate)?;
        if !(0.0..1.0).contains(&momentum) {
            return Err(Error::InvalidArgument {
                name: "momentum",
                value: momentum.to_string(),
                reason: "must lie in [0, 1)".into(),
            });
        }
        Ok(Sgd {
            learning_rate,
            momentum,
            rates: None,
            velocity: None,
        })
    }

    /// Per-tensor learning-rate multipliers.
    pub fn with_rates(mut self, rates: TensorRates) -> Self {
        self.rates = Some(rates);
        self
    }
}

impl Optimizer for Sgd {
    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    fn step(&mut self, params: &mut Params, grad: &Params) -> Result<()> {
        check_state(&mut self.velocity, &self.rates, params, grad)?;
        let Some(v) = self.velocity.as_mut() else {
            return Ok(());
        };
        let mu = self.momentum;
        for (k, ((w, g), v)) in params
            .weights
            .iter_mut()
            .zip(&grad.weights)
            .zip(&mut v.weights)
            .enumerate()
        {
            let eta = self.learning_rate * rate(&self.rates, true, k);
            Zip::from(w).and(g).and(v).for_each(|w, &g, v| {
                *v = mu * *v + g;
                *w -= eta * *v;
            });
        }
        for (k, ((b, g), v)) in params
            .biases
            .iter_mut()
            .zip(&grad.biases)
            .zip(&mut v.biases)
            .enumerate()
        {
            let eta = self.learning_rate * rate(&self.rates, false, k);
            Zip::from(b).and(g).and(v).for_each(|b, &g, v| {
                *v = mu * *v + g;
                *b -= eta * *v;
            });
        }
        Ok(())
    }
}

/// Adam with bias correction: m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g²,
/// θ ← θ − η·r_p · m̂/(√v̂ + ε). The ratio is defined as 0 when its denominator is 0, so
/// β1 = β2 = 0, ε = 0 is exactly sign descent (g/|g|, 0 at g = 0), as docs/math.md §4 needs.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Learning rate η ≥ 0 (finite).
    pub learning_rate: f64,
    /// Decay β1 of the first-moment average.
    pub beta1: f64,
    /// Decay β2 of the second-moment average.
    pub beta2: f64,
    /// ε added to √v̂.
    pub eps: f64,
    /// Per-tensor multipliers r_p (`None`: all 1).
    pub rates: Option<TensorRates>,
    m: Option<Params>,
    v: Option<Params>,
    t: i32,
}

impl Adam {
    /// Adam with multipliers 1 on every tensor.
    pub fn new(learning_rate: f64, beta1: f64, beta2: f64, eps: f64) -> Result<Self> {
        check_lr("learning_rate", learning_rate)?;
        check_lr("eps", eps)?;
        for (name, b) in [("beta1", beta1), ("beta2", beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::InvalidArgument {
                    name,
                    value: b.to_string(),
                    reason: "must lie in [0, 1)".into(),
                });
            }
        }
        Ok(Adam {
            learning_rate,
            beta1,
            beta2,
            eps,
            rates: None,
            m: None,
            v: None,
            t: 0,
        })
    }

    /// Per-tensor learning-rate multipliers.
    pub fn with_rates(mut self, rates: TensorRates) -> Self {
        self.rates = Some(rates);
        self
    }
}

impl Optimizer for Adam {
    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    fn step(&mut self, params: &mut Params, grad: &Params) -> Result<()> {
        check_state(&mut self.m, &self.rates, params, grad)?;
        check_state(&mut self.v, &self.rates, params, grad)?;
        let (Some(m), Some(v)) = (self.m.as_mut(), self.v.as_mut()) else {
            return Ok(());
        };
        self.t = self.t.saturating_add(1);
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        let update = move |p: &mut f64, g: f64, m: &mut f64, v: &mut f64, eta: f64| {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * (g * g);
            let denom = (*v / c2).sqrt() + eps;
            let ratio = if denom == 0.0 { 0.0 } else { (*m / c1) / denom };
            *p -= eta * ratio;
        };
        for (k, (((w, g), m), v)) in params
            .weights
            .iter_mut()
            .zip(&grad.weights)
            .zip(&mut m.weights)
            .zip(&mut v.weights)
            .enumerate()
        {
            let eta = self.learning_rate * rate(&self.rates, true, k);
            Zip::from(w)
                .and(g)
                .and(m)
                .and(v)
                .for_each(|p, &g, m, v| update(p, g, m, v, eta));
        }
        for (k, (((b, g), m), v)) in params
            .biases
            .iter_mut()
            .zip(&grad.biases)
            .zip(&mut m.biases)
            .zip(&mut v.biases)
            .enumerate()
        {
            let eta = self.learning_rate * rate(&self.rates, false, k);
            Zip::from(b)
                .and(g)
                .and(m)
                .and(v)
                .for_each(|p, &g, m, v| update(p, g, m, v, eta));
        }
        Ok(())
    }
}

/// Sign descent θ ← θ − η·r_p·sign(g), sign(0) = 0 (docs/math.md §4). With
/// [`TensorRates::sign_limit`] it is the optimizer whose wide limit is the Adam limit.
#[derive(Clone, Debug)]
pub struct SignDescent {
    /// Learning rate η ≥ 0 (finite).
    pub learning_rate: f64,
    /// Per-tensor multipliers r_p (`None`: all 1).
    pub rates: Option<TensorRates>,
}

impl SignDescent {
    /// Sign descent with multipliers 1 on every tensor.
    pub fn new(learning_rate: f64) -> Result<Self> {
        check_lr("learning_rate", learning_rate)?;
        Ok(SignDescent {
            learning_rate,
            rates: None,
        })
    }

    /// Sign descent with docs/math.md §4's per-tensor rates for parameters shaped like `params`.
    pub fn sign_limit(learning_rate: f64, params: &Params) -> Result<Self> {
        Ok(SignDescent::new(learning_rate)?.with_rates(TensorRates::sign_limit(params)))
    }

    /// Per-tensor learning-rate multipliers.
    pub fn with_rates(mut self, rates: TensorRates) -> Self {
        self.rates = Some(rates);
        self
    }
}

impl Optimizer for SignDescent {
    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    fn step(&mut self, params: &mut Params, grad: &Params) -> Result<()> {
        params.check_same_shape(grad, "gradient vs parameters")?;
        if let Some(r) = &self.rates {
            r.check(params)?;
        }
        for (k, (w, g)) in params.weights.iter_mut().zip(&grad.weights).enumerate() {
            let eta = self.learning_rate * rate(&self.rates, true, k);
            Zip::from(w).and(g).for_each(|p, &g| *p -= eta * sign(g));
        }
        for (k, (b, g)) in params.biases.iter_mut().zip(&grad.biases).enumerate() {
            let eta = self.learning_rate * rate(&self.rates, false, k);
            Zip::from(b).and(g).for_each(|p, &g| *p -= eta * sign(g));
        }
        Ok(())
    }
}
