//! (solve: see lib.rs)
