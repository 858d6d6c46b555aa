//! An independent f64 reference of the peers, written from the papers' equations (Prodigy:
//! Mishchenko & Defazio 2023, Algorithm 3 in the package's Adam form; Schedule-Free:
//! Defazio et al. 2024, with the x and z sequences kept explicitly, as the package's
//! `*_reference.py` keep them, rather than hd-core's y-only update), and the fixtures the peer
//! tests share (`peers.rs`, `peers_errors.rs`).
#![allow(
    dead_code,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::needless_range_loop
)]

use hd_core::{
    Prodigy, ProdigyConfig, ProdigyState, ScheduleFree, ScheduleFreeBase, ScheduleFreeConfig,
    ScheduleFreeState,
};

/// The gradient at `x` (elements `offset`… of the model) at step t of
/// f_t(θ) = ½ Σ k_i (θ_i − θ*_i)² + ⟨n_t, θ⟩: a quadratic with curvatures over a decade, an
/// optimum at distance ~1 from 0, and a deterministic oscillating noise n_t.
pub fn gradient_at(t: usize, offset: usize, x: &[f32]) -> Vec<f32> {
    x.iter()
        .enumerate()
        .map(|(i, &x)| {
            let i = (offset + i) as f32;
            let k = 1.0 + i / 4.0;
            let optimum = 1.0 - 0.25 * (i % 7.0);
            let noise = 0.2 * (0.37 * t as f32 + 0.9 * i).cos();
            k * (x - optimum) + noise
        })
        .collect()
}

/// Initial parameters for `n` elements.
pub fn params0(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| 0.5 - 0.125 * (i % 9) as f32 + 0.01 * i as f32)
        .collect()
}

/// Prodigy in f64, from the equations of `prodigyopt`'s `Prodigy` (see hd-core's docs).
pub struct ProdigyRef {
    pub c: ProdigyConfig,
    pub x: Vec<f64>,
    pub x0: Vec<f64>,
    pub m: Vec<f64>,
    pub v: Vec<f64>,
    pub s: Vec<f64>,
    pub d: f64,
    pub d_max: f64,
    pub r: f64,
    pub k: u64,
}

impl ProdigyRef {
    pub fn new(c: ProdigyConfig, x: &[f32]) -> ProdigyRef {
        let x: Vec<f64> = x.iter().map(|&v| v.into()).collect();
        let n = x.len();
        ProdigyRef {
            c,
            x0: x.clone(),
            x,
            m: vec![0.0; n],
            v: vec![0.0; n],
            s: vec![0.0; n],
            d: c.d0.into(),
            d_max: c.d0.into(),
            r: 0.0,
            k: 0,
        }
    }

    pub fn step(&mut self, g: &[f32]) {
        let c = self.c;
        let f = |x: f32| f64::from(x);
        let (b1, b2, lr, d0) = (f(c.beta1), f(c.beta2), f(c.lr), f(c.d0));
        let b3 = c.beta3.map_or(b2.sqrt(), f);
        let t = (self.k + 1) as i32;
        let bc = if c.use_bias_correction {
            (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t))
        } else {
            1.0
        };
        let d = self.d;
        let dlr = d * lr * bc;
        let lambda = f(c.weight_decay);
        let g: Vec<f64> = g
            .iter()
            .zip(&self.x)
            .map(|(&g, &x)| if c.decouple { f(g) } else { f(g) + lambda * x })
            .collect();
        let dot: f64 = (0..g.len()).map(|i| g[i] * (self.x0[i] - self.x[i])).sum();
        let w = if c.safeguard_warmup { d } else { dlr };
        for i in 0..g.len() {
            self.m[i] = b1 * self.m[i] + d * (1.0 - b1) * g[i];
            self.v[i] = b2 * self.v[i] + d * d * (1.0 - b2) * g[i] * g[i];
            self.s[i] = b3 * self.s[i] + (d / d0) * w * g[i];
        }
        let norm: f64 = self.s.iter().map(|s| s.abs()).sum();
        if norm == 0.0 {
            return;
        }
        self.r = b3 * self.r + (d / d0) * dlr * dot;
        let d_hat = f(c.d_coef) * self.r / norm;
        let mut d_new = d;
        if d == d0 {
            d_new = d_new.max(d_hat);
        }
        self.d_max = self.d_max.max(d_hat);
        self.d = self.d_max.min(d_new * f(c.growth_rate));
        for i in 0..g.len() {
            if c.decouple {
                self.x[i] -= lambda * dlr * self.x[i];
            }
            self.x[i] -= dlr * self.m[i] / (self.v[i].sqrt() + self.d * f(c.eps));
        }
        self.k += 1;
    }
}

