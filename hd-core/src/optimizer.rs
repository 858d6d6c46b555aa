//! The optimizer: a validated configuration with its buffer layout, and its steps over slices:
//! the two public phases, the one-call step (with its loops specialised for the paper's nine
//! rules) and the multi-tensor step. The rule itself, written once for any backend, is in
//! `rule`; the fused slice loops in `slices`; the base rules' dispatch in `base`; the
//! configuration in `config`; the buffer layout in `layout`.

use crate::accumulator::Accumulator;
use crate::adam::Adam;
use crate::config::{Base, Config};
use crate::constants::StepConstants;
use crate::error::Error;
use crate::hyper::{Hyper, HyperRule, Scope};
use crate::layout::Layout;
use crate::real::Real;
use crate::real::BLOCKS;
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
    /// β_t of stacked HD ([`Hyper::kappa`](crate::Hyper::kappa) > 0) after `step` steps;
    /// otherwise β itself, never changed (and not read: the configuration's β is used).
    pub beta: f32,
    /// g_t·d_{t−1} of the last step (= −h_t), which stacked HD's next β update multiplies by
    /// the next one; 0 before the first step and whenever HD is not stacked.
    pub previous_dot: f32,
}

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
            beta: self.config.hyper.map_or(0.0, |h| h.beta),
            previous_dot: 0.0,
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

    #[inline(always)]
    fn check_lengths(&self, params: usize, grads: usize, buffers: usize) -> Result<(), Error> {
        Error::check_lengths(self.slots(), params, grads, buffers)
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
        let (alpha, beta) = match self.config.hyper {
            // Stacked HD: β_t first, from h_t and h_{t−1}; then α_t with β_t. Its finiteness
            // is checked here, so that the other rules, which never change β, do not carry
            // the test (nor the copies of β and the last dot product) on a microcontroller.
            Some(h) if h.is_stacked() => {
                let beta = h.next_beta(state.beta, terms.dot, state.previous_dot);
                if !beta.is_finite() {
                    return Err(Error::NonFinite);
                }
                (h.next_alpha_with(&state.alpha, &terms, beta), Some(beta))
            }
            _ => (self.next_alpha(&state.alpha, &terms), None),
        };
        if !alpha.is_finite() {
            return Err(Error::NonFinite);
        }
        state.step = step;
        state.alpha = alpha;
        if let Some(beta) = beta {
            state.beta = beta;
            state.previous_dot = terms.dot;
        }
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
            // Stacked HD's κ changes only `advance`, so it runs HD's loops.
            (1, Some(h)) => Some(Hyper {
                kappa: h.kappa,
                ..Hyper::additive(h.beta)
            }),
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
        // `advance` changes nothing on error and phase 2 cannot fail, so the state is
        // advanced in place (no copy of it to carry).
        self.advance(state, &acc)?;
        self.apply_dispatch(&c, state.alpha, params, grads, buffers);
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
        self.apply_dispatch(c, state.alpha, params, grads, buffers);
        state.step = c.step;
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
