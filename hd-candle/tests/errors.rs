//! Every refusal is typed and writes nothing: a bad configuration, a NaN gradient, a gradient
//! that does not fit, an α0 hd-core refuses, variables it cannot step.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer as _;
use common::{bits, gradients, mlp_vars};
use hd_candle::{Config, Engine, HdError, HdOptimizer, Scope};

/// An optimizer that has taken a few steps (so that its buffers and α are not initial).
fn trained(config: Config, engine: Engine) -> (Vec<Var>, HdOptimizer) {
    let vars = mlp_vars(11);
    let mut opt = HdOptimizer::with_engine(vars.clone(), config, engine).unwrap();
    for k in 0..5 {
        opt.try_step(&gradients(&vars, k).1).unwrap();
    }
    (vars, opt)
}

/// The variables' bits, and every tensor of the optimizer's state by name.
type Snapshot = (Vec<Vec<u32>>, Vec<(String, Vec<u32>)>);

/// The variables and the optimizer's whole state, to check that nothing moved.
fn snapshot(vars: &[Var], opt: &HdOptimizer) -> Snapshot {
    let mut state: Vec<(String, Vec<u32>)> = opt
        .state_tensors()
        .unwrap()
        .into_iter()
        .map(|(k, t)| {
            let t = t.flatten_all().unwrap().to_dtype(DType::F32).unwrap();
            (
                k,
                t.to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect(),
            )
        })
        .collect();
    state.sort();
    (bits(vars), state)
}

fn engines_and_rules() -> Vec<(Engine, Config)> {
    let mut out = Vec::new();
    for engine in [Engine::Slices, Engine::Tensors] {
        for config in [
            Config::sgd(0.01),
            Config::adam(0.01),
            Config::sgd(0.01).with_hd(0.001),
            Config::sgdn(0.01, 0.9)
                .with_hdm(0.02)
                .with_scope(Scope::PerTensor),
            Config::adam(0.01)
                .with_hd(1e-4)
                .with_scope(Scope::PerParameter),
        ] {
            out.push((engine, config));
        }
    }
    out
}

#[test]
fn a_nan_or_infinite_gradient_is_refused_and_nothing_moves() {
    for (engine, config) in engines_and_rules() {
        for bad in [f32::NAN, f32::INFINITY] {
            let (vars, mut opt) = trained(config, engine);
            let before = snapshot(&vars, &opt);
            let (_, mut grads) = gradients(&vars, 5);
            // The last variable's gradient: every other variable would have moved before it.
            let last = vars.last().unwrap();
            let mut g = common::host(grads.get(last.as_tensor()).unwrap());
            g[1] = bad;
            grads.insert(
                last.as_tensor(),
                Tensor::from_vec(g, last.shape(), &Device::Cpu).unwrap(),
            );
            let e = opt.try_step(&grads).unwrap_err();
            assert!(
                matches!(e, HdError::Core(hd_core::Error::NonFinite)),
                "{engine:?} {config:?}: {e}"
            );
            assert!(
                snapshot(&vars, &opt) == before,
                "{engine:?} {config:?}: something moved"
            );
            // Through candle's trait: the same refusal, wrapped in candle's error.
            let e = opt.step(&grads).unwrap_err();
            assert!(e.to_string().contains("not finite"), "{e}");
            assert!(snapshot(&vars, &opt) == before);
            // And the optimizer steps on afterwards.
            opt.try_step(&gradients(&vars, 6).1).unwrap();
            assert!(snapshot(&vars, &opt).0 != before.0);
        }
    }
}

#[test]
fn a_gradient_of_another_shape_or_dtype_is_refused_and_nothing_moves() {
    for (engine, config) in engines_and_rules() {
        let (vars, mut opt) = trained(config, engine);
        let before = snapshot(&vars, &opt);
        let last = vars.last().unwrap();
        for wrong in [
            Tensor::zeros(last.elem_count() + 1, DType::F32, &Device::Cpu).unwrap(),
            Tensor::zeros(last.shape(), DType::F64, &Device::Cpu).unwrap(),
        ] {
            let (_, mut grads) = gradients(&vars, 5);
            grads.insert(last.as_tensor(), wrong);
            let e = opt.try_step(&grads).unwrap_err();
            assert!(matches!(e, HdError::Gradient { index: 5, .. }), "{e}");
            assert!(snapshot(&vars, &opt) == before);
        }
    }
}

