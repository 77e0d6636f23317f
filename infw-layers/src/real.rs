//! The number type of the per-pair pass: `f64`, or [`F64x4`], four pairs at once.
//!
//! The per-pair code is written once, generic over [`Real`]; run on `F64x4` it evaluates
//! four training points against one point with no data-dependent branch (branches are
//! selects), which the compiler turns into vector instructions. Constants stay on the
//! right of an operator (`x * 2.0`), so the generated code reads the same for both types.

use std::ops::{Add, Div, Mul, Neg, Sub};

/// A scalar or a bundle of lanes, with the operations the dual kernels need.
pub trait Real:
    Copy
    + Send
    + Sync
    + Default
    + std::fmt::Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Add<f64, Output = Self>
    + Sub<f64, Output = Self>
    + Mul<f64, Output = Self>
    + Div<f64, Output = Self>
{
    /// Per-lane booleans.
    type Mask: Copy;
    /// `v` in every lane.
    fn splat(v: f64) -> Self;
    /// √x per lane.
    fn sqrt(self) -> Self;
    /// |x| per lane.
    fn abs(self) -> Self;
    /// Clipped to [−1, 1].
    fn clamp_unit(self) -> Self;
    /// max(x, v) per lane.
    fn max_f(self, v: f64) -> Self;
    /// x > v per lane.
    fn gt(self, v: f64) -> Self::Mask;
    /// x < v per lane.
    fn lt(self, v: f64) -> Self::Mask;
    /// Whether each lane is finite (not NaN, not ±∞).
    fn finite(self) -> Self::Mask;
    /// `a` where the mask is set, `b` elsewhere.
    fn select(m: Self::Mask, a: Self, b: Self) -> Self;
    /// The value with the low 32 bits of its mantissa cleared (fdlibm's split of √z).
    fn high_word(self) -> Self;
    /// Whether every lane is bitwise-equal (used only to carry exact parallelism).
    fn all_eq(self, other: Self) -> bool;
    /// +1, −1 or 0 per lane, as the sign of the value.
    fn signum0(self) -> Self;
    /// The number of lanes (1 for `f64`, 4 for [`F64x4`]).
    const LANES: usize;
    /// Lane `k` as a scalar: numerical rules run their scalar code once per lane.
    fn lane(self, k: usize) -> f64;
    /// The value whose lane `k` is `f(k)`.
    fn from_lanes(f: impl FnMut(usize) -> f64) -> Self;
}

impl Real for f64 {
    type Mask = bool;
    #[inline(always)]
    fn splat(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn clamp_unit(self) -> Self {
        self.clamp(-1.0, 1.0)
    }
    #[inline(always)]
    fn max_f(self, v: f64) -> Self {
        self.max(v)
    }
    #[inline(always)]
    fn gt(self, v: f64) -> bool {
        self > v
    }
    #[inline(always)]
    fn lt(self, v: f64) -> bool {
        self < v
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.is_finite()
    }
    #[inline(always)]
    fn select(m: bool, a: Self, b: Self) -> Self {
        if m {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn high_word(self) -> Self {
        f64::from_bits(self.to_bits() & 0xffff_ffff_0000_0000)
    }
    #[inline(always)]
    fn all_eq(self, other: Self) -> bool {
        self == other
    }
    #[inline(always)]
    fn signum0(self) -> Self {
        if self > 0.0 {
            1.0
        } else if self < 0.0 {
            -1.0
        } else {
            0.0
        }
    }
    const LANES: usize = 1;
    #[inline(always)]
    fn lane(self, _k: usize) -> f64 {
        self
    }
    #[inline(always)]
    fn from_lanes(mut f: impl FnMut(usize) -> f64) -> Self {
        f(0)
    }
}

/// sign with sign(0) = 0 (docs/math.md §4); `f64::signum` would give ±1 at ±0.
#[inline(always)]
pub fn sign0(x: f64) -> f64 {
    <f64 as Real>::signum0(x)
}

macro_rules! lanewise {
    ($F:ident; $($tr:ident $f:ident $op:tt),*) => {$(
        impl $tr for $F {
            type Output = $F;
            #[inline(always)]
            fn $f(self, o: $F) -> $F {
                $F(std::array::from_fn(|k| self.0[k] $op o.0[k]))
            }
        }
        impl $tr<f64> for $F {
            type Output = $F;
            #[inline(always)]
            fn $f(self, o: f64) -> $F {
                $F(std::array::from_fn(|k| self.0[k] $op o))
            }
        }
    )*};
}
/// A lane bundle type: `$n` f64 in one value, aligned for one vector load.
macro_rules! lane_bundle {
    ($(#[$doc:meta])* $F:ident, $n:literal, $align:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        #[repr(C, align($align))]
        pub struct $F(pub [f64; $n]);

        impl Default for $F {
            fn default() -> Self {
                $F([0.0; $n])
            }
        }


lanewise!($F; Add add +, Sub sub -, Mul mul *, Div div /);

impl Neg for $F {
    type Output = $F;
    #[inline(always)]
    fn neg(self) -> $F {
        $F(self.0.map(|v| -v))
    }
}

impl Real for $F {
    type Mask = [bool; $n];
    #[inline(always)]
    fn splat(v: f64) -> Self {
        $F([v; $n])
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        $F(self.0.map(f64::sqrt))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        $F(self.0.map(f64::abs))
    }
    #[inline(always)]
    fn clamp_unit(self) -> Self {
        $F(self.0.map(|v| v.clamp(-1.0, 1.0)))
    }
    #[inline(always)]
    fn max_f(self, v: f64) -> Self {
        $F(self.0.map(|x| x.max(v)))
    }
    #[inline(always)]
    fn gt(self, v: f64) -> [bool; $n] {
        self.0.map(|x| x > v)
    }
    #[inline(always)]
    fn lt(self, v: f64) -> [bool; $n] {
        self.0.map(|x| x < v)
    }
    #[inline(always)]
    fn finite(self) -> [bool; $n] {
        self.0.map(f64::is_finite)
    }
    #[inline(always)]
    fn select(m: [bool; $n], a: Self, b: Self) -> Self {
        $F(std::array::from_fn(|k| if m[k] { a.0[k] } else { b.0[k] }))
    }
    #[inline(always)]
    fn high_word(self) -> Self {
        $F(
            self.0
                .map(|v| f64::from_bits(v.to_bits() & 0xffff_ffff_0000_0000)),
        )
    }
    #[inline(always)]
    fn all_eq(self, other: Self) -> bool {
        self.0 == other.0
    }
    #[inline(always)]
    fn signum0(self) -> Self {
        $F(self.0.map(<f64 as Real>::signum0))
    }
    const LANES: usize = $n;
    #[inline(always)]
    fn lane(self, k: usize) -> f64 {
        self.0[k]
    }
    #[inline(always)]
    fn from_lanes(f: impl FnMut(usize) -> f64) -> Self {
        $F(std::array::from_fn(f))
    }
}

    };
}

lane_bundle!(
    /// Four lanes of f64 (AVX2: one register).
    F64x4, 4, 32
);

/// The lanes of four per-point arrays (one training point per lane).
#[inline(always)]
pub fn gather_values<const L: usize>(p: [&[f64; L]; 4]) -> [F64x4; L] {
    std::array::from_fn(|l| F64x4([p[0][l], p[1][l], p[2][l], p[3][l]]))
}

/// One per-point array repeated in every lane.
#[inline(always)]
pub fn splat_values<const L: usize>(p: &[f64; L]) -> [F64x4; L] {
    p.map(F64x4::splat)
}
