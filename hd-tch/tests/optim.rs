//! hd-core on slices against hd-tch on CPU tensors: the same trajectory.
//!
//! Both sides start from the same parameters and compute their gradients with the same Rust
//! function of their own current parameters, for 100 steps of every optimizer and option.
//! They may differ only in the summation order of the hypergradient's dot products (hd-core
//! sums in 8 lanes, libtorch in its own order), so parameters and α must agree to 1e-6
//! relative (to each tensor's largest magnitude).

use hd_core::{Config, Hyper, Scope, Variant};
use hd_fused::verify::{self, gradient, initial, reference, Trajectory, STEPS, TOL};
use hd_tch::verify::run_configured;
use hd_tch::{Backend, HdOptimizer};
use tch::{nn, Device, Kind, Tensor};

/// Tensor sizes of the toy model: odd sizes, so chunks and lanes never line up.
const SIZES: [usize; 3] = [5, 37, 203];

/// hd-core's slice step on the toy model ([`verify::reference`]).
fn run_core(name: &str, config: Config) -> Trajectory {
    reference(config, &SIZES, STEPS).unwrap_or_else(|e| panic!("{name}: hd-core: {e}"))
}

/// The test model's variables, from [`initial`], in a fresh entry of `vs`.
fn model_vars(vs: &nn::VarStore) -> Vec<Tensor> {
    initial(&SIZES)
        .iter()
        .enumerate()
        .map(|(i, p)| vs.root().var_copy(&format!("t{i}"), &Tensor::from_slice(p)))
        .collect()
}

/// Writes step `step`'s [`gradient`] of every variable into its gradient, as autograd would.
fn feed_gradients(vars: &[Tensor], step: u64) {
    tch::no_grad(|| {
        for (i, v) in vars.iter().enumerate() {
            let theta = Vec::<f32>::try_from(v).expect("to host");
            v.grad()
                .copy_(&Tensor::from_slice(&gradient(i, step, &theta)));
        }
    });
}

/// hd-tch on CPU tensors of the toy model, its work split into pieces of `chunk` elements
/// ([`run_configured`]).
fn run_native(config: Config, chunk: usize) -> Trajectory {
    run_configured(config, &SIZES, STEPS, Device::Cpu, |opt| {
        opt.set_chunk_len(chunk)
    })
    .expect("hd-tch run")
    .0
}

fn check(name: &str, config: Config) {
    let core = run_core(name, config);
    // Chunks of 1 (every element its own piece), of 16 and whole tensors at once. Every
    // tensor's parameters, α after every step and the per-parameter α agree to TOL.
    for chunk in [1, 16, usize::MAX] {
        let native = run_native(config, chunk);
        if let Err(e) = verify::compare(&native, &core) {
            panic!("{name} chunk {chunk}: {e}");
        }
    }
    // The trajectory must actually move: parameters away from the start, and α for HD.
    let start = initial(&SIZES);
    assert!(
        core.params[2]
            .iter()
            .zip(&start[2])
            .any(|(a, b)| (a - b).abs() > 1e-2),
        "{name}: did not move"
    );
    if let Some(h) = config.hyper {
        if h.beta > 0.0 && h.scope != Scope::PerParameter {
            let last = core.alphas.last().expect("steps")[0];
            assert!(
                (last - config.alpha0).abs() > 1e-6,
                "{name}: α never changed"
            );
        }
    }
}

fn with(config: Config, f: impl FnOnce(&mut Hyper)) -> Config {
    let mut c = config;
    if let Some(h) = c.hyper.as_mut() {
        f(h);
    }
    c
}

/// Whether a case of [`verify::cases`] is one of the nine optimizers as the paper defines
/// them (named by its label), rather than one with an option.
fn is_plain(name: &str) -> bool {
    Variant::ALL.iter().any(|v| v.label() == name)
}

