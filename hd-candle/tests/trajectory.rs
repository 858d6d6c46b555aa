//! hd-candle's trajectory against hd-core's multi-tensor step on the same gradients: bit for
//! bit on the CPU slice engine, to rounding on the tensor engine, for every rule and scope.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use candle_nn::Optimizer as _;
use common::{bits, configs, gradients, host, mlp_vars, Reference};
use hd_candle::{Config, Engine, HdOptimizer};

/// Trains the MLP with hd-candle and the reference side by side; returns hd-candle's largest
/// relative difference from the reference (parameters and α) over the run, after checking
/// bit-equality at every step when `exact`.
fn follow(name: &str, config: Config, engine: Engine, steps: u64, exact: bool) -> f32 {
    let vars = mlp_vars(7);
    let mut reference = Reference::new(config, &vars);
    let mut opt = HdOptimizer::with_engine(vars.clone(), config, engine).unwrap();
    assert_eq!(opt.engine(), engine);
    let mut worst = 0.0f32;
    // Mean loss over the first and the last pass through the 7 batches.
    let mut losses = Vec::new();
    for k in 0..steps {
        let (loss, grads) = gradients(&vars, k);
        losses.push(loss);
        reference.step(&vars, &grads);
        opt.try_step(&grads).unwrap();
        let expected: Vec<Vec<u32>> = reference
            .params
            .iter()
            .map(|p| p.iter().map(|x| x.to_bits()).collect())
            .collect();
        let alphas = opt.alphas().unwrap();
        if exact {
            assert_eq!(
                bits(&vars),
                expected,
                "{name}: parameters at step {}",
                k + 1
            );
            let want: Vec<u32> = reference.alphas().iter().map(|a| a.to_bits()).collect();
            let got: Vec<u32> = alphas.iter().map(|a| a.to_bits()).collect();
            assert_eq!(got, want, "{name}: α at step {}", k + 1);
        }
        let rel = |a: f32, b: f32| (a - b).abs() / (1e-3 + b.abs());
        for (v, p) in vars.iter().zip(&reference.params) {
            for (a, b) in host(v.as_tensor()).iter().zip(p) {
                worst = worst.max(rel(*a, *b));
            }
        }
        for (a, b) in alphas.iter().zip(reference.alphas()) {
            worst = worst.max(rel(*a, b));
        }
    }
    assert_eq!(opt.steps(), steps, "{name}");
    // The run trained: the loss fell (so the comparison is not between two idle models).
    let mean = |l: &[f32]| l.iter().sum::<f32>() / l.len() as f32;
    let (first, last) = (mean(&losses[..7]), mean(&losses[losses.len() - 7..]));
    assert!(last < first, "{name}: loss {first} -> {last}");
    worst
}

/// The task's check: 200 steps of the MLP, every rule and scope, bit for bit on the CPU.
#[test]
fn slice_engine_follows_hd_core_bit_for_bit_for_every_rule_and_scope() {
    let all = configs();
    // 3 base rules, 3 HD rules × 3 scopes, 3 HDM rules × 2 scopes, 4 options.
    assert_eq!(all.len(), 3 + 9 + 6 + 4);
    for (name, config) in all {
        follow(&name, config, Engine::Slices, 200, true);
    }
}

/// The tensor engine (the GPU's path, here on the CPU) evaluates the same rule; only the
/// order of its sums differs, so it stays within rounding of the reference.
#[test]
fn tensor_engine_follows_hd_core_to_rounding_for_every_rule_and_scope() {
    for (name, config) in configs() {
        let worst = follow(&name, config, Engine::Tensors, 60, false);
        eprintln!("{name}: {worst:e}");
        assert!(worst < 1e-3, "{name}: relative difference {worst}");
    }
}

/// SGD-HD's α moves, and `learning_rate` reports it (the global α).
#[test]
fn learning_rate_is_the_current_alpha() {
    let vars = mlp_vars(3);
    let config = Config::sgd(0.01).with_hd(0.01);
    let mut opt = HdOptimizer::new(vars.clone(), config).unwrap();
    let mut reference = Reference::new(config, &vars);
    for k in 0..20 {
        let (_, grads) = gradients(&vars, k);
        reference.step(&vars, &grads);
        opt.step(&grads).unwrap();
    }
    assert_eq!(opt.learning_rate(), f64::from(reference.states[0].alpha));
    assert_ne!(opt.learning_rate(), 0.01);
}
