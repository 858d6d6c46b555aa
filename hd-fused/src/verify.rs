//! The fused path held to hd-core: the same trajectory as hd-core's slice step, for every
//! rule and option. Shared by the CPU tests (the recorded programs evaluated on the host) and
//! the front ends' checks of the emitted kernels on a GPU (hd-tch's `verify`, behind
//! `hd-native bench verify-fused`).
//!
//! Both sides start from the same parameters and compute their gradients with the same
//! function of their own current parameters. They may differ only in the summation order of
//! phase 1 (hd-core sums in 8 lanes, the kernels in tiles), so parameters and α must agree to
//! [`TOL`] relative to each tensor's largest magnitude.

use crate::{eval_step, FlatMut, Programs, Segment};
use hd_core::{Adam, Base, Config, Hyper, Optimizer, Scope, Sgd, State, TensorMut, Transition};

/// Relative tolerance of parameters and α.
pub const TOL: f32 = 1e-6;

/// Steps of a verification run.
pub const STEPS: u64 = 100;

/// Every base rule with and without HD and HDM, and every option (scope, clamp, transition,
/// L2, 1/√t, heavy ball), with settings that move α visibly in [`STEPS`] steps.
pub fn cases() -> Vec<(&'static str, Config)> {
    let with = |c: Config, f: &dyn Fn(&mut Hyper)| {
        let mut c = c;
        if let Some(h) = c.hyper.as_mut() {
            f(h);
        }
        c
    };
    let sqrt_decay = |c: Config| Config {
        base: Base::Adam(Adam {
            sqrt_decay: true,
            ..Adam::default()
        }),
        ..c
    };
    let heavy_ball = Base::Sgd(Sgd {
        momentum: 0.9,
        nesterov: false,
    });
    let per_tensor = |h: &mut Hyper| h.scope = Scope::PerTensor;
    let per_parameter = |h: &mut Hyper| h.scope = Scope::PerParameter;
    vec![
        ("SGD", Config::sgd(0.05)),
        ("SGD-HD", Config::sgd(0.05).with_hd(1e-5)),
        ("SGD-HDM", Config::sgd(0.05).with_hdm(0.02)),
        ("SGDN", Config::sgdn(0.02, 0.9)),
        ("SGDN-HD", Config::sgdn(0.02, 0.9).with_hd(1e-5)),
        ("SGDN-HDM", Config::sgdn(0.02, 0.9).with_hdm(0.02)),
        ("Adam", Config::adam(0.01)),
        ("Adam-HD", Config::adam(0.01).with_hd(1e-4)),
        ("Adam-HDM", Config::adam(0.01).with_hdm(0.02)),
        (
            "SGD-HD per tensor",
            with(Config::sgd(0.05).with_hd(1e-5), &per_tensor),
        ),
        (
            "SGDN-HDM per tensor",
            with(Config::sgdn(0.02, 0.9).with_hdm(0.02), &per_tensor),
        ),
        (
            "Adam-HD per tensor",
            with(Config::adam(0.01).with_hd(1e-4), &per_tensor),
        ),
        (
            "SGD-HD per parameter",
            with(Config::sgd(0.05).with_hd(1e-4), &per_parameter),
        ),
        (
            "SGDN-HD per parameter",
            with(Config::sgdn(0.02, 0.9).with_hd(1e-4), &per_parameter),
        ),
        (
            "Adam-HD per parameter",
            with(Config::adam(0.01).with_hd(1e-4), &per_parameter),
        ),
        (
            "SGD-HD clamped",
            with(Config::sgd(0.05).with_hd(1e-4), &|h| {
                h.clamp = Some((0.0, 0.06))
            }),
        ),
        (
            "Adam-HDM clamped",
            with(Config::adam(0.01).with_hdm(0.02), &|h| {
                h.clamp = Some((0.005, 0.012))
            }),
        ),
        (
            "SGD-HD transition",
            with(Config::sgd(0.05).with_hd(1e-5), &|h| {
                h.transition = Some(Transition {
                    power: 2.0,
                    alpha_inf: 0.03,
                })
            }),
        ),
        (
            "SGD-HD per parameter, clamped, transition",
            with(Config::sgd(0.05).with_hd(1e-4), &|h| {
                h.scope = Scope::PerParameter;
                h.clamp = Some((0.0, 0.08));
                h.transition = Some(Transition {
                    power: 1.5,
                    alpha_inf: 0.02,
                });
            }),
        ),
        (
            "SGDN-HD weight decay",
            Config::sgdn(0.02, 0.9)
                .with_hd(1e-5)
                .with_weight_decay(0.01),
        ),
        (
            "Adam-HDM weight decay",
            Config::adam(0.01).with_hdm(0.02).with_weight_decay(0.01),
        ),
        ("Adam 1/sqrt(t)", sqrt_decay(Config::adam(0.05))),
        (
            "Adam-HD 1/sqrt(t)",
            sqrt_decay(Config::adam(0.05).with_hd(1e-4)),
        ),
        (
            "heavy-ball SGD-HD",
            Config {
                base: heavy_ball,
                ..Config::sgd(0.02).with_hd(1e-5)
            },
        ),
        (
            "heavy-ball SGD-HDM per tensor",
            with(
                Config {
                    base: heavy_ball,
                    ..Config::sgd(0.02).with_hdm(0.02)
                },
                &per_tensor,
            ),
        ),
    ]
}

