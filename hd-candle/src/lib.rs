//! # hd-candle — hypergradient descent for candle
//!
//! Every update rule of Baydin et al., *Online Learning Rate Adaptation with Hypergradient
//! Descent* (ICLR 2018) — SGD, SGDN and Adam, each plain, with additive HD and with
//! multiplicative HDM, with α shared globally, per tensor or per parameter — as one
//! [`candle_nn::optim::Optimizer`]: [`HdOptimizer`], built from hd-core's [`Config`].
//!
//! One step t, as hd-core defines it (nothing is re-derived here): the hypergradient
//! h_t = −g_t · d_{t−1} over the parameters in α's scope, the α update (HD
//! α_t = α_{t−1} − β h_t, HDM α_t = α_{t−1}(1 + β′ cos(g_t, d_{t−1}))), then
//! θ_t = θ_{t−1} − α_t d_t with the base rule's direction d_t.
//!
//! **Two engines, one rule.** On the CPU each variable's f32 storage goes straight through
//! hd-core's fused slice loops ([`Engine::Slices`]): one read pass for the hypergradient, one
//! in-place pass for the update, bit for bit what [`hd_core::Optimizer::step_tensors`] computes.
//! On any other device the same rule is evaluated over candle tensors through hd-core's
//! [`Real`](hd_core::Real) ([`Engine::Tensors`]), with α a device tensor: a step reads nothing
//! back to the host (except when [`HdOptimizer::set_checked`] asks it to).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{linear, loss, Module, Optimizer, VarBuilder, VarMap};
//! use hd_candle::{Config, HdOptimizer};
//!
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
//! let model = linear(4, 2, vb.pp("fc"))?;
//! let mut opt = HdOptimizer::from_varmap(&varmap, Config::sgd(0.01).with_hd(0.001))?;
//! let x = Tensor::randn(0f32, 1.0, (8, 4), &Device::Cpu)?;
//! let y = Tensor::new(&[0u32, 1, 0, 1, 1, 0, 0, 1], &Device::Cpu)?;
//! for _ in 0..5 {
//!     let l = loss::cross_entropy(&model.forward(&x)?, &y)?;
//!     opt.backward_step(&l)?;
//! }
//! assert_ne!(opt.learning_rate(), 0.01); // α moved
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod slices;
mod state;
mod tensors;

pub use error::HdError;
pub use hd_core::{paper, Config, Scope, Variant};

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use hd_core::Optimizer as Rule;
use slices::Host;
use tensors::OnDevice;

/// How [`HdOptimizer`] evaluates hd-core's rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// hd-core's slice loops over each variable's CPU storage, in place (CPU only).
    Slices,
    /// hd-core's rule over candle tensors (`Real`), α on the device (any device).
    Tensors,
}

/// The state of whichever engine runs the optimizer.
#[derive(Debug)]
enum Store {
    Host(Host),
    Device(OnDevice),
}

/// Hypergradient descent (or its base rule) over a list of candle variables.
///
/// Built from an hd-core [`Config`] ([`Variant::config`] and [`paper`] give the paper's
/// nine), it implements [`candle_nn::optim::Optimizer`]:
/// [`learning_rate`](candle_nn::optim::Optimizer::learning_rate) is the current α and
/// [`set_learning_rate`](candle_nn::optim::Optimizer::set_learning_rate) restarts α (see
/// [`try_set_learning_rate`](HdOptimizer::try_set_learning_rate)).
///
/// Variables must be contiguous `f32` tensors on one device. A variable without a gradient in
/// a step (frozen, or outside the graph) neither moves nor adds to the hypergradient, and its
/// buffers keep their values.
#[derive(Debug)]
pub struct HdOptimizer {
    rule: Rule,
    vars: Vec<Var>,
    device: Device,
    store: Store,
    /// An α0 that `set_learning_rate` could not take, for the next step to report.
    pending: Option<HdError>,
    /// Whether the tensor engine reads the hypergradient terms back to refuse a non-finite
    /// step (always on for the CPU, where that costs no synchronisation).
    checked: bool,
}

impl HdOptimizer {
    /// An optimizer over `vars` (in this order: saved state is matched by position), on
    /// [`Engine::Slices`] when they are on the CPU and [`Engine::Tensors`] elsewhere.
    ///
    /// # Errors
    /// [`HdError::Core`] for an invalid `config`, or stacked HD (κ > 0), which runs on hd-core's
    /// own slice steps only; [`HdError::UnsupportedDType`], [`HdError::NotContiguous`] or
    /// [`HdError::MixedDevices`] for a variable it cannot step.
    pub fn new(vars: Vec<Var>, config: Config) -> Result<HdOptimizer, HdError> {
        let engine = match vars.first() {
            Some(v) if !v.device().is_cpu() => Engine::Tensors,
            _ => Engine::Slices,
        };
        HdOptimizer::with_engine(vars, config, engine)
    }

