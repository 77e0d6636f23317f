fn main() {
    let _net = infw::network!{ dense(512, b_std = -0.1) relu };
}
