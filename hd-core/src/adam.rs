//! Adam (Kingma & Ba, 2015) as a direction d_t, with the paper's optional 1/√t step decay.

use crate::constants::BaseConstants;
use crate::{Error, Real};

/// Adam. With g_t the gradient (coupled L2 already added) and m, v starting at 0:
///
/// m_t = β1 m_{t−1} + (1−β1) g_t; v_t = β2 v_{t−1} + (1−β2) g_t²;
/// m̂_t = m_t / (1−β1^t); v̂_t = v_t / (1−β2^t); d_t = m̂_t / (√v̂_t + ε).
///
/// The step is θ_t = θ_{t−1} − γ_t d_t, and with `sqrt_decay` θ_t = θ_{t−1} − (γ_t/√t) d_t
/// (the paper uses that decay "for Adam" on logistic regression only). With the decay on a
/// hypergradient rule, h_t = −g_t·d_{t−1}/√(t−1): the derivative of the step actually taken.
///
/// Adam-HD needs no extra buffer: d_{t−1} is recomputed from m_{t−1}, v_{t−1} before they
/// are updated. The seed's Adam-HD box divides m by (1−β2^t) and uses m_t rather than m̂_t;
/// both are typos, and this follows the paper.
///
/// Known differences from gbaydin/hypergradient-descent's `AdamHD`: it adds ε to √v before
/// the bias correction (PyTorch's form), which amounts to ε/√(1−β2^t) here; this follows the
/// paper's d_t = m̂_t/(√v̂_t + ε). It also updates α per tensor inside its loop (its issue #9);
/// see [`Optimizer`](crate::Optimizer).
///
/// ```
/// use hd_core::{Adam, Base, Config, Optimizer};
/// // Adam-HD with the 1/√t decay (the paper's presets decay plain Adam only).
/// let config = Config {
///     base: Base::Adam(Adam { sqrt_decay: true, ..Adam::default() }),
///     ..Config::adam(0.001).with_hd(1e-7)
/// };
/// let opt = Optimizer::new(config)?;
/// assert_eq!(opt.slots(), 2); // m and v; d_{t−1} is recomputed from them
/// # Ok::<(), hd_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// β1 ∈ [0, 1), decay of the first moment.
    pub beta1: f32,
    /// β2 ∈ [0, 1), decay of the second moment.
    pub beta2: f32,
    /// ε > 0, added to √v̂.
    pub eps: f32,
    /// Divide the step by √t (the paper's setting for logistic regression).
    pub sqrt_decay: bool,
}

impl Default for Adam {
    /// The paper's (and Kingma & Ba's) defaults: β1 = 0.9, β2 = 0.999, ε = 1e−8, no decay.
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            sqrt_decay: false,
        }
    }
}

/// 1/(1−β^t) in f32 from ln β: 1 − β^t = −expm1(t ln β) (see [`crate::scalar`]), within
/// 3·2^−24 relative of the exact value; no cancellation at small t, no f64.
/// Called four times a step, once per step: kept out of line, where it is one copy in flash.
#[inline(never)]
fn inverse_bias_correction(ln_beta: f32, step: u64) -> f32 {
    1.0 / crate::scalar::one_minus_exp(step, ln_beta)
}

impl Adam {
    #[inline(always)]
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        Error::require((0.0..1.0).contains(&b1), "beta1", "in [0, 1)")?;
        Error::require((0.0..1.0).contains(&b2), "beta2", "in [0, 1)")?;
        Error::require(eps > 0.0 && eps.is_finite(), "eps", "finite and > 0")
    }

    #[inline(always)]
    pub(crate) fn constants(&self, step: u64) -> BaseConstants {
        let prev = step.saturating_sub(1);
        // Inlined, so that a β known at compile time (a firmware's) folds to a constant.
        let (l1, l2) = (crate::scalar::ln(self.beta1), crate::scalar::ln(self.beta2));
        // With the decay, step t − 1 moved θ by −(α_{t−1}/√(t−1)) d_{t−1}; folding 1/√(t−1)
        // into m̂'s correction costs nothing per element.
        let decay_prev = if self.sqrt_decay && prev > 0 {
            1.0 / crate::real::sqrtf(prev as f32)
        } else {
            1.0
        };
        BaseConstants {
            inv_bc1: inverse_bias_correction(l1, step),
            inv_bc2: inverse_bias_correction(l2, step),
            inv_bc1_prev: inverse_bias_correction(l1, prev) * decay_prev,
            inv_bc2_prev: inverse_bias_correction(l2, prev),
            has_prev: prev > 0,
        }
    }

    #[inline(always)]
    fn normalised<T: Real>(&self, m: &T, v: &T, inv_bc1: f32, inv_bc2: f32) -> T {
        m.scale(inv_bc1)
            .div(&v.scale(inv_bc2).sqrt().shift(self.eps))
    }

    /// d_{t−1} = m̂_{t−1}/(√v̂_{t−1} + ε), recomputed from the state before this step;
    /// `zero` at t = 1, where d_0 = 0.
    ///
    /// With `sqrt_decay` it is d_{t−1}/√(t−1): the hypergradient is g_t·∂θ_{t−1}/∂α, and
    /// step t − 1 took θ_{t−1} = θ_{t−2} − (α_{t−1}/√(t−1)) d_{t−1}, so the factor belongs in
    /// it. (The reference code has no decay in its Adam-HD; a hypergradient that ignores the
    /// factor overstates h by √(t−1) and lets α creep up for the whole run.)
    #[inline(always)]
    pub(crate) fn previous_direction<T: Real>(&self, c: &BaseConstants, slots: &[T], zero: T) -> T {
        match slots {
            [m, v, ..] if c.has_prev => self.normalised(m, v, c.inv_bc1_prev, c.inv_bc2_prev),
            _ => zero,
        }
    }

    /// Advances m and v with `g` and returns d_t.
    #[inline(always)]
    pub(crate) fn direction<T: Real>(&self, c: &BaseConstants, g: &T, slots: &mut [T]) -> T {
        match slots {
            [m, v, ..] => {
                m.assign(m.scale(self.beta1).add(&g.scale(1.0 - self.beta1)));
                v.assign(v.scale(self.beta2).add(&g.mul(g).scale(1.0 - self.beta2)));
                self.normalised(m, v, c.inv_bc1, c.inv_bc2)
            }
            // Unreachable: the optimizer checks the slot count before any step.
            _ => g.scale(0.0),
        }
    }
}
