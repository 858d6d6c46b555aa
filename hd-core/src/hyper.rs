//! The hypergradient part: how α_t follows from α_{t−1}, and the step size γ_t it gives.

use crate::macros::enum_with_all;
use crate::{Error, Real};

enum_with_all! {
    /// How α is updated from the hypergradient h_t = −g_t · d_{t−1}.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum HyperRule {
        /// HD: α_t = α_{t−1} − β h_t = α_{t−1} + β g_t·d_{t−1} (paper Eq. 5).
        Additive,
        /// HDM, multiplicative and normalised: α_t = α_{t−1} (1 + β′ cos(g_t, d_{t−1})) with
        /// cos = g·d / (‖g‖ ‖d‖) (paper Eq. 8). α is unchanged when either norm is 0 (always at
        /// t = 1).
        Multiplicative,
    }
    /// Every rule, in declaration order (a rule's position is its code in a record).
    ALL;
}

enum_with_all! {
    /// Over which parameters one α is shared.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Scope {
        /// One α for all parameters: every tensor's g·d summed before α changes (the paper's).
        Global,
        /// One α per tensor: each tensor keeps its own [`State`](crate::State).
        PerTensor,
        /// One α per parameter, kept in a per-element buffer (additive rule only):
        /// α_{t,i} = α_{t−1,i} + β g_{t,i} d_{t−1,i}.
        PerParameter,
    }
    /// Every scope, in declaration order (a scope's position is its code in a record).
    ALL;
}

/// The convergent variant of paper §5.1: α_t evolves as usual, but the step uses
/// γ_t = δ(t) α_t + (1 − δ(t)) α_∞ with δ(t) = 1/t^p, p > 1.
///
/// Theorem 5.1: for convex, L-smooth f with bounded gradients and full-batch gradient descent,
/// θ converges if α_∞ < 1/L, whatever β.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// p > 1 in δ(t) = 1/t^p (the paper's example is 2).
    pub power: f32,
    /// α_∞, the step size the schedule tends to.
    pub alpha_inf: f32,
}

/// Hypergradient settings: wraps any base rule, which stays the same code.
///
/// ```
/// use hd_core::{Config, Hyper, Optimizer, Scope, Transition};
/// // HD with one α per parameter, kept in [1e-6, 0.1], converging to a step of 0.01 (§5.1).
/// let hyper = Hyper {
///     scope: Scope::PerParameter,
///     clamp: Some((1e-6, 0.1)),
///     transition: Some(Transition { power: 2.0, alpha_inf: 0.01 }),
///     ..Hyper::additive(1e-3)
/// };
/// let opt = Optimizer::new(Config { hyper: Some(hyper), ..Config::sgd(0.001) })?;
/// assert_eq!(opt.slots(), 2); // d_{t−1} and α
/// // The multiplicative rule has no per-parameter form.
/// let hdm = Hyper { scope: Scope::PerParameter, ..Hyper::multiplicative(0.02) };
/// assert!(Optimizer::new(Config { hyper: Some(hdm), ..Config::sgd(0.001) }).is_err());
/// # Ok::<(), hd_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    /// Additive (HD) or multiplicative (HDM).
    pub rule: HyperRule,
    /// β ≥ 0 for HD, β′ ≥ 0 for HDM. β = 0 reproduces the base rule bit for bit.
    pub beta: f32,
    /// One α for everything (default), per tensor, or per parameter.
    pub scope: Scope,
    /// Optional safeguard: α clamped to [lo, hi] after each update. The paper lets α go
    /// negative ("unlearning"); users of the reference code asked for this bound. The range
    /// must contain α_0 ([`Error::InconsistentHyperparameters`] otherwise).
    pub clamp: Option<(f32, f32)>,
    /// Optional convergent schedule of §5.1.
    pub transition: Option<Transition>,
    /// κ ≥ 0 of *stacked* HD (additive rule, global or per-tensor scope): β itself descends
    /// its hypergradient, β_t = β_{t−1} + κ h_t h_{t−1}, and α_t = α_{t−1} − β_t h_t, from
    /// β_0 = `beta` (DESIGN §2, "Stacked HD", derives it). κ = 0 is HD exactly, bit for bit.
    pub kappa: f32,
}

impl Hyper {
    /// Additive HD with rate β, global α, no clamp, no transition.
    #[inline]
    pub const fn additive(beta: f32) -> Hyper {
        Hyper {
            rule: HyperRule::Additive,
            beta,
            scope: Scope::Global,
            clamp: None,
            transition: None,
            kappa: 0.0,
        }
    }

    /// Multiplicative HDM with rate β′, global α, no clamp, no transition.
    #[inline]
    pub const fn multiplicative(beta: f32) -> Hyper {
        Hyper {
            rule: HyperRule::Multiplicative,
            ..Hyper::additive(beta)
        }
    }

