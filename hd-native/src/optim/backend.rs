//! The choice of backend ([`Backend`]): the fused CUDA kernels of [`crate::fused`] where they
//! load and compile, else hd-core's rule on libtorch tensors.

use super::{HdOptimizer, OptimError};
use crate::fused::cuda::{CudaError, Fused};
use crate::fused::{Programs, Segment};
use tch::Device;

/// Environment variable read when an [`HdOptimizer`] is built on a CUDA device: `0` selects
/// the libtorch path instead of the fused kernels.
pub const FUSED_ENV: &str = "HD_FUSED";

/// How an [`HdOptimizer`] runs its step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// hd-core's rule on libtorch tensors: a few libtorch kernels per phase (CPU, or a GPU
    /// without the fused path).
    Libtorch,
    /// The fused CUDA kernels of [`crate::fused`]: one per phase, plus a one-block α kernel.
    FusedCuda,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Libtorch => "libtorch",
            Backend::FusedCuda => "fused",
        })
    }
}

impl HdOptimizer {
    /// Which path [`step`](HdOptimizer::step) takes.
    pub fn backend(&self) -> Backend {
        if self.fused.is_some() {
            Backend::FusedCuda
        } else {
            Backend::Libtorch
        }
    }

    /// Why a CUDA optimizer does not use the fused path (`None` when it does, or on the CPU).
    pub fn fused_unavailable(&self) -> Option<&str> {
        self.fused_unavailable.as_deref()
    }

    /// Selects the backend: [`Backend::FusedCuda`] is taken only on a CUDA device where the
    /// driver and NVRTC load (otherwise the libtorch path stays, with the reason in
    /// [`fused_unavailable`](HdOptimizer::fused_unavailable)). Both backends keep the same
    /// state in the same buffers, so this may be switched between steps. Returns the backend
    /// now in use.
    pub fn set_backend(&mut self, backend: Backend) -> Backend {
        self.fused = None;
        self.fused_unavailable = None;
        let ordinal = match self.params.device() {
            Device::Cuda(i) => i,
            _ => return Backend::Libtorch,
        };
        if backend == Backend::Libtorch {
            self.fused_unavailable = Some("the libtorch backend was selected".into());
            return Backend::Libtorch;
        }
        match Fused::new(ordinal, &self.segments(), self.groups) {
            Ok(f) => self.fused = Some(Box::new(f)),
            Err(e) => self.fused_unavailable = Some(e.to_string()),
        }
        self.backend()
    }

    /// The pieces of the flat buffers the fused kernels run over, with their α: the whole
    /// buffer (padding included, which is zero and stays zero) or, for per-tensor scope, each
    /// variable.
    fn segments(&self) -> Vec<Segment> {
        if self.groups > 1 || self.is_per_tensor() {
            self.vars
                .iter()
                .enumerate()
                .map(|(group, v)| Segment {
                    offset: v.offset as usize,
                    len: v.len as usize,
                    group,
                })
                .collect()
        } else {
            vec![Segment {
                offset: 0,
                len: self.params.numel(),
                group: 0,
            }]
        }
    }

    /// The fused step; `Ok(false)` when its kernels for this step could not be compiled, in
    /// which case nothing was queued and the optimizer falls back to the libtorch path.
    pub(super) fn step_fused(&mut self, step: u64) -> Result<bool, OptimError> {
        let Some(fused) = self.fused.as_mut() else {
            return Ok(false);
        };
        let programs = Programs::record(&self.rule, step)?;
        match fused.step(
            &programs,
            &self.params,
            &self.grads,
            &self.buffers,
            &self.alpha,
        ) {
            Ok(()) => Ok(true),
            Err(e @ (CudaError::Compile(_) | CudaError::Emit(_) | CudaError::NoNvrtc(_))) => {
                self.fused = None;
                self.fused_unavailable = Some(e.to_string());
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}