/// A deterministic generator in [0, 1) (a 64-bit LCG's top bits).
fn unit(state: &mut u64) -> f32 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 40) as f32 / (1u64 << 24) as f32
}

/// Initial parameters of tensors of `sizes`, in [−1, 1).
pub fn initial(sizes: &[usize]) -> Vec<Vec<f32>> {
    let mut s = 7u64;
    sizes
        .iter()
        .map(|&n| (0..n).map(|_| 2.0 * unit(&mut s) - 1.0).collect())
        .collect()
}

/// Gradient of a badly conditioned quadratic ½ Σ k_i (θ_i − c_i)² with k_i in [0.1, 2], plus a
/// step-dependent wobble so that consecutive gradients do not simply agree.
pub fn gradient(tensor: usize, step: u64, theta: &[f32]) -> Vec<f32> {
    theta
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let j = (tensor * 1000 + i) as f32;
            let k = 0.1 + 1.9 * (0.5 + 0.5 * (0.37 * j).sin());
            let c = (0.11 * j).cos();
            k * (t - c) + 0.05 * ((step as f32) * 0.7 + j).sin()
        })
        .collect()
}

/// Where a run ends: every tensor's parameters, α after every step (one per tensor for
/// per-tensor scope, else one) and the per-parameter α buffer at the end (else empty).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trajectory {
    /// θ of every tensor.
    pub params: Vec<Vec<f32>>,
    /// α of every scope, after every step.
    pub alphas: Vec<Vec<f32>>,
    /// Per-parameter α of every tensor (per-parameter scope only).
    pub alpha_buffer: Vec<Vec<f32>>,
}

fn is_per(config: &Config, scope: Scope) -> bool {
    config.hyper.is_some_and(|h| h.scope == scope)
}

