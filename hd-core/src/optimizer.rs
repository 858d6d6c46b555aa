//! The optimizer: a base direction, optionally wrapped by the hypergradient rule, with one
//! generic definition of each step (phase 1: hypergradient terms; α update; phase 2: apply)
//! and the public phases over slices; the fused slice loops are in `slices`, the base rules'
//! dispatch in `base`, the configuration in `config`.

use crate::accumulator::Accumulator;
use crate::adam::{Adam, AdamStep};
use crate::config::{Base, Config};
use crate::error::Error;
use crate::hyper::{Hyper, HyperRule, Scope, Terms};
use crate::real::Real;
use crate::sgd::Sgd;

/// The scalar state of an optimizer: plain data the caller owns (per-element state lives in the
/// caller's buffers). For [`Scope::PerTensor`], keep one `State` per tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct State {
    /// Steps taken so far; the next step is t = `step` + 1.
    pub step: u64,
    /// The α that scope shares, after `step` steps:
    ///
    /// - [`Scope::Global`]: the one α_t of every parameter (α_0 before the first step).
    /// - [`Scope::PerTensor`]: the α_t of the tensor this `State` belongs to.
    /// - [`Scope::PerParameter`]: always α_0. Each parameter's α_{t,i} is in the α slot of the
    ///   buffers ([`Optimizer::alpha_slot`]); log those, not this.
    /// - No hypergradient: α_0, the fixed learning rate.
    pub alpha: f32,
}

/// Host constants of the step t: computed once, used for every element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepConstants {
    step: u64,
    adam: AdamStep,
    delta: f32,
    inv_sqrt_step: f32,
}

/// Which per-element buffers a configuration needs, in order: the base rule's (v, or m and v),
/// then d_{t−1} where it cannot be recomputed, then α for per-parameter scope.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Layout {
    base: usize,
    direction: bool,
    alpha: bool,
    pub(crate) shape: Shape,
}

/// The layouts the fused loops are compiled for, B base slots of K in all: only those that
/// exist can be written (Adam recomputes d_{t−1}, so it never stores it), so the one table of
/// compiled loops, `by_layout!`, matches every layout without a catch-all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Shape {
    B0K0,
    B0K1,
    B0K2,
    B1K1,
    B1K2,
    B1K3,
    B2K2,
    B2K3,
}

impl Layout {
    #[inline(always)]
    fn of(config: &Config) -> Layout {
        let hyper = config.hyper.is_some();
        let alpha = config.hyper.is_some_and(|h| h.scope == Scope::PerParameter);
        // (base slots, d_{t−1} stored, shape without and with per-parameter α)
        let (base, direction, shape) = match config.base {
            Base::Sgd(s) => {
                let velocity = s.slots() == 1;
                let direction = hyper && !s.keeps_direction();
                let shapes = match (velocity, direction) {
                    (false, false) => (Shape::B0K0, Shape::B0K1),
                    (false, true) => (Shape::B0K1, Shape::B0K2),
                    (true, false) => (Shape::B1K1, Shape::B1K2),
                    (true, true) => (Shape::B1K2, Shape::B1K3),
                };
                (usize::from(velocity), direction, shapes)
            }
            Base::Adam(_) => (2, false, (Shape::B2K2, Shape::B2K3)),
        };
        Layout {
            base,
            direction,
            alpha,
            shape: if alpha { shape.1 } else { shape.0 },
        }
    }

    #[inline(always)]
    fn slots(&self) -> usize {
        self.base + usize::from(self.direction) + usize::from(self.alpha)
    }
}

/// Whether the fused loops work on blocks of [`LANES`](crate::LANES) elements, which LLVM turns into SIMD,
/// or on one element at a time. Bare-metal targets (microcontrollers, no SIMD) take the latter:
/// unrolled blocks would only cost flash there. Both paths compute each element with the same
/// operations and sum element j into lane j mod [`LANES`](crate::LANES), so they give the same bits; the
/// `scalar-loops` feature selects the scalar path anywhere, which is how it is tested on a host.
pub(crate) const BLOCKS: bool = cfg!(not(any(target_os = "none", feature = "scalar-loops")));