#[test]
fn every_optimizer_follows_hd_core() {
    tch::set_num_threads(1);
    let cases: Vec<(&str, Config)> = verify::cases()
        .into_iter()
        .filter(|(name, _)| is_plain(name))
        .collect();
    assert_eq!(cases.len(), Variant::ALL.len(), "one case per optimizer");
    for (name, config) in cases {
        check(name, config);
    }
}

/// Every option (scope, clamp, transition, L2, 1/√t, heavy ball) with the rules it applies
/// to: the cases of [`verify::cases`] beyond the nine plain optimizers.
#[test]
fn every_option_follows_hd_core() {
    tch::set_num_threads(1);
    let cases: Vec<(&str, Config)> = verify::cases()
        .into_iter()
        .filter(|(name, _)| !is_plain(name))
        .collect();
    assert!(cases.len() >= 10, "{} option cases", cases.len());
    for (name, config) in cases {
        check(name, config);
    }
}

/// The flat-buffer layout must not change what autograd and the model see: a linear model
/// trained with `backward_step` matches the same model stepped by hand (θ ← θ − α g with the
/// gradient from autograd on an untouched copy), step for step, for plain SGD.
#[test]
fn autograd_writes_into_the_flat_gradient_buffer() {
    tch::set_num_threads(1);
    tch::manual_seed(3);
    let x = Tensor::randn([16, 6], (Kind::Float, Device::Cpu));
    let y = Tensor::randn([16, 2], (Kind::Float, Device::Cpu));
    let vs = nn::VarStore::new(Device::Cpu);
    let lin = nn::linear(vs.root() / "fc", 6, 2, Default::default());
    let w0 = lin.ws.detach().copy();
    let b0 = lin.bs.as_ref().expect("bias").detach().copy();
    let mut opt = HdOptimizer::new(&vs, Config::sgd(0.1)).expect("optimizer");
    // Reference: plain tensors, gradients by autograd, update by hand.
    let mut w = w0.set_requires_grad(true);
    let mut b = b0.set_requires_grad(true);
    for _ in 0..5 {
        let loss = (x.apply(&lin) - &y).square().mean(Kind::Float);
        opt.backward_step(&loss).expect("step");
        let ref_loss = (x.matmul(&w.tr()) + &b - &y).square().mean(Kind::Float);
        w.zero_grad();
        b.zero_grad();
        ref_loss.backward();
        tch::no_grad(|| {
            w -= w.grad() * 0.1;
            b -= b.grad() * 0.1;
        });
        let diff = (&lin.ws - &w).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "weights differ by {diff}");
    }
}

/// The α the runner logs: the one α, or the mean over tensors or parameters.
#[test]
fn reported_alpha_is_the_mean_over_the_scope() {
    tch::set_num_threads(1);
    let per_tensor = with(Config::sgd(0.05).with_hd(1e-4), |h| {
        h.scope = Scope::PerTensor
    });
    let native = run_native(per_tensor, usize::MAX);
    let core = run_core("per tensor", per_tensor);
    let last = core.alphas.last().expect("steps");
    let mean = last.iter().sum::<f32>() / last.len() as f32;
    let vs = nn::VarStore::new(Device::Cpu);
    model_vars(&vs);
    // A fresh optimizer reports α0 in every scope.
    for scope in Scope::ALL {
        let c = with(Config::sgd(0.05).with_hd(1e-4), |h| h.scope = scope);
        let opt = HdOptimizer::new(&vs, c).expect("optimizer");
        assert_eq!(opt.alpha_value().expect("alpha"), 0.05, "{scope:?}");
    }
    let native_last = native.alphas.last().expect("steps");
    let native_mean = native_last.iter().sum::<f32>() / native_last.len() as f32;
    assert!((mean - native_mean).abs() <= TOL * mean.abs());
    // Per-parameter: the mean of the per-parameter α buffer, padding excluded.
    let per_parameter = with(Config::sgd(0.05).with_hd(1e-4), |h| {
        h.scope = Scope::PerParameter
    });
    let core = run_core("per parameter", per_parameter)
        .alpha_buffer
        .concat();
    let expected = core.iter().sum::<f32>() / core.len() as f32;
    let vs = nn::VarStore::new(Device::Cpu);
    let vars = model_vars(&vs);
    let mut opt = HdOptimizer::new(&vs, per_parameter).expect("optimizer");
    for step in 0..STEPS {
        feed_gradients(&vars, step);
        opt.step().expect("step");
    }
    let got = opt.alpha_value().expect("alpha");
    assert!(
        (got - expected).abs() <= 1e-5 * expected.abs(),
        "{got} vs {expected}"
    );
    assert!(
        (expected - 0.05).abs() > 1e-4,
        "per-parameter α never moved"
    );
}

