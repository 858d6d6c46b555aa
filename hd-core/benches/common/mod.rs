//! What both benchmarks share: the rules as benchmarked, their data, the bytes a step moves,
//! and the two bandwidth baselines.

use hd_core::{
    Config, Error, Family, HyperRule, Optimizer, Prodigy, ProdigyConfig, ScheduleFree,
    ScheduleFreeConfig, Variant,
};
use std::hint::black_box;

/// Bytes one step of `v` really moves per parameter: DESIGN §7's model, plus the 4-byte read
/// of g that base rules make to refuse a non-finite gradient before writing.
pub fn bytes(v: Variant) -> usize {
    v.model_bytes_per_parameter() + if v.rule().is_none() { 4 } else { 0 }
}

/// `v` as benchmarked: α0 = 0.001, μ = 0.9. β is tiny so that millions of steps on one fixed
/// gradient never overflow α; the work a step does does not depend on β's value.
pub fn config(v: Variant) -> Config {
    let beta = match v.rule() {
        Some(HyperRule::Multiplicative) => 1e-9,
        _ => 1e-12,
    };
    v.config(1e-3, beta, 0.9)
}

/// κ of stacked HD as benchmarked: as tiny as β, for the same reason (β_t grows by about
/// κ h² a step on one fixed gradient, and α by β_t h).
const KAPPA: f32 = 1e-30;

/// The rules benchmarked beside the paper's nine: stacked HD on each family's HD rule, and the
/// learning-rate-free peers.
#[derive(Clone, Copy, Debug)]
pub enum Extra {
    /// Stacked HD on this family's additive rule.
    Stacked(Family),
    Prodigy,
    ScheduleFreeSgd,
    ScheduleFreeAdamW,
}

impl Extra {
    pub const ALL: [Extra; 6] = [
        Extra::Stacked(Family::Sgd),
        Extra::Stacked(Family::Sgdn),
        Extra::Stacked(Family::Adam),
        Extra::Prodigy,
        Extra::ScheduleFreeSgd,
        Extra::ScheduleFreeAdamW,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Extra::Stacked(Family::Sgd) => "sgd-hd-stacked",
            Extra::Stacked(Family::Sgdn) => "sgdn-hd-stacked",
            Extra::Stacked(Family::Adam) => "adam-hd-stacked",
            Extra::Prodigy => "prodigy",
            Extra::ScheduleFreeSgd => "sf-sgd",
            Extra::ScheduleFreeAdamW => "sf-adamw",
        }
    }

    /// The rules its time is compared with: stacked HD's plain HD rule and base rule, the
    /// base rule a peer's step is built on (Prodigy's is Adam's).
    #[allow(dead_code)] // `paired` compares; `step` only times
    pub fn bases(self) -> Vec<Variant> {
        match self {
            Extra::Stacked(f) => vec![Variant::of(f, Some(HyperRule::Additive)), f.base()],
            Extra::Prodigy | Extra::ScheduleFreeAdamW => vec![Variant::Adam],
            Extra::ScheduleFreeSgd => vec![Variant::Sgd],
        }
    }

    /// Bytes one step moves per parameter (DESIGN §7). Stacked HD's are its HD rule's (β_t and
    /// the last dot product are scalars); a peer's pass 1 reads g anyway, so nothing is added
    /// for a finiteness check.
    pub fn bytes(self) -> usize {
        match self {
            Extra::Stacked(f) => bytes(Variant::of(f, Some(HyperRule::Additive))),
            Extra::Prodigy => prodigy().model_bytes_per_parameter(),
            Extra::ScheduleFreeSgd | Extra::ScheduleFreeAdamW => {
                self.schedule_free().model_bytes_per_parameter()
            }
        }
    }

    fn schedule_free(self) -> ScheduleFree {
        let config = match self {
            Extra::ScheduleFreeAdamW => ScheduleFreeConfig::adamw(1e-3),
            _ => ScheduleFreeConfig::sgd(1e-3),
        };
        ScheduleFree::new(config).unwrap()
    }

    /// One step of this rule on n parameters (fixed θ_0 and g, as for the nine), each call
    /// the next step.
    pub fn stepper(self, n: usize) -> Box<dyn FnMut()> {
        match self {
            Extra::Stacked(f) => {
                let v = Variant::of(f, Some(HyperRule::Additive));
                let opt = Optimizer::new(config(v).with_kappa(KAPPA)).unwrap();
                let state = opt.init_state();
                let mut buffers = vec![0.0; opt.buffer_len(n).unwrap()];
                opt.init_buffers(&mut buffers).unwrap();
                stepper(n, state, buffers, move |s, p, g, b| opt.step(s, p, g, b))
            }
            Extra::Prodigy => {
                let opt = prodigy();
                let mut buffers = vec![0.0; opt.buffer_len(n).unwrap()];
                opt.init_buffers(&data(n, 2), &mut buffers).unwrap();
                stepper(n, opt.init_state(), buffers, move |s, p, g, b| {
                    opt.step(s, p, g, b)
                })
            }
            Extra::ScheduleFreeSgd | Extra::ScheduleFreeAdamW => {
                let opt = self.schedule_free();
                let mut buffers = vec![0.0; opt.buffer_len(n).unwrap()];
                opt.init_buffers(&data(n, 2), &mut buffers).unwrap();
                stepper(n, opt.init_state(), buffers, move |s, p, g, b| {
                    opt.step(s, p, g, b)
                })
            }
        }
    }
}

/// Prodigy as benchmarked: the package's defaults but growth_rate 1. On one fixed gradient d
/// would otherwise grow severalfold every step, and r leave f32's range (within 40 steps of 1e4
/// parameters); with 1, d leaves d_0 once and stays. The work a step does does not depend on d.
fn prodigy() -> Prodigy {
    Prodigy::new(ProdigyConfig {
        growth_rate: 1.0,
        ..ProdigyConfig::DEFAULT
    })
    .unwrap()
}

/// A step closure over its own θ (`data(n, 2)`, the θ_0 the buffers were started from), g
/// (`data(n, 3)`), state and buffers.
fn stepper<S: 'static>(
    n: usize,
    mut state: S,
    mut buffers: Vec<f32>,
    step: impl Fn(&mut S, &mut [f32], &[f32], &mut [f32]) -> Result<(), Error> + 'static,
) -> Box<dyn FnMut()> {
    let mut theta = data(n, 2);
    let grads = data(n, 3);
    Box::new(move || {
        step(&mut state, &mut theta, black_box(&grads), &mut buffers).unwrap();
    })
}

/// n values in about [−0.8, 0.9], different for each seed.
pub fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 * 1e-7 - 0.8)
        .collect()
}

/// Bytes per element the copy baseline is counted as moving (read 4, write 4). It really moves
/// more: its destination is read before it is written (write-allocate), and on large arrays the
/// C library's `memcpy` switches to non-temporal stores, which on some machines run at half
/// the bandwidth.
pub const COPY_BYTES: usize = 8;

/// The copy baseline: n f32s.
#[inline]
pub fn copy(dst: &mut [f32], src: &[f32]) {
    dst.copy_from_slice(src);
}

/// Bytes per element of the streaming baseline (read a and b, write a).
pub const STREAM_BYTES: usize = 12;

/// The streaming baseline: a ← a·h + b·h in place, the access pattern of an optimizer step
/// (with h = ½, a stays bounded however often it runs).
#[inline]
pub fn stream(a: &mut [f32], b: &[f32], h: f32) {
    for (a, b) in a.iter_mut().zip(b) {
        *a = *a * h + *b * h;
    }
}
