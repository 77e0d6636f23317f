fn main() {
    let _a = infw::network!{ dense(300u8) relu };
    let _b = infw::network!{ dense(5, w_std = 1.5f16) relu };
    let _c = infw::network!{ dense(5) leaky_relu(0.1f32) };
}
