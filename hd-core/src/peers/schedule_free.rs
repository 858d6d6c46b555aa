//! Schedule-Free (Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, *The Road Less
//! Scheduled*, NeurIPS 2024, arXiv:2405.15682), its SGD and AdamW forms as PyPI's
//! `schedulefree` 1.4.1 implements them (`SGDScheduleFree`, `AdamWScheduleFree`).

use super::shared::{lerp, require_at_least, step_all, PeerSums};
use crate::error::Error;
use crate::optimizer::TensorMut;
use crate::real::sqrtf;
use crate::scalar::{ln, one_minus_exp};
use crate::slices::{split_slots, split_slots_mut};

/// The base step of Schedule-Free: what the z sequence descends along.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScheduleFreeBase {
    /// `SGDScheduleFree`: z descends along g (one slot per parameter: z).
    Sgd,
    /// `AdamWScheduleFree`: z descends along g/(√(v/(1−β2^t)) + ε) (two slots: z, v).
    AdamW {
        /// β2 of the second moment, in [0, 1) (default 0.999).
        beta2: f32,
        /// ε (finite, > 0; default 1e−8).
        eps: f32,
    },
}

/// Schedule-Free's hyperparameters: the arguments of the package's optimizers, plain `Copy`
/// data, validated by [`ScheduleFree::new`]. `foreach` is not one: it chooses between two
/// loops of the package that compute the same thing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleFreeConfig {
    /// SGD or AdamW.
    pub base: ScheduleFreeBase,
    /// The learning rate γ (finite, ≥ 0).
    pub lr: f32,
    /// β, the interpolation between z and x where gradients are taken: SGD's `momentum`,
    /// AdamW's β1; in (0, 1) (default 0.9).
    pub beta: f32,
    /// Weight decay λ ≥ 0, applied at y (default 0).
    pub weight_decay: f32,
    /// Linear warm-up of γ over this many steps (default 0).
    pub warmup_steps: u64,
    /// The power r of the polynomial weights t^r of the average (finite; default 0).
    pub r: f32,
    /// The average's weights are γ_max^p with p this power (finite, ≥ 0; default 2).
    pub weight_lr_power: f32,
}

impl ScheduleFreeConfig {
    /// `SGDScheduleFree` with learning rate `lr` and its other defaults (momentum 0.9, no
    /// weight decay or warm-up, r = 0, weight_lr_power = 2). The package's default lr is 1.
    pub const fn sgd(lr: f32) -> ScheduleFreeConfig {
        ScheduleFreeConfig {
            base: ScheduleFreeBase::Sgd,
            lr,
            beta: 0.9,
            weight_decay: 0.0,
            warmup_steps: 0,
            r: 0.0,
            weight_lr_power: 2.0,
        }
    }

    /// `AdamWScheduleFree` with learning rate `lr` and its other defaults (β (0.9, 0.999),
    /// ε 1e−8, no weight decay or warm-up, r = 0, weight_lr_power = 2). The package's default
    /// lr is 0.0025.
    pub const fn adamw(lr: f32) -> ScheduleFreeConfig {
        ScheduleFreeConfig {
            base: ScheduleFreeBase::AdamW {
                beta2: 0.999,
                eps: 1e-8,
            },
            ..ScheduleFreeConfig::sgd(lr)
        }
    }

    /// Checks every hyperparameter.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] naming the first one out of its domain.
    pub fn validate(&self) -> Result<(), Error> {
        require_at_least(self.lr, 0.0, false, "lr", "finite and >= 0")?;
        // β = 0 would make x = (y − (1−β) z)/β undefined, β = 1 would never move y off x.
        Error::require(self.beta > 0.0 && self.beta < 1.0, "beta", "in (0, 1)")?;
        require_at_least(
            self.weight_decay,
            0.0,
            false,
            "weight_decay",
            "finite and >= 0",
        )?;
        Error::require(self.r.is_finite(), "r", "finite")?;
        require_at_least(
            self.weight_lr_power,
            0.0,
            false,
            "weight_lr_power",
            "finite and >= 0",
        )?;
        if let ScheduleFreeBase::AdamW { beta2, eps } = self.base {
            Error::require((0.0..1.0).contains(&beta2), "beta2", "in [0, 1)")?;
            require_at_least(eps, 0.0, true, "eps", "finite and > 0")?;
        }
        Ok(())
    }
}

