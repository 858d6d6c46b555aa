//! # hd-tch — hypergradient descent for tch
//!
//! [`HdOptimizer`]: SGD, SGD with Nesterov momentum, heavy ball and Adam, each with or
//! without hypergradient descent (Baydin et al., *Online Learning Rate Adaptation with
//! Hypergradient Descent*, ICLR 2018), over every trainable variable of a tch [`VarStore`]. The
//! learning rate α is itself learned by gradient descent on the loss; for SGD-HD,
//!
//! α_t = α_{t−1} + β ∇f(θ_{t−1}) · ∇f(θ_{t−2}),  θ_t = θ_{t−1} − α_t ∇f(θ_{t−1}),
//!
//! and likewise for the other rules, for one α per model, per tensor or per parameter
//! ([`Scope`]). Every rule comes from [`hd_core`]; nothing here re-derives the maths:
//! [`Real`] is implemented for [`Val`], a tensor newtype, and each step drives hd-core's
//! generic pieces — [`Optimizer::terms_of`] (phase 1), [`Optimizer::next_alpha`] (the α
//! update) and [`Optimizer::apply_to`] (phase 2) — exactly as hd-core's own slice driver does.
//!
//! **Layout.** On construction every trainable variable of the [`VarStore`] is moved into one
//! flat parameter buffer and its gradient into one flat gradient buffer (each variable becomes
//! a view of its range, so models, `VarStore::save`/`load` and autograd work unchanged). The
//! optimizer then runs a few large kernels over the flat buffers instead of a loop of small
//! ones per tensor (DESIGN §3). On the CPU it walks the buffers in cache-sized chunks, so the
//! temporaries of one chunk's expression stay in cache and only the rule's own reads and
//! writes reach memory.
//!
//! **Backends.** On a CUDA device the step is, when it can be, the fused path of
//! [`hd_fused`]: each phase one kernel over the flat buffers, generated from the same
//! hd-core rule by recording it, compiled by NVRTC at run time. Where the CUDA driver or NVRTC
//! cannot be loaded or the kernels do not compile, and always on the CPU, the step is the
//! libtorch path described above. [`HdOptimizer::backend`] says which; setting the environment
//! variable [`FUSED_ENV`] to `0` before building the optimizer, or
//! [`HdOptimizer::set_backend`], selects the libtorch path on a GPU too.
//!
//! **No host–device synchronisation.** α is a 0-d tensor on the device; the step count and
//! the rule's host constants (bias corrections, δ(t)) live on the host. A step never reads a
//! device value back; [`HdOptimizer::alpha_value`] does, when the caller asks.
//!
//! ```
//! use hd_tch::tch::{nn, nn::Module, Device, Kind, Tensor};
//! use hd_tch::{Config, HdOptimizer};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let net = nn::linear(vs.root() / "fc", 784, 10, Default::default());
//! let mut opt = HdOptimizer::new(&vs, Config::sgd(0.001).with_hd(0.001))?;
//! let x = Tensor::randn([128, 784], (Kind::Float, Device::Cpu));
//! let y = Tensor::randint(10, [128], (Kind::Int64, Device::Cpu));
//! let loss = net.forward(&x).cross_entropy_for_logits(&y);
//! opt.backward_step(&loss)?;
//! println!("alpha = {}", opt.alpha_value()?);
//! # Ok::<(), hd_tch::OptimError>(())
//! ```
//!
//! The modules: `val` (the tensor value type the rules run on), `backend` (the fused
//! kernels or libtorch), `state` (the state in a checkpoint), [`verify`] (the optimizer's
//! trajectory against hd-core's, for tests and `bench verify-fused`).
//!

use hd_core::{Optimizer, Real, Terms};
use hd_fused::cuda::{CudaError, Fused};
use std::collections::HashMap;
use tch::{nn::VarStore, Device, Kind, TchError, Tensor};

mod backend;
mod state;
mod val;
pub mod verify;

pub use backend::{Backend, FUSED_ENV};
/// The rules' configuration (hd-core's), so that this crate alone is enough to use them.
pub use hd_core::{Config, Scope};
pub use val::Val;
/// The crates this one is built on, re-exported so that one dependency on hd-tch is enough
/// (and the versions always match).
pub use {hd_core, hd_fused, tch};

