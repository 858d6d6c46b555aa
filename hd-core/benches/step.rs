//! Step throughput of every rule at 1e4, 1e6 and 1e7 parameters, beside a plain copy of
//! f32s measured in the same run. `cargo xtask bench` runs it and prints the table of
//! achieved bandwidth as a fraction of the copy's (DESIGN §7).
#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hd_core::{Config, HyperRule, Optimizer, Variant};
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 3] = [10_000, 1_000_000, 10_000_000];

/// The id of the division-and-square-root kernel that bounds Adam's rules.
const DIV_SQRT: &str = "div-sqrt";

/// Bytes one step of `v` really moves per parameter: DESIGN §7's model, plus the 4-byte read
/// of g that base rules make to refuse a non-finite gradient before writing.
pub fn bytes(v: Variant) -> usize {
    v.model_bytes_per_parameter() + if v.rule().is_none() { 4 } else { 0 }
}

/// `v` as benchmarked: α0 = 0.001, μ = 0.9. β is tiny so that millions of steps on one fixed
/// gradient never overflow α; the work a step does does not depend on β's value.
fn config(v: Variant) -> Config {
    let beta = match v.rule() {
        Some(HyperRule::Multiplicative) => 1e-9,
        _ => 1e-12,
    };
    v.config(1e-3, beta, 0.9)
}

fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 * 1e-7 - 0.8)
        .collect()
}

fn bench(c: &mut Criterion) {
    for n in SIZES {
        let mut group = c.benchmark_group(format!("step-{n}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));

        // Baseline: copy n f32s (read 4n bytes, write 4n bytes).
        let src = data(n, 1);
        let mut dst = vec![0.0f32; n];
        group.throughput(Throughput::Bytes(8 * n as u64));
        group.bench_function("copy", |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            })
        });

        // Adam's floor: the one division and one square root per element that its direction
        // d = m̂/(√v̂ + ε) needs (Adam-HD and Adam-HDM need two: they recompute d_{t−1}),
        // vectorised as the rules are; reads m and v, writes d (12 bytes per element).
        let m = data(n, 4);
        let v: Vec<f32> = data(n, 5).iter().map(|x| x.abs()).collect();
        let mut d = vec![0.0f32; n];
        group.throughput(Throughput::Bytes(12 * n as u64));
        group.bench_function(DIV_SQRT, |b| {
            b.iter(|| {
                for ((d, m), v) in d.iter_mut().zip(black_box(&m)).zip(black_box(&v)) {
                    *d = m / (v.sqrt() + 1e-8);
                }
                black_box(&mut d);
            })
        });

        for v in Variant::ALL {
            let opt = Optimizer::new(config(v)).unwrap();
            let mut theta = data(n, 2);
            let grads = data(n, 3);
            let mut buffers = vec![0.0; opt.buffer_len(n).unwrap()];
            let mut state = opt.init_state();
            group.throughput(Throughput::Bytes((bytes(v) * n) as u64));
            group.bench_with_input(BenchmarkId::from_parameter(v.id()), &n, |b, _| {
                b.iter(|| {
                    opt.step(&mut state, &mut theta, black_box(&grads), &mut buffers)
                        .unwrap();
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
