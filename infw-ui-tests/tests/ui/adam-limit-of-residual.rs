use infw::ndarray::Array2;

fn main() {
    let net = infw::network!{ dense(64) residual(relu dense(64)) relu };
    let x = Array2::<f64>::zeros((4, 3));
    let y = Array2::<f64>::zeros((4, 2));
    let _ = net.adam_training(&x, &y, infw::train::TrainConfig::new(0.1));
}
