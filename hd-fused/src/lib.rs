//! # hd-fused — hypergradient descent as generated kernels
//!
//! The fused step of hd's optimizers (DESIGN §3): each phase of a step as one kernel over flat
//! buffers, generated from hd-core's rule rather than written a second time. This crate
//! records the programs, evaluates them on the CPU and emits them as CUDA C; with the `cuda`
//! feature it also compiles them with NVRTC and launches them on raw device pointers
//! (module `cuda`), so any tensor library (tch, candle, …) can drive them. Nothing here needs
//! libtorch or a GPU to build or test.
//!
//! **One definition of the rule.** hd-core's rules are generic over [`Real`].
//! [`record`] implements `Real` for a value that writes down each operation instead of doing
//! it, and [`Programs::record`] drives hd-core's own [`Optimizer::terms_of`] (phase 1),
//! [`Optimizer::next_alpha`] and [`Optimizer::apply_to`] (phase 2) with such values. The three
//! straight-line programs that come out are hd-core's operations in hd-core's order; [`emit`]
//! prints them as CUDA C (one reduction kernel, a one-block α kernel, one element-wise
//! kernel), which NVRTC compiles at run time (`cuda`). [`Graph::eval`] and [`eval_step`] run
//! the same programs on `f32` slices on the CPU, which is how the tests hold them to hd-core's
//! slice step ([`verify`]).
//!
//! **Constants are arguments.** The host constants of a step (bias corrections, δ(t), β, …)
//! are numbered kernel arguments, not literals, so one compiled kernel serves every step whose
//! programs have the same [`GraphShape`] (in practice: step 1, where d_0 = 0, and every
//! later step). Each step re-records on the host, compares the shapes with the compiled
//! ones, and passes that step's values.
//!
//! **Coverage.** Every configuration hd-core accepts is fused: SGD, SGDN, heavy ball and Adam,
//! with HD or HDM, L2, 1/√t, the transition, the clamp, and global, per-tensor (one group of
//! tiles per variable, one α each) or per-parameter scope (α in a buffer slot, updated in
//! phase 2, so no phase-1 kernel at all). No rule falls back here; a front end keeps its own
//! path for a device where the CUDA driver or NVRTC cannot be loaded or a kernel does not
//! compile.
//!
//! **Determinism.** Phase 1 runs one block per tile of a fixed size; each thread sums its
//! elements in index order, the block sums its threads in a fixed tree and writes one partial
//! per tile; the α kernel (one block) sums a scope's partials the same way. No atomics, so a
//! step's α depends only on the data and the tiling ([`tiling`]), never on scheduling.

#[cfg(feature = "cuda")]
pub mod cuda;
pub mod emit;
pub mod record;
pub mod verify;

use hd_core::Real;
use hd_core::{Optimizer, Terms};
use record::{Graph, GraphShape, Place, Recorded, Recorder};

/// Elements per tile: one thread block of [`THREADS`] threads, each taking every
/// `THREADS`-th element of it. Large enough that a block streams long runs of memory, small
/// enough that WRN-28-10's 36.5 M parameters make thousands of blocks.
pub const TILE: usize = 8192;

/// Threads per block of every kernel (a power of two: the block sums halve it).
pub const THREADS: usize = 256;

/// The programs of one step of a rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Programs {
    /// Phase 1, per element: loads of θ (L2 only), g and slots; the reduction outputs in the
    /// order of hd-core's [`Terms`] (g·d, then ‖g‖², ‖d‖² for HDM). `None` when α does not
    /// depend on them (no hypergradient, or per-parameter scope, whose α is updated in phase 2).
    pub terms: Option<Graph>,
    /// The α update of one scope from its reduced terms ([`Place::Term`]) and its α
    /// ([`Place::Alpha`]); `None` with `terms`.
    pub alpha: Option<Graph>,
    /// Phase 2, per element: θ, buffers and (per-parameter scope) α updated.
    pub apply: Graph,
}

/// What a compiled set of kernels depends on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProgramsShape {
    terms: Option<GraphShape>,
    alpha: Option<GraphShape>,
    apply: GraphShape,
}

impl Programs {
    /// Records step `step` (t ≥ 1) of `rule`.
    ///
    /// # Errors
    /// [`hd_core::Error`] if hd-core refuses the recorded values (it cannot: every value has
    /// the one length the recorder gives it), or [`hd_core::Error::StepOverflow`] for t = 0;
    /// [`hd_core::Error::InvalidHyperparameter`] for stacked HD, whose β_t is host state.
    pub fn record(rule: &Optimizer, step: u64) -> Result<Programs, hd_core::Error> {
        if step == 0 {
            return Err(hd_core::Error::StepOverflow);
        }
        rule.check_backend_phases()?;
        let c = rule.constants(step);
        let slots = rule.slots();
        let inputs = |r: &Recorder| {
            let p = r.load(Place::Param, 1);
            let g = r.load(Place::Grad, 1);
            let s: Vec<Recorded> = (0..slots).map(|k| r.load(Place::Slot(k), 1)).collect();
            (p, g, s)
        };
        let (terms, alpha) = if rule.config().hyper.is_some() {
            let r1 = Recorder::new();
            let (p, g, s) = inputs(&r1);
            let t = rule.terms_of(&c, &p, &g, &s)?;
            r1.output_sum(&t.dot);
            let norms = t.norms.is_some();
            if let Some((gg, dd)) = &t.norms {
                r1.output_sum(gg);
                r1.output_sum(dd);
            }
            let r2 = Recorder::new();
            let mut a = r2.load(Place::Alpha, 1);
            let term = |j| r2.load(Place::Term(j), 1);
            let merged = Terms {
                dot: term(0),
                norms: norms.then(|| (term(1), term(2))),
            };
            let next = rule.next_alpha(&a, &merged);
            a.assign(next);
            let alpha = r2.finish();
            if alpha.stores.is_empty() {
                (None, None)
            } else {
                (Some(r1.finish()), Some(alpha))
            }
        } else {
            (None, None)
        };
        let r3 = Recorder::new();
        let (mut p, g, mut s) = inputs(&r3);
        let a = r3.load(Place::Alpha, 1);
        rule.apply_to(&c, &a, &mut p, &g, &mut s)?;
        Ok(Programs {
            terms,
            alpha,
            apply: r3.finish(),
        })
    }

