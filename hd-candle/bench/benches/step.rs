//! One optimizer step on the paper's MLP (784-1000-1000-10: 1,796,010 parameters in six
//! tensors) and on 1e7 parameters (one tensor), on the CPU: hd-candle's Adam and Adam-HD
//! beside candle-nn's AdamW (weight decay 0, i.e. plain Adam) and candle-optimisers' Adam.
//!
//! Each optimizer steps repeatedly with one fixed gradient store, so only the step is timed.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

/// The variables' shapes.
fn shapes(case: &str) -> Vec<Vec<usize>> {
    match case {
        "mlp" => vec![
            vec![1000, 784],
            vec![1000],
            vec![1000, 1000],
            vec![1000],
            vec![10, 1000],
            vec![10],
        ],
        _ => vec![vec![10_000_000]],
    }
}

/// Reproducible values in [−0.5, 0.5).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// Variables and a gradient store for them, for one candle version: the gradient of
/// Σ_i sum(θ_i ⊙ r_i) is r_i.
macro_rules! setup {
    ($core:ident, $case:expr) => {{
        use $core::{Device, Tensor, Var};
        let shapes = shapes($case);
        let vars: Vec<Var> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let n = s.iter().product();
                Var::from_vec(values(n, i as u64), s.as_slice(), &Device::Cpu).unwrap()
            })
            .collect();
        let mut loss = Tensor::zeros((), $core::DType::F32, &Device::Cpu).unwrap();
        for (i, v) in vars.iter().enumerate() {
            let r = Tensor::from_vec(
                values(v.elem_count(), 100 + i as u64),
                v.shape(),
                &Device::Cpu,
            )
            .unwrap();
            loss = (loss + (v.as_tensor() * r).unwrap().sum_all().unwrap()).unwrap();
        }
        let grads = loss.backward().unwrap();
        (vars, grads)
    }};
}

fn step(c: &mut Criterion) {
    for case in ["mlp", "1e7"] {
        let mut g = c.benchmark_group(case);
        g.sample_size(10);
        {
            use candle_nn::Optimizer;
            use hd_candle::{Config, HdOptimizer};
            let (vars, grads) = setup!(candle_core, case);
            for (id, config) in [
                ("hd-candle-adam", Config::adam(0.001)),
                ("hd-candle-adam-hd", Config::adam(0.001).with_hd(1e-7)),
            ] {
                let mut opt = HdOptimizer::new(vars.clone(), config).unwrap();
                g.bench_function(id, |b| b.iter(|| opt.step(black_box(&grads)).unwrap()));
            }
            let params = candle_nn::ParamsAdamW {
                lr: 0.001,
                weight_decay: 0.0,
                ..Default::default()
            };
            let mut adamw = candle_nn::AdamW::new(vars.clone(), params).unwrap();
            g.bench_function("candle-nn-adamw", |b| {
                b.iter(|| adamw.step(black_box(&grads)).unwrap())
            });
        }
        {
            use candle_nn_010::Optimizer;
            let (vars, grads) = setup!(candle_core_010, case);
            let params = candle_optimisers::adam::ParamsAdam {
                lr: 0.001,
                ..Default::default()
            };
            let mut adam = candle_optimisers::adam::Adam::new(vars, params).unwrap();
            g.bench_function("candle-optimisers-adam", |b| {
                b.iter(|| adam.step(black_box(&grads)).unwrap())
            });
        }
        g.finish();
    }
}

criterion_group!(benches, step);
criterion_main!(benches);
