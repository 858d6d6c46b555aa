//! Prodigy (Mishchenko & Defazio, *Prodigy: An Expeditiously Adaptive Parameter-Free Learner*,
//! ICML 2024, arXiv:2306.06101), its Adam form as PyPI's `prodigyopt` 1.1.2 implements it.

use super::shared::{require_at_least, step_all, PeerSums};
use crate::error::Error;
use crate::optimizer::TensorMut;
use crate::real::sqrtf;
use crate::scalar::{ln, one_minus_exp};
use crate::slices::{split_slots, split_slots_mut};

/// Prodigy's hyperparameters: the arguments of `prodigyopt.Prodigy`, plain `Copy` data,
/// validated by [`Prodigy::new`]. [`ProdigyConfig::DEFAULT`] is the package's defaults.
///
/// Not taken: `fsdp_in_use` (sharded parameters) and `slice_p` (estimating d from every p-th
/// element, an approximation); this is the package with `slice_p = 1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProdigyConfig {
    /// `lr`: a multiplier of the estimated step size d (finite, > 0; default 1).
    pub lr: f32,
    /// β1 of the first moment, in [0, 1) (default 0.9).
    pub beta1: f32,
    /// β2 of the second moment, in [0, 1) (default 0.999).
    pub beta2: f32,
    /// β3 of the d estimate's running sums, in [0, 1); `None` is √β2 (the default).
    pub beta3: Option<f32>,
    /// ε, added to √v scaled by d (finite, > 0; default 1e−8).
    pub eps: f32,
    /// Weight decay λ ≥ 0 (default 0).
    pub weight_decay: f32,
    /// Decoupled (AdamW) weight decay when true (the default), else coupled L2.
    pub decouple: bool,
    /// Adam's bias correction √(1−β2^t)/(1−β1^t) on the step (default off).
    pub use_bias_correction: bool,
    /// Leaves `lr` and the bias correction out of s's increments (default off).
    pub safeguard_warmup: bool,
    /// The initial estimate d_0 (finite, > 0; default 1e−6).
    pub d0: f32,
    /// The coefficient of the estimate d̂ (finite, > 0; default 1), the package's preferred knob.
    pub d_coef: f32,
    /// The largest factor by which d may grow in one step, ≥ 1 or +∞ (the default).
    pub growth_rate: f32,
}

impl ProdigyConfig {
    /// The package's defaults: lr 1, β (0.9, 0.999), β3 √β2, ε 1e−8, no weight decay
    /// (decoupled), no bias correction, no safeguard, d_0 1e−6, d_coef 1, growth ∞.
    pub const DEFAULT: ProdigyConfig = ProdigyConfig {
        lr: 1.0,
        beta1: 0.9,
        beta2: 0.999,
        beta3: None,
        eps: 1e-8,
        weight_decay: 0.0,
        decouple: true,
        use_bias_correction: false,
        safeguard_warmup: false,
        d0: 1e-6,
        d_coef: 1.0,
        growth_rate: f32::INFINITY,
    };

    /// Checks every hyperparameter.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] naming the first one out of its domain.
    pub fn validate(&self) -> Result<(), Error> {
        require_at_least(self.lr, 0.0, true, "lr", "finite and > 0")?;
        Error::require((0.0..1.0).contains(&self.beta1), "beta1", "in [0, 1)")?;
        Error::require((0.0..1.0).contains(&self.beta2), "beta2", "in [0, 1)")?;
        if let Some(b3) = self.beta3 {
            Error::require((0.0..1.0).contains(&b3), "beta3", "in [0, 1)")?;
        }
        require_at_least(self.eps, 0.0, true, "eps", "finite and > 0")?;
        require_at_least(
            self.weight_decay,
            0.0,
            false,
            "weight_decay",
            "finite and >= 0",
        )?;
        require_at_least(self.d0, 0.0, true, "d0", "finite and > 0")?;
        require_at_least(self.d_coef, 0.0, true, "d_coef", "finite and > 0")?;
        // +∞ (no limit) is the default; NaN and factors below 1 are not growth limits.
        Error::require(self.growth_rate >= 1.0, "growth_rate", ">= 1 (or +inf)")
    }
}

impl Default for ProdigyConfig {
    fn default() -> Self {
        ProdigyConfig::DEFAULT
    }
}

/// Prodigy's scalar state between steps: plain data the caller owns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProdigyState {
    /// Steps taken, t (a step whose ‖s_t‖_1 is 0 is not taken, as in the package).
    pub step: u64,
    /// The step-size estimate d_t.
    pub d: f32,
    /// The largest estimate so far, max(d_0, d̂_1, …, d̂_t).
    pub d_max: f32,
    /// The running numerator r_t of d̂.
    pub numerator: f32,
}