#[test]
fn a_bad_configuration_is_refused() {
    let e = HdOptimizer::new(mlp_vars(1), Config::sgd(f32::NAN)).unwrap_err();
    assert!(matches!(
        e,
        HdError::Core(hd_core::Error::InvalidHyperparameter { name: "alpha0", .. })
    ));
    let e = HdOptimizer::new(
        mlp_vars(1),
        Config::sgd(0.1).with_hd(0.01).with_clamp(0.0, 0.05),
    )
    .unwrap_err();
    assert!(matches!(
        e,
        HdError::Core(hd_core::Error::InconsistentHyperparameters { .. })
    ));
    // Stacked HD's β_t is not in the saved state: refused by both engines, not run as HD.
    let stacked = Config::sgd(0.1).with_hd(0.01).with_kappa(1e-6);
    for engine in [Engine::Slices, Engine::Tensors] {
        let e = HdOptimizer::with_engine(mlp_vars(1), stacked, engine).unwrap_err();
        assert!(matches!(
            e,
            HdError::Core(hd_core::Error::InvalidHyperparameter { name: "kappa", .. })
        ));
    }
    // Through candle's trait.
    let e = <HdOptimizer as candle_nn::Optimizer>::new(mlp_vars(1), Config::adam(-f32::INFINITY));
    assert!(e.is_err());
}

#[test]
fn variables_it_cannot_step_are_refused() {
    let f64_var = Var::zeros(3, DType::F64, &Device::Cpu).unwrap();
    let e = HdOptimizer::new(vec![mlp_vars(1).remove(0), f64_var], Config::sgd(0.1)).unwrap_err();
    assert!(
        matches!(
            e,
            HdError::UnsupportedDType {
                index: 1,
                dtype: DType::F64
            }
        ),
        "{e}"
    );
    let t = Tensor::zeros((3, 4), DType::F32, &Device::Cpu)
        .unwrap()
        .t()
        .unwrap();
    let strided = Var::from_tensor(&t).unwrap();
    if !strided.is_contiguous() {
        let e = HdOptimizer::new(vec![strided], Config::sgd(0.1)).unwrap_err();
        assert!(matches!(e, HdError::NotContiguous { index: 0 }), "{e}");
    }
}

#[test]
fn an_invalid_learning_rate_is_reported_by_the_next_step_and_changes_nothing() {
    for (engine, config) in engines_and_rules() {
        let (vars, mut opt) = trained(config.with_clamp(0.0, 1.0), engine);
        let before = snapshot(&vars, &opt);
        for bad in [f64::NAN, 2.0] {
            assert!(matches!(
                opt.try_set_learning_rate(bad),
                Err(HdError::InvalidLearningRate { .. })
            ));
            opt.set_learning_rate(bad);
            assert!(snapshot(&vars, &opt) == before);
            let e = opt.try_step(&gradients(&vars, 5).1).unwrap_err();
            assert!(matches!(e, HdError::InvalidLearningRate { .. }), "{e}");
            assert!(snapshot(&vars, &opt) == before);
        }
    }
}

/// `set_learning_rate` restarts every α at the value, as documented.
#[test]
fn set_learning_rate_restarts_every_alpha() {
    for (engine, config) in engines_and_rules() {
        let (vars, mut opt) = trained(config, engine);
        opt.set_learning_rate(0.125);
        assert!(
            opt.alphas().unwrap().iter().all(|a| *a == 0.125),
            "{config:?}"
        );
        assert_eq!(opt.learning_rate(), 0.125);
        assert_eq!(opt.config().alpha0, 0.125);
        assert_eq!(opt.steps(), 5);
        opt.try_step(&gradients(&vars, 5).1).unwrap();
    }
}