/// Schedule-Free in f64 with explicit x and z (the paper's form): the gradient is taken at
/// y = (1 − β) z + β x; z_t = z_{t−1} − γ_t g̃; x_t = (1 − c_t) x_{t−1} + c_t z_t.
pub struct ScheduleFreeRef {
    pub c: ScheduleFreeConfig,
    pub x: Vec<f64>,
    pub z: Vec<f64>,
    pub v: Vec<f64>,
    pub lr_max: f64,
    pub weight_sum: f64,
    pub k: u64,
}

impl ScheduleFreeRef {
    pub fn new(c: ScheduleFreeConfig, x: &[f32]) -> ScheduleFreeRef {
        let x: Vec<f64> = x.iter().map(|&v| v.into()).collect();
        ScheduleFreeRef {
            c,
            z: x.clone(),
            v: vec![0.0; x.len()],
            x,
            lr_max: -1.0,
            weight_sum: 0.0,
            k: 0,
        }
    }

    pub fn beta(&self) -> f64 {
        self.c.beta.into()
    }

    /// The training point y, where gradients are taken.
    pub fn y(&self) -> Vec<f64> {
        let b = self.beta();
        (0..self.x.len())
            .map(|i| (1.0 - b) * self.z[i] + b * self.x[i])
            .collect()
    }

    pub fn step(&mut self, g: &[f32]) {
        let c = self.c;
        let f = |x: f32| f64::from(x);
        let t = self.k + 1;
        let sched = if self.k < c.warmup_steps {
            t as f64 / c.warmup_steps as f64
        } else {
            1.0
        };
        let lr = f(c.lr) * sched;
        self.lr_max = self.lr_max.max(lr);
        let weight = (t as f64).powf(f(c.r)) * self.lr_max.powf(f(c.weight_lr_power));
        self.weight_sum += weight;
        let ck = if self.weight_sum == 0.0 {
            0.0
        } else {
            weight / self.weight_sum
        };
        let y = self.y();
        let lambda = f(c.weight_decay);
        for i in 0..g.len() {
            let step = match c.base {
                ScheduleFreeBase::Sgd => f(g[i]) + lambda * y[i],
                ScheduleFreeBase::AdamW { beta2, eps } => {
                    let b2 = f(beta2);
                    self.v[i] = b2 * self.v[i] + (1.0 - b2) * f(g[i]) * f(g[i]);
                    let bc2 = 1.0 - b2.powi(t as i32);
                    f(g[i]) / ((self.v[i] / bc2).sqrt() + f(eps)) + lambda * y[i]
                }
            };
            self.z[i] -= lr * step;
            self.x[i] = (1.0 - ck) * self.x[i] + ck * self.z[i];
        }
        self.k = t;
    }
}

/// |a − b| ≤ tol · max(|b|, floor), else a message naming `what`.
pub fn close(what: &str, a: f32, b: f64, tol: f64, floor: f64) -> Result<(), String> {
    let err = (f64::from(a) - b).abs();
    if err <= tol * b.abs().max(floor) {
        Ok(())
    } else {
        Err(format!(
            "{what}: {a} vs {b} (off by {:.2e} relative)",
            err / b.abs().max(floor)
        ))
    }
}

/// Parameters of the test model: not a multiple of the 8 lanes.
pub const N: usize = 29;
/// Steps of each comparison.
pub const STEPS: usize = 300;

pub fn prodigy_configs() -> Vec<(&'static str, ProdigyConfig)> {
    let d = ProdigyConfig::DEFAULT;
    vec![
        ("default", d),
        (
            "bias-correction",
            ProdigyConfig {
                use_bias_correction: true,
                ..d
            },
        ),
        (
            "safeguard",
            ProdigyConfig {
                safeguard_warmup: true,
                lr: 0.5,
                ..d
            },
        ),
        (
            "growth-1.05",
            ProdigyConfig {
                growth_rate: 1.05,
                ..d
            },
        ),
        (
            "decoupled-decay",
            ProdigyConfig {
                weight_decay: 0.1,
                ..d
            },
        ),
        (
            "coupled-decay",
            ProdigyConfig {
                weight_decay: 0.05,
                decouple: false,
                ..d
            },
        ),
        (
            "beta3-beta1-0",
            ProdigyConfig {
                beta1: 0.0,
                beta3: Some(0.9),
                ..d
            },
        ),
        (
            "lr-d0-dcoef",
            ProdigyConfig {
                lr: 0.5,
                d0: 1e-4,
                d_coef: 2.0,
                ..d
            },
        ),
    ]
}

