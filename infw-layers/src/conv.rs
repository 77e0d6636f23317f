//! The geometry of a convolution (docs/math.md §9), shared by the compiler (shapes are
//! checked and folded at compile time), the kernels and the finite networks.
//!
//! Positions are flattened in C order; a 1-D layer is a 2-D one whose second axis has
//! length 1 (size 1, stride 1, no padding), so one code path serves both.

/// How a convolution treats the border, as XLA/neural-tangents do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Padding {
    /// ⌈n/s⌉ output positions; zeros padded, (total)/2 of them before (total = (out−1)·s + k − n).
    #[default]
    Same,
    /// Only windows inside the input: ⌊(n − k)/s⌋ + 1 positions.
    Valid,
    /// `same`'s output positions, with the input wrapped around instead of zero-padded.
    Circular,
}

impl Padding {
    /// The DSL spelling.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Same => "same",
            Padding::Valid => "valid",
            Padding::Circular => "circular",
        }
    }

    /// From the DSL spelling.
    pub fn from_name(name: &str) -> Option<Padding> {
        match name {
            "same" => Some(Padding::Same),
            "valid" => Some(Padding::Valid),
            "circular" => Some(Padding::Circular),
            _ => None,
        }
    }
}

/// At most this many spatial axes.
pub const MAX_AXES: usize = 2;

/// One convolution's index map: output position `o` along an axis reads input positions
/// `o·stride + a − pad_before` for window offsets `a < size` (wrapped when circular; out of
/// range reads zero, which still counts in the 1/kⁿ average).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Spatial input sizes (a 1-D layer has `input[1] == 1`).
    pub input: [usize; MAX_AXES],
    /// Spatial output sizes.
    pub output: [usize; MAX_AXES],
    /// Window size per axis (1 along the unused axis of a 1-D layer).
    pub size: [usize; MAX_AXES],
    /// Stride per axis.
    pub stride: [usize; MAX_AXES],
    /// Zero padding (or wrap-around when circular) before the first input position.
    pub pad_before: [usize; MAX_AXES],
    /// Whether out-of-range reads wrap around (`circular`) instead of reading zero.
    pub circular: bool,
}

/// Why a convolution's shape is impossible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GeometryError {
    /// A window of size 0.
    ZeroSize,
    /// A stride of 0.
    ZeroStride,
    /// A `valid` window larger than the input along an axis.
    WindowTooLarge {
        /// The spatial axis (0-based).
        axis: usize,
        /// The window size.
        size: usize,
        /// The input's size along that axis.
        input: usize,
    },
    /// A spatial input with this many axes (only 1 and 2 are supported).
    TooManyAxes(usize),
}

impl std::fmt::Display for GeometryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GeometryError::ZeroSize => write!(f, "a convolution window needs size ≥ 1"),
            GeometryError::ZeroStride => write!(f, "a convolution needs stride ≥ 1"),
            GeometryError::WindowTooLarge { axis, size, input } => write!(
                f,
                "a `valid` window of size {size} does not fit the {input} positions of spatial axis {axis}"
            ),
            GeometryError::TooManyAxes(n) => {
                write!(f, "{n} spatial axes: infw convolves in 1-D and 2-D")
            }
        }
    }
}

impl ConvGeometry {
    /// The geometry of `conv(_, size, stride, padding)` on spatial sizes `input` (1 or 2 axes).
    pub fn new(
        input: &[usize],
        size: usize,
        stride: usize,
        padding: Padding,
    ) -> Result<ConvGeometry, GeometryError> {
        if input.is_empty() || input.len() > MAX_AXES {
            return Err(GeometryError::TooManyAxes(input.len()));
        }
        if size == 0 {
            return Err(GeometryError::ZeroSize);
        }
        if stride == 0 {
            return Err(GeometryError::ZeroStride);
        }
        let mut g = ConvGeometry {
            input: [1; MAX_AXES],
            output: [1; MAX_AXES],
            size: [1; MAX_AXES],
            stride: [1; MAX_AXES],
            pad_before: [0; MAX_AXES],
            circular: padding == Padding::Circular,
        };
        for (axis, &n) in input.iter().enumerate() {
            g.input[axis] = n;
            g.size[axis] = size;
            g.stride[axis] = stride;
            match padding {
                Padding::Valid => {
                    if size > n {
                        return Err(GeometryError::WindowTooLarge {
                            axis,
                            size,
                            input: n,
                        });
                    }
                    g.output[axis] = (n - size) / stride + 1;
                }
                Padding::Same | Padding::Circular => {
                    let out = n.div_ceil(stride);
                    let total = ((out - 1) * stride + size).saturating_sub(n);
                    g.output[axis] = out;
                    g.pad_before[axis] = total / 2;
                }
            }
        }
        Ok(g)
    }

