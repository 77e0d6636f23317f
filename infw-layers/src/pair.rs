//! What the per-pair pass carries besides numbers: exact parallelism of a Gaussian pair
//! and the set of kernels asked for.

/// Exact parallelism of a pair of Gaussian pre-activations, tracked through the layers so
/// that correlation ±1 is used exactly instead of being recovered from rounded sums
/// (docs/math.md §5, "Exactly parallel inputs").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Parallel {
    /// No exact relation known: the correlation is computed as c/√(ab), clipped.
    #[default]
    Unknown,
    /// v = k·u with k > 0 (same point, or a positive multiple): correlation exactly +1.
    Positive,
    /// v = −k·u with k > 0: correlation exactly −1.
    Negative,
}

/// Which kernels a per-pair pass computes. The runtime passes a constant, so after
/// inlining the unrequested branches vanish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Want {
    /// The NNGP kernel Σ (docs/math.md §3).
    pub nngp: bool,
    /// The NTK Θ (docs/math.md §3).
    pub ntk: bool,
    /// R, the readout part of the Adam-like limit (docs/math.md §4).
    pub readout: bool,
    /// H, the hidden part of the Adam-like limit (docs/math.md §4).
    pub hidden: bool,
}

impl Want {
    /// The NNGP alone.
    pub const NNGP: Want = Want {
        nngp: true,
        ntk: false,
        readout: false,
        hidden: false,
    };
    /// The NTK alone.
    pub const NTK: Want = Want {
        nngp: false,
        ntk: true,
        readout: false,
        hidden: false,
    };
    /// NNGP and NTK.
    pub const NNGP_NTK: Want = Want {
        nngp: true,
        ntk: true,
        readout: false,
        hidden: false,
    };
    /// R and H, the two kernels of the Adam-like limit.
    pub const ADAM: Want = Want {
        nngp: false,
        ntk: false,
        readout: true,
        hidden: true,
    };
    /// All four kernels.
    pub const ALL: Want = Want {
        nngp: true,
        ntk: true,
        readout: true,
        hidden: true,
    };

    /// A compact code for dispatching to monomorphised loops.
    pub fn mask(self) -> u8 {
        self.nngp as u8
            | (self.ntk as u8) << 1
            | (self.readout as u8) << 2
            | (self.hidden as u8) << 3
    }

    /// The inverse of [`Want::mask`].
    pub const fn from_mask(m: u8) -> Want {
        Want {
            nngp: m & 1 != 0,
            ntk: m & 2 != 0,
            readout: m & 4 != 0,
            hidden: m & 8 != 0,
        }
    }
}
