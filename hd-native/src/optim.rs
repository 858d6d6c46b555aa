//! Hypergradient descent for tch: hd-core's rules, run on libtorch tensors.
//!
//! Nothing here re-derives the maths: [`Real`] is implemented for [`Val`], a tensor newtype,
//! and each step drives hd-core's generic pieces — [`Optimizer::terms_of`] (phase 1),
//! [`Optimizer::next_alpha`] (the α update) and [`Optimizer::apply_to`] (phase 2) — exactly as
//! hd-core's own slice driver does.
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
//! [`crate::fused`]: each phase one kernel over the flat buffers, generated from the same
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
//! use hd_core::Config;
//! use hd_native::optim::HdOptimizer;
//! use tch::{nn, nn::Module, Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let net = nn::linear(vs.root() / "fc", 784, 10, Default::default());
//! let mut opt = HdOptimizer::new(&vs, Config::sgd(0.001).with_hd(0.001))?;
//! let x = Tensor::randn([128, 784], (Kind::Float, Device::Cpu));
//! let y = Tensor::randint(10, [128], (Kind::Int64, Device::Cpu));
//! let loss = net.forward(&x).cross_entropy_for_logits(&y);
//! opt.backward_step(&loss)?;
//! println!("alpha = {}", opt.alpha_value()?);
//! # Ok::<(), hd_native::optim::OptimError>(())
//! ```

use crate::fused::cuda::{CudaError, Fused};
use crate::fused::{Programs, Segment};
use hd_core::{Config, Optimizer, Real, Scope, State, Terms};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use tch::{nn::VarStore, Device, Kind, TchError, Tensor};

/// A libtorch tensor as hd-core's [`Real`]: every operation is one element-wise libtorch op in
/// `f32` (one rounding each, no fused multiply–add), so the rules follow the slice trajectory.
///
/// The result of an operation is held back one level, as the operation over its (computed)
/// operands: the next operation computes it (once, however many clones use it),
/// [`assign`](Real::assign) computes it straight into the destination with libtorch's `out=`
/// kernels (no temporary, no extra copy pass), and [`sum`](Real::sum) of a product is a dot
/// product (no product array). Each element-wise operation, and so each rounding, is the same
/// as computing every operation at once; only the order of a sum's additions is libtorch's.
#[derive(Debug)]
pub struct Val(Repr);

#[derive(Debug)]
enum Repr {
    Ready(Tensor),
    /// Shared by clones, which then compute it once.
    Pending(Rc<Pending>),
}

#[derive(Debug)]
struct Pending {
    op: Op,
    /// The result, once an operation needed it as an operand.
    done: RefCell<Option<Tensor>>,
}

/// One element-wise operation over computed operands.
#[derive(Debug)]
enum Op {
    Add(Tensor, Tensor),
    Sub(Tensor, Tensor),
    Mul(Tensor, Tensor),
    Div(Tensor, Tensor),
    Scale(Tensor, f64),
    Shift(Tensor, f64),
    Sqrt(Tensor),
    MaxConst(Tensor, f64),
    Clamp(Tensor, f64, f64),
    /// θ + (−a)·b, i.e. θ − a·b with the same roundings, as one `addcmul` pass.
    SubMul(Tensor, Tensor, Tensor),
}

impl Op {
    fn eval(&self) -> Tensor {
        match self {
            Op::Add(a, b) => a + b,
            Op::Sub(a, b) => a - b,
            Op::Mul(a, b) => a * b,
            Op::Div(a, b) => a / b,
            Op::Scale(a, k) => a * *k,
            Op::Shift(a, k) => a + *k,
            Op::Sqrt(a) => a.sqrt(),
            Op::MaxConst(a, k) => a.clamp_min(*k),
            Op::Clamp(a, lo, hi) => a.clamp(*lo, *hi),
            Op::SubMul(t, neg_a, b) => t.addcmul(neg_a, b),
        }
    }

    /// Computes the operation into `out` (which may be one of the operands).
    fn eval_into(&self, out: &Tensor) {
        let _ = match self {
            Op::Add(a, b) => a.add_out(out, b),
            Op::Sub(a, b) => a.sub_out(out, b),
            Op::Mul(a, b) => a.mul_out(out, b),
            Op::Div(a, b) => a.div_out(out, b),
            Op::Scale(a, k) => a.mul_scalar_out(out, *k),
            Op::Shift(a, k) => a.add_scalar_out(out, *k),
            Op::Sqrt(a) => a.sqrt_out(out),
            Op::MaxConst(a, k) => a.clamp_min_out(out, *k),
            Op::Clamp(a, lo, hi) => a.clamp_out(out, *lo, *hi),
            Op::SubMul(t, neg_a, b) => t.addcmul_out(out, neg_a, b),
        };
    }

