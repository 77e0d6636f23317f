//! One `network!` per convolutional fixture case (tests/fixtures/nt_conv_kernels.json), its
//! `dsl` string verbatim. Every case runs; none is skipped.
use super::cases::Case;
use super::kernels_of;

pub fn conv_case(name: &str) -> Case {
    match name {
        "c1d_relu_gap" => Case::Run(Box::new(kernels_of(
            infw::network! { input(12, 1) conv(64, size=3) relu conv(64, size=3) relu global_avg_pool dense(1) },
        ))),
        "c1d_relu_flatten_valid" => Case::Run(Box::new(kernels_of(
            infw::network! { input(10, 2) conv(32, size=3, padding=valid, w_std=1.4142135623730951, b_std=0.1) relu flatten dense(1) },
        ))),
        "c1d_circular_erf" => Case::Run(Box::new(kernels_of(
            infw::network! { input(8, 1) conv(16, size=5, padding=circular, w_std=1.5, b_std=0.2) erf global_avg_pool dense(1, w_std=1.2) },
        ))),
        "c1d_stride2_same" => Case::Run(Box::new(kernels_of(
            infw::network! { input(11, 2) conv(32, size=3, stride=2, w_std=1.3, b_std=0.1) relu global_avg_pool dense(1) },
        ))),
        "c1d_leaky_abs" => Case::Run(Box::new(kernels_of(
            infw::network! { input(10, 1) conv(16, size=3, w_std=1.4) leaky_relu(0.2) conv(16, size=3) abs global_avg_pool dense(1) },
        ))),
        "c1d_gap_then_dense" => Case::Run(Box::new(kernels_of(
            infw::network! { input(9, 3) conv(32, size=3, w_std=1.4142135623730951, b_std=0.05) relu global_avg_pool dense(64, w_std=1.4142135623730951) relu dense(1) },
        ))),
        "c2d_relu_gap" => Case::Run(Box::new(kernels_of(
            infw::network! { input(5, 5, 2) conv(16, size=3) relu conv(16, size=3) relu global_avg_pool dense(1) },
        ))),
        "c2d_flatten_dense" => Case::Run(Box::new(kernels_of(
            infw::network! { input(4, 6, 1) conv(8, size=3, padding=valid, w_std=1.3, b_std=0.3) relu flatten dense(16) relu dense(1) },
        ))),
        "c1d_edge_rows" => Case::Run(Box::new(kernels_of(
            infw::network! { input(8, 1) conv(32, size=3, w_std=1.4142135623730951, b_std=0.1) relu conv(32, size=3, w_std=1.4142135623730951) relu global_avg_pool dense(1) },
        ))),
        other => panic!("no network for the fixture case {other}"),
    }
}