/// The scalars of one step, from [`Prodigy::advance`] for [`Prodigy::apply`]: the step
/// writes with both the previous estimate d_{t−1} (the moments' and s's increments, the step
/// length) and the new one d_t (ε's scale).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProdigyStep {
    /// d_{t−1}.
    pub d_prev: f32,
    /// d_t.
    pub d: f32,
    /// The step length d_{t−1} · lr · (bias correction).
    pub dlr: f32,
    /// False when ‖s_t‖_1 = 0: the package returns before touching anything, and so does
    /// [`apply`](Prodigy::apply).
    pub taken: bool,
}

/// Prodigy with validated hyperparameters. Four slots per parameter: m, v, s, x_0.
///
/// One step t (t = `state.step + 1`, d = d_{t−1}, all state from the previous step), exactly
/// the package's order of operations:
///
/// - g ← g + λx with coupled weight decay (`decouple = false`);
/// - dlr = d · lr · b_t, where b_t = √(1−β2^t)/(1−β1^t) with bias correction, else 1;
/// - Δr = (d/d_0) · dlr · ⟨g, x_0 − x⟩, summed over every parameter;
/// - m ← β1 m + d(1−β1) g;  v ← β2 v + d²(1−β2) g²;
/// - s ← β3 s + (d/d_0) · w · g, with w = d under `safeguard_warmup`, else dlr;
/// - r_t = β3 r_{t−1} + Δr;  d̂ = d_coef · r_t / ‖s‖_1 (the 1-norm over every parameter);
///   if ‖s‖_1 = 0, nothing at all changes (the package returns early);
/// - if d = d_0: d ← max(d, d̂);  d_max ← max(d_max, d̂);  d_t = min(d_max, d · growth_rate);
/// - x ← x − λ · dlr · x with decoupled weight decay;
/// - x ← x − dlr · m / (√v + d_t ε).
///
/// The factor d/d_0 in Δr and s cancels in d̂; the package keeps it so the sums do not
/// underflow while d is small. With growth_rate = ∞, d_t = max(d_0, d̂_1, …, d̂_t).
///
/// **Differences from `prodigyopt`.** Every element-wise operation is the package's in the
/// same order, in f32. Its scalars (d, d_max, r, dlr, the increments' factors) are Python
/// floats, i.e. f64, and its per-tensor sums are added in f64; here they are f32, and the sums
/// are summed in [`LANES`](crate::LANES) lanes across tensors rather than per tensor. r_t is
/// an exponential average, so its f32 rounding does not grow with t (its relative error stays
/// below about 2^−24/(1−β3)). β1 = 0 keeps the m slot (the package drops it and multiplies g
/// by d instead: the same value up to one rounding).
///
/// **What f32 costs.** x_0 − x is formed in f32, as in the package (whose parameters are f32
/// too): while the first steps (about d_0 long) are below the resolution of x, their rounding
/// enters r and so d for good (about 1e−3 relative from |x| ≈ 0.5 with d_0 = 1e−6), the same
/// in both. The factor (d/d_0) · dlr of r's increments grows as d²/d_0; where the package's
/// f64 r would leave f32's range (d²/d_0 · |⟨g, x_0 − x⟩| above about 3e38, so d in the
/// billions), [`advance`](Prodigy::advance) returns [`Error::NonFinite`] instead.
///
/// ```
/// use hd_core::{Prodigy, ProdigyConfig};
/// let opt = Prodigy::new(ProdigyConfig::DEFAULT)?;
/// let mut state = opt.init_state();
/// let mut theta = [1.0f32, -2.0, 0.5];
/// let mut buffers = [0.0f32; 12]; // m, v, s and x_0 for 3 parameters
/// opt.init_buffers(&theta, &mut buffers)?;
/// for _ in 0..100 {
///     let grad = theta; // f(θ) = ½‖θ‖²
///     opt.step(&mut state, &mut theta, &grad, &mut buffers)?;
/// }
/// assert!(state.d > 1e-3); // d grew from 1e−6 towards the distance to the optimum
/// assert!(theta.iter().all(|x| x.abs() < 0.5));
/// # Ok::<(), hd_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prodigy {
    config: ProdigyConfig,
    /// β3 resolved (√β2 when not given).
    beta3: f32,
}

/// Slots per parameter: m, v, s, x_0.
const SLOTS: usize = 4;