/// What can go wrong building or driving an [`HdOptimizer`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptimError {
    /// hd-core rejected the configuration or a saved record.
    #[error("optimizer: {0}")]
    Core(#[from] hd_core::Error),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] TchError),
    /// A trainable variable is not `f32` (hd-core's rules are single precision).
    #[error("variable {name} is {kind:?}; the optimizer needs f32 (Kind::Float) parameters")]
    UnsupportedKind {
        /// The variable.
        name: String,
        /// Its kind.
        kind: Kind,
    },
    /// Trainable variables live on different devices.
    #[error("variable {name} is on {found:?} but the others are on {expected:?}")]
    MixedDevices {
        /// The variable.
        name: String,
        /// Its device.
        found: Device,
        /// The first variable's device.
        expected: Device,
    },
    /// Saved optimizer state does not fit this optimizer.
    #[error("saved optimizer state does not match: {0}")]
    StateMismatch(String),
    /// The loss or the parameters became NaN or infinite.
    #[error("the training diverged: {0} is not finite")]
    NonFinite(&'static str),
    /// The fused GPU path failed (a driver error, after its kernels were compiled).
    #[error("fused GPU step: {0}")]
    Fused(#[from] CudaError),
}

/// Elements per chunk on the CPU: 2^18 f32 = 1 MiB per array, so the dozen or so live
/// arrays of one chunk's expression fit in this class of machine's L3 cache.
pub const CPU_CHUNK: usize = 1 << 18;

/// Flat buffers are laid out with each variable starting on a 64-element (256-byte) boundary,
/// the alignment vectorised kernels and cuDNN like. The padding is zero in θ, g and every
/// buffer, so it adds nothing to any dot product or norm and never moves.
const ALIGN: i64 = 64;

/// A piece of the flat buffers that one call of the rule works on.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    offset: i64,
    len: i64,
    /// Index of the α this chunk uses (the variable's for per-tensor scope, else 0).
    group: usize,
}

/// A trainable variable and where it lives in the flat buffers.
#[derive(Debug)]
struct Placed {
    /// The variable: a shallow handle, a view of the flat parameter buffer once placed.
    tensor: Tensor,
    /// Its first element in the flat buffers (a multiple of [`ALIGN`]).
    offset: i64,
    /// Its number of elements.
    len: i64,
}

/// Hypergradient descent (or its base optimizer) over every trainable variable of a
/// [`VarStore`], with α on the device. The tch counterpart of `nn::Optimizer`.
#[derive(Debug)]
pub struct HdOptimizer {
    rule: Optimizer,
    step: u64,
    /// One α (global and per-parameter scope; unused by the latter) or one per variable.
    alpha: Tensor,
    /// The flat parameter and gradient buffers every variable and its gradient view.
    params: Tensor,
    grads: Tensor,
    /// `[slots, n]`: the rule's per-element state, slot-major as in hd-core.
    buffers: Tensor,
    /// The variables with their places, to re-alias a gradient that autograd replaced (e.g.
    /// after someone set it to None).
    vars: Vec<Placed>,
    chunks: Vec<Chunk>,
    groups: usize,
    /// The fused kernels, when this optimizer uses them.
    fused: Option<Box<Fused>>,
    /// Why the fused path is not used on a CUDA device (`None` on the CPU or when it is).
    fused_unavailable: Option<String>,
}

impl HdOptimizer {
    /// An optimizer over `vs`'s trainable variables (in the store's insertion order).
    ///
    /// The variables become views of the optimizer's flat buffers, so build the model first
    /// and one optimizer per store: a second optimizer over the same store takes the
    /// variables over, and the first one no longer moves them.
    ///
    /// # Errors
    /// [`OptimError::Core`] for an invalid `config`, or stacked HD (κ > 0), which runs on
    /// hd-core's slices only; [`OptimError::UnsupportedKind`] or
    /// [`OptimError::MixedDevices`] for variables it cannot hold in one `f32` buffer.
    pub fn new(vs: &VarStore, config: Config) -> Result<Self, OptimError> {
        let rule = Optimizer::new(config)?;
        rule.check_backend_phases()?;
        let named: HashMap<String, Tensor> = vs.variables();
        let trainable = vs.trainable_variables();
        // Names of the trainable variables, matched by storage identity.
        let mut vars = Vec::with_capacity(trainable.len());
        for t in trainable {
            let name = named
                .iter()
                .find(|(_, v)| v.data_ptr() == t.data_ptr() && v.size() == t.size())
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| format!("#{}", vars.len()));
            vars.push((name, t));
        }
        let device = vars.first().map_or(vs.device(), |(_, t)| t.device());
        for (name, t) in &vars {
            if t.kind() != Kind::Float {
                return Err(OptimError::UnsupportedKind {
                    name: name.clone(),
                    kind: t.kind(),
                });
            }
            if t.device() != device {
                return Err(OptimError::MixedDevices {
                    name: name.clone(),
                    found: t.device(),
                    expected: device,
                });
            }
        }
        Self::with_vars(rule, vars, device)
    }

    fn with_vars(
        rule: Optimizer,
        vars: Vec<(String, Tensor)>,
        device: Device,
    ) -> Result<Self, OptimError> {
        let opts = (Kind::Float, device);
        let mut offset = 0i64;
        let mut placed = Vec::with_capacity(vars.len());
        for (_, tensor) in vars {
            let len = tensor.numel() as i64;
            placed.push(Placed {
                tensor,
                offset,
                len,
            });
            offset += (len + ALIGN - 1) / ALIGN * ALIGN;
        }
        let total = offset;
        let params = Tensor::f_zeros([total], opts)?;
        let grads = Tensor::f_zeros([total], opts)?;
        tch::no_grad(|| -> Result<(), TchError> {
            // Give every variable a gradient (zeros) so that it can be re-pointed at the flat
            // buffer; autograd then accumulates into it in place.
            let needs: Vec<&Tensor> = placed
                .iter()
                .map(|v| &v.tensor)
                .filter(|t| t.requires_grad() && !t.f_grad().is_ok_and(|g| g.defined()))
                .collect();
            if !needs.is_empty() {
                tch::with_grad(|| -> Result<(), TchError> {
                    let mut s = Tensor::f_zeros([], opts)?;
                    for t in &needs {
                        s = s.f_add(&t.f_sum(Kind::Float)?.f_mul_scalar(0.0)?)?;
                    }
                    s.f_backward()
                })?;
            }
            for v in placed.iter_mut() {
                let t = &mut v.tensor;
                let shape = t.size();
                let mut view = params
                    .f_narrow(0, v.offset, v.len)?
                    .f_view(shape.as_slice())?;
                view.f_copy_(t)?;
                t.f_set_data(&view)?;
                let gview = grads
                    .f_narrow(0, v.offset, v.len)?
                    .f_view(shape.as_slice())?;
                // A frozen variable has no gradient; its range of the buffer stays zero.
                let mut g = t.f_grad()?;
                if g.defined() {
                    g.f_set_data(&gview)?;
                }
            }
            Ok(())
        })?;
        let slots = rule.slots() as i64;
        let buffers = Tensor::f_zeros([slots.max(1), total], opts)?;
        // Initial buffer values from hd-core (zeros, α0 in a per-parameter α slot): one element
        // per slot, then broadcast along the slot's row.
        let mut init = vec![0.0f32; rule.slots()];
        rule.init_buffers(&mut init)?;
        for (k, v) in init.iter().enumerate() {
            if *v != 0.0 {
                let _ = buffers.f_select(0, k as i64)?.f_fill_(f64::from(*v))?;
            }
        }
        let per_tensor = rule
            .config()
            .hyper
            .is_some_and(|h| h.scope == Scope::PerTensor);
        let groups = if per_tensor { placed.len().max(1) } else { 1 };
        let alpha = Tensor::f_full([groups as i64], f64::from(rule.init_state().alpha), opts)?;
        let chunk = if device == Device::Cpu {
            CPU_CHUNK
        } else {
            usize::MAX
        };
        let mut opt = HdOptimizer {
            rule,
            step: 0,
            alpha,
            params,
            grads,
            buffers,
            vars: placed,
            chunks: Vec::new(),
            groups,
            fused: None,
            fused_unavailable: None,
        };
        opt.set_chunk_len(chunk);
        if device.is_cuda() {
            let off = std::env::var(FUSED_ENV).is_ok_and(|v| v.trim() == "0");
            let wanted = if off {
                Backend::Libtorch
            } else {
                Backend::FusedCuda
            };
            opt.set_backend(wanted);
            if off {
                opt.fused_unavailable = Some(format!("{FUSED_ENV}=0"));
            }
        }
        Ok(opt)
    }

    /// Splits the work into pieces of at most `len` elements (at least 1): [`CPU_CHUNK`] on
    /// the CPU, everything at once on a GPU. Results are the same up to the summation order of
    /// phase 1; exposed for tests and tuning.
    pub fn set_chunk_len(&mut self, len: usize) {
        let len = len.clamp(1, i64::MAX as usize) as i64;
        let per_tensor = self.groups > 1 || self.is_per_tensor();
        let mut chunks = Vec::new();
        if per_tensor {
            for (group, v) in self.vars.iter().enumerate() {
                split(&mut chunks, v.offset, v.len, len, group);
            }
        } else {
            split(&mut chunks, 0, self.params.numel() as i64, len, 0);
        }
        self.chunks = chunks;
    }

    fn is_per_tensor(&self) -> bool {
        self.rule
            .config()
            .hyper
            .is_some_and(|h| h.scope == Scope::PerTensor)
    }

    /// The hyperparameters.
    pub fn config(&self) -> &Config {
        self.rule.config()
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Number of parameters (without alignment padding).
    pub fn num_parameters(&self) -> i64 {
        self.vars.iter().map(|v| v.len).sum()
    }

    /// Zeroes every gradient (one kernel over the flat gradient buffer).
    ///
    /// # Errors
    /// A libtorch error.
    pub fn zero_grad(&mut self) -> Result<(), OptimError> {
        let _ = self.grads.f_zero_()?;
        Ok(())
    }

    /// `zero_grad`, `loss.backward()`, `step`: one training step, as tch's
    /// `nn::Optimizer::backward_step`.
    ///
    /// # Errors
    /// As [`step`](HdOptimizer::step), and a libtorch error from the backward pass.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<(), OptimError> {
        self.zero_grad()?;
        loss.f_backward()?;
        self.step()
    }

    /// One step with the gradients autograd left in the variables.
    ///
    /// Phase 1 sums hd-core's hypergradient terms over every chunk in α's scope, α is updated
    /// once on the device, then phase 2 applies the step with the new α to every chunk.
    /// A base optimizer (no [`Hyper`](hd_core::Hyper)) skips phase 1: its α never changes.
    /// On [`Backend::FusedCuda`] the same stages are one kernel each, queued without a sync.
    ///
    /// A NaN or infinite gradient is not detected here (that would need a device read every
    /// step); it makes α (HD) and the parameters non-finite, which
    /// [`check_finite`](HdOptimizer::check_finite) reports when the caller asks.
    ///
    /// # Errors
    /// [`OptimError::Core`] if the step counter would overflow; libtorch errors;
    /// [`OptimError::Fused`] if a fused kernel cannot be launched.
    pub fn step(&mut self) -> Result<(), OptimError> {
        self.realias_grads()?;
        let step = self
            .step
            .checked_add(1)
            .ok_or(OptimError::Core(hd_core::Error::StepOverflow))?;
        if self.step_fused(step)? {
            self.step = step;
            return Ok(());
        }
        let c = self.rule.constants(step);
        let slots = self.rule.slots();
        let rule = self.rule;
        tch::no_grad(|| -> Result<(), OptimError> {
            let alphas: Vec<Val> = (0..self.groups)
                .map(|g| self.alpha.f_select(0, g as i64).map(Val::new))
                .collect::<Result<_, _>>()?;
            if rule.config().hyper.is_some() {
                let mut terms: Vec<Option<Terms<Val>>> = vec![None; self.groups];
                for r in &self.chunks {
                    let (p, g, s) = self.views(r, slots)?;
                    let t = rule.terms_of(&c, &p, &g, &s)?;
                    let merged = match terms.get_mut(r.group) {
                        Some(slot) => slot,
                        None => continue,
                    };
                    *merged = Some(match merged.take() {
                        Some(acc) => acc.merge(&t),
                        None => t,
                    });
                }
                for (a, t) in alphas.iter().zip(&terms) {
                    if let Some(t) = t {
                        let next = rule.next_alpha(a, t);
                        a.clone().assign(next);
                    }
                }
            }
            for r in &self.chunks {
                let (mut p, g, mut s) = self.views(r, slots)?;
                let Some(alpha) = alphas.get(r.group) else {
                    continue;
                };
                rule.apply_to(&c, alpha, &mut p, &g, &mut s)?;
            }
            Ok(())
        })?;
        self.step = step;
        Ok(())
    }

    fn views(&self, r: &Chunk, slots: usize) -> Result<(Val, Val, Vec<Val>), TchError> {
        let p = self.params.f_narrow(0, r.offset, r.len)?;
        let g = self.grads.f_narrow(0, r.offset, r.len)?;
        let s = (0..slots as i64)
            .map(|k| {
                self.buffers
                    .f_select(0, k)?
                    .f_narrow(0, r.offset, r.len)
                    .map(Val::new)
            })
            .collect::<Result<_, _>>()?;
        Ok((Val::new(p), Val::new(g), s))
    }

    /// Makes sure every variable's gradient is still a view of the flat gradient buffer.
    /// Only host-side metadata is read (no device sync). If autograd replaced a gradient
    /// (someone set it to None, or swapped it), its values are copied in and the view restored.
    fn realias_grads(&mut self) -> Result<(), OptimError> {
        let base = self.grads.data_ptr() as usize;
        for Placed {
            tensor: t,
            offset,
            len,
        } in &self.vars
        {
            let g = t.f_grad()?;
            let want = base + (*offset as usize) * 4;
            if g.defined() && g.data_ptr() as usize == want {
                continue;
            }
            let mut view = self
                .grads
                .f_narrow(0, *offset, *len)?
                .f_view(t.size().as_slice())?;
            tch::no_grad(|| -> Result<(), TchError> {
                if g.defined() {
                    view.f_copy_(&g)?;
                    g.shallow_clone().f_set_data(&view)?;
                } else {
                    let _ = view.f_zero_()?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The current α: a 0-d device tensor (for per-tensor α, their mean; for per-parameter α,
    /// the mean of the per-parameter α buffer). Reading it back to the host is up to the caller.
    ///
    /// # Errors
    /// A libtorch error.
    pub fn alpha(&self) -> Result<Tensor, OptimError> {
        let a = if let Some(slot) = self.rule.alpha_slot() {
            let row = self.buffers.f_select(0, slot as i64)?;
            // Mean over the real parameters only (padding holds α0 too, but no parameter).
            let mut sum = Tensor::f_zeros([], (Kind::Float, self.alpha.device()))?;
            for v in &self.vars {
                sum = sum.f_add(&row.f_narrow(0, v.offset, v.len)?.f_sum(Kind::Float)?)?;
            }
            sum.f_div_scalar(self.num_parameters().max(1) as f64)?
        } else if self.groups > 1 {
            self.alpha.f_mean(Kind::Float)?
        } else {
            self.alpha.f_select(0, 0)?.f_detach_copy()?
        };
        Ok(a)
    }

    /// Every α this optimizer keeps (one, or one per variable), as a device tensor `[groups]`.
    pub fn alphas(&self) -> &Tensor {
        &self.alpha
    }

    /// [`alpha`](HdOptimizer::alpha) read back to the host (synchronises with the device).
    ///
    /// # Errors
    /// A libtorch error.
    pub fn alpha_value(&self) -> Result<f32, OptimError> {
        Ok(self.alpha()?.f_double_value(&[])? as f32)
    }

    /// Checks that α and every parameter are finite (synchronises with the device).
    ///
    /// # Errors
    /// [`OptimError::NonFinite`] naming what is not.
    pub fn check_finite(&self) -> Result<(), OptimError> {
        if !bool::try_from(self.alpha.f_isfinite()?.f_all()?)? {
            return Err(OptimError::NonFinite("alpha"));
        }
        if !bool::try_from(self.params.f_isfinite()?.f_all()?)? {
            return Err(OptimError::NonFinite("a parameter"));
        }
        Ok(())
    }
}

fn split(out: &mut Vec<Chunk>, offset: i64, len: i64, chunk: i64, group: usize) {
    let mut at = 0;
    while at < len {
        let n = chunk.min(len - at);
        out.push(Chunk {
            offset: offset + at,
            len: n,
            group,
        });
        at += n;
    }
}