    /// Elements of the result: binary operations broadcast a 0-d operand.
    fn numel(&self) -> usize {
        match self {
            Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) | Op::Div(a, b) => {
                a.numel().max(b.numel())
            }
            Op::Scale(a, _)
            | Op::Shift(a, _)
            | Op::Sqrt(a)
            | Op::MaxConst(a, _)
            | Op::Clamp(a, _, _) => a.numel(),
            Op::SubMul(t, a, b) => t.numel().max(a.numel()).max(b.numel()),
        }
    }
}

impl Val {
    /// A tensor as a value.
    pub fn new(t: Tensor) -> Val {
        Val(Repr::Ready(t))
    }

    /// The value as a tensor (computing a pending operation, once).
    pub fn tensor(&self) -> Tensor {
        match &self.0 {
            Repr::Ready(t) => t.shallow_clone(),
            Repr::Pending(p) => {
                if let Some(t) = p.done.borrow().as_ref() {
                    return t.shallow_clone();
                }
                let t = p.op.eval();
                *p.done.borrow_mut() = Some(t.shallow_clone());
                t
            }
        }
    }

    fn op(op: Op) -> Val {
        Val(Repr::Pending(Rc::new(Pending {
            op,
            done: RefCell::new(None),
        })))
    }
}

impl Clone for Val {
    /// Shares storage, as [`Real`] allows: the rules never mutate a clone, they only
    /// [`assign`](Real::assign).
    fn clone(&self) -> Self {
        match &self.0 {
            Repr::Ready(t) => Val::new(t.shallow_clone()),
            Repr::Pending(p) => Val(Repr::Pending(Rc::clone(p))),
        }
    }
}