/// One piece of a model for [`Optimizer::step_tensors`]: its parameters, their gradient, and
/// its per-element buffers ([`Optimizer::buffer_len`] of them).
#[derive(Debug)]
pub struct TensorMut<'a> {
    /// θ, updated in place.
    pub params: &'a mut [f32],
    /// g = ∇f(θ).
    pub grads: &'a [f32],
    /// The optimizer's per-element state for these parameters.
    pub buffers: &'a mut [f32],
}

/// A validated optimizer: a base rule, optionally with hypergradient α adaptation.
///
/// One step t (t = `state.step + 1`), following the paper:
///
/// 1. Phase 1 — hypergradient: h_t = −g_t · d_{t−1} over every parameter in scope
///    (d_0 = 0, so the first step uses α_0).
/// 2. α update: HD α_t = α_{t−1} − β h_t, or HDM α_t = α_{t−1}(1 + β′ cos(g_t, d_{t−1}));
///    then the optional clamp.
/// 3. Phase 2 — step with the **new** α: θ_t = θ_{t−1} − γ_t d_t, with γ_t = α_t, or
///    γ_t = δ(t) α_t + (1 − δ(t)) α_∞ with a [`Transition`](crate::Transition), divided by √t
///    for Adam with `sqrt_decay`.
///
/// Without [`Hyper`] (or with β = 0) this is exactly the base optimizer, bit for bit.
///
/// Known differences from gbaydin/hypergradient-descent: its `AdamHD` updates α inside the
/// per-tensor loop, so each tensor steps with a different partial α (its issue #9); here α is
/// updated once from all tensors' terms before any tensor moves, as in the paper.
///
/// # Example
/// ```
/// use hd_core::{Config, Optimizer};
/// // Minimise f(θ) = ½‖θ‖² with SGD-HD: the gradient is θ itself.
/// let opt = Optimizer::new(Config::sgd(0.1).with_hd(0.01))?;
/// let mut state = opt.init_state();
/// let mut theta = [1.0f32, -2.0];
/// let mut buffers = [0.0f32; 2]; // SGD-HD keeps d_{t−1}: one buffer per parameter
/// assert_eq!(opt.buffer_len(theta.len()), Some(buffers.len()));
/// for _ in 0..50 {
///     let grad = theta;
///     opt.step(&mut state, &mut theta, &grad, &mut buffers)?;
/// }
/// assert!(theta.iter().all(|x| x.abs() < 1e-3));
/// assert!(state.alpha > 0.1); // consecutive gradients agreed, so α grew
/// # Ok::<(), hd_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimizer {
    pub(crate) config: Config,
    pub(crate) layout: Layout,
}