impl Prodigy {
    /// Validates `config` once; every step then only checks lengths and finiteness.
    ///
    /// # Errors
    /// As [`ProdigyConfig::validate`].
    pub fn new(config: ProdigyConfig) -> Result<Prodigy, Error> {
        config.validate()?;
        Ok(Prodigy {
            config,
            beta3: config.beta3.unwrap_or_else(|| sqrtf(config.beta2)),
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &ProdigyConfig {
        &self.config
    }

    /// β3 as used: the configured one, or √β2.
    pub fn beta3(&self) -> f32 {
        self.beta3
    }

    /// The state before the first step: t = 0, d = d_max = d_0, r = 0.
    pub fn init_state(&self) -> ProdigyState {
        ProdigyState {
            step: 0,
            d: self.config.d0,
            d_max: self.config.d0,
            numerator: 0.0,
        }
    }

    /// Per-element buffers per parameter: 4 (m, v, s, x_0).
    pub fn slots(&self) -> usize {
        SLOTS
    }

    /// Length of the buffer slice for `n` parameters (`None` on overflow).
    pub fn buffer_len(&self, n: usize) -> Option<usize> {
        n.checked_mul(SLOTS)
    }

    /// Bytes of f32 traffic per parameter one [`step`](Prodigy::step) must move (DESIGN §7):
    /// phase 1 reads g, θ, s and x_0 (⟨g, x_0 − θ⟩ and ‖s_t‖_1 need all four); phase 2 reads
    /// g and reads and writes θ and every slot but x_0. Coupled weight decay reads θ, which
    /// both phases read anyway.
    pub fn model_bytes_per_parameter(&self) -> usize {
        4 * 4 + 4 + 8 * SLOTS
    }

    /// A fresh start for the parameters `params`: m = v = s = 0 and x_0 = `params`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if `buffers` is not [`buffer_len`](Prodigy::buffer_len)
    /// of `params`; nothing is written.
    pub fn init_buffers(&self, params: &[f32], buffers: &mut [f32]) -> Result<(), Error> {
        Error::check_lengths(SLOTS, params.len(), params.len(), buffers.len())?;
        let [m, v, s, x0] = split_slots_mut::<SLOTS>(buffers, params.len());
        for b in m.iter_mut().chain(v.iter_mut()).chain(s.iter_mut()) {
            *b = 0.0;
        }
        for (b, x) in x0.iter_mut().zip(params) {
            *b = *x;
        }
        Ok(())
    }

    /// The step length dlr = d · lr · b_t and s's increment factor (d/d_0) · w at step `t`
    /// with estimate `d`.
    fn factors(&self, t: u64, d: f32) -> (f32, f32) {
        let c = &self.config;
        let bias = if c.use_bias_correction {
            sqrtf(one_minus_exp(t, ln(c.beta2))) / one_minus_exp(t, ln(c.beta1))
        } else {
            1.0
        };
        let dlr = d * c.lr * bias;
        let w = if c.safeguard_warmup { d } else { dlr };
        (dlr, (d / c.d0) * w)
    }

    /// The gradient with coupled weight decay, g + λx, else g.
    #[inline(always)]
    fn gradient(&self, g: f32, x: f32) -> f32 {
        let c = &self.config;
        if !c.decouple && c.weight_decay != 0.0 {
            g + c.weight_decay * x
        } else {
            g
        }
    }

    /// Phase 1 over one tensor: adds ⟨g, x_0 − x⟩ and ‖s_t‖_1 to `sums`. Reads only.
    ///
    /// Feed every tensor, then [`advance`](Prodigy::advance) once, then
    /// [`apply`](Prodigy::apply) to every tensor: bit-identical to one
    /// [`step`](Prodigy::step) over their concatenation (buffers concatenated slot by slot).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if `grads` differs from `params` in length or `buffers` is
    /// not [`buffer_len`](Prodigy::buffer_len)`(params.len())`; [`Error::StepOverflow`].
    pub fn accumulate(
        &self,
        state: &ProdigyState,
        params: &[f32],
        grads: &[f32],
        buffers: &[f32],
        sums: &mut PeerSums,
    ) -> Result<(), Error> {
        Error::check_lengths(SLOTS, params.len(), grads.len(), buffers.len())?;
        let t = state.step.checked_add(1).ok_or(Error::StepOverflow)?;
        let (_, s_factor) = self.factors(t, state.d);
        let beta3 = self.beta3;
        let [_, _, s, x0] = split_slots::<SLOTS>(buffers, params.len());
        for (((x, g), s), x0) in params.iter().zip(grads).zip(s).zip(x0) {
            let g = self.gradient(*g, *x);
            // s_t as `apply` will write it, with the same operations: its 1-norm is d̂'s
            // denominator. A NaN or ∞ in g makes both terms non-finite.
            let s_next = *s * beta3 + s_factor * g;
            sums.push(g * (*x0 - *x), s_next.abs());
        }
        Ok(())
    }

    /// Ends phase 1: from the sums over every tensor, the new estimate d_t and the state of
    /// step t; returns the scalars [`apply`](Prodigy::apply) needs.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if a gradient had a NaN or ∞, or the sums or d overflowed;
    /// [`Error::StepOverflow`]. `state` is unchanged on error.
    pub fn advance(&self, state: &mut ProdigyState, sums: &PeerSums) -> Result<ProdigyStep, Error> {
        let c = &self.config;
        let (dot, norm) = sums.totals();
        if !(dot.is_finite() && norm.is_finite()) {
            return Err(Error::NonFinite);
        }
        let t = state.step.checked_add(1).ok_or(Error::StepOverflow)?;
        let d = state.d;
        let (dlr, _) = self.factors(t, d);
        let skipped = ProdigyStep {
            d_prev: d,
            d,
            dlr,
            taken: false,
        };
        if norm == 0.0 {
            return Ok(skipped);
        }
        let numerator = self.beta3 * state.numerator + (d / c.d0) * dlr * dot;
        let d_hat = c.d_coef * numerator / norm;
        if !d_hat.is_finite() {
            return Err(Error::NonFinite);
        }
        // The package's order: the first growth from d_0 is unlimited, later ones at most
        // growth_rate. (Python's max/min; no NaN reaches them.)
        let mut d_next = d;
        if d == c.d0 {
            d_next = max(d_next, d_hat);
        }
        let d_max = max(state.d_max, d_hat);
        let d_next = min(d_max, d_next * c.growth_rate);
        *state = ProdigyState {
            step: t,
            d: d_next,
            d_max,
            numerator,
        };
        Ok(ProdigyStep {
            d: d_next,
            taken: true,
            ..skipped
        })
    }

    /// Phase 2 over one tensor, with the scalars [`advance`](Prodigy::advance) returned for
    /// this step. Call it with the gradients phase 1 checked.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] as for [`accumulate`](Prodigy::accumulate); nothing is
    /// written on error.
    pub fn apply(
        &self,
        step: &ProdigyStep,
        params: &mut [f32],
        grads: &[f32],
        buffers: &mut [f32],
    ) -> Result<(), Error> {
        Error::check_lengths(SLOTS, params.len(), grads.len(), buffers.len())?;
        if !step.taken {
            return Ok(());
        }
        let c = &self.config;
        let d = step.d_prev;
        // s's factor is recomputed from dlr exactly as phase 1 computed it.
        let s_factor = (d / c.d0) * if c.safeguard_warmup { d } else { step.dlr };
        let m_factor = d * (1.0 - c.beta1);
        let v_factor = d * d * (1.0 - c.beta2);
        let eps = step.d * c.eps;
        let decay = if c.decouple && c.weight_decay != 0.0 {
            Some(-c.weight_decay * step.dlr)
        } else {
            None
        };
        let (beta1, beta2, beta3) = (c.beta1, c.beta2, self.beta3);
        let [m, v, s, _] = split_slots_mut::<SLOTS>(buffers, params.len());
        let slots = m.iter_mut().zip(v.iter_mut()).zip(s.iter_mut());
        for ((x, g), ((m, v), s)) in params.iter_mut().zip(grads).zip(slots) {
            let g = self.gradient(*g, *x);
            *m = *m * beta1 + m_factor * g;
            *v = *v * beta2 + v_factor * g * g;
            *s = *s * beta3 + s_factor * g;
            if let Some(k) = decay {
                *x += k * *x;
            }
            *x -= step.dlr * (*m / (sqrtf(*v) + eps));
        }
        Ok(())
    }

    /// One whole step over one contiguous buffer: phase 1, advance, phase 2.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::NonFinite`], [`Error::StepOverflow`]; on error,
    /// `state`, `params` and `buffers` are exactly as they were.
    pub fn step(
        &self,
        state: &mut ProdigyState,
        params: &mut [f32],
        grads: &[f32],
        buffers: &mut [f32],
    ) -> Result<(), Error> {
        let whole = TensorMut {
            params,
            grads,
            buffers,
        };
        self.step_tensors(state, &mut [whole])
    }

    /// One step over a model made of several tensors, d estimated from all of them.
    ///
    /// # Errors
    /// As [`step`](Prodigy::step), for any tensor; on error nothing is changed.
    pub fn step_tensors(
        &self,
        state: &mut ProdigyState,
        tensors: &mut [TensorMut<'_>],
    ) -> Result<(), Error> {
        step_all(
            state,
            tensors,
            |s, t, sums| self.accumulate(s, t.params, t.grads, t.buffers, sums),
            |s, sums| self.advance(s, sums),
            |p, t| self.apply(p, t.params, t.grads, t.buffers),
        )
    }
}

/// Python's `max(a, b)`: `a` unless `b` is larger.
fn max(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

/// Python's `min(a, b)`: `a` unless `b` is smaller.
fn min(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}
