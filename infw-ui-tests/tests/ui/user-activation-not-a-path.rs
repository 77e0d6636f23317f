fn main() {
    let _net = infw::network!{ dense(512) act(1.5) };
}
