//! The rule, defined once for any backend ([`Real`]: one `f32`, a block of lanes, a tensor):
//! one element's (or block's, or tensor's) phase 1 terms, α update and phase 2 step, and the
//! public phases on any backend that hd-native drives. The slice loops that run it over
//! buffers are in `slices`; the one-buffer and multi-tensor steps in `optimizer`.

use crate::constants::StepConstants;
use crate::error::Error;
use crate::hyper::{Hyper, HyperRule, Scope, Terms};
use crate::optimizer::Optimizer;
use crate::real::Real;

impl Optimizer {
    /// The host constants of step t: bias corrections, δ(t), 1/√t.
    #[inline(always)]
    pub fn constants(&self, step: u64) -> StepConstants {
        StepConstants {
            step,
            base: self.config.base.constants(step),
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
    pub(crate) fn gradient<T: Real>(&self, grads: &T, params: &T) -> T {
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
        self.config.base.previous_direction(&c.base, slots, zero)
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

    /// Phase 2 of one element, block or tensor, its lengths already checked.
    ///
    /// Its operands stay separate arguments, though `apply_to` repeats them: gathered into one
    /// struct they made SGDN-HD's step 4% slower at 1e4 on x86-64 (BENCHMARKS.md).
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
        let d = self.config.base.direction(&c.base, &g, base_slots);
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

    /// Refuses a configuration these phases on other backends cannot run: stacked HD, whose
    /// β_t and last dot product are host state ([`State`](crate::State)) that
    /// [`next_alpha`](Optimizer::next_alpha) does not carry. Front ends over tensors call it
    /// once, when they are built.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] naming `kappa` for stacked HD.
    pub fn check_backend_phases(&self) -> Result<(), Error> {
        match self.config.hyper {
            Some(h) if h.is_stacked() => Err(Error::InvalidHyperparameter {
                name: "kappa",
                requirement: "0 on tensor backends (stacked HD runs on hd-core's slices)",
            }),
            _ => Ok(()),
        }
    }

    /// The α update on any backend, from the terms of every tensor in scope, merged.
    /// Per-parameter scope returns `alpha` unchanged (its α is updated in phase 2). Stacked HD
    /// is refused by [`check_backend_phases`](Optimizer::check_backend_phases): this uses β_0.
    #[inline(always)]
    pub fn next_alpha<T: Real>(&self, alpha: &T, terms: &Terms<T>) -> T {
        match self.config.hyper {
            Some(h) if h.scope != Scope::PerParameter => h.next_alpha(alpha, terms),
            _ => alpha.clone(),
        }
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
}
