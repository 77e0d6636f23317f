fn main() {
    let _net = infw::network!{ dense(512, w_sdt = 1.4) relu };
}
