//! The fused slice loops of the two phases: one pass over θ, g and the buffers per phase, in
//! blocks of [`LANES`] elements where the target has SIMD, monomorphised per buffer layout.

use crate::accumulator::{Accumulator, MaxAbs};
use crate::constants::StepConstants;
use crate::layout::SlotLayout;
use crate::optimizer::Optimizer;
use crate::real::{Lanes, Real, BLOCKS, LANES};
use core::ops::Range;

/// A method that sends a phase to its loops monomorphised for the layout's [`SlotLayout`], B base
/// slots of K in all: the one table of the layouts the fused loops are compiled for, so that
/// every slot index is a constant and each block stays in registers. Exhaustive, so a shape
/// with no loops does not compile.
macro_rules! by_layout {
    ($(#[$doc:meta])* fn $name:ident => $target:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $(#[$doc])*
        #[inline(always)]
        pub(crate) fn $name(&self, $($arg: $ty),*) {
            match self.layout.shape {
                SlotLayout::B0K0 => self.$target::<0, 0>($($arg),*),
                SlotLayout::B0K1 => self.$target::<0, 1>($($arg),*),
                SlotLayout::B0K2 => self.$target::<0, 2>($($arg),*),
                SlotLayout::B1K1 => self.$target::<1, 1>($($arg),*),
                SlotLayout::B1K2 => self.$target::<1, 2>($($arg),*),
                SlotLayout::B1K3 => self.$target::<1, 3>($($arg),*),
                SlotLayout::B2K2 => self.$target::<2, 2>($($arg),*),
                SlotLayout::B2K3 => self.$target::<2, 3>($($arg),*),
            }
        }
    };
}

impl Optimizer {
    by_layout! {
        /// Phase 1 over checked slices.
        fn terms_dispatch => terms_slices(
            c: &StepConstants,
            params: &[f32],
            grads: &[f32],
            buffers: &[f32],
            acc: &mut Accumulator,
        )
    }

    by_layout! {
        /// Phase 2 over checked slices.
        fn apply_dispatch => apply_slices(
            c: &StepConstants,
            alpha: f32,
            params: &mut [f32],
            grads: &[f32],
            buffers: &mut [f32],
        )
    }

    #[inline(always)]
    fn terms_slices<const B: usize, const K: usize>(
        &self,
        c: &StepConstants,
        params: &[f32],
        grads: &[f32],
        buffers: &[f32],
        acc: &mut Accumulator,
    ) {
        if !BLOCKS {
            // One element at a time, element j into lane j mod LANES as the blocks do.
            let decay = self.config.weight_decay > 0.0;
            let norms = self.needs_norms();
            let n = params.len();
            let lane0 = acc.lane;
            let end = lane0.wrapping_add(n) % LANES;
            // Where the lane is stored is flash on a microcontroller. HDM's accumulator is
            // address-taken (`widen_range`), so a lane stored after the loop leaves the fresh
            // accumulator's store of 0 alive too; stored before, that one is dropped (SGDN-HDM
            // −4 B). HD's lives in registers, and stored before the loop it made LLVM build
            // the empty sums of n = 0 apart (SGD-HD, SGDN-HD, Adam-HD +36 to +60 B).
            if norms {
                acc.lane = end;
            }
            for (i, (p, g)) in params.iter().zip(grads).enumerate() {
                let theta = if decay { *p } else { 0.0 };
                let Some(w) = window::<K>(buffers, n, i) else {
                    return;
                };
                let s = gather::<K>(w, n);
                let (g, d) = self.hyper_inputs(c, &theta, g, &s, B);
                let (g, d) = acc.scaled(norms, g, d);
                acc.add_one(&self.terms_from(c, &g, &d, &s), lane0.wrapping_add(i));
            }
            if !norms {
                acc.lane = end;
            }
            return;
        }
        let n = params.len();
        let slots = split_slots::<K>(buffers, n);
        // A head that fills the accumulator's current block, whole blocks, then a tail.
        let head = ((LANES - acc.lane) % LANES).min(n);
        let body = (n - head) / LANES * LANES;
        self.terms_partial::<B, K>(c, params, grads, &slots, 0..head, acc);
        self.terms_blocks::<B, K>(c, params, grads, &slots, head..head + body, acc);
        self.terms_partial::<B, K>(c, params, grads, &slots, head + body..n, acc);
    }

    /// Phase 1 over fewer than [`LANES`] elements, into the accumulator's current lanes.
    #[inline(always)]
    fn terms_partial<const B: usize, const K: usize>(
        &self,
        c: &StepConstants,
        params: &[f32],
        grads: &[f32],
        slots: &[&[f32]; K],
        range: Range<usize>,
        acc: &mut Accumulator,
    ) {
        let (start, len) = (range.start, range.len());
        if len == 0 {
            return;
        }
        let lane0 = acc.lane;
        // θ is read in phase 1 only for the L2 term.
        let theta = if self.config.weight_decay > 0.0 {
            Lanes::load(params, start, lane0, len)
        } else {
            Lanes::ZERO
        };
        let g = Lanes::load(grads, start, lane0, len);
        let s = slots.map(|sl| Lanes::load(sl, start, lane0, len));
        let (g, d) = self.hyper_inputs(c, &theta, &g, &s, B);
        let (g, d) = acc.scaled(self.needs_norms(), g, d);
        acc.add(&self.terms_from(c, &g, &d, &s), lane0, len);
    }

    /// Phase 1 over whole blocks: the hot loop.
    #[inline(always)]
    fn terms_blocks<const B: usize, const K: usize>(
        &self,
        c: &StepConstants,
        params: &[f32],
        grads: &[f32],
        slots: &[&[f32]; K],
        range: Range<usize>,
        acc: &mut Accumulator,
    ) {
        let (Some(params), Some(grads)) = (params.get(range.clone()), grads.get(range.clone()))
        else {
            return;
        };
        let decay = self.config.weight_decay > 0.0;
        let norms = self.needs_norms();
        // The sums live in a local for the loop, so that they can stay in registers; slot
        // blocks are addressed by index, as in `apply_slices`.
        let mut sums = *acc;
        let (mut max_g, mut max_d) = (Lanes::ZERO, Lanes::ZERO);
        let blocks = || params.chunks_exact(LANES).zip(grads.chunks_exact(LANES));
        let at = |i: usize| range.start + i * LANES;
        for (i, (p, g)) in blocks().enumerate() {
            let (g, d, s) = self.block_inputs::<B, K>(c, decay, p, g, slots, at(i));
            if norms {
                // HDM first sums unscaled, noting the largest g² and d²: when they are in
                // range, which is almost always, that is the result. (The sums are added
                // here directly: HDM has no per-parameter form, and a `Terms` with its
                // `Option` of blocks kept every block in memory.)
                let (gg, dd) = (g.mul(&g), d.mul(&d));
                max_g = max_g.lane_max(&gg);
                max_d = max_d.lane_max(&dd);
                sums.add_squares(&g.mul(&d), &gg, &dd);
            } else {
                sums.add_block(&self.terms_from(c, &g, &d, &s));
            }
        }
        if norms && !sums.admit_unscaled(max_g.max_abs(), max_d.max_abs()) {
            // Some |g| or |d| is out of range: again, scaling each block (see `Range2`).
            sums = *acc;
            for (i, (p, g)) in blocks().enumerate() {
                let (g, d, s) = self.block_inputs::<B, K>(c, decay, p, g, slots, at(i));
                let (g, d) = sums.scaled(norms, g, d);
                sums.add_block(&self.terms_from(c, &g, &d, &s));
            }
        }
        *acc = sums;
    }

    /// g_t, d_{t−1} and the slots of the block of θ `p` and g `g` that starts at `at`, for
    /// both of HDM's passes. A method that must be inlined, not a closure: as a closure (which
    /// LLVM may leave out of line) it made the phase-1 loops of every rule 4–7× slower.
    #[inline(always)]
    fn block_inputs<const B: usize, const K: usize>(
        &self,
        c: &StepConstants,
        decay: bool,
        p: &[f32],
        g: &[f32],
        slots: &[&[f32]; K],
        at: usize,
    ) -> (Lanes, Lanes, [Lanes; K]) {
        let theta = if decay { Lanes::block(p) } else { Lanes::ZERO };
        let s = slots.each_ref().map(|sl| Lanes::block_at(sl, at));
        let (g, d) = self.hyper_inputs(c, &theta, &Lanes::block(g), &s, B);
        (g, d, s)
    }

    #[inline(always)]
    fn apply_slices<const B: usize, const K: usize>(
        &self,
        c: &StepConstants,
        alpha: f32,
        params: &mut [f32],
        grads: &[f32],
        buffers: &mut [f32],
    ) {
        // One element at a time on bare metal; and without slots (plain SGD) the element
        // loop is what LLVM vectorises best: blocks
        // there were vectorised across blocks instead, gathering one lane of four blocks at a
        // time (3× slower in cache). Phase 2 sums nothing, so the bits are the same.
        let n = params.len();
        if !BLOCKS || K == 0 {
            for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
                let Some(w) = window_mut::<K>(buffers, n, i) else {
                    return;
                };
                let mut s = gather::<K>(w, n);
                self.apply_unchecked(c, &alpha, p, g, &mut s, B);
                scatter(w, n, s);
            }
            return;
        }
        let mut slots = split_slots_mut::<K>(buffers, n);
        let alpha = Lanes([alpha; LANES]);
        let body = n / LANES * LANES;
        // Slot blocks are addressed by index rather than through an array of chunk
        // iterators, which LLVM keeps in memory and which made this loop several times slower.
        let blocks = params
            .chunks_exact_mut(LANES)
            .zip(grads.chunks_exact(LANES));
        for (i, (p, g)) in blocks.enumerate() {
            let at = i * LANES;
            let mut theta = Lanes::block(p);
            let mut s = slots.each_ref().map(|sl| Lanes::block_at(sl, at));
            self.apply_unchecked(c, &alpha, &mut theta, &Lanes::block(g), &mut s, B);
            theta.store_block(p);
            for (sl, v) in slots.iter_mut().zip(s.iter()) {
                if let Some(d) = sl.get_mut(at..at + LANES) {
                    v.store_block(d);
                }
            }
        }
        let len = n - body;
        if len > 0 {
            let mut theta = Lanes::load(params, body, 0, len);
            let g = Lanes::load(grads, body, 0, len);
            let mut s = slots.each_ref().map(|sl| Lanes::load(sl, body, 0, len));
            self.apply_unchecked(c, &alpha, &mut theta, &g, &mut s, B);
            theta.store(params, body, 0, len);
            for (sl, v) in slots.iter_mut().zip(s.iter()) {
                v.store(sl, body, 0, len);
            }
        }
    }
}

