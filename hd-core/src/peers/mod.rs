//! The learning-rate-free peers of HD: [Prodigy](crate::Prodigy) (Mishchenko & Defazio 2023)
//! and [Schedule-Free](crate::ScheduleFree) (Defazio et al. 2024), exact, `no_std`,
//! allocation-free and panic-free like the HD rules, so that HD can be compared with them on
//! the same data from the same core.
//!
//! Each follows the reference PyTorch package operation by operation (`prodigyopt` 1.1.2's
//! `Prodigy`, `schedulefree` 1.4.1's `SGDScheduleFree` and `AdamWScheduleFree`), in f32; where
//! the arithmetic differs (their host scalars are Python floats, i.e. f64; torch's CPU kernels
//! may fuse a multiply and an add) the rule's doc comment says so.
//!
//! **Two phases**, as for HD's global α: Prodigy's step size d comes from sums over *every*
//! parameter, so a step over many tensors is [`accumulate`](crate::Prodigy::accumulate) over
//! every tensor into one [`PeerSums`], [`advance`](crate::Prodigy::advance) once (the scalars
//! of the step, returned as a plan), [`apply`](crate::Prodigy::apply) to every tensor.
//! Schedule-Free has no global sum, but takes the same three phases so that a non-finite
//! gradient in any tensor is found before any tensor is written. `step` does all three over
//! one buffer, `step_tensors` over a model's tensors; splitting a buffer into tensors gives
//! the same bits, because element j of the concatenation always lands in lane j mod
//! [`LANES`](crate::LANES) of the sums and the lanes are reduced in a fixed order.
//!
//! Buffers are one slice per tensor holding the rule's slots one after another (slot k of n
//! parameters is `buffers[k·n..(k+1)·n]`), as for the HD rules. Unlike theirs, a fresh start
//! is not all zeros: both rules keep a copy of the initial parameters (Prodigy's x_0,
//! Schedule-Free's z_0 = x_0), so `init_buffers` takes the parameters.
//!
//! **Saving**: `encode` / `decode` write and read a versioned little-endian record of their
//! own ([`PEER_RECORD_LEN`] bytes, layout in `record.rs`'s docs); buffers are plain f32s
//! ([`encode_f32s`](crate::encode_f32s)).

mod prodigy;
mod record;
mod schedule_free;

pub use prodigy::{Prodigy, ProdigyConfig, ProdigyState, ProdigyStep};
pub use record::PEER_RECORD_LEN;
pub use schedule_free::{
    ScheduleFree, ScheduleFreeBase, ScheduleFreeConfig, ScheduleFreeState, ScheduleFreeStep,
};

use crate::error::Error;
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
    fn push(&mut self, dot: f32, abs: f32) {
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
    fn totals(&self) -> (f32, f32) {
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

/// Checks that `grads` has `params`' length and `buffers` holds `slots` slots of it.
#[inline(always)]
pub(crate) fn check_lengths(
    slots: usize,
    params: usize,
    grads: usize,
    buffers: usize,
) -> Result<(), Error> {
    if grads != params {
        return Err(Error::LengthMismatch {
            name: "grads",
            expected: params,
            found: grads,
        });
    }
    let expected = params.checked_mul(slots).ok_or(Error::LengthMismatch {
        name: "params",
        expected: usize::MAX / slots.max(1),
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

/// The `K` slots of `n` elements that `buffers` holds one after another (shorter only if
/// `buffers` is, which the checked lengths rule out; `split_at` keeps this free of panics).
#[inline(always)]
pub(crate) fn split_slots<const K: usize>(buffers: &[f32], n: usize) -> [&[f32]; K] {
    let mut rest = buffers;
    core::array::from_fn(|_| {
        let (slot, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        slot
    })
}

/// [`split_slots`] for writing.
#[inline(always)]
pub(crate) fn split_slots_mut<const K: usize>(buffers: &mut [f32], n: usize) -> [&mut [f32]; K] {
    let mut rest = buffers;
    core::array::from_fn(|_| {
        let whole = core::mem::take(&mut rest);
        let (slot, tail) = whole.split_at_mut(n.min(whole.len()));
        rest = tail;
        slot
    })
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
