//! Phase 1's running sums: the hypergradient terms of any number of slices, summed lane by
//! lane in a fixed order so that every target gets the same bits.

use crate::hyper::Terms;
use crate::real::BLOCKS;
use crate::real::{Lanes, Real, LANES};

/// Lane-wise running sums of phase 1 over any number of slices, in the order they are fed.
///
/// Element j of the concatenation of everything fed goes to lane j mod [`LANES`], and
/// [`terms`](Accumulator::terms) reduces the lanes as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)); so
/// feeding tensors one by one gives exactly the bits of feeding their concatenation at once, on
/// every target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Accumulator {
    dot: [f32; LANES],
    grad_sq: [f32; LANES],
    dir_sq: [f32; LANES],
    pub(crate) lane: usize,
    grad_range: Range2,
    dir_range: Range2,
}

/// The power of two 2^k that g (or d) is multiplied by before HDM squares it, and the binary
/// exponent of the largest scaled |x| seen so far.
///
/// In f32, Σ g² underflows to 0 once every |g_i| is below about 1e-23 and overflows above
/// about 1e19, which made cos = g·d/(‖g‖‖d‖) meaningless at both ends of the range. Scaling by
/// a power of two is exact and cos does not depend on it, so k is chosen to keep the largest
/// scaled value within 2^±40 (the sums then stay far from both limits for any length). While
/// the gradients stay in that range k stays 0, so the usual sums, and their bits, are unchanged.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Range2 {
    /// The exponent k of the factor.
    k: i32,
    /// 2^k.
    factor: f32,
    /// The largest raw |x| seen so far.
    seen: f32,
}

