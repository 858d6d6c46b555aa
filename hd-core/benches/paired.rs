//! Every rule's step timed in alternation with the two bandwidth baselines and with its base
//! rule, so that each ratio comes from timings a few milliseconds apart.
//!
//! On a shared machine the memory bandwidth a process gets drifts by 2× over seconds (other
//! tenants' traffic does not show in the load average), so criterion's runs of one benchmark
//! after another (`step`) give ratios at 1e7 that swing between runs. Here each round times
//! the copy, the streaming update, the rule and its base rule back to back, the ratios are
//! taken within the round, and the table reports their median and, in brackets, their range
//! over the rounds (`PLAN`). `cargo xtask bench` runs it after `step`.
//!
//! A second table does the same for the rules beyond the paper's nine (`common::Extra`:
//! stacked HD, each timed beside its plain HD rule and its base rule, and the peers, each
//! beside the base rule its step is built on), one row per rule and base.
#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{bytes, config, data, Extra, COPY_BYTES, STREAM_BYTES};
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

/// The median of `x` and, in brackets, its range.
fn show(x: &[f64], digits: usize) -> String {
    let (lo, hi) = range(x);
    format!("{:.d$} ({lo:.d$}–{hi:.d$})", median(x.to_vec()), d = digits)
}

/// The two bandwidth baselines on `n` elements, timed once a round.
struct Baselines {
    n: usize,
    src: Vec<f32>,
    dst: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
}

impl Baselines {
    fn new(n: usize) -> Baselines {
        Baselines {
            n,
            src: data(n, 1),
            dst: vec![0.0f32; n],
            a: data(n, 6),
            b: data(n, 7),
        }
    }

    /// The copy's and the stream's GB/s (bytes per nanosecond) this round.
    fn time(&mut self, reps: usize) -> (f64, f64) {
        let half = black_box(0.5f32);
        let copy_ns = time(reps, || {
            common::copy(&mut self.dst, black_box(&self.src));
            black_box(&mut self.dst);
        });
        let stream_ns = time(reps, || {
            common::stream(&mut self.a, black_box(&self.b), half);
            black_box(&mut self.a);
        });
        (
            (COPY_BYTES * self.n) as f64 / copy_ns,
            (STREAM_BYTES * self.n) as f64 / stream_ns,
        )
    }
}

/// A rule's bandwidth over the rounds: against each baseline, and the baselines' own.
#[derive(Default)]
struct Bandwidth {
    of_copy: Vec<f64>,
    of_stream: Vec<f64>,
    copy: Vec<f64>,
    stream: Vec<f64>,
}

impl Bandwidth {
    /// One round: the rule moved `achieved` GB/s while the baselines ran at (copy, stream).
    fn push(&mut self, achieved: f64, (copy, stream): (f64, f64)) {
        self.of_copy.push(achieved / copy);
        self.of_stream.push(achieved / stream);
        self.copy.push(copy);
        self.stream.push(stream);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter is not supported, the run is short.
    println!("| params | rule | fraction of copy | fraction of stream | time ratio vs base | bytes ratio vs base | copy GB/s | stream GB/s |");
    println!("|---|---|---|---|---|---|---|---|");
    for (n, reps, rounds) in PLAN {
        let mut baselines = Baselines::new(n);
        for v in Variant::ALL {
            let mut rule = Run::new(v, n);
            let mut base = Run::new(v.base(), n);
            let (mut bw, mut ratio) = (Bandwidth::default(), vec![]);
            // Round 0 warms caches, pages and branch predictors; it is not counted.
            for round in 0..=rounds {
                let gbps = baselines.time(reps);
                let rule_ns = time(reps, || rule.step());
                let base_ns = time(reps, || base.step());
                if round == 0 {
                    continue;
                }
                bw.push((bytes(v) * n) as f64 / rule_ns, gbps);
                ratio.push(rule_ns / base_ns);
            }
            println!(
                "| {n:.0e} | {} | {} | {} | {} | {:.2} | {} | {} |",
                v.id(),
                show(&bw.of_copy, 2),
                show(&bw.of_stream, 2),
                show(&ratio, 2),
                bytes(v) as f64 / bytes(v.base()) as f64,
                show(&bw.copy, 0),
                show(&bw.stream, 0),
            );
        }
    }
    extras();
}

/// The second table: each of [`Extra::ALL`] timed in alternation with the baselines and with
/// every rule of its `bases()`, all in the same rounds.
fn extras() {
    println!("\n| params | rule | base | fraction of copy | fraction of stream | time ratio vs base | bytes ratio vs base | copy GB/s | stream GB/s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (n, reps, rounds) in PLAN {
        let mut baselines = Baselines::new(n);
        for e in Extra::ALL {
            let mut rule = e.stepper(n);
            let bases = e.bases();
            let mut base_runs: Vec<Run> = bases.iter().map(|&v| Run::new(v, n)).collect();
            let mut bw = Bandwidth::default();
            let mut ratios = vec![vec![]; bases.len()];
            // Round 0 warms caches, pages and branch predictors; it is not counted.
            for round in 0..=rounds {
                let gbps = baselines.time(reps);
                let rule_ns = time(reps, &mut rule);
                let base_ns: Vec<f64> = base_runs
                    .iter_mut()
                    .map(|base| time(reps, || base.step()))
                    .collect();
                if round == 0 {
                    continue;
                }
                bw.push((e.bytes() * n) as f64 / rule_ns, gbps);
                for (ratio, base_ns) in ratios.iter_mut().zip(base_ns) {
                    ratio.push(rule_ns / base_ns);
                }
            }
            for (v, ratio) in bases.iter().zip(&ratios) {
                println!(
                    "| {n:.0e} | {} | {} | {} | {} | {} | {:.2} | {} | {} |",
                    e.id(),
                    v.id(),
                    show(&bw.of_copy, 2),
                    show(&bw.of_stream, 2),
                    show(ratio, 2),
                    e.bytes() as f64 / bytes(*v) as f64,
                    show(&bw.copy, 0),
                    show(&bw.stream, 0),
                );
            }
        }
    }
}
