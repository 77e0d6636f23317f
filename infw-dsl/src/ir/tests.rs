use super::*;
use crate::syntax::parse;
use quote::quote;

fn lower_tokens(t: proc_macro2::TokenStream) -> Result<Network, Error> {
    lower(&parse(t)?)
}

fn lit<T>(v: T) -> Value<T> {
    Value::Literal(v)
}

fn relu() -> Rule {
    Rule::Registry {
        entry: "relu",
        params: vec![],
    }
}

#[test]
fn a_chain_is_a_path_of_nodes_with_an_implied_readout() {
    let net = lower_tokens(quote!(dense(512, w_std = 1.5) dense(256) relu)).unwrap();
    assert_eq!(
        net.nodes,
        vec![
            Node::Input,
            Node::Dense {
                input: 0,
                width: lit(512),
                w_std: lit(1.5),
                b_std: lit(0.0)
            },
            Node::Dense {
                input: 1,
                width: lit(256),
                w_std: lit(1.0),
                b_std: lit(0.0)
            },
            Node::Activation {
                input: 2,
                rule: relu()
            },
        ]
    );
    assert_eq!(
        net.readout,
        Readout {
            input: 3,
            outputs: None,
            w_std: lit(1.0),
            b_std: lit(0.0)
        }
    );
    assert!(net.adam_limit().is_ok());
}

#[test]
fn final_dense_is_the_readout_and_explicit_readout_sets_stds() {
    let net = lower_tokens(quote!(dense(8) erf dense(3, b_std = 0.1))).unwrap();
    assert_eq!(net.nodes.len(), 3);
    assert_eq!(net.readout.outputs, Some(lit(3)));
    assert_eq!(net.readout.b_std, lit(0.1));
    let net = lower_tokens(quote!(dense(8) relu readout(w_std = 1.4, b_std = 0.1))).unwrap();
    assert_eq!(net.readout.w_std, lit(1.4));
    assert_eq!(net.readout.outputs, None);
}

#[test]
fn residual_lowers_to_fan_out_block_and_sum() {
    let net = lower_tokens(quote!(dense(8) residual(relu dense(8)) layer_norm relu)).unwrap();
    // 1 dense, 2 relu (block), 3 dense (block), 4 sum(1, 3), 5 layer_norm, 6 relu.
    assert_eq!(
        net.nodes[2],
        Node::Activation {
            input: 1,
            rule: relu()
        }
    );
    assert_eq!(net.nodes[4], Node::Sum { inputs: vec![1, 3] });
    assert_eq!(net.nodes[5], Node::LayerNorm { input: 4 });
    assert_eq!(net.readout.input, 6);
    assert!(net.adam_limit().is_err());
}

#[test]
fn parallel_lowers_to_branches_and_concat() {
    let net =
        lower_tokens(quote!(dense(8) relu parallel(dense(4) erf | dense(2)) dense(3))).unwrap();
    assert_eq!(
        net.nodes[3],
        Node::Dense {
            input: 2,
            width: lit(4),
            w_std: lit(1.0),
            b_std: lit(0.0)
        }
    );
    assert_eq!(
        net.nodes[5],
        Node::Dense {
            input: 2,
            width: lit(2),
            w_std: lit(1.0),
            b_std: lit(0.0)
        }
    );
    assert_eq!(net.nodes[6], Node::Concat { inputs: vec![4, 5] });
    assert_eq!(net.readout.input, 6);
}

#[test]
fn expressions_are_numbered_and_literals_kept() {
    let net = lower_tokens(quote!(dense(width, w_std = sigma) relu dense(4, b_std = 2f64.sqrt())))
        .unwrap();
    assert_eq!(net.expressions, 3);
    match &net.nodes[1] {
        Node::Dense { width, w_std, .. } => {
            assert!(matches!(width, Value::Expr { index: 0, .. }));
            assert!(matches!(w_std, Value::Expr { index: 1, .. }));
        }
        other => panic!("expected a dense, got {other:?}"),
    }
    assert!(matches!(net.readout.b_std, Value::Expr { index: 2, .. }));
}

#[test]
fn errors_name_the_mistake() {
    let cases = [
        (quote!(dense(8) rellu), "did you mean `relu`"),
        (quote!(dense relu), "needs a width"),
        (quote!(dense(0) relu), "at least 1"),
        (quote!(dense(8, w_sd = 1.0) relu), "did you mean `w_std`"),
        (quote!(dense(8, w_std = -1.0) relu), "≥ 0"),
        (quote!(dense(8, w_std = 1e200) relu), "too large"),
        (quote!(dense(300u8) relu), "drop the suffix"),
        (quote!(dense(8, w_std = 1.5f32) relu), "drop the suffix"),
        (quote!(relu dense(8)), "needs a dense layer before it"),
        (quote!(dense(8) relu relu), "two activations in a row"),
        (quote!(dense(8) relu layer_norm), "Gaussian input"),
        (quote!(dense(8) conv), "needs a spatial input"),
        (quote!(dense(8) relu batch_norm), "not supported yet"),
        (
            quote!(input(8, 1) conv(4, size = 9, padding = valid) relu flatten),
            "does not fit",
        ),
        (
            quote!(input(8, 1) conv(4, stride = 0) relu flatten),
            "at least 1",
        ),
        (
            quote!(input(8, 1) conv(4, pading = same) relu flatten),
            "did you mean `padding`",
        ),
        (
            quote!(input(8) conv(4) relu flatten),
            "spatial sizes, then the channels",
        ),
        (
            quote!(input(8, 1) conv(4) relu layer_norm flatten),
            "not supported yet",
        ),
        (
            quote!(input(8, 1) conv(4) residual(relu conv(4)) flatten),
            "not supported yet",
        ),
        (quote!(dense(8) relu readout relu), "nothing may follow"),
        (quote!(dense(8) leaky_relu), "needs its parameter `alpha`"),
        (quote!(dense(8) leaky_relu(1e200)), "at most 1e150"),
        (quote!(dense(8.5) relu), "positive integer"),
        (quote!(dense(8) residual()), "empty `residual`"),
        (quote!(dense(8) residual), "needs its layers in parentheses"),
        (quote!(dense(8) residual(relu)), "must end in a dense"),
        // A function of the stream itself, not fresh weights: x + LN(x) and x + (x + Dx)
        // have cross terms that a sum of kernels would miss.
        (quote!(dense(8) residual(layer_norm)), "must end in a dense"),
        (
            quote!(dense(8) residual(residual(dense(8)))),
            "must end in a dense",
        ),
        (
            quote!(dense(8) residual(relu dense(4))),
            "differs from the stream",
        ),
        (
            quote!(dense(8) residual(rellu dense(8))),
            "did you mean `relu`",
        ),
        (quote!(dense(8) parallel(dense(4))), "two or more branches"),
        (quote!(dense(8) act(1.5)), "not a path"),
        (quote!(dense(8) act), "names a type"),
        (quote!(dense(8) relu(3)), "takes no arguments"),
    ];
    for (tokens, expected) in cases {
        let msg = match lower_tokens(tokens.clone()) {
            Ok(net) => panic!("{tokens}: accepted as {net:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            msg.contains(expected),
            "{tokens}: got `{msg}`, expected `{expected}`"
        );
    }
    assert!(lower_tokens(quote!())
        .unwrap_err()
        .to_string()
        .contains("empty network"));
}

#[test]
fn reports_every_mistake_at_once() {
    let err = lower_tokens(quote!(dense(0) rellu dense(4, foo = 1))).unwrap_err();
    assert_eq!(err.into_iter().count(), 3);
}
