//! Bad runtime input returns a typed error, never a panic.
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
