use infw::ndarray::Array2;

fn main() {
    let net = infw::network!{ input(8, 1) conv(16, size = 3) relu global_avg_pool };
    let x = Array2::<f64>::zeros((4, 8));
    let y = Array2::<f64>::zeros((4, 2));
    let _ = net.adam_training(&x, &y, infw::train::TrainConfig::new(0.1));
}