impl Real for Val {
    fn add(&self, rhs: &Self) -> Self {
        Val::op(Op::Add(self.tensor(), rhs.tensor()))
    }
    fn sub(&self, rhs: &Self) -> Self {
        Val::op(Op::Sub(self.tensor(), rhs.tensor()))
    }
    fn sub_mul(&self, a: &Self, b: &Self) -> Self {
        Val::op(Op::SubMul(self.tensor(), a.tensor().neg(), b.tensor()))
    }
    fn mul(&self, rhs: &Self) -> Self {
        Val::op(Op::Mul(self.tensor(), rhs.tensor()))
    }
    fn div(&self, rhs: &Self) -> Self {
        Val::op(Op::Div(self.tensor(), rhs.tensor()))
    }
    fn scale(&self, k: f32) -> Self {
        Val::op(Op::Scale(self.tensor(), f64::from(k)))
    }
    fn shift(&self, k: f32) -> Self {
        Val::op(Op::Shift(self.tensor(), f64::from(k)))
    }
    fn sqrt(&self) -> Self {
        Val::op(Op::Sqrt(self.tensor()))
    }
    fn max_const(&self, k: f32) -> Self {
        Val::op(Op::MaxConst(self.tensor(), f64::from(k)))
    }
    fn clamp(&self, lo: f32, hi: f32) -> Self {
        Val::op(Op::Clamp(self.tensor(), f64::from(lo), f64::from(hi)))
    }
    fn sum(&self) -> Self {
        match &self.0 {
            // Σ a_i b_i over two vectors: one pass, no product array.
            Repr::Pending(p) => match &p.op {
                Op::Mul(a, b) if a.dim() == 1 && a.size() == b.size() => Val::new(a.dot(b)),
                _ => Val::new(self.tensor().sum(Kind::Float)),
            },
            _ => Val::new(self.tensor().sum(Kind::Float)),
        }
    }
    fn assign(&mut self, value: Self) {
        match (&self.0, value.0) {
            // In place, so views of the flat buffers (and the variables aliasing them) see it.
            (Repr::Ready(out), Repr::Pending(p)) => match p.done.borrow().as_ref() {
                Some(t) => {
                    out.shallow_clone().copy_(t);
                }
                None => p.op.eval_into(out),
            },
            (Repr::Ready(out), Repr::Ready(t)) => {
                let same = out.data_ptr() == t.data_ptr() && out.size() == t.size();
                if !same {
                    out.shallow_clone().copy_(&t);
                }
            }
            // Not a place in a buffer: just take the value.
            (Repr::Pending(_), v) => self.0 = v,
        }
    }
    fn len(&self) -> usize {
        match &self.0 {
            Repr::Ready(t) => t.numel(),
            Repr::Pending(p) => p.op.numel(),
        }
    }
}

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
    /// [`OptimError::Core`] for an invalid `config`; [`OptimError::UnsupportedKind`] or
    /// [`OptimError::MixedDevices`] for variables it cannot hold in one `f32` buffer.
    pub fn new(vs: &VarStore, config: Config) -> Result<Self, OptimError> {
        let rule = Optimizer::new(config)?;
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
    fn step_fused(&mut self, step: u64) -> Result<bool, OptimError> {
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

    /// The optimizer's state as named tensors (on the CPU) for a checkpoint:
    /// `record` (hd-core's encoding of the hyperparameters, step and α), `alpha` (every α) and
    /// `buffers` (the per-element state, `[slots, parameters]`, padding removed).
    ///
    /// # Errors
    /// A libtorch or encoding error.
    pub fn state_tensors(&self) -> Result<Vec<(String, Tensor)>, OptimError> {
        let alpha = self.alpha.f_to(Device::Cpu)?;
        let mut record = vec![0u8; hd_core::RECORD_LEN];
        let first = alpha.f_double_value(&[0])? as f32;
        let n = self.rule.encode(
            &State {
                step: self.step,
                alpha: first,
            },
            &mut record,
        )?;
        record.truncate(n);
        let mut out = vec![
            ("record".to_string(), Tensor::f_from_slice(&record)?),
            ("alpha".to_string(), alpha),
        ];
        if self.rule.slots() > 0 {
            out.push(("buffers".to_string(), self.packed_buffers()?));
        }
        Ok(out)
    }

    /// The buffers without the alignment padding, `[slots, parameters]` on the CPU.
    fn packed_buffers(&self) -> Result<Tensor, TchError> {
        let mut parts = Vec::with_capacity(self.vars.len());
        for v in &self.vars {
            parts.push(self.buffers.f_narrow(1, v.offset, v.len)?);
        }
        Tensor::f_cat(&parts, 1)?.f_to(Device::Cpu)
    }

    /// Restores state saved by [`state_tensors`](HdOptimizer::state_tensors).
    ///
    /// # Errors
    /// [`OptimError::StateMismatch`] if a tensor is missing or has the wrong shape, or the saved
    /// hyperparameters differ from this optimizer's; [`OptimError::Core`] for a corrupt record.
    /// Nothing is changed on error.
    pub fn load_state(&mut self, named: &HashMap<String, Tensor>) -> Result<(), OptimError> {
        let get = |name: &str| {
            named
                .get(name)
                .ok_or_else(|| OptimError::StateMismatch(format!("no '{name}' tensor")))
        };
        let record = get("record")?;
        if record.kind() != Kind::Uint8 {
            // Converting would read other bytes than were written.
            return Err(OptimError::StateMismatch(format!(
                "record is {:?}, expected Uint8",
                record.kind()
            )));
        }
        let mut bytes = vec![0u8; record.numel()];
        record.f_copy_data_u8(&mut bytes, record.numel())?;
        let (saved, state) = Optimizer::decode(&bytes)?;
        if saved.config() != self.rule.config() {
            return Err(OptimError::StateMismatch(format!(
                "saved with {:?}, now {:?}",
                saved.config(),
                self.rule.config()
            )));
        }
        let alpha = get("alpha")?;
        if alpha.size() != self.alpha.size() || alpha.kind() != Kind::Float {
            return Err(OptimError::StateMismatch(format!(
                "alpha is {:?} {:?}, expected {:?} Float",
                alpha.size(),
                alpha.kind(),
                self.alpha.size()
            )));
        }
        let slots = self.rule.slots() as i64;
        let buffers = if slots > 0 {
            let b = get("buffers")?;
            let want = [slots, self.num_parameters()];
            if b.size() != want || b.kind() != Kind::Float {
                return Err(OptimError::StateMismatch(format!(
                    "buffers are {:?} {:?}, expected {want:?} Float",
                    b.size(),
                    b.kind()
                )));
            }
            Some(b)
        } else {
            None
        };
        tch::no_grad(|| -> Result<(), TchError> {
            self.alpha.f_copy_(alpha)?;
            if let Some(b) = buffers {
                let mut at = 0;
                for v in &self.vars {
                    self.buffers
                        .f_narrow(1, v.offset, v.len)?
                        .f_copy_(&b.f_narrow(1, at, v.len)?)?;
                    at += v.len;
                }
            }
            Ok(())
        })?;
        self.step = state.step;
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
