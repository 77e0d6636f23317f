fn main() {
    let _net = infw::network!{};
}