/// The `K` slots of `n` elements that `buffers` holds one after another: slot k is
/// buffers[k·n..(k+1)·n] (shorter only if `buffers` is, which the checked lengths rule out;
/// `split_at` keeps this free of panic paths).
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

/// The elements of `buffers` from element `i` of the first of its `K` slots of `n` elements to
/// element `i` of the last (`None` past the end, which the checked lengths rule out). One
/// bounds check per element: each slot's element is then at k·n in the window, which the
/// compiler sees is in range (a check per slot, and per slot again when writing, cost a
/// microcontroller's Adam-HD 40 B of flash). The loops take the window once per element and
/// both read and write through it: checked separately in `gather` and `scatter`, the compiler
/// duplicated the loop body (SGDN-HD +16 B).
#[inline(always)]
fn window<const K: usize>(buffers: &[f32], n: usize, i: usize) -> Option<&[f32]> {
    if K == 0 {
        return Some(&[]);
    }
    buffers.get(i..=(K - 1).wrapping_mul(n).wrapping_add(i))
}

/// [`window`] for writing.
#[inline(always)]
fn window_mut<const K: usize>(buffers: &mut [f32], n: usize, i: usize) -> Option<&mut [f32]> {
    if K == 0 {
        return Some(&mut []);
    }
    buffers.get_mut(i..=(K - 1).wrapping_mul(n).wrapping_add(i))
}

/// Writes `values` to the `K` slots' elements in a [`window_mut`] (at 0, n, 2n, …), as
/// [`gather`] reads them. Unrolled through `from_fn` for the same reason.
#[inline(always)]
fn scatter<const K: usize>(window: &mut [f32], n: usize, values: [f32; K]) {
    let _: [(); K] = core::array::from_fn(|k| {
        if let (Some(x), Some(v)) = (window.get_mut(k.wrapping_mul(n)), values.get(k)) {
            *x = *v;
        }
    });
}

/// The `K` slots' elements in a [`window`] (at 0, n, 2n, …; 0 past its end, which cannot
/// happen). Indexed, not split into slices: on the one-element path the slices' set-up and
/// their per-slot bounds checks cost more flash than they save. Built by `from_fn`, which the
/// compiler unrolls, where a loop over k kept the slots on the stack: on a microcontroller
/// 28–116 B less flash per rule with slots.
#[inline(always)]
fn gather<const K: usize>(window: &[f32], n: usize) -> [f32; K] {
    core::array::from_fn(|k| window.get(k.wrapping_mul(n)).copied().unwrap_or(0.0))
}
