//! Snapshots of the IR and of the generated code (printed by prettyplease), reviewed as a
//! reviewer would review hand-written code: straight-line, constants folded, one binding
//! per quantity of docs/math.md §3–§4.
use infw_dsl::{codegen, compile, runtime_path};
use quote::quote;

fn code(tokens: proc_macro2::TokenStream) -> String {
    let net = compile(tokens).expect("valid declaration");
    let expr = codegen::generate(&net, &runtime_path());
    let file: syn::File =
        syn::parse2(quote!(fn network() { let net = #expr; })).expect("generated code parses");
    prettyplease::unparse(&file)
}

fn ir(tokens: proc_macro2::TokenStream) -> String {
    format!("{:#?}", compile(tokens).expect("valid declaration"))
}

macro_rules! snapshot_case {
    ($name:ident, $($body:tt)*) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(concat!(stringify!($name), "_ir"), ir(quote!($($body)*)));
            insta::assert_snapshot!(concat!(stringify!($name), "_code"), code(quote!($($body)*)));
        }
    };
}

snapshot_case!(relu_two_hidden_defaults, dense(512) relu dense(512) relu);
snapshot_case!(
    relu_biases_explicit_readout,
    dense(512, w_std = 1.4142135623730951, b_std = 0.1) relu
    dense(512, w_std = 1.4142135623730951, b_std = 0.1) relu
    readout(w_std = 1.4142135623730951, b_std = 0.1)
);
snapshot_case!(erf_one_hidden_declared_outputs, dense(256, w_std = 1.5, b_std = 0.1) erf dense(3, b_std = 0.05));
snapshot_case!(mixed_leaky_abs_identity, dense(128, w_std = 1.2) leaky_relu(0.1) dense(64, b_std = 0.2) abs dense(32) dense(16) identity);
snapshot_case!(readout_only, dense(10, w_std = 2.0));
// The Adam-like limit through a residual block and layer_norm: the dense outputs before the
// sum take the four-orthant B of the final relu (`mixed_backward_sign`).
snapshot_case!(
    residual_adam_limit,
    dense(64, b_std = 0.1) residual(dense(64) gelu dense(64)) layer_norm relu
);
snapshot_case!(
    residual_block,
    dense(256, w_std = 1.5, b_std = 0.1) residual(relu dense(256, w_std = 1.5)) relu
);
snapshot_case!(
    layer_norm_between_blocks,
    dense(128, b_std = 0.2) layer_norm erf dense(64) layer_norm readout(w_std = 2.0)
);
snapshot_case!(
    concat_of_two_branches,
    dense(64) relu parallel(dense(96) erf | dense(32, b_std = 0.5)) dense(2)
);
snapshot_case!(user_activation, dense(32) act(my_crate::Swish));
snapshot_case!(
    gelu_two_hidden,
    dense(256, w_std = 1.5, b_std = 0.1) gelu dense(256, w_std = 1.5, b_std = 0.1) gelu
);
snapshot_case!(
    hyper_parameters_as_expressions,
    dense(width, w_std = sigma) relu dense(16, b_std = 2f64.sqrt()) relu
);
snapshot_case!(
    conv_1d_global_avg_pool,
    input(12, 1) conv(64, size = 3, w_std = 1.4, b_std = 0.1) relu conv(64, size = 5, stride = 2, padding = circular) erf global_avg_pool dense(1)
);
snapshot_case!(
    conv_2d_flatten,
    input(4, 6, 2) conv(8, size = 3, padding = valid) relu flatten dense(16) relu
);
