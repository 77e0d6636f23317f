//! One `network!` per fixture case: each arm holds the case's `dsl` string verbatim (written
//! out by a one-off script from the JSON, since the macro needs the architecture at compile
//! time). Every case runs; none is skipped.
use super::kernels_of;
use super::Kernels;

pub enum Case {
    Run(Box<dyn Kernels>),
}

pub fn nt_case(name: &str) -> Case {
    match name {
        "relu_depth1_default" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512) relu dense(1) },
        ))),
        "relu_depth1_bias" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.5, b_std=0.1) relu dense(1, w_std=1.5, b_std=0.1) },
        ))),
        "relu_depth2_he_nobias" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.4142135623730951) relu dense(512, w_std=1.4142135623730951) relu dense(1, w_std=1.4142135623730951) },
        ))),
        "relu_depth3_mixed_std" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(256, w_std=1.2, b_std=0.3) relu dense(256, w_std=0.8) relu dense(256, w_std=2.0, b_std=1.0) relu dense(1, w_std=0.5, b_std=0.05) },
        ))),
        "relu_depth4_he_bias" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.4142135623730951, b_std=0.05) relu dense(512, w_std=1.4142135623730951, b_std=0.05) relu dense(512, w_std=1.4142135623730951, b_std=0.05) relu dense(512, w_std=1.4142135623730951, b_std=0.05) relu dense(1, w_std=1.4142135623730951, b_std=0.05) },
        ))),
        "erf_depth2" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.2, b_std=0.3) erf dense(512, w_std=1.2, b_std=0.3) erf dense(1) },
        ))),
        "identity_depth2" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=0.9, b_std=0.2) identity dense(512, w_std=1.1, b_std=0.4) identity dense(1, w_std=1.3) },
        ))),
        "leaky_relu_0.1_depth2" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.4, b_std=0.1) leaky_relu(0.1) dense(512, w_std=1.4, b_std=0.1) leaky_relu(0.1) dense(1) },
        ))),
        "abs_depth2" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.1, b_std=0.2) abs dense(512, w_std=0.9, b_std=0.2) abs dense(1) },
        ))),
        "gelu_depth2" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.5, b_std=0.1) gelu dense(512, w_std=1.5, b_std=0.1) gelu dense(1) },
        ))),
        "sin_depth1" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.3, b_std=0.4) sin dense(1, w_std=1.0, b_std=0.2) },
        ))),
        "layer_norm_middle" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.3, b_std=0.2) relu dense(512, w_std=0.8, b_std=0.5) layer_norm relu dense(1) },
        ))),
        "residual_one_block" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, b_std=0.1) residual(relu dense(512, w_std=1.4142135623730951, b_std=0.1)) relu dense(1, w_std=1.4142135623730951) },
        ))),
        "relu_depth2_corr_pm1" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.4142135623730951) relu dense(512, w_std=1.4142135623730951) relu dense(1, w_std=1.4142135623730951) },
        ))),
        "relu_depth2_row_scaled_1e3" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.2, b_std=0.5) relu dense(512, w_std=1.2, b_std=0.5) relu dense(1, w_std=1.0, b_std=0.5) },
        ))),
        "zero_row_bias" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.0, b_std=0.5) relu dense(512, w_std=1.0, b_std=0.5) erf dense(1, w_std=1.0, b_std=0.5) },
        ))),
        other => {
            panic!("fixture case `{other}` has no network in tests/reference/cases.rs: add it")
        }
    }
}

pub fn adam_case(name: &str) -> Case {
    match name {
        "relu_1hidden" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.0, b_std=0.0) relu dense(1, w_std=1.0, b_std=0.0) },
        ))),
        "relu_2hidden_bias" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.3, b_std=0.2) relu dense(512, w_std=1.3, b_std=0.2) relu dense(1, w_std=1.3, b_std=0.2) },
        ))),
        "relu_3hidden_sqrt2" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.4142135623730951, b_std=0.1) relu dense(512, w_std=1.4142135623730951, b_std=0.1) relu dense(512, w_std=1.4142135623730951, b_std=0.1) relu dense(1, w_std=1.0, b_std=0.0) },
        ))),
        "erf_2hidden" => Case::Run(Box::new(kernels_of(
            infw::network! { dense(512, w_std=1.5, b_std=0.1) erf dense(512, w_std=1.5, b_std=0.1) erf dense(1, w_std=1.0, b_std=0.05) },
        ))),
        other => {
            panic!("fixture case `{other}` has no network in tests/reference/cases.rs: add it")
        }
    }
}
