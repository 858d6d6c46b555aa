//! The learning-rate-free peers (Prodigy, Schedule-Free) against an independent f64 reference,
//! their two phases against their one-call step, Prodigy's d and Schedule-Free's evaluation
//! point. Their errors and record are `peers_errors.rs`; the comparison with the PyTorch
//! packages themselves is hd-native's `tests/peers.rs` (it needs torch).
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

mod peer_reference;

use hd_core::{PeerSums, Prodigy, ScheduleFree, ScheduleFreeConfig, TensorMut};
use peer_reference::*;

/// Prodigy in f32 follows the f64 reference for 300 steps on a noisy quadratic, θ and d. Both
/// are given the same gradients, those at the f32 run's θ, so that the difference is the
/// rounding of the equations, not amplified by two trajectories of a sensitive system (Adam's
/// near-sign steps near the optimum). Measured: d within 1.5e-6 relative, θ within 2e-5 of
/// max(|θ|, 0.1); a slip in the equations (d before or after its update, a missing d/d_0, x_0
/// not kept) is orders of magnitude larger.
#[test]
fn prodigy_matches_the_f64_reference() {
    for (name, config) in prodigy_configs() {
        let opt = Prodigy::new(config).unwrap();
        let mut state = opt.init_state();
        let mut x = prodigy_x0();
        let mut buffers = vec![0.0; opt.buffer_len(N).unwrap()];
        opt.init_buffers(&x, &mut buffers).unwrap();
        let mut reference = ProdigyRef::new(config, &x);
        for t in 1..=STEPS {
            let g = gradient_at(t, 0, &x);
            opt.step(&mut state, &mut x, &g, &mut buffers).unwrap();
            reference.step(&g);
            let at = |what: &str| format!("{name} step {t} {what}");
            close(&at("d"), state.d, reference.d, 4e-6, 0.0).unwrap();
            for (i, (a, b)) in x.iter().zip(&reference.x).enumerate() {
                close(&at(&format!("x[{i}]")), *a, *b, 5e-5, 0.1).unwrap();
            }
        }
        // The comparison is not vacuous: d grew by orders of magnitude and x moved.
        assert!(
            reference.d > 1e3 * f64::from(config.d0),
            "{name}: d stayed at d0"
        );
        let moved = x.iter().zip(prodigy_x0()).map(|(a, b)| (a - b).abs());
        assert!(moved.fold(0.0, f32::max) > 0.1, "{name}: x did not move");
    }
}

/// Schedule-Free in f32 (y updated without forming x) follows the f64 reference with explicit
/// x and z (the paper's form) for 300 steps on a noisy quadratic, both given the gradients at
/// the f32 run's y: y, z and the evaluation point x. Measured: within 3e-6 of max(|·|, 0.1), W_t within 1e-7.
#[test]
fn schedule_free_matches_the_f64_reference() {
    for (name, config) in schedule_free_configs() {
        let opt = ScheduleFree::new(config).unwrap();
        let mut state = opt.init_state();
        let mut y = params0(N);
        let mut buffers = vec![0.0; opt.buffer_len(N).unwrap()];
        opt.init_buffers(&y, &mut buffers).unwrap();
        let mut reference = ScheduleFreeRef::new(config, &y);
        let mut x = vec![0.0; N];
        for t in 1..=STEPS {
            let g = gradient_at(t, 0, &y);
            opt.step(&mut state, &mut y, &g, &mut buffers).unwrap();
            let y_ref: Vec<f32> = reference.y().iter().map(|&v| v as f32).collect();
            reference.step(&gradient_at(t, 0, &y_ref));
            opt.eval_point(&y, &buffers, &mut x).unwrap();
            let y_ref = reference.y();
            for i in 0..N {
                let at = |what: &str| format!("{name} step {t} {what}[{i}]");
                close(&at("y"), y[i], y_ref[i], 1e-5, 0.1).unwrap();
                close(&at("z"), buffers[i], reference.z[i], 1e-5, 0.1).unwrap();
                close(&at("x"), x[i], reference.x[i], 1e-5, 0.1).unwrap();
            }
            close(
                &format!("{name} step {t} weight sum"),
                state.weight_sum + state.weight_sum_low,
                reference.weight_sum,
                1e-6,
                0.0,
            )
            .unwrap();
        }
        let moved = x.iter().zip(params0(N)).map(|(a, b)| (a - b).abs());
        assert!(moved.fold(0.0, f32::max) > 0.1, "{name}: x did not move");
    }
}

