//! SGD, with optional heavy-ball or Nesterov momentum: the base directions d_t.

use crate::{Error, Real};

/// Stochastic gradient descent, optionally with momentum μ (Nesterov's form or heavy ball).
///
/// With gradient g_t (coupled L2 already added) and velocity v (starting at 0):
///
/// - μ = 0 (SGD): d_t = g_t.
/// - Nesterov (the PyTorch form the paper uses): v_t = μ v_{t−1} + g_t; d_t = g_t + μ v_t.
/// - Heavy ball (`nesterov: false`, μ > 0): v_t = μ v_{t−1} + g_t; d_t = v_t.
///
/// The step is θ_t = θ_{t−1} − γ_t d_t (see [`Optimizer`](crate::Optimizer)). As in
/// gbaydin/hypergradient-descent's `SGDHD`, the velocity takes the gradient undamped (PyTorch's
/// dampening is not offered) and the hypergradient uses d_{t−1}, the direction actually stepped.
///
/// ```
/// use hd_core::{Config, Optimizer};
/// // SGDN-HD with the paper's settings: α0 = 0.001, μ = 0.9, β = 0.001.
/// let opt = Optimizer::new(Config::sgdn(0.001, 0.9).with_hd(0.001))?;
/// assert_eq!(opt.slots(), 2); // v, and d_{t−1}
/// # Ok::<(), hd_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Momentum μ ∈ [0, 1); 0 is plain SGD.
    pub momentum: f32,
    /// Nesterov momentum (the paper's SGDN) rather than heavy ball; ignored when μ = 0.
    pub nesterov: bool,
}

impl Sgd {
    /// Plain SGD (μ = 0).
    pub const PLAIN: Sgd = Sgd {
        momentum: 0.0,
        nesterov: false,
    };

    /// SGD with Nesterov momentum μ (the paper's SGDN uses μ = 0.9).
    #[inline]
    pub const fn nesterov(momentum: f32) -> Sgd {
        Sgd {
            momentum,
            nesterov: true,
        }
    }

    #[inline(always)]
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let mu = self.momentum;
        Error::require((0.0..1.0).contains(&mu), "mu", "in [0, 1)")
    }

    /// Per-element buffers of the base rule: the velocity when μ > 0.
    #[inline(always)]
    pub(crate) fn slots(&self) -> usize {
        usize::from(self.momentum > 0.0)
    }

    /// Heavy ball's direction is its velocity, so d_{t−1} needs no buffer of its own.
    #[inline(always)]
    pub(crate) fn keeps_direction(&self) -> bool {
        self.momentum > 0.0 && !self.nesterov
    }

    /// d_{t−1}, read from the state before this step when the state holds it, else `otherwise`.
    #[inline(always)]
    pub(crate) fn previous_direction<T: Real>(&self, slots: &[T], otherwise: T) -> T {
        match slots {
            [v, ..] if self.keeps_direction() => v.clone(),
            _ => otherwise,
        }
    }

    /// Advances the velocity with `g` and returns d_t.
    #[inline(always)]
    pub(crate) fn direction<T: Real>(&self, g: &T, slots: &mut [T]) -> T {
        match slots {
            [v, ..] if self.momentum > 0.0 => {
                v.assign(v.scale(self.momentum).add(g));
                if self.nesterov {
                    g.add(&v.scale(self.momentum))
                } else {
                    v.clone()
                }
            }
            _ => g.clone(),
        }
    }
}