    /// An optimizer over every variable of `varmap`, ordered by name (a `VarMap` keeps no
    /// order, and saved state is matched by position).
    ///
    /// # Errors
    /// As [`new`](HdOptimizer::new); [`HdError::Candle`] if the map's lock is poisoned.
    pub fn from_varmap(varmap: &VarMap, config: Config) -> Result<HdOptimizer, HdError> {
        let mut named: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("the VarMap's lock is poisoned".into()))?
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        HdOptimizer::new(named.into_iter().map(|(_, v)| v).collect(), config)
    }

    /// An optimizer on the given engine (the tensor engine on the CPU too, e.g. to compare
    /// the two).
    ///
    /// # Errors
    /// As [`new`](HdOptimizer::new); [`HdError::MixedDevices`] naming variable 0 for
    /// [`Engine::Slices`] off the CPU.
    pub fn with_engine(
        vars: Vec<Var>,
        config: Config,
        engine: Engine,
    ) -> Result<HdOptimizer, HdError> {
        let rule = Rule::new(config)?;
        // Stacked HD's β_t is not in the saved state's layout yet, so neither engine takes it.
        rule.check_backend_phases()?;
        let device = vars.first().map_or(Device::Cpu, |v| v.device().clone());
        for (index, v) in vars.iter().enumerate() {
            if v.dtype() != DType::F32 {
                return Err(HdError::UnsupportedDType {
                    index,
                    dtype: v.dtype(),
                });
            }
            if !v.is_contiguous() {
                return Err(HdError::NotContiguous { index });
            }
            if !v.device().same_device(&device) {
                return Err(HdError::MixedDevices {
                    index,
                    found: format!("{:?}", v.device().location()),
                    expected: format!("{:?}", device.location()),
                });
            }
        }
        if engine == Engine::Slices && !device.is_cpu() {
            return Err(HdError::MixedDevices {
                index: 0,
                found: format!("{:?}", device.location()),
                expected: "Cpu (the slice engine)".into(),
            });
        }
        let store = match engine {
            Engine::Slices => Store::Host(Host::new(&rule, &vars)?),
            Engine::Tensors => Store::Device(OnDevice::new(&rule, &vars, &device)?),
        };
        Ok(HdOptimizer {
            rule,
            vars,
            checked: device.is_cpu(),
            device,
            store,
            pending: None,
        })
    }

    /// Which engine steps.
    pub fn engine(&self) -> Engine {
        match self.store {
            Store::Host(_) => Engine::Slices,
            Store::Device(_) => Engine::Tensors,
        }
    }

    /// The hyperparameters (α0 as last set).
    pub fn config(&self) -> &Config {
        self.rule.config()
    }

    /// The variables, in the optimizer's order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Steps taken so far (for per-tensor scope, by the variables that had gradients each
    /// step; the most any variable took).
    pub fn steps(&self) -> u64 {
        match &self.store {
            Store::Host(h) => h.steps(),
            Store::Device(d) => d.step,
        }
    }

    /// Whether a step of [`Engine::Tensors`] reads the hypergradient terms back to refuse a
    /// NaN or infinite gradient before writing (one device synchronisation per step). On by
    /// default on the CPU, off elsewhere: there a non-finite gradient makes α and the
    /// variables non-finite, which [`check_finite`](HdOptimizer::check_finite) reports.
    /// [`Engine::Slices`] always checks (it costs nothing there).
    pub fn set_checked(&mut self, checked: bool) {
        self.checked = checked;
    }

    /// One step with the gradients in `grads` (as [`candle_nn::optim::Optimizer::step`], with
    /// the typed error).
    ///
    /// Phase 1 sums hd-core's hypergradient terms over every variable in α's scope, α is
    /// updated once, then phase 2 moves every variable with the new α.
    ///
    /// # Errors
    /// [`HdError::InvalidLearningRate`] (from an earlier `set_learning_rate`),
    /// [`HdError::Gradient`] for a gradient of the wrong dtype, shape or device,
    /// [`HdError::Core`] with [`hd_core::Error::NonFinite`] for a NaN or infinite gradient
    /// (or an α that would overflow), [`HdError::Candle`]. Nothing is written on error.
    pub fn try_step(&mut self, grads: &GradStore) -> Result<(), HdError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        let grads = self.gradients(grads)?;
        match &mut self.store {
            Store::Host(h) => h.step(&self.rule, &self.vars, &grads),
            Store::Device(d) => d.step(&self.rule, &self.vars, &grads, self.checked),
        }
    }

    /// Each variable's gradient in `grads` (`None` where it has none), checked against it.
    fn gradients(&self, grads: &GradStore) -> Result<Vec<Option<Tensor>>, HdError> {
        let mut out = Vec::with_capacity(self.vars.len());
        for (index, v) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(v.as_tensor()) else {
                out.push(None);
                continue;
            };
            let problem = if g.dtype() != DType::F32 {
                Some(format!("is {:?}, not F32", g.dtype()))
            } else if g.shape() != v.shape() {
                Some(format!(
                    "has shape {:?}, the variable {:?}",
                    g.dims(),
                    v.dims()
                ))
            } else if !g.device().same_device(&self.device) {
                Some(format!("is on {:?}", g.device().location()))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(HdError::Gradient { index, problem });
            }
            out.push(Some(g.clone()));
        }
        Ok(out)
    }

    /// The current α (see [`learning_rate`](candle_nn::optim::Optimizer::learning_rate)),
    /// read back to the host.
    ///
    /// # Errors
    /// [`HdError::Candle`] if it cannot be read from the device.
    pub fn try_learning_rate(&self) -> Result<f32, HdError> {
        match &self.store {
            Store::Host(h) => Ok(h.alpha(&self.rule)),
            Store::Device(d) => d.alpha(&self.rule),
        }
    }

    /// Every α this optimizer keeps, on the host: one (global scope, or the base rule's α0),
    /// one per variable (per-tensor scope) or one per parameter, variables one after another
    /// (per-parameter scope).
    ///
    /// # Errors
    /// [`HdError::Candle`] if they cannot be read from the device.
    pub fn alphas(&self) -> Result<Vec<f32>, HdError> {
        match &self.store {
            Store::Host(h) => Ok(h.alphas(&self.rule)),
            Store::Device(d) => d.alphas(&self.rule),
        }
    }

    /// Restarts α at `lr`: α0 becomes `lr`, and so does every α (the global one, each
    /// variable's, or each parameter's). The step count and the base rule's buffers (momentum,
    /// Adam's moments, d_{t−1}) are kept, so the next hypergradient adapts α from `lr`.
    ///
    /// A learning-rate schedule that calls this every step overrides the adaptation: with
    /// hypergradient descent, let α move instead.
    ///
    /// # Errors
    /// [`HdError::InvalidLearningRate`] if hd-core refuses α0 = `lr` (not finite, or outside
    /// the clamp); nothing changes. [`HdError::Candle`] on a device error.
    pub fn try_set_learning_rate(&mut self, lr: f64) -> Result<(), HdError> {
        let config = Config {
            alpha0: lr as f32,
            ..*self.rule.config()
        };
        let rule =
            Rule::new(config).map_err(|source| HdError::InvalidLearningRate { lr, source })?;
        match &mut self.store {
            Store::Host(h) => h.set_alpha(&rule, lr as f32),
            Store::Device(d) => d.set_alpha(&rule, lr as f32)?,
        }
        self.rule = rule;
        Ok(())
    }

    /// Checks that α and every variable are finite (reads them back from the device).
    ///
    /// # Errors
    /// [`HdError::Core`] with [`hd_core::Error::NonFinite`] if one is not; [`HdError::Candle`].
    pub fn check_finite(&self) -> Result<(), HdError> {
        let alphas = self.alphas()?;
        let finite = |t: &Tensor| -> Result<bool, HdError> {
            // x·0 is 0 for every finite x and NaN otherwise, so one sum tests every element.
            let s = t.affine(0.0, 0.0)?.sum_all()?.to_scalar::<f32>()?;
            Ok(s == 0.0)
        };
        let mut ok = alphas.iter().all(|a| a.is_finite());
        for v in &self.vars {
            ok = ok && finite(v.as_tensor())?;
        }
        if ok {
            Ok(())
        } else {
            Err(HdError::Core(hd_core::Error::NonFinite))
        }
    }
}

impl candle_nn::optim::Optimizer for HdOptimizer {
    type Config = Config;

    fn new(vars: Vec<Var>, config: Config) -> candle_core::Result<HdOptimizer> {
        Ok(HdOptimizer::new(vars, config)?)
    }

    /// [`try_step`](HdOptimizer::try_step), its [`HdError`] wrapped in candle's error
    /// (`candle_core::Error::Wrapped`).
    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        Ok(self.try_step(grads)?)
    }

    /// The current α: the global α; for per-tensor scope the mean of the variables' α, for
    /// per-parameter scope the mean over every parameter; for a base rule, α0. NaN if it
    /// cannot be read from the device ([`try_learning_rate`](HdOptimizer::try_learning_rate)
    /// says why).
    fn learning_rate(&self) -> f64 {
        self.try_learning_rate().map_or(f64::NAN, f64::from)
    }

    /// [`try_set_learning_rate`](HdOptimizer::try_set_learning_rate); a value it refuses
    /// changes nothing and its error is returned by the next step.
    fn set_learning_rate(&mut self, lr: f64) {
        if let Err(e) = self.try_set_learning_rate(lr) {
            self.pending = Some(e);
        }
    }
}

/// The crate's README, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