/// The pieces of a model, as `step_tensors` takes them.
fn tensor_list<'a>(
    params: &'a mut [Vec<f32>],
    grads: &'a [Vec<f32>],
    buffers: &'a mut [Vec<f32>],
) -> Vec<TensorMut<'a>> {
    params
        .iter_mut()
        .zip(grads)
        .zip(buffers.iter_mut())
        .map(|((params, grads), buffers)| TensorMut {
            params,
            grads,
            buffers,
        })
        .collect()
}

#[test]
fn prodigy_phases_over_tensors_are_one_step_over_their_concatenation() {
    for (name, config) in prodigy_configs() {
        let opt = Prodigy::new(config).unwrap();
        let mut whole = (opt.init_state(), prodigy_x0(), vec![0.0; 4 * N]);
        opt.init_buffers(&whole.1, &mut whole.2).unwrap();
        let mut phases = (whole.0, split_params(&whole.1), split(&whole.2, 4));
        let mut tensors = phases.clone();
        for t in 1..=60 {
            let g = gradient_at(t, 0, &whole.1);
            opt.step(&mut whole.0, &mut whole.1, &g, &mut whole.2)
                .unwrap();
            let gs = split_params(&g);

            let mut sums = PeerSums::new();
            for ((x, g), b) in phases.1.iter().zip(&gs).zip(&phases.2) {
                opt.accumulate(&phases.0, x, g, b, &mut sums).unwrap();
            }
            let step = opt.advance(&mut phases.0, &sums).unwrap();
            for ((x, g), b) in phases.1.iter_mut().zip(&gs).zip(phases.2.iter_mut()) {
                opt.apply(&step, x, g, b).unwrap();
            }

            let mut list = tensor_list(&mut tensors.1, &gs, &mut tensors.2);
            opt.step_tensors(&mut tensors.0, &mut list).unwrap();

            for (label, run) in [("phases", &phases), ("step_tensors", &tensors)] {
                assert_eq!(run.0, whole.0, "{name} {label} step {t}: state");
                assert_eq!(bits(&run.1.concat()), bits(&whole.1), "{name} {label}: θ");
                assert_eq!(bits(&join(&run.2, 4)), bits(&whole.2), "{name} {label}");
            }
        }
    }
}

#[test]
fn schedule_free_phases_over_tensors_are_one_step_over_their_concatenation() {
    for (name, config) in schedule_free_configs() {
        let opt = ScheduleFree::new(config).unwrap();
        let slots = opt.slots();
        let mut whole = (opt.init_state(), params0(N), vec![0.0; slots * N]);
        opt.init_buffers(&whole.1, &mut whole.2).unwrap();
        let mut tensors = (whole.0, split_params(&whole.1), split(&whole.2, slots));
        for t in 1..=60 {
            let g = gradient_at(t, 0, &whole.1);
            opt.step(&mut whole.0, &mut whole.1, &g, &mut whole.2)
                .unwrap();
            let gs = split_params(&g);
            let mut list = tensor_list(&mut tensors.1, &gs, &mut tensors.2);
            opt.step_tensors(&mut tensors.0, &mut list).unwrap();
            assert_eq!(tensors.0, whole.0, "{name} step {t}: state");
            assert_eq!(bits(&tensors.1.concat()), bits(&whole.1), "{name}: θ");
            assert_eq!(bits(&join(&tensors.2, slots)), bits(&whole.2), "{name}");
        }
    }
}

