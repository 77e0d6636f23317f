fn main() {
    // A convolution without a declared input shape.
    let _ = infw::network!{ conv(16) relu global_avg_pool };
    // A `valid` window wider than the signal.
    let _ = infw::network!{ input(4, 1) conv(8, size = 5, padding = valid) relu global_avg_pool };
    // A misspelt padding.
    let _ = infw::network!{ input(8, 1) conv(8, padding = vaild) relu global_avg_pool };
    // A dense layer on positions × channels.
    let _ = infw::network!{ input(8, 1) conv(8) relu dense(4) };
    // No pooling before the readout.
    let _ = infw::network!{ input(8, 1) conv(8) relu };
    // `input` later than first, and a window size that is not a literal.
    let k = 3;
    let _ = infw::network!{ dense(8) input(8, 1) };
    let _ = infw::network!{ input(8, 1) conv(8, size = k) relu flatten };
}