    #[inline(always)]
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return Err(Error::InvalidHyperparameter {
                name: "beta",
                requirement: "finite and >= 0",
            });
        }
        if self.scope == Scope::PerParameter && self.rule == HyperRule::Multiplicative {
            return Err(Error::InvalidHyperparameter {
                name: "scope",
                requirement: "global or per-tensor for the multiplicative rule",
            });
        }
        if !(self.kappa >= 0.0 && self.kappa.is_finite()) {
            return Err(Error::InvalidHyperparameter {
                name: "kappa",
                requirement: "finite and >= 0",
            });
        }
        if self.is_stacked()
            && (self.rule != HyperRule::Additive || self.scope == Scope::PerParameter)
        {
            // β_t is one number beside one α: the multiplicative rule has no β to adapt in the
            // derivation, and per-parameter α would need a β and an h_{t−1} per parameter.
            return Err(Error::InvalidHyperparameter {
                name: "kappa",
                requirement: "0 unless the rule is additive with global or per-tensor scope",
            });
        }
        if let Some((lo, hi)) = self.clamp {
            if lo.is_nan() || hi.is_nan() || lo > hi {
                return Err(Error::InvalidHyperparameter {
                    name: "clamp",
                    requirement: "lo <= hi, neither NaN",
                });
            }
        }
        if let Some(tr) = self.transition {
            if !(tr.power > 1.0 && tr.power.is_finite()) {
                return Err(Error::InvalidHyperparameter {
                    name: "p",
                    requirement: "finite and > 1",
                });
            }
            if !tr.alpha_inf.is_finite() {
                return Err(Error::InvalidHyperparameter {
                    name: "alpha_inf",
                    requirement: "finite",
                });
            }
        }
        Ok(())
    }

    /// True for stacked HD (κ > 0), whose β changes every step.
    #[inline(always)]
    pub fn is_stacked(&self) -> bool {
        self.kappa != 0.0
    }

    /// Stacked HD's β_t = β_{t−1} + κ h_t h_{t−1}, from the dots g·d of this step and the
    /// last (each is −h, so their product is h_t h_{t−1}).
    #[inline(always)]
    pub(crate) fn next_beta(&self, beta: f32, dot: f32, previous_dot: f32) -> f32 {
        beta + self.kappa * (dot * previous_dot)
    }

    /// The α update of one step from the accumulated [`Terms`], with this rule's β.
    #[inline(always)]
    pub(crate) fn next_alpha<T: Real>(&self, alpha: &T, terms: &Terms<T>) -> T {
        self.next_alpha_with(alpha, terms, self.beta)
    }

    /// The α update with β (or β′) = `beta`: stacked HD's β_t, or the fixed β.
    #[inline(always)]
    pub(crate) fn next_alpha_with<T: Real>(&self, alpha: &T, terms: &Terms<T>, beta: f32) -> T {
        let next = match (self.rule, &terms.norms) {
            (HyperRule::Additive, _) => alpha.add(&terms.dot.scale(beta)),
            (HyperRule::Multiplicative, Some((grad_sq, dir_sq))) => {
                // When ‖g‖‖d‖ = 0, g·d = 0 too, so dividing by the smallest normal number
                // gives cos = 0 and leaves α unchanged, without a data-dependent branch.
                // The slice drivers scale g and d by powers of two before squaring (see
                // `Accumulator`), so these sums neither underflow nor overflow there; the clamp
                // keeps Cauchy–Schwarz's |cos| ≤ 1 against the last rounding, and against a
                // backend that sums unscaled squares of gradients below about 1e-19.
                let norms = grad_sq
                    .sqrt()
                    .mul(&dir_sq.sqrt())
                    .max_const(f32::MIN_POSITIVE);
                let cos = terms.dot.div(&norms).clamp(-1.0, 1.0);
                alpha.mul(&cos.scale(beta).shift(1.0))
            }
            // Unreachable: multiplicative terms always carry norms.
            (HyperRule::Multiplicative, None) => alpha.clone(),
        };
        match self.clamp {
            Some((lo, hi)) => next.clamp(lo, hi),
            None => next,
        }
    }

    /// δ(t) of the transition at this step (1 when there is none).
    #[inline(always)]
    pub(crate) fn delta(&self, step: u64) -> f32 {
        match self.transition {
            Some(tr) => crate::scalar::pow_neg(step, tr.power),
            None => 1.0,
        }
    }
}

/// What phase 1 of a step accumulates over the parameters: g·d_{t−1}, and for HDM ‖g‖², ‖d_{t−1}‖².
///
/// Terms of several tensors [`merge`](Terms::merge) into the terms of all of them.
#[derive(Clone, Debug, PartialEq)]
pub struct Terms<T> {
    /// Σ g_i d_{t−1,i} = −h_t.
    pub dot: T,
    /// (Σ g_i², Σ d_{t−1,i}²), present for the multiplicative rule only.
    pub norms: Option<(T, T)>,
}

impl<T: Real> Terms<T> {
    /// The terms of two disjoint sets of parameters together.
    pub fn merge(&self, other: &Terms<T>) -> Terms<T> {
        Terms {
            dot: self.dot.add(&other.dot),
            norms: match (&self.norms, &other.norms) {
                (Some((a, b)), Some((c, d))) => Some((a.add(c), b.add(d))),
                _ => None,
            },
        }
    }
}

impl Terms<f32> {
    /// True when every term is finite, i.e. the gradient had no NaN or infinity.
    pub fn is_finite(&self) -> bool {
        match self.norms {
            // x·0 is ±0 for every finite x and NaN for NaN and ±∞, so one comparison tests all
            // three: on a microcontroller 20–28 B less than a test and a branch for each.
            // (Only there: on x86-64 it changed how LLVM laid out HDM's whole step.)
            Some((a, b)) if !crate::real::BLOCKS => self.dot * 0.0 + a * 0.0 + b * 0.0 == 0.0,
            Some((a, b)) => self.dot.is_finite() && a.is_finite() && b.is_finite(),
            None => self.dot.is_finite(),
        }
    }
}