impl Optimizer {
    /// Validates `config` once; every step then only checks lengths and finiteness.
    ///
    /// # Errors
    /// As [`Config::validate`]: [`Error::InvalidHyperparameter`] if any hyperparameter is out of
    /// its domain, [`Error::InconsistentHyperparameters`] if the clamp excludes α_0.
    #[inline(always)]
    pub fn new(config: Config) -> Result<Optimizer, Error> {
        config.validate()?;
        Ok(Optimizer {
            config,
            layout: Layout::of(&config),
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The state before the first step: t = 0, α = α_0.
    pub fn init_state(&self) -> State {
        State {
            step: 0,
            alpha: self.config.alpha0,
        }
    }

    /// Per-element buffers per parameter: 0 (SGD) to 3 (e.g. Adam with per-parameter α).
    #[inline(always)]
    pub fn slots(&self) -> usize {
        self.layout.slots()
    }

    /// Which slot holds the per-parameter α (the last one), for [`Scope::PerParameter`].
    pub fn alpha_slot(&self) -> Option<usize> {
        self.layout.alpha.then(|| self.slots() - 1)
    }

    /// Length of the buffer slice for `n` parameters (`None` on overflow).
    #[inline(always)]
    pub fn buffer_len(&self, n: usize) -> Option<usize> {
        n.checked_mul(self.slots())
    }

    /// Resets buffers for a fresh start: zeros, and α_0 in the per-parameter α buffer.
    ///
    /// Zeroed buffers are a fresh start too: the first step takes α_{0,i} = α_0 without reading
    /// the α buffer, and writes α_{1,i} there.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if `buffers` is not a whole number of slots.
    pub fn init_buffers(&self, buffers: &mut [f32]) -> Result<(), Error> {
        let slots = self.slots();
        let n = buffers.len().checked_div(slots).unwrap_or(0);
        if n * slots != buffers.len() {
            return Err(Error::LengthMismatch {
                name: "buffers",
                expected: n * slots,
                found: buffers.len(),
            });
        }
        let alpha_from = self.alpha_slot().map(|k| k * n);
        for (i, b) in buffers.iter_mut().enumerate() {
            *b = match alpha_from {
                Some(start) if i >= start => self.config.alpha0,
                _ => 0.0,
            };
        }
        Ok(())
    }

    /// The host constants of step t: bias corrections, δ(t), 1/√t.
    #[inline(always)]
    pub fn constants(&self, step: u64) -> StepConstants {
        let adam = self.config.base.constants(step);
        StepConstants {
            step,
            adam,
            delta: self.config.hyper.map_or(1.0, |h| h.delta(step)),
            inv_sqrt_step: if self.config.base.sqrt_decay() {
                1.0 / crate::real::sqrtf(step as f32)
            } else {
                1.0
            },
        }
    }

    pub(crate) fn needs_norms(&self) -> bool {
        self.config
            .hyper
            .is_some_and(|h| h.rule == HyperRule::Multiplicative)
    }

    /// g_t with coupled L2: g + λθ (exactly g when λ = 0).
    #[inline(always)]
    fn gradient<T: Real>(&self, grads: &T, params: &T) -> T {
        if self.config.weight_decay > 0.0 {
            grads.add(&params.scale(self.config.weight_decay))
        } else {
            grads.clone()
        }
    }

    /// d_{t−1}: the stored copy, or recomputed from the base state before this step, or
    /// `zero` where there is none (t = 1, or a base rule without hypergradient).
    ///
    /// Values, not `Option`s, flow through the hot loops: an `Option` of a block is laid out
    /// with a tag in front, and its unaligned copies stalled store forwarding.
    #[inline(always)]
    fn previous_direction<T: Real>(
        &self,
        c: &StepConstants,
        slots: &[T],
        base: usize,
        zero: T,
    ) -> T {
        if self.layout.direction {
            return match slots.get(base) {
                Some(d) => d.clone(),
                None => zero,
            };
        }
        self.config.base.previous_direction(&c.adam, slots, zero)
    }

    /// g_t (with L2) and d_{t−1} for phase 1; d is `0·g` for a base rule, so the "dot" is 0
    /// for a finite gradient and NaN otherwise, which is the finiteness check every rule needs
    /// before it writes anything.
    #[inline(always)]
    pub(crate) fn hyper_inputs<T: Real>(
        &self,
        c: &StepConstants,
        params: &T,
        grads: &T,
        slots: &[T],
        base: usize,
    ) -> (T, T) {
        let g = self.gradient(grads, params);
        let zero = g.scale(0.0);
        let d = match self.config.hyper {
            Some(_) => self.previous_direction(c, slots, base, zero),
            None => zero,
        };
        (g, d)
    }

    /// Phase 1's terms from g_t and d_{t−1} (scaled by powers of two for HDM by the slice
    /// drivers; cos does not change).
    ///
    /// Per-parameter scope has no shared α to update, so its "dot" is a check instead:
    /// 0 when every g_i d_{t−1,i} and every new α_{t,i} is finite, NaN otherwise. That way
    /// [`advance`](Optimizer::advance) refuses an overflowing α_{t,i} before anything is
    /// written, as global scope does.
    #[inline(always)]
    pub(crate) fn terms_from<T: Real>(
        &self,
        c: &StepConstants,
        g: &T,
        d: &T,
        slots: &[T],
    ) -> Terms<T> {
        let dot = g.mul(d);
        if let (Some(h), true) = (self.config.hyper, self.layout.alpha) {
            let next = self.parameter_alpha(h, c, &dot, slots);
            return Terms {
                dot: dot.scale(0.0).add(&next.scale(0.0)).sum(),
                norms: None,
            };
        }
        Terms {
            norms: self.needs_norms().then(|| (g.mul(g).sum(), d.mul(d).sum())),
            dot: dot.sum(),
        }
    }

    /// α_{t,i} of per-parameter scope from its own g_{t,i} d_{t−1,i}. α_{0,i} is α_0 itself,
    /// not the buffer, so a start from zeroed buffers is right too; `dot` is finite wherever
    /// this is used on values that are written.
    #[inline(always)]
    fn parameter_alpha<T: Real>(&self, h: Hyper, c: &StepConstants, dot: &T, slots: &[T]) -> T {
        let previous = match slots.last() {
            Some(a) if c.step > 1 => a.clone(),
            _ => dot.scale(0.0).shift(self.config.alpha0),
        };
        h.next_alpha(
            &previous,
            &Terms {
                dot: dot.clone(),
                norms: None,
            },
        )
    }

    #[inline(always)]
    fn next_alpha_unchecked<T: Real>(&self, alpha: &T, terms: &Terms<T>) -> T {
        match self.config.hyper {
            Some(h) if h.scope != Scope::PerParameter => h.next_alpha(alpha, terms),
            _ => alpha.clone(),
        }
    }

    /// γ_t from α_t: the transition of §5.1 and Adam's 1/√t, when configured.
    #[inline(always)]
    fn step_size<T: Real>(&self, c: &StepConstants, alpha: &T) -> T {
        let gamma = match self.config.hyper.and_then(|h| h.transition) {
            Some(tr) => alpha.scale(c.delta).shift((1.0 - c.delta) * tr.alpha_inf),
            None => alpha.clone(),
        };
        if self.config.base.sqrt_decay() {
            gamma.scale(c.inv_sqrt_step)
        } else {
            gamma
        }
    }

    #[inline(always)]
    pub(crate) fn apply_unchecked<T: Real>(
        &self,
        c: &StepConstants,
        alpha: &T,
        params: &mut T,
        grads: &T,
        slots: &mut [T],
        base: usize,
    ) {
        let g = self.gradient(grads, params);
        let gamma = match (self.config.hyper, self.layout.alpha) {
            (Some(h), true) => {
                let d = self.previous_direction(c, slots, base, g.scale(0.0));
                // The additive rule element-wise: each α_i sees its own g_i d_{t−1,i}.
                let next = self.parameter_alpha(h, c, &g.mul(&d), slots);
                // The α slot is the last (`alpha_slot`); `last_mut` keeps the index a
                // constant, so a block's slots stay in registers instead of on the stack.
                match slots.last_mut() {
                    Some(a) => {
                        a.assign(next);
                        self.step_size(c, a)
                    }
                    None => self.step_size(c, alpha),
                }
            }
            _ => self.step_size(c, alpha),
        };
        let Some((base_slots, extra)) = slots.split_at_mut_checked(base) else {
            return;
        };
        let d = self.config.base.direction(&c.adam, &g, base_slots);
        params.assign(params.sub_mul(&gamma, &d));
        if self.layout.direction {
            if let Some(stored) = extra.first_mut() {
                stored.assign(d);
            }
        }
    }

    fn check_slots<T: Real>(&self, params: &T, grads: &T, slots: &[T]) -> Result<(), Error> {
        let n = params.len();
        if grads.len() != n {
            return Err(Error::LengthMismatch {
                name: "grads",
                expected: n,
                found: grads.len(),
            });
        }
        if slots.len() != self.slots() {
            return Err(Error::LengthMismatch {
                name: "slots",
                expected: self.slots(),
                found: slots.len(),
            });
        }
        match slots.iter().find(|s| s.len() != n) {
            Some(s) => Err(Error::LengthMismatch {
                name: "slot",
                expected: n,
                found: s.len(),
            }),
            None => Ok(()),
        }
    }

    /// Phase 1 on any backend: this tensor's share of g_t·d_{t−1} (and of the norms, for HDM),
    /// for the step whose [`constants`](Optimizer::constants) are `c`. Reads only.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if `grads` or a slot does not match `params`, or the number of
    /// slots is not [`slots`](Optimizer::slots).
    pub fn terms_of<T: Real>(
        &self,
        c: &StepConstants,
        params: &T,
        grads: &T,
        slots: &[T],
    ) -> Result<Terms<T>, Error> {
        self.check_slots(params, grads, slots)?;
        let (g, d) = self.hyper_inputs(c, params, grads, slots, self.layout.base);
        Ok(self.terms_from(c, &g, &d, slots))
    }

    /// The α update on any backend, from the terms of every tensor in scope, merged.
    /// Per-parameter scope returns `alpha` unchanged (its α is updated in phase 2).
    pub fn next_alpha<T: Real>(&self, alpha: &T, terms: &Terms<T>) -> T {
        self.next_alpha_unchecked(alpha, terms)
    }

    /// Phase 2 on any backend: θ_t = θ_{t−1} − γ_t d_t with α = α_t, advancing the buffers.
    ///
    /// # Errors
    /// As [`terms_of`](Optimizer::terms_of); nothing is written on error.
    pub fn apply_to<T: Real>(
        &self,
        c: &StepConstants,
        alpha: &T,
        params: &mut T,
        grads: &T,
        slots: &mut [T],
    ) -> Result<(), Error> {
        self.check_slots(params, grads, slots)?;
        self.apply_unchecked(c, alpha, params, grads, slots, self.layout.base);
        Ok(())
    }

    #[inline(always)]
    fn check_lengths(&self, params: usize, grads: usize, buffers: usize) -> Result<(), Error> {
        if grads != params {
            return Err(Error::LengthMismatch {
                name: "grads",
                expected: params,
                found: grads,
            });
        }
        let expected = self.buffer_len(params).ok_or(Error::LengthMismatch {
            name: "params",
            expected: usize::MAX / self.slots().max(1),
            found: params,
        })?;
        if buffers != expected {
            return Err(Error::LengthMismatch {
                name: "buffers",
                expected,
                found: buffers,
            });
        }
        Ok(())
    }

    /// Phase 1 over one slice of parameters, added to `acc`. Reads only.
    ///
    /// Feed every tensor in scope, then call [`advance`](Optimizer::advance) once, then
    /// [`apply`](Optimizer::apply) to every tensor: the result is bit-identical to one
    /// [`step`](Optimizer::step) over their concatenation (buffers concatenated slot by slot).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if `grads` differs from `params` in length or `buffers` is not
    /// [`buffer_len`](Optimizer::buffer_len)`(params.len())`; [`Error::StepOverflow`].
    #[inline(always)]
    pub fn hypergradient(
        &self,
        state: &State,
        params: &[f32],
        grads: &[f32],
        buffers: &[f32],
        acc: &mut Accumulator,
    ) -> Result<(), Error> {
        self.check_lengths(params.len(), grads.len(), buffers.len())?;
        let step = state.step.checked_add(1).ok_or(Error::StepOverflow)?;
        self.terms_dispatch(&self.constants(step), params, grads, buffers, acc);
        Ok(())
    }

    /// Ends phase 1: checks the accumulated terms, advances t and updates α.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if the gradient had a NaN or infinity, or α would overflow;
    /// [`Error::StepOverflow`]. `state` is unchanged on error.
    #[inline(always)]
    pub fn advance(&self, state: &mut State, acc: &Accumulator) -> Result<(), Error> {
        let terms = acc.terms(self.needs_norms());
        if !terms.is_finite() {
            return Err(Error::NonFinite);
        }
        let step = state.step.checked_add(1).ok_or(Error::StepOverflow)?;
        let alpha = self.next_alpha_unchecked(&state.alpha, &terms);
        if !alpha.is_finite() {
            return Err(Error::NonFinite);
        }
        *state = State { step, alpha };
        Ok(())
    }

    /// Phase 2 over one slice, for the step `state` has just [`advance`](Optimizer::advance)d to.
    /// Call it with the gradients phase 1 checked.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] as for [`hypergradient`](Optimizer::hypergradient); nothing is
    /// written on error.
    #[inline(always)]
    pub fn apply(
        &self,
        state: &State,
        params: &mut [f32],
        grads: &[f32],
        buffers: &mut [f32],
    ) -> Result<(), Error> {
        self.check_lengths(params.len(), grads.len(), buffers.len())?;
        self.apply_dispatch(
            &self.constants(state.step),
            state.alpha,
            params,
            grads,
            buffers,
        );
        Ok(())
    }

    /// One whole step over one contiguous buffer: phase 1, α update, phase 2.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::NonFinite`], [`Error::StepOverflow`]; on error,
    /// `state`, `params` and `buffers` are exactly as they were.
    #[inline(always)]
    pub fn step(
        &self,
        state: &mut State,
        params: &mut [f32],
        grads: &[f32],
        buffers: &mut [f32],
    ) -> Result<(), Error> {
        // The paper's nine optimizers as they are usually run (no L2, one global α, no clamp,
        // no transition, no 1/√t) get loops compiled for exactly their rule: the same code
        // with every choice of the configuration a constant, so LLVM drops the branches the
        // generic loops test on every block, and the blocks stay in SIMD registers (3× faster
        // in cache; see BENCHMARKS.md). Same operations, so the same bits as the generic path.
        let c = &self.config;
        let plain = c.weight_decay == 0.0
            && c.hyper.is_none_or(|h| {
                h.scope == Scope::Global && h.clamp.is_none() && h.transition.is_none()
            });
        if BLOCKS && plain {
            let rule = match c.hyper {
                None => 0,
                Some(h) if h.rule == HyperRule::Additive => 1,
                Some(_) => 2,
            };
            // 3: no specialised loops (heavy ball, Adam with 1/√t).
            let base = match c.base {
                Base::Sgd(s) if s.momentum == 0.0 => 0,
                Base::Sgd(s) if s.nesterov => 1,
                Base::Sgd(_) => 3,
                Base::Adam(a) if !a.sqrt_decay => 2,
                Base::Adam(_) => 3,
            };
            let done = match (base, rule) {
                (0, 0) => self.step_plain::<0, 0>(state, params, grads, buffers),
                (0, 1) => self.step_plain::<0, 1>(state, params, grads, buffers),
                (0, 2) => self.step_plain::<0, 2>(state, params, grads, buffers),
                (1, 0) => self.step_plain::<1, 0>(state, params, grads, buffers),
                (1, 1) => self.step_plain::<1, 1>(state, params, grads, buffers),
                (1, 2) => self.step_plain::<1, 2>(state, params, grads, buffers),
                (2, 0) => self.step_plain::<2, 0>(state, params, grads, buffers),
                (2, 1) => self.step_plain::<2, 1>(state, params, grads, buffers),
                (2, 2) => self.step_plain::<2, 2>(state, params, grads, buffers),
                _ => None,
            };
            if let Some(result) = done {
                return result;
            }
        }
        self.step_generic(state, params, grads, buffers)
    }

    /// [`step`](Optimizer::step) for one of the nine plain rules: base `BASE` (0 SGD, 1 SGDN,
    /// 2 Adam) and rule `RULE` (0 none, 1 HD, 2 HDM), rebuilt from constants and this
    /// configuration's numbers; `None` if the configuration is not that rule.
    #[inline(never)]
    fn step_plain<const BASE: u8, const RULE: u8>(
        &self,
        state: &mut State,
        params: &mut [f32],
        grads: &[f32],
        buffers: &mut [f32],
    ) -> Option<Result<(), Error>> {
        let c = &self.config;
        let base = match (BASE, c.base) {
            (0, _) => Base::Sgd(Sgd::PLAIN),
            // Testing μ > 0 here lets LLVM fold the same test in the loops.
            (1, Base::Sgd(s)) if s.momentum > 0.0 => Base::Sgd(Sgd::nesterov(s.momentum)),
            (2, Base::Adam(a)) => Base::Adam(Adam {
                sqrt_decay: false,
                ..a
            }),
            _ => return None,
        };
        let hyper = match (RULE, c.hyper) {
            (0, None) => None,
            (1, Some(h)) => Some(Hyper::additive(h.beta)),
            (2, Some(h)) => Some(Hyper::multiplicative(h.beta)),
            _ => return None,
        };
        let fixed = Optimizer::fixed(Config {
            base,
            alpha0: c.alpha0,
            weight_decay: 0.0,
            hyper,
        });
        Some(fixed.step_generic(state, params, grads, buffers))
    }

    /// An optimizer for a configuration already validated (a specialisation of `self`'s).
    #[inline(always)]
    fn fixed(config: Config) -> Optimizer {
        Optimizer {
            config,
            layout: Layout::of(&config),
        }
    }

    /// [`step`](Optimizer::step) for any configuration. Out of line in unoptimised builds,
    /// whose frames for these inlined loops are large enough to add up on a test's stack.
    #[cfg_attr(debug_assertions, inline(never))]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn step_generic(
        &self,
        state: &mut State,
        params: &mut [f32],
        grads: &[f32],
        buffers: &mut [f32],
    ) -> Result<(), Error> {
        // As hypergradient → advance → apply, with the lengths checked and the step's
        // constants computed once.
        self.check_lengths(params.len(), grads.len(), buffers.len())?;
        let step = state.step.checked_add(1).ok_or(Error::StepOverflow)?;
        let c = self.constants(step);
        if self.config.hyper.is_none() && !BLOCKS {
            return self.step_base_scalar(&c, state, params, grads, buffers);
        }
        let mut acc = Accumulator::new();
        self.terms_dispatch(&c, params, grads, buffers, &mut acc);
        let mut next = *state;
        self.advance(&mut next, &acc)?;
        self.apply_dispatch(&c, next.alpha, params, grads, buffers);
        *state = next;
        Ok(())
    }

    /// [`step`](Optimizer::step) of a base rule on the one-element-at-a-time path (bare
    /// metal): with no α to update, phase 1 is only the finiteness check, done without the
    /// lane sums (which a microcontroller would pay for in flash). Same result, same errors.
    #[inline(always)]
    fn step_base_scalar(
        &self,
        c: &StepConstants,
        state: &mut State,
        params: &mut [f32],
        grads: &[f32],
        buffers: &mut [f32],
    ) -> Result<(), Error> {
        // g + λθ is finite exactly when (g + λθ)·0 is 0.
        let check = grads
            .iter()
            .zip(params.iter())
            .fold(0.0f32, |acc, (g, p)| acc + self.gradient(g, p).scale(0.0));
        if check != 0.0 {
            return Err(Error::NonFinite);
        }
        let next = State {
            step: c.step,
            ..*state
        };
        self.apply_dispatch(c, next.alpha, params, grads, buffers);
        *state = next;
        Ok(())
    }

    /// One step over a model made of several tensors, honouring the [`Scope`]: one `State`
    /// for global and per-parameter scope, one per tensor for per-tensor scope.
    ///
    /// Every gradient is checked before anything is written. (Per-tensor scope pays for that
    /// with a second read of the gradients: without allocating, the new states cannot be
    /// held back until all tensors have passed.)
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] (`states` of the wrong count, or a tensor's lengths),
    /// [`Error::NonFinite`], [`Error::StepOverflow`]; on error nothing is changed.
    pub fn step_tensors(
        &self,
        states: &mut [State],
        tensors: &mut [TensorMut<'_>],
    ) -> Result<(), Error> {
        let per_tensor = self
            .config
            .hyper
            .is_some_and(|h| h.scope == Scope::PerTensor);
        let expected = if per_tensor { tensors.len() } else { 1 };
        if states.len() != expected {
            return Err(Error::LengthMismatch {
                name: "states",
                expected,
                found: states.len(),
            });
        }
        if per_tensor {
            for (state, t) in states.iter().zip(tensors.iter()) {
                let mut acc = Accumulator::new();
                self.hypergradient(state, t.params, t.grads, t.buffers, &mut acc)?;
                self.advance(&mut state.clone(), &acc)?;
            }
            for (state, t) in states.iter_mut().zip(tensors.iter_mut()) {
                self.step(state, t.params, t.grads, t.buffers)?;
            }
            return Ok(());
        }
        let Some(state) = states.first_mut() else {
            return Ok(());
        };
        let mut acc = Accumulator::new();
        for t in tensors.iter() {
            self.hypergradient(state, t.params, t.grads, t.buffers, &mut acc)?;
        }
        let mut next = *state;
        self.advance(&mut next, &acc)?;
        for t in tensors.iter_mut() {
            self.apply(&next, t.params, t.grads, t.buffers)?;
        }
        *state = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape the loops are dispatched on names the same B base slots of K in all as the
    /// layout the rules index: counted by hand from `Layout`'s doc (v, or m and v; d_{t−1}
    /// unless recomputed; α per parameter), for every base rule and hypergradient scope.
    #[test]
    fn shape_is_the_layouts_slot_count() {
        let heavy_ball = Config {
            base: Base::Sgd(Sgd {
                momentum: 0.9,
                nesterov: false,
            }),
            ..Config::sgd(0.1)
        };
        // (config, B, K without hypergradient, K with global HD, K with per-parameter HD)
        let cases = [
            (Config::sgd(0.1), 0, 0, 1, 2),
            (Config::sgdn(0.1, 0.9), 1, 1, 2, 3),
            (heavy_ball, 1, 1, 1, 2),
            (Config::adam(0.1), 2, 2, 2, 3),
        ];
        let dims = |s: Shape| match s {
            Shape::B0K0 => (0, 0),
            Shape::B0K1 => (0, 1),
            Shape::B0K2 => (0, 2),
            Shape::B1K1 => (1, 1),
            Shape::B1K2 => (1, 2),
            Shape::B1K3 => (1, 3),
            Shape::B2K2 => (2, 2),
            Shape::B2K3 => (2, 3),
        };
        for (config, b, plain, global, per_parameter) in cases {
            for (config, k) in [
                (config, plain),
                (config.with_hd(0.01), global),
                (config.with_hdm(0.01), global),
                (
                    config.with_hd(0.01).with_scope(Scope::PerParameter),
                    per_parameter,
                ),
            ] {
                let layout = Layout::of(&config);
                assert_eq!((layout.base, layout.slots()), (b, k), "{config:?}");
                assert_eq!(dims(layout.shape), (b, k), "{config:?}");
            }
        }
    }
}
