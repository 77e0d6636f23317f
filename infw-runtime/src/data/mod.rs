//! (data: see lib.rs)
