//! Property tests: the two-phase API, scopes, and serialisation mid-run.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use hd_core::{
    decode_f32s, encode_f32s, Accumulator, Config, Hyper, Optimizer, Scope, TensorMut, RECORD_LEN,
};
use proptest::prelude::*;

fn any_config() -> impl Strategy<Value = Config> {
    let all = all_configs();
    (0..all.len()).prop_map(move |i| all[i].1)
}

/// Tensor sizes chosen to straddle the 8-lane blocks.
fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..20, 1..5)
}

fn values(n: usize, seed: u64) -> Vec<f32> {
    // A small deterministic generator keeps the gradients reproducible across steps.
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Slot k of the whole model is the concatenation of slot k of every tensor.
fn concat_buffers(opt: &Optimizer, parts: &[Vec<f32>], sizes: &[usize]) -> Vec<f32> {
    let mut out = Vec::new();
    for k in 0..opt.slots() {
        for (p, &n) in parts.iter().zip(sizes) {
            out.extend_from_slice(&p[k * n..(k + 1) * n]);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn two_phase_over_tensors_equals_one_step_over_their_concatenation(
        config in any_config(), sizes in sizes(), seed in any::<u64>()
    ) {
        // Global scope for the comparison (per-tensor scope has one α per tensor by design).
        let config = Config { hyper: config.hyper.map(|h| Hyper {
            scope: if h.scope == Scope::PerTensor { Scope::Global } else { h.scope }, ..h }), ..config };
        let opt = Optimizer::new(config).unwrap();
        let total: usize = sizes.iter().sum();
        let mut whole = values(total, seed);
        let mut whole_buf = vec![0.0; opt.buffer_len(total).unwrap()];
        opt.init_buffers(&mut whole_buf).unwrap();
        let mut whole_state = opt.init_state();

        let mut parts: Vec<Vec<f32>> = Vec::new();
        let mut at = 0;
        for &n in &sizes { parts.push(whole[at..at + n].to_vec()); at += n; }
        let mut bufs: Vec<Vec<f32>> = sizes.iter().map(|&n| {
            let mut b = vec![0.0; opt.buffer_len(n).unwrap()]; opt.init_buffers(&mut b).unwrap(); b
        }).collect();
        let mut state = opt.init_state();

        for step in 0..6u64 {
            let g = values(total, seed ^ (step + 1));
            opt.step(&mut whole_state, &mut whole, &g, &mut whole_buf).unwrap();

            let mut grads = Vec::new();
            let mut at = 0;
            for &n in &sizes { grads.push(g[at..at + n].to_vec()); at += n; }
            let mut acc = Accumulator::new();
            for ((p, gi), b) in parts.iter().zip(&grads).zip(&bufs) {
                opt.hypergradient(&state, p, gi, b, &mut acc).unwrap();
            }
            opt.advance(&mut state, &acc).unwrap();
            for ((p, gi), b) in parts.iter_mut().zip(&grads).zip(bufs.iter_mut()) {
                opt.apply(&state, p, gi, b).unwrap();
            }
        }
        prop_assert_eq!(whole_state, state);
        prop_assert_eq!(bits(&whole), bits(&parts.concat()));
        prop_assert_eq!(bits(&whole_buf), bits(&concat_buffers(&opt, &bufs, &sizes)));
    }

    #[test]
    fn step_tensors_per_tensor_scope_with_one_tensor_equals_global_scope(
        config in any_config(), n in 0usize..40, seed in any::<u64>()
    ) {
        let hyper = config.hyper.unwrap_or(Hyper::additive(1e-3));
        let with_scope = |scope| Optimizer::new(Config { hyper: Some(Hyper { scope, ..hyper }), ..config }).unwrap();
        let (global, per_tensor) = (with_scope(Scope::Global), with_scope(Scope::PerTensor));
        let mut a = (values(n, seed), vec![0.0; global.buffer_len(n).unwrap()], [global.init_state()]);
        let mut b = a.clone();
        for step in 0..6u64 {
            let g = values(n, seed ^ (step + 1));
            global.step_tensors(&mut a.2, &mut [TensorMut { params: &mut a.0, grads: &g, buffers: &mut a.1 }]).unwrap();
            per_tensor.step_tensors(&mut b.2, &mut [TensorMut { params: &mut b.0, grads: &g, buffers: &mut b.1 }]).unwrap();
        }
        prop_assert_eq!(bits(&a.0), bits(&b.0));
        prop_assert_eq!(bits(&a.1), bits(&b.1));
        prop_assert_eq!(a.2, b.2);
    }

    #[test]
    fn state_survives_a_byte_round_trip_mid_run(
        config in any_config(), n in 1usize..30, cut in 1u64..8, seed in any::<u64>()
    ) {
        let opt = Optimizer::new(config).unwrap();
        let mut theta = values(n, seed);
        let mut buf = vec![0.0; opt.buffer_len(n).unwrap()];
        opt.init_buffers(&mut buf).unwrap();
        let mut state = opt.init_state();
        let grad = |theta: &[f32], step: u64| -> Vec<f32> {
            theta.iter().zip(values(n, seed ^ step)).map(|(t, noise)| t + 0.1 * noise).collect()
        };
        let mut saved = None;
        for step in 0..12u64 {
            if step == cut {
                let mut record = [0u8; RECORD_LEN];
                opt.encode(&state, &mut record).unwrap();
                let mut raw = vec![0u8; 4 * buf.len()];
                encode_f32s(&buf, &mut raw).unwrap();
                saved = Some((record, raw, theta.clone()));
            }
            let g = grad(&theta, step);
            opt.step(&mut state, &mut theta, &g, &mut buf).unwrap();
        }
        // Restore into fresh objects and continue: the continuation must be identical.
        let (record, raw, theta_saved) = saved.unwrap();
        let (opt2, mut state2) = Optimizer::decode(&record).unwrap();
        let mut buf2 = vec![f32::NAN; opt2.buffer_len(n).unwrap()];
        decode_f32s(&raw, &mut buf2).unwrap();
        let mut theta2 = theta_saved;
        for step in cut..12 {
            let g = grad(&theta2, step);
            opt2.step(&mut state2, &mut theta2, &g, &mut buf2).unwrap();
        }
        prop_assert_eq!(state, state2);
        prop_assert_eq!(bits(&theta), bits(&theta2));
        prop_assert_eq!(bits(&buf), bits(&buf2));
    }

    /// The documented summation order of phase 1: element j of everything fed goes to lane
    /// j mod LANES, and the lanes are reduced as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)). Both loop
    /// paths (8-lane blocks; one element at a time on bare metal, or with `--features
    /// scalar-loops`) must give exactly these bits, fed in pieces or at once.
    #[test]
    fn hypergradient_sums_in_the_documented_lane_order(
        config in any_config(), sizes in sizes(), seed in any::<u64>()
    ) {
        let opt = Optimizer::new(config).unwrap();
        let mut state = opt.init_state();
        let total: usize = sizes.iter().sum();
        let mut theta = values(total, seed);
        let mut buf = vec![0.0; opt.buffer_len(total).unwrap()];
        opt.init_buffers(&mut buf).unwrap();
        for step in 0..3u64 {
            let g = values(total, seed ^ (step + 7));
            opt.step(&mut state, &mut theta, &g, &mut buf).unwrap();
        }
        let g = values(total, seed ^ 99);
        let mut acc = Accumulator::new();
        let mut at = 0;
        for &n in &sizes {
            let part: Vec<f32> = (0..opt.slots()).flat_map(|k| buf[k * total + at..k * total + at + n].to_vec()).collect();
            opt.hypergradient(&state, &theta[at..at + n], &g[at..at + n], &part, &mut acc).unwrap();
            at += n;
        }
        let c = opt.constants(state.step + 1);
        let mut lanes = [[0.0f32; 8]; 3];
        for j in 0..total {
            let slots: Vec<f32> = (0..opt.slots()).map(|k| buf[k * total + j]).collect();
            let t = opt.terms_of(&c, &theta[j], &g[j], &slots).unwrap();
            lanes[0][j % 8] += t.dot;
            if let Some((a, b)) = t.norms { lanes[1][j % 8] += a; lanes[2][j % 8] += b; }
        }
        let reduce = |l: [f32; 8]| ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
        let norms = config.hyper.is_some_and(|h| h.rule == hd_core::HyperRule::Multiplicative);
        let got = acc.terms(norms);
        prop_assert_eq!(got.dot.to_bits(), reduce(lanes[0]).to_bits());
        if let Some((a, b)) = got.norms {
            prop_assert_eq!(a.to_bits(), reduce(lanes[1]).to_bits());
            prop_assert_eq!(b.to_bits(), reduce(lanes[2]).to_bits());
        }
    }

    /// The fused slice loops (8-lane blocks, head and tail) equal the generic rule applied to
    /// one f32 at a time, wherever no sum is involved (base rules and per-parameter α).
    #[test]
    fn fused_loops_equal_the_generic_rule_element_by_element(
        config in any_config(), n in 0usize..30, seed in any::<u64>()
    ) {
        let config = match config.hyper {
            Some(h) if h.scope != Scope::PerParameter => Config { hyper: None, ..config },
            _ => config,
        };
        let opt = Optimizer::new(config).unwrap();
        let slots = opt.slots();
        let mut theta = values(n, seed);
        let mut buf = vec![0.0; opt.buffer_len(n).unwrap()];
        opt.init_buffers(&mut buf).unwrap();
        let mut state = opt.init_state();
        let mut theta_e = theta.clone();
        let mut buf_e = buf.clone();
        for step in 1..=6u64 {
            let g = values(n, seed ^ step);
            opt.step(&mut state, &mut theta, &g, &mut buf).unwrap();
            let c = opt.constants(step);
            for i in 0..n {
                let mut s: Vec<f32> = (0..slots).map(|k| buf_e[k * n + i]).collect();
                opt.apply_to(&c, &config.alpha0, &mut theta_e[i], &g[i], &mut s).unwrap();
                for (k, v) in s.into_iter().enumerate() { buf_e[k * n + i] = v; }
            }
        }
        prop_assert_eq!(bits(&theta), bits(&theta_e));
        prop_assert_eq!(bits(&buf), bits(&buf_e));
    }
}