    /// Input positions.
    pub fn input_positions(&self) -> usize {
        self.input[0] * self.input[1]
    }

    /// Output positions.
    pub fn output_positions(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// Window positions kⁿ (the 1/kⁿ of the kernel map).
    pub fn window(&self) -> usize {
        self.size[0] * self.size[1]
    }

    /// The input index along `axis` read by output `o` at offset `a`, or `None` in the
    /// zero padding.
    #[inline(always)]
    pub fn source(&self, axis: usize, o: usize, a: usize) -> Option<usize> {
        let i = (o * self.stride[axis] + a) as isize - self.pad_before[axis] as isize;
        let n = self.input[axis] as isize;
        if self.circular {
            Some(i.rem_euclid(n) as usize)
        } else if (0..n).contains(&i) {
            Some(i as usize)
        } else {
            None
        }
    }

    /// The flattened input position read by output position `out` at window offset
    /// `offset` (both flattened in C order), or `None` in the padding.
    #[inline(always)]
    pub fn source_position(&self, out: usize, offset: usize) -> Option<usize> {
        let (o0, o1) = (out / self.output[1], out % self.output[1]);
        let (a0, a1) = (offset / self.size[1], offset % self.size[1]);
        Some(self.source(0, o0, a0)? * self.input[1] + self.source(1, o1, a1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_valid_and_circular_follow_xla() {
        // same, stride 1: (k−1)/2 before.
        let g = ConvGeometry::new(&[12], 3, 1, Padding::Same).unwrap();
        assert_eq!((g.output, g.pad_before), ([12, 1], [1, 0]));
        let g = ConvGeometry::new(&[12], 4, 1, Padding::Same).unwrap();
        assert_eq!((g.output, g.pad_before), ([12, 1], [1, 0]));
        // same, stride 2 on 11: ⌈11/2⌉ = 6 outputs, total pad (5·2 + 3) − 11 = 2, 1 before.
        let g = ConvGeometry::new(&[11], 3, 2, Padding::Same).unwrap();
        assert_eq!((g.output, g.pad_before), ([6, 1], [1, 0]));
        assert_eq!(g.source(0, 0, 0), None);
        assert_eq!(g.source(0, 5, 2), None);
        assert_eq!(g.source(0, 5, 1), Some(10));
        // valid: ⌊(n − k)/s⌋ + 1.
        let g = ConvGeometry::new(&[4, 6], 3, 1, Padding::Valid).unwrap();
        assert_eq!(g.output, [2, 4]);
        assert_eq!(g.source_position(5, 4), Some((1 + 1) * 6 + 1 + 1));
        // circular wraps.
        let g = ConvGeometry::new(&[8], 5, 1, Padding::Circular).unwrap();
        assert_eq!((g.output, g.pad_before), ([8, 1], [2, 0]));
        assert_eq!(g.source(0, 0, 0), Some(6));
        assert_eq!(g.source(0, 7, 4), Some(1));
    }

    #[test]
    fn impossible_shapes_are_errors() {
        assert_eq!(
            ConvGeometry::new(&[2], 3, 1, Padding::Valid),
            Err(GeometryError::WindowTooLarge {
                axis: 0,
                size: 3,
                input: 2
            })
        );
        assert_eq!(
            ConvGeometry::new(&[2], 0, 1, Padding::Same),
            Err(GeometryError::ZeroSize)
        );
        assert_eq!(
            ConvGeometry::new(&[2], 1, 0, Padding::Same),
            Err(GeometryError::ZeroStride)
        );
        assert!(ConvGeometry::new(&[2, 2, 2], 1, 1, Padding::Same).is_err());
    }
}
