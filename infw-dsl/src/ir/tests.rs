use super::*;
use crate::syntax::parse;
use quote::quote;

fn lower_tokens(t: proc_macro2::TokenStream) -> Result<Network, Error> {
    lower(&parse(t)?)
}

#[test]
fn implied_readout_and_identity_between_denses() {
    let net = lower_tokens(quote!(dense(512, w_std = 1.5) dense(256) relu)).unwrap();
    assert_eq!(net.hidden.len(), 2);
    assert_eq!(
        net.hidden[0],
        Hidden {
            width: 512,
            w_std: 1.5,
            b_std: 0.0,
            activation: Activation::Identity
        }
    );
    assert_eq!(net.hidden[1].activation, Activation::Relu);
    assert_eq!(
        net.readout,
        Readout {
            outputs: None,
            w_std: 1.0,
            b_std: 0.0
        }
    );
}

#[test]
fn final_dense_is_the_readout() {
    let net = lower_tokens(quote!(dense(8) erf dense(3, b_std = 0.1))).unwrap();
    assert_eq!(net.hidden.len(), 1);
    assert_eq!(
        net.readout,
        Readout {
            outputs: Some(3),
            w_std: 1.0,
            b_std: 0.1
        }
    );
}

#[test]
fn explicit_readout_stds() {
    let net = lower_tokens(quote!(dense(8) relu readout(w_std = 1.4, b_std = 0.1))).unwrap();
    assert_eq!(
        net.readout,
        Readout {
            outputs: None,
            w_std: 1.4,
            b_std: 0.1
        }
    );
}

#[test]
fn errors_name_the_mistake() {
    let cases = [
        (quote!(dense(8) rellu), "did you mean `relu`"),
        (quote!(dense relu), "needs a width"),
        (quote!(dense(0) relu), "at least 1"),
        (quote!(dense(8, w_sd = 1.0) relu), "did you mean `w_std`"),
        (quote!(dense(8, w_std = -1.0) relu), "≥ 0"),
        (quote!(dense(8, b_std = x) relu), "number literal"),
        (quote!(relu dense(8)), "needs a dense layer before it"),
        (quote!(dense(8) relu relu), "two activations in a row"),
        (quote!(dense(8) gelu), "not supported yet"),
        (quote!(dense(8) relu readout relu), "nothing may follow"),
        (quote!(dense(8) leaky_relu), "negative slope"),
        (quote!(dense(8.5) relu), "positive integer"),
    ];
    for (tokens, expected) in cases {
        let msg = lower_tokens(tokens.clone()).unwrap_err().to_string();
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
