fn main() {
    let _net = infw::network!{ dense(0) relu };
}
