//! Saved state: a save and a load give back the same bits and the same trajectory; a state of
//! another rule, other hyperparameters or other shapes is refused and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::{bits, configs, gradients, host, mlp_vars};
use hd_candle::{Config, Engine, HdError, HdOptimizer};

fn copy(vars: &[Var]) -> Vec<Var> {
    vars.iter()
        .map(|v| Var::from_tensor(&v.as_tensor().copy().unwrap()).unwrap())
        .collect()
}

fn tensor_bits(t: &Tensor) -> Vec<u32> {
    let t = t.flatten_all().unwrap().to_dtype(DType::F32).unwrap();
    t.to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

#[test]
fn a_saved_state_resumes_the_same_trajectory_on_either_engine() {
    let dir = tempfile::tempdir().unwrap();
    for (name, config) in configs() {
        for (from, to) in [
            (Engine::Slices, Engine::Slices),
            (Engine::Tensors, Engine::Tensors),
            (Engine::Slices, Engine::Tensors),
        ] {
            let vars = mlp_vars(5);
            let mut opt = HdOptimizer::with_engine(vars.clone(), config, from).unwrap();
            for k in 0..10 {
                opt.try_step(&gradients(&vars, k).1).unwrap();
            }
            let path = dir.path().join("state.safetensors");
            opt.save_state(&path).unwrap();
            let resumed_vars = copy(&vars);
            let mut resumed = HdOptimizer::with_engine(resumed_vars.clone(), config, to).unwrap();
            resumed.load_state_file(&path).unwrap();
            // Every saved tensor comes back with the same bits.
            let (a, b) = (
                opt.state_tensors().unwrap(),
                resumed.state_tensors().unwrap(),
            );
            assert_eq!(a.len(), b.len());
            for (k, t) in &a {
                assert_eq!(tensor_bits(t), tensor_bits(&b[k]), "{name}: {k}");
                assert_eq!(t.dims(), b[k].dims(), "{name}: {k}");
            }
            assert_eq!(resumed.steps(), 10);
            if from == to {
                // The same engine then takes the same steps, bit for bit.
                for k in 10..20 {
                    opt.try_step(&gradients(&vars, k).1).unwrap();
                    resumed.try_step(&gradients(&resumed_vars, k).1).unwrap();
                }
                assert_eq!(bits(&vars), bits(&resumed_vars), "{name} {from:?}");
            }
        }
    }
}

#[test]
fn a_state_of_another_rule_or_shape_is_refused_and_changes_nothing() {
    let vars = mlp_vars(5);
    let config = Config::adam(0.01).with_hd(1e-4);
    let mut source = HdOptimizer::new(vars.clone(), config).unwrap();
    for k in 0..3 {
        source.try_step(&gradients(&vars, k).1).unwrap();
    }
    let saved = source.state_tensors().unwrap();
    let other = |config: Config, vars: Vec<Var>| {
        let mut o = HdOptimizer::new(vars.clone(), config).unwrap();
        o.try_step(&gradients(&vars, 0).1).unwrap();
        o
    };
    let mismatched = [
        (
            "another rule",
            other(Config::sgd(0.01).with_hd(1e-4), mlp_vars(5)),
        ),
        (
            "another β",
            other(Config::adam(0.01).with_hd(2e-4), mlp_vars(5)),
        ),
        (
            "another scope",
            other(
                config.with_scope(hd_candle::Scope::PerParameter),
                mlp_vars(5),
            ),
        ),
    ];
    for (what, mut o) in mismatched {
        let before = o.state_tensors().unwrap();
        let e = o.load_state(&saved).unwrap_err();
        assert!(matches!(e, HdError::StateMismatch(_)), "{what}: {e}");
        let after = o.state_tensors().unwrap();
        for (k, t) in &before {
            assert_eq!(tensor_bits(t), tensor_bits(&after[k]), "{what}: {k}");
        }
    }
    // Same rule, other shapes: one variable fewer, or one of another size.
    let mut fewer = mlp_vars(5);
    fewer.pop();
    let mut o = HdOptimizer::new(fewer, config).unwrap();
    assert!(matches!(
        o.load_state(&saved),
        Err(HdError::StateMismatch(_))
    ));
    let mut resized = mlp_vars(5);
    resized[5] = Var::zeros(4, DType::F32, &Device::Cpu).unwrap();
    let mut o = HdOptimizer::new(resized, config).unwrap();
    let e = o.load_state(&saved).unwrap_err();
    assert!(
        matches!(e, HdError::StateMismatch(ref m) if m.contains("buffers.5")),
        "{e}"
    );
    assert_eq!(o.steps(), 0);
    // A tensor of the wrong dtype, or a missing one.
    let mut o = HdOptimizer::new(mlp_vars(5), config).unwrap();
    let mut wrong = saved.clone();
    let alpha = wrong["alpha"].to_dtype(DType::F64).unwrap();
    wrong.insert("alpha".into(), alpha);
    assert!(matches!(
        o.load_state(&wrong),
        Err(HdError::StateMismatch(_))
    ));
    let mut missing = saved.clone();
    missing.remove("buffers.2");
    assert!(matches!(
        o.load_state(&missing),
        Err(HdError::StateMismatch(_))
    ));
    // A corrupt record.
    let mut corrupt = saved.clone();
    let mut record = corrupt["record"].to_vec1::<u8>().unwrap();
    record[20] ^= 1;
    let n = record.len();
    corrupt.insert(
        "record".into(),
        Tensor::from_vec(record, n, &Device::Cpu).unwrap(),
    );
    assert!(matches!(o.load_state(&corrupt), Err(HdError::Core(_))));
    assert_eq!(o.steps(), 0);
    assert_eq!(
        host(o.vars()[0].as_tensor()),
        host(mlp_vars(5)[0].as_tensor())
    );
}