/// Schedule-Free's scalar state between steps: plain data the caller owns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleFreeState {
    /// Steps taken, t.
    pub step: u64,
    /// The largest learning rate so far (−1 before the first step, as in the package).
    pub lr_max: f32,
    /// The running weight sum W_t = Σ_{i ≤ t} w_i, rounded to f32.
    pub weight_sum: f32,
    /// What rounding left out of `weight_sum` (W_t = `weight_sum` + this, to about 2^−48):
    /// the package's sum is an f64, and a plain f32 sum of t terms would drift by up to
    /// t · 2^−24 relatively.
    pub weight_sum_low: f32,
}

/// The scalars of one step, from [`ScheduleFree::advance`] for [`ScheduleFree::apply`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleFreeStep {
    /// γ_t, the learning rate after warm-up.
    pub lr: f32,
    /// c_{t} = w_t / W_t, the weight of z_t in the average x_t (0 while W_t = 0).
    pub c: f32,
    /// 1 − β2^t (AdamW), else 1.
    pub bias_correction2: f32,
}

/// Schedule-Free SGD or AdamW with validated hyperparameters.
///
/// Three sequences: z (the base optimizer's iterates), x (their weighted average, where the
/// model is *evaluated*) and y = (1 − β) z + β x (where the gradient is *taken*). The
/// parameters the caller holds during training are y, as in the package; the buffers hold z
/// (and AdamW's v); x is implicit, x = (y − (1 − β) z)/β, and [`eval_point`] gives it.
///
/// One step t (t = `state.step + 1`), on the gradient g taken at y_{t−1}:
///
/// - γ_t = γ · min(1, t / warmup_steps);  γ_max ← max(γ_max, γ_t);
/// - w_t = t^r · γ_max^p (p = weight_lr_power);  W_t = W_{t−1} + w_t;  c_t = w_t / W_t
///   (0 while W_t = 0);
/// - SGD: g ← g + λ y;  AdamW: v ← β2 v + (1−β2) g², g ← g / (√(v/(1−β2^t)) + ε) + λ y;
/// - y ← lerp(y, z, c_t) + γ_t (β(1 − c_t) − 1) g;
/// - z ← z − γ_t g.
///
/// Those two updates are, without forming x, x_t = (1 − c_t) x_{t−1} + c_t z_t and
/// y_t = (1 − β) z_t + β x_t: substituting z_t = z_{t−1} − γ_t g and
/// β x_{t−1} = y_{t−1} − (1 − β) z_{t−1} into y_t collects to
/// (1 − c_t) y_{t−1} + c_t z_{t−1} − γ_t (1 − β(1 − c_t)) g.
///
/// **Train and evaluation points.** The package's parameters hold y while training and x
/// while evaluating, and `optimizer.eval()` / `optimizer.train()` switch them in place:
/// eval sets p ← lerp(y, z, 1 − 1/β) = x, train sets p ← lerp(x, z, 1 − β) = y. Here the
/// caller's parameters are always y for [`step`](ScheduleFree::step): evaluate at
/// [`eval_point`](ScheduleFree::eval_point) (x written to a slice of the caller's, leaving y
/// untouched), or switch in place as the package does with [`to_eval`](ScheduleFree::to_eval)
/// and back with [`to_train`](ScheduleFree::to_train) before the next step. As in the package,
/// such a round trip may change y by a rounding; `eval_point` does not.
///
/// **Differences from `schedulefree`.** Every element-wise operation is the package's in
/// the same order, in f32 (`lerp` in ATen's two-branch form). Its scalars (γ_max, w_t, W_t,
/// c_t, the factor γ_t(β(1 − c_t) − 1)) are Python floats, i.e. f64, rounded to f32 by the
/// kernels; here they are computed in f32, with W_t kept as an unevaluated sum of two f32s so
/// that c_t stays within a few roundings of the package's over any number of steps. torch's
/// vectorised CPU `lerp` may fuse its multiply and add (one rounding fewer).
///
/// ```
/// use hd_core::{ScheduleFree, ScheduleFreeConfig};
/// let opt = ScheduleFree::new(ScheduleFreeConfig::sgd(0.5))?;
/// let mut state = opt.init_state();
/// let mut y = [1.0f32, -2.0];
/// let mut buffers = [0.0f32; 2]; // z
/// opt.init_buffers(&y, &mut buffers)?;
/// for _ in 0..100 {
///     let grad = y; // f(θ) = ½‖θ‖², taken at y
///     opt.step(&mut state, &mut y, &grad, &mut buffers)?;
/// }
/// let mut x = [0.0f32; 2];
/// opt.eval_point(&y, &buffers, &mut x)?; // evaluate the model at x
/// assert!(x.iter().all(|v| v.abs() < 0.1));
/// # Ok::<(), hd_core::Error>(())
/// ```
///
/// [`eval_point`]: ScheduleFree::eval_point
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleFree {
    config: ScheduleFreeConfig,
}

