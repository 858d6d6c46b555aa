//! Shared fixtures: the table of every rule and variant, test problems, a runner, and an
//! independent f64 reference implementation written straight from DESIGN §2.
#![allow(dead_code, clippy::indexing_slicing, clippy::unwrap_used)]

use hd_core::{Adam, Base, Config, Hyper, HyperRule, Optimizer, Scope, Sgd, State, Transition};

/// The base rules, each with an α_0 that is stable on the test problems.
pub fn bases() -> Vec<(&'static str, Config)> {
    vec![
        ("sgd", Config::sgd(0.02)),
        ("sgdn", Config::sgdn(0.01, 0.9)),
        (
            "sgd-heavy-ball",
            Config {
                base: Base::Sgd(Sgd {
                    momentum: 0.5,
                    nesterov: false,
                }),
                ..Config::sgd(0.01)
            },
        ),
        ("adam", Config::adam(0.05)),
        (
            "adam-sqrt-decay",
            Config {
                base: Base::Adam(Adam {
                    sqrt_decay: true,
                    ..Adam::default()
                }),
                ..Config::adam(0.1)
            },
        ),
    ]
}

/// The hypergradient variants, for a base whose β scale is `beta` and stacked HD's κ `kappa`.
pub fn hypers(beta: f32, kappa: f32) -> Vec<(&'static str, Hyper)> {
    let hd = Hyper::additive(beta);
    vec![
        ("hd", hd),
        ("hd-stacked", Hyper { kappa, ..hd }),
        (
            "hd-stacked-per-tensor",
            Hyper {
                kappa,
                scope: Scope::PerTensor,
                ..hd
            },
        ),
        ("hdm", Hyper::multiplicative(0.02)),
        (
            "hd-per-tensor",
            Hyper {
                scope: Scope::PerTensor,
                ..hd
            },
        ),
        (
            "hd-per-parameter",
            Hyper {
                scope: Scope::PerParameter,
                ..hd
            },
        ),
        (
            "hd-clamp",
            Hyper {
                clamp: Some((0.0, 0.05)),
                ..hd
            },
        ),
        (
            "hd-transition",
            Hyper {
                transition: Some(Transition {
                    power: 2.0,
                    alpha_inf: 0.05,
                }),
                ..hd
            },
        ),
    ]
}

/// β per base: the paper's orders of magnitude relative to the gradient scale of the problems.
pub fn beta_for(base: &Config) -> f32 {
    match base.base {
        Base::Sgd(_) => 1e-4,
        Base::Adam(_) => 1e-3,
    }
}

/// Stacked HD's κ per base: β_t moves by κ (g·d)² a step, and g·d on the test problems starts
/// near 1e3 (SGD) and 40 (Adam), so these move β by about 1 % a step at first.
pub fn kappa_for(base: &Config) -> f32 {
    match base.base {
        Base::Sgd(_) => 1e-10,
        Base::Adam(_) => 1e-8,
    }
}

/// Every rule: each base alone, with coupled L2, and wrapped by every hypergradient variant.
pub fn all_configs() -> Vec<(String, Config)> {
    let mut out = Vec::new();
    for (name, base) in bases() {
        out.push((name.to_string(), base));
        out.push((format!("{name}+l2"), base.with_weight_decay(1e-3)));
        for (hname, hyper) in hypers(beta_for(&base), kappa_for(&base)) {
            // A clamp must contain α_0 (the first step uses it), so its top is at least α_0.
            let clamp = hyper.clamp.map(|(lo, hi)| (lo, hi.max(base.alpha0)));
            out.push((
                format!("{name}-{hname}"),
                Config {
                    hyper: Some(Hyper { clamp, ..hyper }),
                    ..base
                },
            ));
        }
        out.push((
            format!("{name}-hd+l2"),
            Config {
                hyper: Some(Hyper::additive(beta_for(&base))),
                weight_decay: 1e-3,
                ..base
            },
        ));
    }
    out
}

/// Ill-conditioned quadratic f(θ) = ½ Σ k_i θ_i², k_i from 1 to 10, over 13 parameters
/// (not a multiple of the 8-lane blocks, so the tails are exercised).
pub const N: usize = 13;

pub fn curvature(i: usize) -> f32 {
    1.0 + 9.0 * (i as f32) / (N as f32 - 1.0)
}

pub fn quadratic(theta: &[f32]) -> f32 {
    theta
        .iter()
        .enumerate()
        .map(|(i, t)| 0.5 * curvature(i) * t * t)
        .sum()
}

pub fn quadratic_grad(theta: &[f32], g: &mut [f32]) {
    for (i, (gi, t)) in g.iter_mut().zip(theta).enumerate() {
        *gi = curvature(i) * t;
    }
}

pub fn theta0() -> Vec<f32> {
    (0..N)
        .map(|i| if i % 2 == 0 { 1.0 } else { -0.5 })
        .collect()
}

/// Rosenbrock f(x, y) = (1 − x)² + 100 (y − x²)², summed over pairs.
pub fn rosenbrock(theta: &[f32]) -> f32 {
    theta
        .chunks(2)
        .map(|p| (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2))
        .sum()
}

pub fn rosenbrock_grad(theta: &[f32], g: &mut [f32]) {
    for (p, q) in theta.chunks(2).zip(g.chunks_mut(2)) {
        let (x, y) = (p[0], p[1]);
        q[0] = -2.0 * (1.0 - x) - 400.0 * x * (y - x * x);
        q[1] = 200.0 * (y - x * x);
    }
}

