//! Parallel tiled Gram evaluation (see lib.rs).
