fn main() {
    let _net = infw::network!{ relu dense(512) };
}
