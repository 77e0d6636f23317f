//! Closed-form dual activations (SPEC §3, §4): one file per layer rule.
pub mod erf;