/// 2^k as an exact f32, for k ∈ [−126, 127].
#[inline(always)]
fn pow2(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

impl Range2 {
    /// Nothing seen yet.
    const EMPTY: Range2 = Range2 {
        k: 0,
        factor: 1.0,
        seen: 0.0,
    };
    /// The scaled maximum is kept within 2^±`WINDOW`.
    const WINDOW: i32 = 40;

    /// Takes in a raw |x| larger than any seen; returns the factor 2^j (1 almost always) that
    /// the sums already held must be multiplied by (once for the dot, twice for squares).
    #[inline(always)]
    fn admit(&mut self, max_abs: f32) -> f32 {
        // NaN and ∞ pass unscaled into the sums, where they are caught.
        if max_abs.is_nan() || max_abs <= self.seen {
            return 1.0;
        }
        self.seen = max_abs;
        if !max_abs.is_finite() {
            return 1.0;
        }
        let exponent = ((max_abs.to_bits() >> 23) & 0xff) as i32 - 127;
        let top = exponent + self.k;
        if (-Self::WINDOW..=Self::WINDOW).contains(&top) {
            return 1.0;
        }
        // Bring the largest scaled value near 1, by at most 2^±126 at a time.
        let j = (-top).max(-126 - self.k).min(126 - self.k);
        self.k += j;
        self.factor = pow2(self.k);
        pow2(j)
    }
}

impl Default for Accumulator {
    fn default() -> Self {
        Accumulator::new()
    }
}

#[inline(always)]
fn add_lanes(acc: &mut [f32; LANES], x: &Lanes, lane0: usize, len: usize) {
    if lane0 == 0 && len == LANES {
        for (a, v) in acc.iter_mut().zip(x.0.iter()) {
            *a += *v;
        }
        return;
    }
    for (a, v) in acc.iter_mut().zip(x.0.iter()).skip(lane0).take(len) {
        *a += *v;
    }
}

/// The largest |x| of a value, for HDM's scaling; NaN is skipped (it reaches the sums anyway).
pub(crate) trait MaxAbs {
    /// Whether some |x| > `bound`: the hot test, a compare and a mask, no reduction.
    fn exceeds(&self, bound: f32) -> bool;
    fn max_abs(&self) -> f32;
}

impl MaxAbs for f32 {
    #[inline(always)]
    fn exceeds(&self, bound: f32) -> bool {
        self.abs() > bound
    }
    #[inline(always)]
    fn max_abs(&self) -> f32 {
        self.abs()
    }
}

impl Lanes {
    /// Lane-wise max(self, x), NaN skipped.
    #[inline(always)]
    pub(crate) fn lane_max(&self, x: &Lanes) -> Lanes {
        self.zip_with(x, |m, v| if v > m { v } else { m })
    }
}

impl MaxAbs for Lanes {
    #[inline(always)]
    fn exceeds(&self, bound: f32) -> bool {
        self.0.iter().fold(false, |any, x| any | (x.abs() > bound))
    }
    #[inline(always)]
    fn max_abs(&self) -> f32 {
        self.0
            .iter()
            .fold(0.0, |m, x| if x.abs() > m { x.abs() } else { m })
    }
}

/// Lanes summed in a fixed tree order. The lanes start at −0 (see [`Accumulator::new`]); the
/// final `+ 0` turns a −0 total into +0, so the result has exactly the bits of the same sums
/// started at +0. Once per step, out of line: HDM's three copies inlined cost a
/// microcontroller flash and made HDM's step 2× slower in cache on x86-64 (BENCHMARKS.md).
/// Where the lanes live in SIMD code they go by reference (passing eight values made
/// SGD-HDM's step 5% slower at 1e4 on x86-64); on the one-element path (bare metal) as eight
/// values, in FP registers: a reference into the accumulator made it escape, so a
/// microcontroller build kept stores it otherwise drops.
#[inline(always)]
fn reduce(l: &[f32; LANES]) -> f32 {
    if BLOCKS {
        return reduce_ref(l);
    }
    let [a, b, c, d, e, f, g, h] = *l;
    reduce_values(a, b, c, d, e, f, g, h)
}

/// [`reduce`] on the one-element path: 48 B of flash where the reference form was 80.
#[inline(never)]
#[allow(clippy::too_many_arguments, clippy::many_single_char_names)]
fn reduce_values(a: f32, b: f32, c: f32, d: f32, e: f32, f: f32, g: f32, h: f32) -> f32 {
    (((a + b) + (c + d)) + ((e + f) + (g + h))) + 0.0
}

/// [`reduce`] by reference: lanes in memory, loaded here. HDM's three sums always take this
/// form: on the one-element path `widen_range` already takes their fields by reference, and
/// passed as values the compiler kept all 24 lanes in FP registers across the step (SGD-HDM
/// +244 B of flash); loading them here is 16 B where loading them at each call cost more.
#[inline(never)]
fn reduce_ref(l: &[f32; LANES]) -> f32 {
    let [a, b, c, d, e, f, g, h] = *l;
    reduce_values(a, b, c, d, e, f, g, h)
}

/// Admits a new largest |x| into one of HDM's ranges and rescales the sums held so far to its
/// new factor (exact: a power of two, except that what falls below f32's range was negligible
/// anyway): the squares of x by the factor twice, the dot once.
#[inline(never)]
fn widen_range(range: &mut Range2, squares: &mut [f32; LANES], dot: &mut [f32; LANES], max: f32) {
    let f = range.admit(max);
    if f != 1.0 {
        for (s, p) in squares.iter_mut().zip(dot.iter_mut()) {
            *s = *s * f * f;
            *p *= f;
        }
    }
}

/// Empty lanes. A constant rather than `[-0.0; LANES]` in place, which a microcontroller
/// build compiles to a fill loop plus copies of its result.
const NEG_ZEROS: [f32; LANES] = [-0.0; LANES];

impl Accumulator {
    /// Empty sums.
    pub const fn new() -> Self {
        // −0 is the identity of IEEE addition as +0 is (−0 + x = x for every x), so every sum
        // has the same value, and `reduce` restores the sign of a zero total; unlike +0 it is
        // not a byte pattern that compiles to a call to `memset`, which would cost a
        // microcontroller 174 B of flash.
        Accumulator {
            dot: NEG_ZEROS,
            grad_sq: NEG_ZEROS,
            dir_sq: NEG_ZEROS,
            lane: 0,
            grad_range: Range2::EMPTY,
            dir_range: Range2::EMPTY,
        }
    }

    /// g_t and d_{t−1} scaled for HDM's sums (see [`Range2`]); unchanged for HD, whose dot
    /// product is used as is. A new largest |g| or |d| takes the slow path.
    #[inline(always)]
    pub(crate) fn scaled<T: Real + MaxAbs>(&mut self, norms: bool, g: T, d: T) -> (T, T) {
        if !norms {
            return (g, d);
        }
        if BLOCKS {
            if g.exceeds(self.grad_range.seen) || d.exceeds(self.dir_range.seen) {
                *self = self.widened(g.max_abs(), d.max_abs());
            }
        } else {
            // In place on bare metal (copying the sums in and out would link `memcpy`), and
            // one range at a time: one out-of-line function called per range is 184 B of a
            // microcontroller's flash, where admitting both ranges in one function was 246 B.
            if g.exceeds(self.grad_range.seen) {
                widen_range(
                    &mut self.grad_range,
                    &mut self.grad_sq,
                    &mut self.dot,
                    g.max_abs(),
                );
            }
            if d.exceeds(self.dir_range.seen) {
                widen_range(
                    &mut self.dir_range,
                    &mut self.dir_sq,
                    &mut self.dot,
                    d.max_abs(),
                );
            }
        }
        (
            g.scale(self.grad_range.factor),
            d.scale(self.dir_range.factor),
        )
    }

    /// Whether sums added unscaled, with these largest g² and d², are what the scaled sums
    /// would be: nothing scaled so far and the largest |g| and |d| seen within 2^±`WINDOW`
    /// (an all-zero or underflowed slice takes the scaled path too). If so, notes the maxima.
    #[inline(always)]
    pub(crate) fn admit_unscaled(&mut self, max_grad_sq: f32, max_dir_sq: f32) -> bool {
        let (mg, md) = (
            crate::real::sqrtf(max_grad_sq),
            crate::real::sqrtf(max_dir_sq),
        );
        let fits = |r: &Range2, m: f32| {
            let m = if m > r.seen { m } else { r.seen };
            let exponent = ((m.to_bits() >> 23) & 0xff) as i32 - 127;
            r.k == 0 && (-Range2::WINDOW..=Range2::WINDOW).contains(&exponent)
        };
        if !(fits(&self.grad_range, mg) && fits(&self.dir_range, md)) {
            return false;
        }
        self.grad_range.seen = self.grad_range.seen.max_const(mg);
        self.dir_range.seen = self.dir_range.seen.max_const(md);
        true
    }

    /// Adds one block of HDM's three sums.
    #[inline(always)]
    pub(crate) fn add_squares(&mut self, dot: &Lanes, grad_sq: &Lanes, dir_sq: &Lanes) {
        add_lanes(&mut self.dot, dot, 0, LANES);
        add_lanes(&mut self.grad_sq, grad_sq, 0, LANES);
        add_lanes(&mut self.dir_sq, dir_sq, 0, LANES);
    }

    /// Admits new maxima, one range after the other ([`widen_range`]), by value, so that the
    /// caller's sums are never address-taken and can stay in registers through the block loop.
    #[inline(never)]
    fn widened(mut self, max_grad: f32, max_dir: f32) -> Accumulator {
        widen_range(
            &mut self.grad_range,
            &mut self.grad_sq,
            &mut self.dot,
            max_grad,
        );
        widen_range(
            &mut self.dir_range,
            &mut self.dir_sq,
            &mut self.dot,
            max_dir,
        );
        self
    }

    pub(crate) fn add(&mut self, t: &Terms<Lanes>, lane0: usize, len: usize) {
        add_lanes(&mut self.dot, &t.dot, lane0, len);
        if let Some((g, d)) = &t.norms {
            add_lanes(&mut self.grad_sq, g, lane0, len);
            add_lanes(&mut self.dir_sq, d, lane0, len);
        }
        self.lane = (lane0 + len) % LANES;
    }

    #[inline(always)]
    pub(crate) fn add_block(&mut self, t: &Terms<Lanes>) {
        add_lanes(&mut self.dot, &t.dot, 0, LANES);
        if let Some((g, d)) = &t.norms {
            add_lanes(&mut self.grad_sq, g, 0, LANES);
            add_lanes(&mut self.dir_sq, d, 0, LANES);
        }
    }

    /// Adds one element's terms to `lane` (taken mod [`LANES`]). The caller keeps the lane
    /// and stores it once, outside its loop: the accumulator is address-taken on the
    /// one-element path, so a lane kept in it was loaded and stored again for every element.
    #[inline(always)]
    pub(crate) fn add_one(&mut self, t: &Terms<f32>, lane: usize) {
        // Reduced here, so that the compiler sees every index below is in range.
        let lane = lane % LANES;
        if let Some(d) = self.dot.get_mut(lane) {
            *d += t.dot;
        }
        if let Some((g, d)) = t.norms {
            if let Some(a) = self.grad_sq.get_mut(lane) {
                *a += g;
            }
            if let Some(a) = self.dir_sq.get_mut(lane) {
                *a += d;
            }
        }
    }

    /// The accumulated terms (with norms when `norms`).
    ///
    /// For HDM, g and d were each multiplied by a power of two (2^0 unless the gradients are
    /// below about 2^−40 or above 2^40) before the sums, so that ‖g‖² can neither underflow nor
    /// overflow; cos(g, d) does not depend on it. For per-parameter scope the dot is a check,
    /// 0 or NaN (see [`Optimizer::advance`](crate::Optimizer::advance)).
    #[inline(always)]
    pub fn terms(&self, norms: bool) -> Terms<f32> {
        if norms {
            return Terms {
                dot: reduce_ref(&self.dot),
                norms: Some((reduce_ref(&self.grad_sq), reduce_ref(&self.dir_sq))),
            };
        }
        Terms {
            dot: reduce(&self.dot),
            norms: None,
        }
    }
}