impl ScheduleFree {
    /// Validates `config` once; every step then only checks lengths and finiteness.
    ///
    /// # Errors
    /// As [`ScheduleFreeConfig::validate`].
    pub fn new(config: ScheduleFreeConfig) -> Result<ScheduleFree, Error> {
        config.validate()?;
        Ok(ScheduleFree { config })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &ScheduleFreeConfig {
        &self.config
    }

    /// The state before the first step: t = 0, γ_max = −1, W = 0.
    pub fn init_state(&self) -> ScheduleFreeState {
        ScheduleFreeState {
            step: 0,
            lr_max: -1.0,
            weight_sum: 0.0,
            weight_sum_low: 0.0,
        }
    }

    /// Per-element buffers per parameter: 1 (SGD: z) or 2 (AdamW: z, v).
    pub fn slots(&self) -> usize {
        match self.config.base {
            ScheduleFreeBase::Sgd => 1,
            ScheduleFreeBase::AdamW { .. } => 2,
        }
    }

    /// Length of the buffer slice for `n` parameters (`None` on overflow).
    pub fn buffer_len(&self, n: usize) -> Option<usize> {
        n.checked_mul(self.slots())
    }

    /// Bytes of f32 traffic per parameter one [`step`](ScheduleFree::step) must move (DESIGN
    /// §7): phase 1 reads g (its finiteness check), and y too when SGD's coupled λy is added;
    /// phase 2 reads g and reads and writes y and every slot (z; AdamW's v).
    pub fn model_bytes_per_parameter(&self) -> usize {
        let check = if self.sgd_decay() != 0.0 { 8 } else { 4 };
        check + 4 + 8 * (1 + self.slots())
    }

    /// A fresh start from the parameters `params` (x_0 = y_0 = z_0): z = `params`, v = 0.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if `buffers` is not [`buffer_len`](ScheduleFree::buffer_len)
    /// of `params`; nothing is written.
    pub fn init_buffers(&self, params: &[f32], buffers: &mut [f32]) -> Result<(), Error> {
        Error::check_lengths(self.slots(), params.len(), params.len(), buffers.len())?;
        let (z, v) = buffers.split_at_mut(params.len().min(buffers.len()));
        for (b, x) in z.iter_mut().zip(params) {
            *b = *x;
        }
        for b in v.iter_mut() {
            *b = 0.0;
        }
        Ok(())
    }

    /// Phase 1 over one tensor: checks that its gradient (SGD: with λy added) is finite, into
    /// `sums`. Reads only.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if `grads` differs from `params` in length or `buffers` is
    /// not [`buffer_len`](ScheduleFree::buffer_len)`(params.len())`; [`Error::StepOverflow`].
    pub fn accumulate(
        &self,
        state: &ScheduleFreeState,
        params: &[f32],
        grads: &[f32],
        buffers: &[f32],
        sums: &mut PeerSums,
    ) -> Result<(), Error> {
        Error::check_lengths(self.slots(), params.len(), grads.len(), buffers.len())?;
        state.step.checked_add(1).ok_or(Error::StepOverflow)?;
        let sgd_decay = self.sgd_decay();
        for (y, g) in params.iter().zip(grads) {
            // (g + λy)·0 is 0 exactly when g + λy is finite.
            let g = if sgd_decay != 0.0 {
                *g + sgd_decay * *y
            } else {
                *g
            };
            sums.push(g * 0.0, 0.0);
        }
        Ok(())
    }

    /// λ when it is added to SGD's gradient, else 0.
    fn sgd_decay(&self) -> f32 {
        match self.config.base {
            ScheduleFreeBase::Sgd => self.config.weight_decay,
            ScheduleFreeBase::AdamW { .. } => 0.0,
        }
    }

    /// Ends phase 1: the scalars of step t and the state after it.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if a gradient had a NaN or ∞ or the weights overflowed;
    /// [`Error::StepOverflow`]. `state` is unchanged on error.
    pub fn advance(
        &self,
        state: &mut ScheduleFreeState,
        sums: &PeerSums,
    ) -> Result<ScheduleFreeStep, Error> {
        let c = &self.config;
        let (check, _) = sums.totals();
        if check != 0.0 {
            return Err(Error::NonFinite);
        }
        let t = state.step.checked_add(1).ok_or(Error::StepOverflow)?;
        // The package's `k < warmup_steps` with k = t − 1.
        let sched = if state.step < c.warmup_steps {
            t as f32 / c.warmup_steps as f32
        } else {
            1.0
        };
        let lr = c.lr * sched;
        let lr_max = if lr > state.lr_max { lr } else { state.lr_max };
        let weight = libm::powf(t as f32, c.r) * libm::powf(lr_max, c.weight_lr_power);
        let (weight_sum, weight_sum_low) = two_sum(state.weight_sum, weight, state.weight_sum_low);
        if !(weight.is_finite() && weight_sum.is_finite()) {
            return Err(Error::NonFinite);
        }
        let c_t = if weight_sum == 0.0 {
            0.0
        } else {
            weight / weight_sum
        };
        let bias_correction2 = match c.base {
            ScheduleFreeBase::Sgd => 1.0,
            ScheduleFreeBase::AdamW { beta2, .. } => one_minus_exp(t, ln(beta2)),
        };
        *state = ScheduleFreeState {
            step: t,
            lr_max,
            weight_sum,
            weight_sum_low,
        };
        Ok(ScheduleFreeStep {
            lr,
            c: c_t,
            bias_correction2,
        })
    }

    /// Phase 2 over one tensor, with the scalars [`advance`](ScheduleFree::advance) returned
    /// for this step: y and z (and v) move. Call it with the gradients phase 1 checked.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] as for [`accumulate`](ScheduleFree::accumulate); nothing is
    /// written on error.
    pub fn apply(
        &self,
        step: &ScheduleFreeStep,
        params: &mut [f32],
        grads: &[f32],
        buffers: &mut [f32],
    ) -> Result<(), Error> {
        Error::check_lengths(self.slots(), params.len(), grads.len(), buffers.len())?;
        let cfg = &self.config;
        let (lr, c) = (step.lr, step.c);
        let y_factor = lr * (cfg.beta * (1.0 - c) - 1.0);
        let decay = cfg.weight_decay;
        let n = params.len();
        match cfg.base {
            ScheduleFreeBase::Sgd => {
                for ((y, g), z) in params.iter_mut().zip(grads).zip(buffers.iter_mut()) {
                    let g = if decay != 0.0 { *g + decay * *y } else { *g };
                    *y = lerp(*y, *z, c) + y_factor * g;
                    *z -= lr * g;
                }
            }
            ScheduleFreeBase::AdamW { beta2, eps } => {
                let [z, v] = split_slots_mut::<2>(buffers, n);
                let v_factor = 1.0 - beta2;
                let bc2 = step.bias_correction2;
                let slots = z.iter_mut().zip(v.iter_mut());
                for ((y, g), (z, v)) in params.iter_mut().zip(grads).zip(slots) {
                    *v = *v * beta2 + v_factor * *g * *g;
                    let mut g = *g / (sqrtf(*v / bc2) + eps);
                    if decay != 0.0 {
                        g += decay * *y;
                    }
                    *y = lerp(*y, *z, c) + y_factor * g;
                    *z -= lr * g;
                }
            }
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
        state: &mut ScheduleFreeState,
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

    /// One step over a model made of several tensors.
    ///
    /// # Errors
    /// As [`step`](ScheduleFree::step), for any tensor; on error nothing is changed.
    pub fn step_tensors(
        &self,
        state: &mut ScheduleFreeState,
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

    /// The evaluation point x = lerp(y, z, 1 − 1/β) (the package's `eval()`) of the training
    /// point `y` (the parameters [`step`](ScheduleFree::step) updates), written to `x`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if `x` differs from `y` in length or `buffers` is not
    /// [`buffer_len`](ScheduleFree::buffer_len)`(y.len())`; nothing is written.
    pub fn eval_point(&self, y: &[f32], buffers: &[f32], x: &mut [f32]) -> Result<(), Error> {
        self.between(y, buffers, x, 1.0 - 1.0 / self.config.beta)
    }

    /// The training point y = lerp(x, z, 1 − β) (the package's `train()`) of the evaluation
    /// point `x`, written to `y`.
    ///
    /// # Errors
    /// As [`eval_point`](ScheduleFree::eval_point).
    pub fn train_point(&self, x: &[f32], buffers: &[f32], y: &mut [f32]) -> Result<(), Error> {
        self.between(x, buffers, y, 1.0 - self.config.beta)
    }

    /// Switches the parameters from y to x in place (the package's `optimizer.eval()`).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if `buffers` is not
    /// [`buffer_len`](ScheduleFree::buffer_len)`(params.len())`; nothing is written.
    pub fn to_eval(&self, params: &mut [f32], buffers: &[f32]) -> Result<(), Error> {
        self.between_in_place(params, buffers, 1.0 - 1.0 / self.config.beta)
    }

    /// Switches the parameters from x back to y in place (the package's `optimizer.train()`).
    ///
    /// # Errors
    /// As [`to_eval`](ScheduleFree::to_eval).
    pub fn to_train(&self, params: &mut [f32], buffers: &[f32]) -> Result<(), Error> {
        self.between_in_place(params, buffers, 1.0 - self.config.beta)
    }

    /// `out` = lerp(`from`, z, `w`).
    fn between(&self, from: &[f32], buffers: &[f32], out: &mut [f32], w: f32) -> Result<(), Error> {
        Error::check_lengths(self.slots(), from.len(), out.len(), buffers.len())?;
        let [z] = split_slots::<1>(buffers, from.len());
        for ((o, a), z) in out.iter_mut().zip(from).zip(z) {
            *o = lerp(*a, *z, w);
        }
        Ok(())
    }

    /// `params` = lerp(`params`, z, `w`).
    fn between_in_place(&self, params: &mut [f32], buffers: &[f32], w: f32) -> Result<(), Error> {
        Error::check_lengths(self.slots(), params.len(), params.len(), buffers.len())?;
        let [z] = split_slots::<1>(buffers, params.len());
        for (p, z) in params.iter_mut().zip(z) {
            *p = lerp(*p, *z, w);
        }
        Ok(())
    }
}

/// (hi, lo) + w as a new (hi, lo): Knuth's TwoSum of hi and w gives their rounded sum and its
/// exact rounding error, to which the old low part is added. Exact whatever the magnitudes,
/// so W_t keeps about 48 bits however many weights it has summed.
fn two_sum(hi: f32, w: f32, lo: f32) -> (f32, f32) {
    let s = hi + w;
    let b = s - hi;
    let err = (hi - (s - b)) + (w - b);
    let lo = lo + err;
    // Renormalise, so that hi stays the sum rounded to f32 (c_t divides by hi).
    let hi2 = s + lo;
    (hi2, lo - (hi2 - s))
}
