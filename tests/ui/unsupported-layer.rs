fn main() {
    let _net = infw::network!{ dense(512) relu global_avg_pool };
}