/// hd-core's slice step ([`Optimizer::step_tensors`]) for `steps` steps.
///
/// # Errors
/// hd-core's.
pub fn reference(
    config: Config,
    sizes: &[usize],
    steps: u64,
) -> Result<Trajectory, hd_core::Error> {
    let opt = Optimizer::new(config)?;
    let scopes = if is_per(&config, Scope::PerTensor) {
        sizes.len()
    } else {
        1
    };
    let mut states: Vec<State> = vec![opt.init_state(); scopes];
    let mut params = initial(sizes);
    let mut buffers = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let mut b = vec![0.0; opt.buffer_len(n).unwrap_or(0)];
        opt.init_buffers(&mut b)?;
        buffers.push(b);
    }
    let mut alphas = Vec::new();
    for step in 0..steps {
        let grads: Vec<Vec<f32>> = params
            .iter()
            .enumerate()
            .map(|(i, p)| gradient(i, step, p))
            .collect();
        let mut tensors: Vec<TensorMut> = params
            .iter_mut()
            .zip(&grads)
            .zip(buffers.iter_mut())
            .map(|((p, g), b)| TensorMut {
                params: p,
                grads: g,
                buffers: b,
            })
            .collect();
        opt.step_tensors(&mut states, &mut tensors)?;
        alphas.push(states.iter().map(|s| s.alpha).collect());
    }
    let alpha_buffer = match opt.alpha_slot() {
        Some(k) => buffers
            .iter()
            .zip(sizes)
            .map(|(b, &n)| b[k * n..(k + 1) * n].to_vec())
            .collect(),
        None => Vec::new(),
    };
    Ok(Trajectory {
        params,
        alphas,
        alpha_buffer,
    })
}

/// Flat buffers laid out as hd-tch's optimizer lays them out: each tensor at a multiple of
/// 64 elements, zero padding between them.
pub fn flat_layout(sizes: &[usize]) -> (Vec<usize>, usize) {
    let mut offsets = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for &n in sizes {
        offsets.push(at);
        at += n.div_ceil(64) * 64;
    }
    (offsets, at)
}

/// The segments the fused step runs over: the whole buffer (one group), or one segment per
/// tensor with its own group for per-tensor scope.
pub fn segments(config: &Config, sizes: &[usize]) -> (Vec<Segment>, usize) {
    let (offsets, total) = flat_layout(sizes);
    if is_per(config, Scope::PerTensor) {
        let s = offsets
            .iter()
            .zip(sizes)
            .enumerate()
            .map(|(group, (&offset, &len))| Segment { offset, len, group })
            .collect();
        (s, sizes.len())
    } else {
        (
            vec![Segment {
                offset: 0,
                len: total,
                group: 0,
            }],
            1,
        )
    }
}

/// A run of the recorded programs on the host ([`eval_step`]) over flat buffers laid out as
/// [`flat_layout`] and [`segments`] say.
#[derive(Debug)]
pub struct HostRun {
    opt: Optimizer,
    sizes: Vec<usize>,
    offsets: Vec<usize>,
    /// The segments and their groups.
    pub segments: Vec<Segment>,
    /// θ, `[total]`.
    pub params: Vec<f32>,
    /// g, `[total]`.
    pub grads: Vec<f32>,
    /// The buffers, `[max(slots, 1), total]` (one row of zeros without slots, as on a device).
    pub buffers: Vec<f32>,
    /// α per group.
    pub alphas: Vec<f32>,
}

impl HostRun {
    /// The start: θ from [`initial`], buffers as hd-core initialises them, α_0.
    ///
    /// # Errors
    /// hd-core's, for an invalid configuration.
    pub fn new(config: Config, sizes: &[usize]) -> Result<HostRun, hd_core::Error> {
        let opt = Optimizer::new(config)?;
        let (offsets, total) = flat_layout(sizes);
        let (segments, groups) = segments(&config, sizes);
        let mut params = vec![0.0f32; total];
        for (o, p) in offsets.iter().zip(initial(sizes)) {
            params[*o..*o + p.len()].copy_from_slice(&p);
        }
        let mut buffers = vec![0.0f32; opt.slots().max(1) * total];
        opt.init_buffers(&mut buffers[..opt.slots() * total])?;
        Ok(HostRun {
            opt,
            sizes: sizes.to_vec(),
            offsets,
            segments,
            params,
            grads: vec![0.0; total],
            buffers,
            alphas: vec![opt.init_state().alpha; groups],
        })
    }

    /// Writes the [`gradient`] of step `step` (from 0) at the current θ.
    pub fn gradients(&mut self, step: u64) {
        for (i, (o, &n)) in self.offsets.iter().zip(&self.sizes).enumerate() {
            let g = gradient(i, step, &self.params[*o..*o + n]);
            self.grads[*o..*o + n].copy_from_slice(&g);
        }
    }