pub struct Run {
    pub opt: Optimizer,
    pub state: State,
    pub theta: Vec<f32>,
    pub buffers: Vec<f32>,
}

impl Run {
    pub fn new(config: Config, theta: Vec<f32>) -> Run {
        let opt = Optimizer::new(config).unwrap();
        let mut buffers = vec![0.0; opt.buffer_len(theta.len()).unwrap()];
        opt.init_buffers(&mut buffers).unwrap();
        Run {
            state: opt.init_state(),
            opt,
            theta,
            buffers,
        }
    }

    pub fn steps(&mut self, n: usize, grad: impl Fn(&[f32], &mut [f32])) {
        let mut g = vec![0.0; self.theta.len()];
        for _ in 0..n {
            grad(&self.theta, &mut g);
            self.opt
                .step(&mut self.state, &mut self.theta, &g, &mut self.buffers)
                .unwrap();
        }
    }
}

pub fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// An independent reference: the equations of DESIGN §2, in f64, with plain loops and no
/// shared code with hd-core. Returns (θ, α) after each step.
pub fn reference(
    config: &Config,
    theta0: &[f32],
    steps: usize,
    grad: impl Fn(&[f32], &mut [f32]),
) -> Vec<(Vec<f64>, Vec<f64>)> {
    let n = theta0.len();
    let mut theta: Vec<f64> = theta0.iter().map(|&x| f64::from(x)).collect();
    let lambda = f64::from(config.weight_decay);
    let per_param = config.hyper.is_some_and(|h| h.scope == Scope::PerParameter);
    let mut alpha = vec![f64::from(config.alpha0); if per_param { n } else { 1 }];
    let (mut m, mut v, mut d_prev) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut beta_t = config.hyper.map_or(0.0, |h| f64::from(h.beta));
    let mut previous_dot = 0.0;
    let mut out = Vec::new();
    let mut g32 = vec![0.0f32; n];
    for t in 1..=steps {
        let th32: Vec<f32> = theta.iter().map(|&x| x as f32).collect();
        grad(&th32, &mut g32);
        let g: Vec<f64> = (0..n)
            .map(|i| f64::from(g32[i]) + lambda * theta[i])
            .collect();
        if let Some(h) = config.hyper {
            // Stacked HD: β_t = β_{t−1} + κ h_t h_{t−1}, and h_t h_{t−1} = (g_t·d_{t−1})(g_{t−1}·d_{t−2}).
            if h.kappa != 0.0 {
                let dot: f64 = (0..n).map(|i| g[i] * d_prev[i]).sum();
                beta_t += f64::from(h.kappa) * dot * previous_dot;
                previous_dot = dot;
            }
            let beta = beta_t;
            if per_param {
                for i in 0..n {
                    alpha[i] += beta * g[i] * d_prev[i];
                }
            } else {
                let dot: f64 = (0..n).map(|i| g[i] * d_prev[i]).sum();
                match h.rule {
                    HyperRule::Additive => alpha[0] += beta * dot,
                    HyperRule::Multiplicative => {
                        let ng = g.iter().map(|x| x * x).sum::<f64>().sqrt();
                        let nd = d_prev.iter().map(|x| x * x).sum::<f64>().sqrt();
                        if ng > 0.0 && nd > 0.0 {
                            alpha[0] *= 1.0 + beta * dot / (ng * nd);
                        }
                    }
                }
            }
            if let Some((lo, hi)) = h.clamp {
                for a in alpha.iter_mut() {
                    *a = a.clamp(f64::from(lo), f64::from(hi));
                }
            }
        }
        let d: Vec<f64> = match config.base {
            Base::Sgd(s) => {
                let mu = f64::from(s.momentum);
                (0..n)
                    .map(|i| {
                        if mu == 0.0 {
                            return g[i];
                        }
                        v[i] = mu * v[i] + g[i];
                        if s.nesterov {
                            g[i] + mu * v[i]
                        } else {
                            v[i]
                        }
                    })
                    .collect()
            }
            Base::Adam(a) => {
                let (b1, b2) = (f64::from(a.beta1), f64::from(a.beta2));
                (0..n)
                    .map(|i| {
                        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                        let mh = m[i] / (1.0 - b1.powi(t as i32));
                        let vh = v[i] / (1.0 - b2.powi(t as i32));
                        mh / (vh.sqrt() + f64::from(a.eps))
                    })
                    .collect()
            }
        };
        // Adam's 1/√t: the step taken is −(γ_t/√t) d_t, so ∂θ_t/∂α_t, which the next step's
        // hypergradient reads as d_prev, carries the factor too.
        let decay = if matches!(config.base, Base::Adam(a) if a.sqrt_decay) {
            1.0 / (t as f64).sqrt()
        } else {
            1.0
        };
        for i in 0..n {
            let a = alpha[if per_param { i } else { 0 }];
            let gamma = match config.hyper.and_then(|h| h.transition) {
                Some(tr) => {
                    let delta = (t as f64).powf(-f64::from(tr.power));
                    delta * a + (1.0 - delta) * f64::from(tr.alpha_inf)
                }
                None => a,
            };
            theta[i] -= gamma * decay * d[i];
        }
        d_prev = d.iter().map(|x| x * decay).collect();
        out.push((theta.clone(), alpha.clone()));
    }
    out
}