/// Schedule-Free's evaluation point: x_0 = y_0 before any step; `to_eval` writes the same x as
/// `eval_point` (the package's `eval()`), `to_train` and `train_point` come back to y within a
/// rounding or two (as the package's `train()`), and the evaluation point, not y, is the
/// average that converges: on f(θ) = ½‖θ − 1‖² with a noisy gradient, x ends nearer the
/// optimum than y.
#[test]
fn schedule_free_evaluates_at_x() {
    for (name, config) in schedule_free_configs() {
        let opt = ScheduleFree::new(config).unwrap();
        let (state, y, b) = schedule_free_after(&opt, 0);
        assert_eq!(state.step, 0);
        let mut x = vec![0.0; N];
        opt.eval_point(&y, &b, &mut x).unwrap();
        assert_eq!(bits(&x), bits(&y), "{name}: x_0 = y_0");

        let (_, y, b) = schedule_free_after(&opt, 50);
        opt.eval_point(&y, &b, &mut x).unwrap();
        let mut p = y.clone();
        opt.to_eval(&mut p, &b).unwrap();
        assert_eq!(bits(&p), bits(&x), "{name}: to_eval is eval_point");
        let mut back = vec![0.0; N];
        opt.train_point(&x, &b, &mut back).unwrap();
        opt.to_train(&mut p, &b).unwrap();
        assert_eq!(bits(&p), bits(&back), "{name}: to_train is train_point");
        for i in 0..N {
            let tol = 4.0 * f32::EPSILON * (y[i].abs() + b[i].abs() + x[i].abs());
            assert!(
                (p[i] - y[i]).abs() <= tol,
                "{name}[{i}]: {} vs {}",
                p[i],
                y[i]
            );
        }
    }
    for config in [
        ScheduleFreeConfig::sgd(0.2),
        ScheduleFreeConfig::adamw(0.05),
    ] {
        let opt = ScheduleFree::new(config).unwrap();
        let mut state = opt.init_state();
        let mut y = vec![0.0f32; N];
        let mut b = vec![0.0; opt.buffer_len(N).unwrap()];
        opt.init_buffers(&y, &mut b).unwrap();
        for t in 1..=2000 {
            let g: Vec<f32> = (0..N)
                .map(|i| y[i] - 1.0 + (0.37 * t as f32 + 0.9 * i as f32).cos())
                .collect();
            opt.step(&mut state, &mut y, &g, &mut b).unwrap();
        }
        let mut x = vec![0.0; N];
        opt.eval_point(&y, &b, &mut x).unwrap();
        let dist = |p: &[f32]| p.iter().map(|v| (v - 1.0).powi(2)).sum::<f32>().sqrt();
        assert!(
            dist(&x) < 0.5 * dist(&y),
            "{config:?}: x {} y {}",
            dist(&x),
            dist(&y)
        );
    }
}

/// Prodigy's d: never below the last (growth ∞), at most growth_rate times it otherwise, and a
/// zero gradient before any other takes no step at all (the package returns early).
#[test]
fn prodigy_d_grows_as_specified() {
    for (name, config) in prodigy_configs() {
        let opt = Prodigy::new(config).unwrap();
        let mut state = opt.init_state();
        let mut x = prodigy_x0();
        let mut b = vec![0.0; 4 * N];
        opt.init_buffers(&x, &mut b).unwrap();
        let before = snapshot(state, &x, &b);
        opt.step(&mut state, &mut x, &[0.0; N], &mut b).unwrap();
        // (With coupled decay the gradient is λx, not zero.)
        if config.decouple {
            assert_eq!(snapshot(state, &x, &b), before, "{name}: zero gradient");
        }
        for t in 1..=STEPS {
            let d = state.d;
            let g = gradient_at(t, 0, &x);
            opt.step(&mut state, &mut x, &g, &mut b).unwrap();
            assert!(state.d >= d, "{name} step {t}: d fell");
            if config.growth_rate.is_finite() && d != config.d0 {
                assert!(state.d <= d * config.growth_rate, "{name} step {t}");
            }
            assert!(state.d <= state.d_max);
        }
        let skipped = u64::from(config.decouple);
        assert_eq!(state.step, STEPS as u64 + 1 - skipped, "{name}");
    }
}
