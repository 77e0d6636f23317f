//! Bad runtime input returns a typed error, never a panic.

/// Save and load (the `serde` feature, on in `cargo test` through the dev-dependency on
/// `infw` itself): round trips and corrupted files.
#[cfg(feature = "serde")]
mod persist;

use infw::{Error, TrainingInputs, Want};
use ndarray::{array, Array2};

fn net() -> infw::Network<impl infw::KernelProgram + Clone> {
    infw::network! { dense(16) relu dense(16) relu }
}

#[test]
fn mismatched_feature_dimensions() {
    let (a, b) = (Array2::<f64>::ones((3, 4)), Array2::<f64>::ones((2, 5)));
    assert!(matches!(
        net().ntk(&a, &b),
        Err(Error::ShapeMismatch {
            expected: 4,
            found: 5,
            ..
        })
    ));
    assert!(matches!(
        net().kernels(&a, TrainingInputs::of(&b), Want::ALL),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn mismatched_rows_between_x_and_y() {
    let x = Array2::<f64>::ones((3, 4));
    let y = Array2::<f64>::ones((2, 1));
    assert!(matches!(
        net().ntk_regression(&x, &y, 1e-3),
        Err(Error::ShapeMismatch {
            expected: 3,
            found: 2,
            ..
        })
    ));
}

#[test]
fn empty_data() {
    let empty = Array2::<f64>::zeros((0, 4));
    let no_features = Array2::<f64>::zeros((3, 0));
    let x = Array2::<f64>::ones((3, 4));
    assert!(matches!(net().nngp(&empty, &x), Err(Error::Empty { .. })));
    assert!(matches!(
        net().nngp(&no_features, &no_features),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        net().ntk_regression(&empty, &Array2::<f64>::zeros((0, 1)), 0.0),
        Err(Error::Empty { .. })
    ));
}

#[test]
fn nan_and_infinite_values() {
    let x = array![[1.0, f64::NAN], [0.0, 1.0]];
    let t = array![[1.0, 2.0], [f64::INFINITY, 1.0]];
    let ok = array![[1.0, 2.0], [0.5, 1.0]];
    assert!(matches!(
        net().ntk(&x, &ok),
        Err(Error::NonFinite { row: 0, col: 1, .. })
    ));
    assert!(matches!(
        net().ntk(&ok, &t),
        Err(Error::NonFinite { row: 1, col: 0, .. })
    ));
    let y = array![[1.0], [f64::NAN]];
    assert!(matches!(
        net().ntk_regression(&ok, &y, 1e-3),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        net().ntk_regression(&ok, &array![[1.0], [0.0]], f64::NAN),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn singular_system_without_ridge() {
    // Two identical rows make Θ(X, X) exactly singular.
    let x = array![[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 1.0, -1.0]];
    let y = array![[1.0], [1.0], [0.0]];
    assert!(matches!(
        net().ntk_regression(&x, &y, 0.0),
        Err(Error::NotPositiveDefinite { .. })
    ));
    assert!(
        net().ntk_regression(&x, &y, 1e-6).is_ok(),
        "a ridge makes it solvable"
    );
}

#[test]
fn declared_readout_width_must_match_the_targets() {
    let net = infw::network! { dense(16) relu dense(3) };
    assert!(net.architecture().outputs_for(3).is_ok());
    assert!(matches!(
        net.architecture().outputs_for(10),
        Err(Error::Architecture(_))
    ));
}

/// One rule for a declared readout width: kernel models and the finite network both
/// refuse targets whose column count differs from the final `dense(C)`.
#[test]
fn declared_readout_width_is_enforced_by_kernel_and_finite_models_alike() {
    let net = infw::network! { dense(8) relu dense(3) };
    let x = Array2::from_shape_fn((4, 2), |(i, j)| (i + 2 * j) as f64 * 0.3 - 0.5);
    let y2 = Array2::<f64>::ones((4, 2));
    let y3 = Array2::<f64>::ones((4, 3));
    assert!(matches!(
        net.ntk_regression(&x, &y2, 1e-3),
        Err(Error::Architecture(_))
    ));
    assert!(matches!(
        net.nngp_regression(&x, &y2, 1e-3),
        Err(Error::Architecture(_))
    ));
    assert!(matches!(
        net.ntk_gradient_flow(&x, &y2, 0.1),
        Err(Error::Architecture(_))
    ));
    assert!(matches!(
        net.finite(2, 2, infw::finite::Parameterization::Ntk, 0),
        Err(Error::Architecture(_))
    ));
    assert!(net.ntk_regression(&x, &y3, 1e-3).is_ok());
    assert!(net
        .finite(2, 3, infw::finite::Parameterization::Ntk, 0)
        .is_ok());
}

fn inputs(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.0..1.0))
}

/// Inputs ×1e154: ‖x‖² overflows before the division by d, but the kernels (≈ 1e307) are
/// representable. A bias-free ReLU network is positively homogeneous of degree 2, so both
/// kernels must be exactly s² times those of the unscaled inputs, up to rounding.
#[test]
fn huge_inputs_whose_kernels_are_representable_evaluate_correctly() {
    let net = infw::network! { dense(16) relu dense(16) relu };
    let (x, t) = (inputs(5, 4, 1), inputs(3, 4, 2));
    let s = 1e154;
    for (a, b) in [(&x, &t), (&x, &x)] {
        let (k, th) = net.nngp_ntk(a, b).unwrap();
        let (aa, bb) = (a.mapv(|v| v * s), b.mapv(|v| v * s));
        let (ks, ths) = if std::ptr::eq(a, b) {
            net.nngp_ntk(&aa, &aa).unwrap()
        } else {
            net.nngp_ntk(&aa, &bb).unwrap()
        };
        for (plain, big) in [(&k, &ks), (&th, &ths)] {
            for (p, q) in plain.iter().zip(big.iter()) {
                let want = p * s * s;
                assert!(q.is_finite(), "{q}");
                // The scaled inputs round once (s is not a power of two) and the scaled path
                // rounds differently: a few ulps per layer, amplified by at most the
                // conditioning of the arc-cosine at these moderate correlations.
                assert!(
                    ((q - want) / want).abs() < 1e3 * f64::EPSILON,
                    "{q} vs {want}"
                );
            }
        }
    }
    let d = net
        .kernel_diagonals(&x.mapv(|v| v * s), Want::NNGP)
        .unwrap();
    assert!(d.nngp.unwrap().iter().all(|v| v.is_finite()));
}

/// Kernels that are not representable are a typed error naming the kernel and the layer
/// where the variance first overflows, never `Ok` full of NaN.
#[test]
fn overflowing_kernels_are_an_error_naming_the_layer() {
    let x = inputs(6, 4, 3);
    let net = infw::network! { dense(16) relu dense(16) relu };
    match net.nngp(&x.mapv(|v| v * 1e160), &x.mapv(|v| v * 1e160)) {
        Err(Error::NonFiniteKernel { kernel, cause, .. }) => {
            assert_eq!(kernel, "NNGP");
            assert!(cause.contains("node 0"), "{cause}");
        }
        other => panic!("expected NonFiniteKernel, got {other:?}"),
    }
    // Σ¹ = 1e200·q, Σ² = Σ¹/2, Σ³ = 1e200·Σ² = ∞: the second dense layer (node 3).
    let wide = infw::network! { dense(4, w_std = 1e100) relu dense(4, w_std = 1e100) relu };
    let t = inputs(3, 4, 4);
    for result in [
        wide.ntk(&x, &x).map(|_| ()),
        wide.nngp(&x, &t).map(|_| ()),
        wide.kernels(&x, TrainingInputs::of(&t), Want::ALL)
            .map(|_| ()),
        wide.kernel_diagonals(&x, Want::NNGP).map(|_| ()),
    ] {
        match result {
            Err(Error::NonFiniteKernel { cause, .. }) => {
                assert!(cause.contains("node 3, dense(4, w_std = 1e100"), "{cause}")
            }
            other => panic!("expected NonFiniteKernel, got {other:?}"),
        }
    }
    // One layer of 1e100 is fine: 1e200 is representable.
    let one = infw::network! { dense(4, w_std = 1e100) relu };
    assert!(one.nngp(&x, &x).unwrap().iter().all(|v| v.is_finite()));
}

/// Absurd widths and width factors are a typed error before anything is allocated: no
/// wrapped widths, no panic inside ndarray, no allocation abort.
#[test]
fn absurd_finite_widths_are_errors_before_allocating() {
    use infw::finite::{Parameterization::Ntk, MAX_PARAMETERS};
    let net = infw::network! { dense(16) relu dense(16) relu };
    for factor in [1usize << 55, usize::MAX, MAX_PARAMETERS] {
        assert!(
            matches!(
                net.finite_wider(factor, 3, 2, Ntk, 0),
                Err(Error::Architecture(_))
            ),
            "factor {factor}"
        );
    }
    // network! refuses widths beyond 2^32; a hand-built architecture is checked here.
    let h = infw::Hidden {
        width: usize::MAX,
        w_std: 1.0,
        b_std: 0.0,
        activation: infw::Activation::RELU,
    };
    let arch = infw::Architecture::chain(&[h], None, 1.0, 0.0);
    assert!(matches!(
        infw::finite::FiniteNetwork::new(&arch, 3, 2, Ntk, 0),
        Err(Error::Architecture(_))
    ));
    // 2^32 × (3 + 1) weights: 1.7e10 parameters, 137 GB — refused by the bound.
    let wide = infw::network! { dense(4294967296) relu };
    match wide.finite(3, 2, Ntk, 0) {
        Err(Error::Architecture(msg)) => assert!(msg.contains("2^31"), "{msg}"),
        other => panic!("expected an Architecture error, got {other:?}"),
    }
    // An input dimension of usize::MAX must not wrap n_in + 1 to 0.
    assert!(net.finite(usize::MAX, 2, Ntk, 0).is_err());
    // Just inside the bound the width factor is fine in principle; a real one works.
    assert!(net.finite_wider(4, 3, 2, Ntk, 0).is_ok());
}

/// Band sizes beyond the bound are an error, not a panic ("Chunk size must be nonzero");
/// 0 (automatic), 1 and the bound itself all give the same kernel.
#[test]
fn gram_band_rows_are_validated() {
    use infw::MAX_BAND_ROWS;
    let x = inputs(9, 3, 5);
    let reference = net().nngp(&x, &x).unwrap();
    for rows in [usize::MAX, MAX_BAND_ROWS + 1] {
        let p = infw::GramParams {
            band_rows: rows,
            ..Default::default()
        };
        assert!(matches!(
            net().with_gram_params(p).nngp(&x, &x),
            Err(Error::InvalidArgument {
                name: "band_rows",
                ..
            })
        ));
    }
    for rows in [0, 1, 5, MAX_BAND_ROWS] {
        let p = infw::GramParams {
            band_rows: rows,
            ..Default::default()
        };
        let k = net().with_gram_params(p).nngp(&x, &x).unwrap();
        // Bands change only which rows share a matrix product, not any pair's arithmetic
        // beyond the product's summation order: agreement to rounding.
        let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in k.iter().zip(reference.iter()) {
            assert!(
                (a - b).abs() <= 16.0 * f64::EPSILON * scale,
                "{rows}: {a} vs {b}"
            );
        }
    }
}

/// Predicting with the wrong number of features speaks of the user's inputs against the
/// model's training features: expected = training columns, found = the inputs' columns.
#[test]
fn predict_with_the_wrong_feature_count_names_the_inputs_and_training_features() {
    let x = inputs(6, 3, 6);
    let y = Array2::from_shape_fn((6, 1), |(i, _)| i as f64);
    let model = net().ntk_regression(&x, &y, 1e-3).unwrap();
    match model.predict(&inputs(2, 2, 7)) {
        Err(
            e @ Error::ShapeMismatch {
                expected: 3,
                found: 2,
                ..
            },
        ) => {
            let msg = e.to_string();
            assert!(
                msg.contains("training inputs") && !msg.contains("second input"),
                "{msg}"
            );
        }
        other => panic!("expected ShapeMismatch 3 vs 2, got {other:?}"),
    }
}