    /// One step of `programs` over the buffers.
    pub fn step(&mut self, programs: &Programs) {
        let stride = self.params.len();
        let mut flat = FlatMut {
            params: &mut self.params,
            grads: &self.grads,
            buffers: &mut self.buffers,
            stride,
        };
        eval_step(programs, &mut flat, &self.segments, &mut self.alphas);
    }

    /// Records step t (from 1) of this run's rule.
    ///
    /// # Errors
    /// As [`Programs::record`].
    pub fn record(&self, t: u64) -> Result<Programs, hd_core::Error> {
        Programs::record(&self.opt, t)
    }
}

/// The recorded programs evaluated on the host ([`HostRun`]) for `steps` steps.
///
/// # Errors
/// hd-core's, from recording.
pub fn run_host(config: Config, sizes: &[usize], steps: u64) -> Result<Trajectory, hd_core::Error> {
    let mut run = HostRun::new(config, sizes)?;
    let mut alphas = Vec::new();
    for step in 0..steps {
        run.gradients(step);
        let programs = run.record(step + 1)?;
        run.step(&programs);
        alphas.push(run.alphas.clone());
    }
    Ok(unflatten(
        &run.opt,
        sizes,
        &run.params,
        &run.buffers,
        alphas,
    ))
}

/// A [`Trajectory`] from flat buffers (θ `[total]`, buffers `[slots, total]`).
pub fn unflatten(
    opt: &Optimizer,
    sizes: &[usize],
    params: &[f32],
    buffers: &[f32],
    alphas: Vec<Vec<f32>>,
) -> Trajectory {
    let (offsets, total) = flat_layout(sizes);
    let piece = |v: &[f32], base: usize| -> Vec<Vec<f32>> {
        offsets
            .iter()
            .zip(sizes)
            .map(|(o, n)| v.get(base + o..base + o + n).unwrap_or(&[]).to_vec())
            .collect()
    };
    Trajectory {
        params: piece(params, 0),
        alphas,
        alpha_buffer: opt
            .alpha_slot()
            .map_or(Vec::new(), |k| piece(buffers, k * total)),
    }
}

fn close(what: &str, a: &[f32], b: &[f32]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{what}: {} values, expected {}", a.len(), b.len()));
    }
    let scale = b.iter().fold(1e-30f32, |m, x| m.max(x.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let d = (x - y).abs();
        if d.is_nan() || d > TOL * scale {
            return Err(format!(
                "{what}[{i}]: {x} vs hd-core {y} (tolerance {})",
                TOL * scale
            ));
        }
    }
    Ok(())
}

/// Whether `got` follows `want` to [`TOL`]: every tensor's parameters, α after every step,
/// and the per-parameter α.
///
/// # Errors
/// A line naming the first value out of tolerance.
pub fn compare(got: &Trajectory, want: &Trajectory) -> Result<(), String> {
    if got.alphas.len() != want.alphas.len() {
        return Err(format!(
            "{} steps, expected {}",
            got.alphas.len(),
            want.alphas.len()
        ));
    }
    for (t, (a, b)) in got.alphas.iter().zip(&want.alphas).enumerate() {
        close(&format!("alpha after step {}", t + 1), a, b)?;
    }
    for (i, (a, b)) in got.params.iter().zip(&want.params).enumerate() {
        close(&format!("params of tensor {i}"), a, b)?;
    }
    for (i, (a, b)) in got.alpha_buffer.iter().zip(&want.alpha_buffer).enumerate() {
        close(&format!("per-parameter alpha of tensor {i}"), a, b)?;
    }
    if got.params.len() != want.params.len() || got.alpha_buffer.len() != want.alpha_buffer.len() {
        return Err("a different number of tensors".into());
    }
    Ok(())
}

/// Sizes of the verification model on a device: odd, and one larger than a tile, so that
/// tiles, groups and padding never line up.
pub const DEVICE_SIZES: [usize; 4] = [5, 37, 203, 20_011];
