//! (train: see lib.rs)
