fn main() {
    let sigma = 1.5f32;
    let _net = infw::network!{ dense(512, w_std = sigma) relu };
}
