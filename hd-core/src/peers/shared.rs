//! What both peers use: the phase-1 sums ([`PeerSums`]), ATen's `lerp`, and the checks of
//! their hyperparameters. (Lengths and buffer slots are checked and split as for the HD rules:
//! [`Error::check_lengths`], `slices::split_slots`.)

use crate::error::Error;
use crate::optimizer::TensorMut;
use crate::real::LANES;

/// The sums of phase 1 over every tensor of a step, kept in [`LANES`] lanes (element j of
/// the concatenated parameters in lane j mod [`LANES`]) so that their value does not depend on
/// how the parameters are split into tensors.
///
/// For Prodigy, ⟨g_t, x_0 − x_{t−1}⟩ and ‖s_t‖_1; for Schedule-Free, only the finiteness check
/// (the sum of g·0, which is 0 exactly when every gradient is finite).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeerSums {
    dot: [f32; LANES],
    abs: [f32; LANES],
    /// The lane of the next element.
    lane: usize,
}

impl Default for PeerSums {
    fn default() -> Self {
        PeerSums::new()
    }
}

impl PeerSums {
    /// Empty sums, for the start of a step.
    pub const fn new() -> PeerSums {
        PeerSums {
            dot: [0.0; LANES],
            abs: [0.0; LANES],
            lane: 0,
        }
    }

    /// Adds one element's terms to the current lane and moves to the next.
    #[inline(always)]
    pub(super) fn push(&mut self, dot: f32, abs: f32) {
        if let (Some(d), Some(a)) = (self.dot.get_mut(self.lane), self.abs.get_mut(self.lane)) {
            *d += dot;
            *a += abs;
        }
        self.lane += 1;
        if self.lane == LANES {
            self.lane = 0;
        }
    }

    /// The two sums, each reduced pairwise in a fixed order.
    pub(super) fn totals(&self) -> (f32, f32) {
        (reduce(&self.dot), reduce(&self.abs))
    }
}

/// The lanes' sum, pairwise: ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
fn reduce(lanes: &[f32; LANES]) -> f32 {
    let [a, b, c, d, e, f, g, h] = *lanes;
    ((a + b) + (c + d)) + ((e + f) + (g + h))
}

/// PyTorch's `torch.lerp(a, b, w)` for one element, in its two-branch form (ATen's
/// `lerp`): a + w(b − a) for |w| < ½, else b − (b − a)(1 − w), which is exact at w = 0 and
/// w = 1. Schedule-Free moves between its sequences with it.
#[inline(always)]
pub(crate) fn lerp(a: f32, b: f32, w: f32) -> f32 {
    let diff = b - a;
    if w.abs() < 0.5 {
        a + w * diff
    } else {
        b - diff * (1.0 - w)
    }
}

/// `Ok` when `x` is finite and `lo ≤ x` (or `lo < x` with `strict`), else
/// [`Error::InvalidHyperparameter`] naming it with `requirement`.
#[inline(always)]
pub(crate) fn require_at_least(
    x: f32,
    lo: f32,
    strict: bool,
    name: &'static str,
    requirement: &'static str,
) -> Result<(), Error> {
    let above = if strict { x > lo } else { x >= lo };
    Error::require(above && x.is_finite(), name, requirement)
}

/// One step of a peer over every tensor of a model: `accumulate` over each (reads only),
/// `advance` once on a copy of the state, `apply` to each, and only then the state replaced.
/// Phase 1 checks every tensor's lengths and gradient, so an error leaves state, parameters and
/// buffers as they were; `apply` then meets only what phase 1 accepted.
pub(crate) fn step_all<S: Copy, P>(
    state: &mut S,
    tensors: &mut [TensorMut<'_>],
    accumulate: impl Fn(&S, &TensorMut<'_>, &mut PeerSums) -> Result<(), Error>,
    advance: impl FnOnce(&mut S, &PeerSums) -> Result<P, Error>,
    apply: impl Fn(&P, &mut TensorMut<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut sums = PeerSums::new();
    for t in tensors.iter() {
        accumulate(state, t, &mut sums)?;
    }
    let mut next = *state;
    let step = advance(&mut next, &sums)?;
    for t in tensors.iter_mut() {
        apply(&step, t)?;
    }
    *state = next;
    Ok(())
}
