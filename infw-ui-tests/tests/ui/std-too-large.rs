fn main() {
    let _a = infw::network!{ dense(5, w_std = 1e200) relu };
    let _b = infw::network!{ dense(5) relu readout(b_std = 1e160) };
    let _c = infw::network!{ dense(5) leaky_relu(1e200) };
}