    /// The shapes a compiled kernel set is keyed on.
    pub fn shape(&self) -> ProgramsShape {
        ProgramsShape {
            terms: self.terms.as_ref().map(Graph::shape),
            alpha: self.alpha.as_ref().map(Graph::shape),
            apply: self.apply.shape(),
        }
    }
}

/// A piece of the flat buffers with the α (group) it uses: the whole buffer for global and
/// per-parameter scope, one variable for per-tensor scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First element.
    pub offset: usize,
    /// Elements.
    pub len: usize,
    /// Index of its α.
    pub group: usize,
}

/// Flat `f32` buffers on the host, laid out as a front end keeps them on the device:
/// `buffers` is `[slots, stride]`, slot-major.
#[derive(Debug)]
pub struct FlatMut<'a> {
    /// θ.
    pub params: &'a mut [f32],
    /// g.
    pub grads: &'a [f32],
    /// The rule's per-element state, slot k at `k·stride..`.
    pub buffers: &'a mut [f32],
    /// Elements per slot (the flat buffers' length).
    pub stride: usize,
}

/// One whole step of `programs` evaluated on the host, as the kernels do it on the device:
/// phase 1 summed per group, α updated per group, phase 2 per element. The CPU reference
/// for the emitted kernels (the sums' order is sequential here, a tiled tree on the device).
pub fn eval_step(
    programs: &Programs,
    flat: &mut FlatMut<'_>,
    segments: &[Segment],
    alphas: &mut [f32],
) {
    let stride = flat.stride;
    if let (Some(terms), Some(alpha)) = (&programs.terms, &programs.alpha) {
        let mut sums = vec![vec![0.0f32; terms.sums.len()]; alphas.len()];
        for seg in segments {
            let Some(acc) = sums.get_mut(seg.group) else {
                continue;
            };
            for i in seg.offset..seg.offset + seg.len {
                terms.eval(
                    |p| load(flat.params, flat.grads, flat.buffers, stride, 0.0, i, p),
                    |_, _| {},
                    |j, x| {
                        if let Some(a) = acc.get_mut(j) {
                            *a += x;
                        }
                    },
                );
            }
        }
        for (a, t) in alphas.iter_mut().zip(&sums) {
            let mut next = *a;
            alpha.eval(
                |p| match p {
                    Place::Term(j) => t.get(j).copied().unwrap_or(f32::NAN),
                    _ => *a,
                },
                |_, x| next = x,
                |_, _| {},
            );
            *a = next;
        }
    }
    for seg in segments {
        let a = alphas.get(seg.group).copied().unwrap_or(f32::NAN);
        for i in seg.offset..seg.offset + seg.len {
            let mut out = Vec::with_capacity(programs.apply.stores.len());
            programs.apply.eval(
                |p| load(flat.params, flat.grads, flat.buffers, stride, a, i, p),
                |p, x| out.push((p, x)),
                |_, _| {},
            );
            for (p, x) in out {
                let cell = match p {
                    Place::Param => flat.params.get_mut(i),
                    Place::Slot(k) => flat.buffers.get_mut(k * stride + i),
                    _ => None,
                };
                if let Some(c) = cell {
                    *c = x;
                }
            }
        }
    }
}

fn load(
    params: &[f32],
    grads: &[f32],
    buffers: &[f32],
    stride: usize,
    alpha: f32,
    i: usize,
    place: Place,
) -> f32 {
    let v = match place {
        Place::Param => params.get(i),
        Place::Grad => grads.get(i),
        Place::Slot(k) => buffers.get(k * stride + i),
        Place::Alpha => return alpha,
        Place::Term(_) => None,
    };
    v.copied().unwrap_or(f32::NAN)
}

/// The tiles of `segments` (at most `tile` elements each; [`TILE`] on the device), grouped:
/// `(tiles, group starts)` as the kernels read them (see [`emit`]). `tiles` holds one triple
/// (first element, end, group) per tile, a group's tiles contiguous and in segment order;
/// `group starts` holds `groups + 1` tile indices, group k's tiles being
/// `starts[k]..starts[k + 1]`. Segments whose group is not below `groups` get no tile.
pub fn tiling(segments: &[Segment], groups: usize, tile: usize) -> (Vec<i64>, Vec<i64>) {
    let tile = tile.max(1);
    let mut tiles = Vec::new();
    let mut starts = Vec::with_capacity(groups + 1);
    for group in 0..groups {
        starts.push((tiles.len() / 3) as i64);
        for s in segments.iter().filter(|s| s.group == group) {
            let mut at = s.offset;
            while at < s.offset + s.len {
                let end = (at + tile).min(s.offset + s.len);
                tiles.extend([at as i64, end as i64, group as i64]);
                at = end;
            }
        }
    }
    starts.push((tiles.len() / 3) as i64);
    (tiles, starts)
}