/// Saved state restores exactly, and state saved by a different optimizer is refused.
#[test]
fn state_round_trips_and_mismatches_are_refused() {
    tch::set_num_threads(1);
    let config = Config::adam(0.01).with_hd(1e-4);
    let make = |c: Config| {
        let vs = nn::VarStore::new(Device::Cpu);
        let vars = model_vars(&vs);
        let opt = HdOptimizer::new(&vs, c).expect("optimizer");
        (vs, vars, opt)
    };
    let (_vs, vars, mut opt) = make(config);
    for step in 0..10 {
        feed_gradients(&vars, step);
        opt.step().expect("step");
    }
    let saved: std::collections::HashMap<String, Tensor> =
        opt.state_tensors().expect("state").into_iter().collect();
    let (_vs2, _vars2, mut restored) = make(config);
    restored.load_state(&saved).expect("loads");
    assert_eq!(restored.steps(), 10);
    assert_eq!(
        restored.alpha_value().expect("alpha"),
        opt.alpha_value().expect("alpha")
    );
    let again: std::collections::HashMap<String, Tensor> = restored
        .state_tensors()
        .expect("state")
        .into_iter()
        .collect();
    for (name, t) in &saved {
        assert!(t.equal(&again[name]), "{name} differs after a round trip");
    }
    let (_vs3, _vars3, mut other) = make(Config::adam(0.01).with_hd(2e-4));
    let err = other.load_state(&saved).expect_err("different β");
    assert!(err.to_string().contains("does not match"), "{err}");
    let missing: std::collections::HashMap<String, Tensor> = saved
        .iter()
        .filter(|(n, _)| *n != "buffers")
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    let (_vs4, _vars4, mut fresh) = make(config);
    let err = fresh.load_state(&missing).expect_err("no buffers");
    assert!(err.to_string().contains("no 'buffers' tensor"), "{err}");
    assert_eq!(fresh.steps(), 0, "a failed load changed the optimizer");
}

/// Frozen variables (no gradient) are accepted and never move.
#[test]
fn frozen_variables_stay_put() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let lin = nn::linear(vs.root() / "fc", 4, 3, Default::default());
    vs.freeze();
    let before = lin.ws.detach().copy();
    let mut opt = HdOptimizer::new(&vs, Config::sgd(0.1).with_hd(0.01)).expect("optimizer");
    for _ in 0..3 {
        opt.step().expect("step");
    }
    assert!(lin.ws.equal(&before));
    assert_eq!(opt.alpha_value().expect("alpha"), 0.1);
}

/// On the CPU the optimizer keeps the libtorch path whatever is asked, and says so; its step
/// is unchanged (the same trajectory as hd-core, checked above).
#[test]
fn cpu_optimizers_stay_on_libtorch() {
    let vs = nn::VarStore::new(Device::Cpu);
    let _w = vs.root().zeros("w", &[3]);
    let mut opt = HdOptimizer::new(&vs, Config::sgd(0.1).with_hd(0.01)).expect("opt");
    assert_eq!(opt.backend(), Backend::Libtorch);
    assert_eq!(opt.set_backend(Backend::FusedCuda), Backend::Libtorch);
    assert_eq!(opt.fused_unavailable(), None);
    assert_eq!(Backend::FusedCuda.to_string(), "fused");
}
