//! [`Network`]: what `network!` returns; every user-facing capability hangs off it.
use crate::{Architecture, KernelProgram};

/// A declared architecture with its compiled kernel program.
#[derive(Clone, Debug)]
pub struct Network<K> {
    program: K,
}

impl<K: KernelProgram> Network<K> {
    /// Wraps a generated program; called by `network!`.
    pub fn new(program: K) -> Self {
        Network { program }
    }

    /// The declared architecture.
    pub fn architecture(&self) -> &'static Architecture {
        self.program.architecture()
    }

    /// The compiled per-point / per-pair program.
    pub fn program(&self) -> &K {
        &self.program
    }
}
