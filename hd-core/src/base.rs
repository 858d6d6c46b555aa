//! The base rules' dispatch: every match on [`Base`] the step makes, in one `impl`, so a new
//! base rule is added here (and in the configuration's builders and validation, the layout and
//! the codec, which the compiler points at).

use crate::config::Base;
use crate::constants::BaseConstants;
use crate::real::Real;

impl Base {
    /// Whether the step size decays as γ_t = α_t/√t (Adam's option).
    #[inline(always)]
    pub(crate) fn sqrt_decay(&self) -> bool {
        match self {
            Base::Sgd(_) => false,
            Base::Adam(a) => a.sqrt_decay,
        }
    }

    /// The host constants of step t the rule needs: Adam's bias corrections.
    #[inline(always)]
    pub(crate) fn constants(&self, step: u64) -> BaseConstants {
        match self {
            Base::Adam(a) => a.constants(step),
            Base::Sgd(_) => BaseConstants::default(),
        }
    }

    /// d_{t−1} recomputed from the rule's own buffers, else `zero`.
    #[inline(always)]
    pub(crate) fn previous_direction<T: Real>(&self, c: &BaseConstants, slots: &[T], zero: T) -> T {
        match self {
            Base::Sgd(s) => s.previous_direction(slots, zero),
            Base::Adam(a) => a.previous_direction(c, slots, zero),
        }
    }

    /// Advances the rule's buffers with `g` and returns d_t.
    #[inline(always)]
    pub(crate) fn direction<T: Real>(&self, c: &BaseConstants, g: &T, slots: &mut [T]) -> T {
        match self {
            Base::Sgd(s) => s.direction(g, slots),
            Base::Adam(a) => a.direction(c, g, slots),
        }
    }
}
