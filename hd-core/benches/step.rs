//! Step throughput of every rule (the paper's nine, stacked HD and the peers) at 1e4, 1e6 and
//! 1e7 parameters, beside two bandwidth baselines measured in the same run: a plain copy of
//! f32s and an in-place streaming update.
//! `cargo xtask bench` runs it and prints the table of achieved bandwidth as a fraction of the
//! faster baseline's (DESIGN §7).
#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{bytes, config, data, Extra, COPY_BYTES, STREAM_BYTES};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hd_core::{Optimizer, Variant};
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 3] = [10_000, 1_000_000, 10_000_000];

/// The id of the division-and-square-root kernel that bounds Adam's rules.
const DIV_SQRT: &str = "div-sqrt";

/// The id of the in-place streaming baseline.
const STREAM: &str = "stream";

fn bench(c: &mut Criterion) {
    for n in SIZES {
        let mut group = c.benchmark_group(format!("step-{n}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));

        // The bandwidth baselines (see `common`): `cargo xtask bench` divides by the faster.
        let src = data(n, 1);
        let mut dst = vec![0.0f32; n];
        group.throughput(Throughput::Bytes((COPY_BYTES * n) as u64));
        group.bench_function("copy", |b| {
            b.iter(|| {
                common::copy(&mut dst, black_box(&src));
                black_box(&mut dst);
            })
        });
        let mut a = data(n, 6);
        let b = data(n, 7);
        let half = black_box(0.5f32);
        group.throughput(Throughput::Bytes((STREAM_BYTES * n) as u64));
        group.bench_function(STREAM, |bencher| {
            bencher.iter(|| {
                common::stream(&mut a, black_box(&b), half);
                black_box(&mut a);
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
        for e in Extra::ALL {
            let mut step = e.stepper(n);
            group.throughput(Throughput::Bytes((e.bytes() * n) as u64));
            group.bench_with_input(BenchmarkId::from_parameter(e.id()), &n, |b, _| {
                b.iter(&mut step)
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