pub fn schedule_free_configs() -> Vec<(&'static str, ScheduleFreeConfig)> {
    let sgd = ScheduleFreeConfig::sgd(0.05);
    let adamw = ScheduleFreeConfig::adamw(0.01);
    let mut out = Vec::new();
    for (base, c) in [("sgd", sgd), ("adamw", adamw)] {
        out.push((base, "default", c));
        out.push((
            base,
            "decay-warmup",
            ScheduleFreeConfig {
                weight_decay: 0.01,
                warmup_steps: 25,
                ..c
            },
        ));
        out.push((
            base,
            "r-power",
            ScheduleFreeConfig {
                r: 1.0,
                weight_lr_power: 1.0,
                warmup_steps: 7,
                beta: 0.5,
                ..c
            },
        ));
    }
    out.into_iter()
        .map(|(b, n, c)| (if b == "sgd" { n } else { leak(b, n) }, c))
        .collect()
}

/// "adamw-<name>", for the table's names.
pub fn leak(base: &str, name: &str) -> &'static str {
    Box::leak(format!("{base}-{name}").into_boxed_str())
}

/// Prodigy's initial parameters: small (about 1e−5), so that x_0 − x, which d̂'s numerator
/// sums, is not dominated by the rounding of x while its first steps (about d_0 = 1e−6) are
/// below x's f32 resolution. From |x_0| ≈ 0.5, that rounding (which the package has too: its
/// x is f32 as well) moves d by about 1e−3 for good, beside which the f32/f64 differences
/// of the equations would be invisible.
pub fn prodigy_x0() -> Vec<f32> {
    params0(N).iter().map(|v| v * 1e-5).collect()
}

pub fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// A model split into tensors of 5, 16 and 8 elements (crossing the lanes at odd places):
/// the phases over the tensors, and `step_tensors`, give the bits of one step over the
/// concatenation, whose buffers hold the tensors' slots one after another.
pub const SPLIT: [usize; 3] = [5, 16, 8];

/// Splits a concatenated buffer of `slots` slots into per-tensor buffers, and joins them back.
pub fn split(buffers: &[f32], slots: usize) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    let mut offset = 0;
    for n in SPLIT {
        let mut b = Vec::new();
        for k in 0..slots {
            b.extend_from_slice(&buffers[k * N + offset..k * N + offset + n]);
        }
        out.push(b);
        offset += n;
    }
    out
}

pub fn join(parts: &[Vec<f32>], slots: usize) -> Vec<f32> {
    let mut out = Vec::new();
    for k in 0..slots {
        for (p, n) in parts.iter().zip(SPLIT) {
            out.extend_from_slice(&p[k * n..(k + 1) * n]);
        }
    }
    out
}

pub fn split_params(x: &[f32]) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    let mut offset = 0;
    for n in SPLIT {
        out.push(x[offset..offset + n].to_vec());
        offset += n;
    }
    out
}

/// Everything a failed call might have touched, as bits.
pub fn snapshot<S: Copy>(state: S, x: &[f32], b: &[f32]) -> (S, Vec<u32>, Vec<u32>) {
    (state, bits(x), bits(b))
}

pub fn prodigy_after(opt: &Prodigy, steps: usize) -> (ProdigyState, Vec<f32>, Vec<f32>) {
    let mut state = opt.init_state();
    let mut x = prodigy_x0();
    let mut b = vec![0.0; 4 * N];
    opt.init_buffers(&x, &mut b).unwrap();
    for t in 1..=steps {
        let g = gradient_at(t, 0, &x);
        opt.step(&mut state, &mut x, &g, &mut b).unwrap();
    }
    (state, x, b)
}

pub fn schedule_free_after(
    opt: &ScheduleFree,
    steps: usize,
) -> (ScheduleFreeState, Vec<f32>, Vec<f32>) {
    let mut state = opt.init_state();
    let mut y = params0(N);
    let mut b = vec![0.0; opt.buffer_len(N).unwrap()];
    opt.init_buffers(&y, &mut b).unwrap();
    for t in 1..=steps {
        let g = gradient_at(t, 0, &y);
        opt.step(&mut state, &mut y, &g, &mut b).unwrap();
    }
    (state, y, b)
}
