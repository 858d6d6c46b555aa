//! Every rule's step timed in alternation with the two bandwidth baselines and with its base
//! rule, so that each ratio comes from timings a few milliseconds apart.
//!
//! On a shared machine the memory bandwidth a process gets drifts by 2× over seconds (other
//! tenants' traffic does not show in the load average), so criterion's runs of one benchmark
//! after another (`step`) give ratios at 1e7 that swing between runs. Here each round times
//! the copy, the streaming update, the rule and its base rule back to back, the ratios are
//! taken within the round, and the table reports their median and, in brackets, their range
//! over the rounds (`PLAN`). `cargo xtask bench` runs it after `step`.
#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{bytes, config, data, COPY_BYTES, STREAM_BYTES};
use hd_core::{Optimizer, State, Variant};
use std::hint::black_box;
use std::time::Instant;

/// Sizes, and for each the steps per timing (so that one timing is about a millisecond or
/// more) and the rounds per rule.
const PLAN: [(usize, usize, usize); 2] = [(10_000, 200, 60), (10_000_000, 1, 21)];

/// One rule's optimizer, state and buffers on fixed θ and g.
struct Run {
    opt: Optimizer,
    state: State,
    theta: Vec<f32>,
    grads: Vec<f32>,
    buffers: Vec<f32>,
}

impl Run {
    fn new(v: Variant, n: usize) -> Run {
        let opt = Optimizer::new(config(v)).unwrap();
        Run {
            state: opt.init_state(),
            theta: data(n, 2),
            grads: data(n, 3),
            buffers: vec![0.0; opt.buffer_len(n).unwrap()],
            opt,
        }
    }

    fn step(&mut self) {
        self.opt
            .step(
                &mut self.state,
                &mut self.theta,
                black_box(&self.grads),
                &mut self.buffers,
            )
            .unwrap();
    }
}

/// Nanoseconds per call of `f`, over `reps` calls.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    start.elapsed().as_nanos() as f64 / reps as f64
}

fn median(mut x: Vec<f64>) -> f64 {
    x.sort_by(f64::total_cmp);
    x[x.len() / 2]
}

fn range(x: &[f64]) -> (f64, f64) {
    let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter is not supported, the run is short.
    println!("| params | rule | fraction of copy | fraction of stream | time ratio vs base | bytes ratio vs base | copy GB/s | stream GB/s |");
    println!("|---|---|---|---|---|---|---|---|");
    for (n, reps, rounds) in PLAN {
        let (src, mut dst) = (data(n, 1), vec![0.0f32; n]);
        let (mut a, b) = (data(n, 6), data(n, 7));
        let half = black_box(0.5f32);
        for v in Variant::ALL {
            let mut rule = Run::new(v, n);
            let mut base = Run::new(v.base(), n);
            let (mut of_copy, mut of_stream, mut ratio) = (vec![], vec![], vec![]);
            let (mut copy_bw, mut stream_bw) = (vec![], vec![]);
            // Round 0 warms caches, pages and branch predictors; it is not counted.
            for round in 0..=rounds {
                let copy_ns = time(reps, || {
                    common::copy(&mut dst, black_box(&src));
                    black_box(&mut dst);
                });
                let stream_ns = time(reps, || {
                    common::stream(&mut a, black_box(&b), half);
                    black_box(&mut a);
                });
                let rule_ns = time(reps, || rule.step());
                let base_ns = time(reps, || base.step());
                if round == 0 {
                    continue;
                }
                // Bytes per nanosecond = GB/s.
                let (copy, stream) = (
                    (COPY_BYTES * n) as f64 / copy_ns,
                    (STREAM_BYTES * n) as f64 / stream_ns,
                );
                let achieved = (bytes(v) * n) as f64 / rule_ns;
                of_copy.push(achieved / copy);
                of_stream.push(achieved / stream);
                ratio.push(rule_ns / base_ns);
                copy_bw.push(copy);
                stream_bw.push(stream);
            }
            let show = |x: &[f64], digits: usize| {
                let (lo, hi) = range(x);
                format!("{:.d$} ({lo:.d$}–{hi:.d$})", median(x.to_vec()), d = digits)
            };
            println!(
                "| {n:.0e} | {} | {} | {} | {} | {:.2} | {} | {} |",
                v.id(),
                show(&of_copy, 2),
                show(&of_stream, 2),
                show(&ratio, 2),
                bytes(v) as f64 / bytes(v.base()) as f64,
                show(&copy_bw, 0),
                show(&stream_bw, 0),
            );
        }
    }
}
