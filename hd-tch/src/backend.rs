//! The choice of backend ([`Backend`]): the fused CUDA kernels of [`hd_fused`] where they
//! load and compile, else hd-core's rule on libtorch tensors.
//!
//! **`unsafe`.** The one `unsafe` block of this crate is here: it hands the flat buffers'
//! device pointers to [`Fused::step`], which cannot check them. Why that is sound is written at
//! the block.

#![allow(unsafe_code)]

use super::{HdOptimizer, OptimError};
use hd_fused::cuda::{self, CudaError, DeviceBuffers, Fused};
use hd_fused::{Programs, Segment};
use tch::{Device, Kind, Tensor};

/// Environment variable read when an [`HdOptimizer`] is built on a CUDA device: `0` selects
/// the libtorch path instead of the fused kernels.
pub const FUSED_ENV: &str = "HD_FUSED";

/// How an [`HdOptimizer`] runs its step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// hd-core's rule on libtorch tensors: a few libtorch kernels per phase (CPU, or a GPU
    /// without the fused path).
    Libtorch,
    /// The fused CUDA kernels of [`hd_fused`]: one per phase, plus a one-block α kernel.
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
        // libtorch's pointers are valid in the primary context, and its current stream is the
        // legacy default stream unless the caller changed it (see `hd_fused::cuda`).
        let fused = cuda::default_stream(ordinal)
            .and_then(|stream| Fused::new(stream, &self.segments(), self.groups));
        match fused {
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
        let device = self.params.device();
        let len = self.params.numel();
        let flat_f32 = |t: &Tensor, numel: usize| {
            t.is_contiguous()
                && t.kind() == Kind::Float
                && t.device() == device
                && t.numel() == numel
        };
        let slots = self
            .buffers
            .size()
            .first()
            .map_or(0, |&k| k.max(0) as usize);
        let alphas = self.alpha.numel();
        let laid_out = flat_f32(&self.grads, len)
            && flat_f32(&self.buffers, slots * len)
            && flat_f32(&self.alpha, alphas)
            && flat_f32(&self.params, len)
            && slots >= self.rule.slots().max(1);
        if !laid_out {
            return Err(CudaError::Layout("params, grads and buffers do not match").into());
        }
        let ptr = |t: &Tensor| t.data_ptr() as u64;
        let buffers = DeviceBuffers {
            params: ptr(&self.params),
            grads: ptr(&self.grads),
            buffers: ptr(&self.buffers),
            alpha: ptr(&self.alpha),
            len,
            alphas,
        };
        // SAFETY: the four tensors were checked just above to be contiguous f32 on the CUDA
        // device `fused` was made for (in the primary context it uses), of the lengths given,
        // with a row of `buffers` for every slot of the rule; they are distinct allocations
        // made in `with_vars`, owned by this optimizer and never reallocated (variables and
        // gradients are views of them). The kernels are queued on the default stream, libtorch's
        // current one, so libtorch frees or reuses this memory (the caching allocator works in
        // stream order) only after them, even if the optimizer is dropped first.
        let queued = unsafe { fused.step(&programs, buffers) };
        match queued {
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
