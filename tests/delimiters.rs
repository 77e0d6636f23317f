//! `network!` works with all three macro delimiters (Rust has no `network!<…>`).
#[test]
fn braces_parentheses_and_brackets_compile_the_same_network() {
    let a = infw::network! { dense(16, w_std = 1.5) relu dense(8) erf };
    let b = infw::network!(dense(16, w_std = 1.5) relu dense(8) erf);
    let c = infw::network![dense(16, w_std = 1.5) relu dense(8) erf];
    assert_eq!(a.architecture(), b.architecture());
    assert_eq!(b.architecture(), c.architecture());
    let x = ndarray::array![[1.0, 2.0], [0.5, -1.0]];
    assert_eq!(a.ntk(&x, &x).unwrap(), c.ntk(&x, &x).unwrap());
    assert_eq!(a.architecture().dense_layers().count(), 2);
    assert_eq!(
        a.architecture().readout.outputs,
        None,
        "ends in erf: the readout is implied"
    );
}
