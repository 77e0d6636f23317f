//! (finite: see lib.rs)
