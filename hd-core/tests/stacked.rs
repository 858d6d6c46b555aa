//! Stacked HD (DESIGN §2): β_t = β_{t−1} + κ h_t h_{t−1}, checked against finite differences
//! of the one-step loss, and its settings validated. (The f64 reference of `common` follows it
//! in `suite.rs`, through the "hd-stacked" rows of the table.)
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use hd_core::{Config, Error, Optimizer, Scope, State};

/// The three families the stacked rule is offered for, on the quadratic of `common`.
fn stacked_configs() -> Vec<(&'static str, Config)> {
    vec![
        ("sgd", Config::sgd(0.02).with_hd(1e-4).with_kappa(1e-10)),
        (
            "sgdn",
            Config::sgdn(0.01, 0.9).with_hd(1e-4).with_kappa(1e-10),
        ),
        ("adam", Config::adam(0.05).with_hd(1e-3).with_kappa(1e-8)),
    ]
}

/// f = ½ Σ k_i θ_i² in f64, from f32 parameters.
fn loss(theta: &[f32]) -> f64 {
    theta
        .iter()
        .enumerate()
        .map(|(i, &t)| 0.5 * f64::from(curvature(i)) * f64::from(t) * f64::from(t))
        .sum()
}

/// One step from (`state`, θ, buffers) on the quadratic; returns the new state and θ.
fn one_step(opt: &Optimizer, state: State, theta: &[f32], buffers: &[f32]) -> (State, Vec<f32>) {
    let (mut state, mut theta, mut buffers) = (state, theta.to_vec(), buffers.to_vec());
    let mut g = vec![0.0; theta.len()];
    quadratic_grad(&theta, &mut g);
    opt.step(&mut state, &mut theta, &g, &mut buffers).unwrap();
    (state, theta)
}

/// The one-step loss L(b) = f(θ_{t−1}) when step t−1 uses β_{t−1} = b: θ_{t−1} moves by
/// −(α_{t−2} − b h_{t−1}) d_{t−1}, so ∂L/∂β_{t−1} = ∇f(θ_{t−1})·d_{t−1} h_{t−1} = −h_t h_{t−1}
/// (DESIGN §2). d_{t−1} does not depend on b in any of the three families, so θ_{t−1} is affine
/// in b and L quadratic: the central difference is exact up to rounding, for any ε. The
/// implementation's step therefore has to satisfy
///   (β_t − β_{t−1}) / κ = h_t h_{t−1} = −∂L/∂β_{t−1}, and likewise
///   (α_t − α_{t−1}) / β_t = −h_t = −∂L/∂α_{t−1}.
#[test]
fn the_beta_and_alpha_steps_are_the_finite_difference_hypergradients() {
    let mut ratios_seen = 0;
    for (name, config) in stacked_configs() {
        let kappa = f64::from(config.hyper.unwrap().kappa);
        for before in [1usize, 2, 5, 20, 60] {
            let mut run = Run::new(config, theta0());
            run.steps(before, quadratic_grad);
            let (s, theta, buffers) = (run.state, run.theta.clone(), run.buffers.clone());
            // Steps t−1 and t as the rule takes them.
            let (s1, theta1) = one_step(&run.opt, s, &theta, &buffers);
            let mut b1 = buffers.clone();
            let mut th = theta.clone();
            let mut st = s;
            let mut g = vec![0.0; th.len()];
            quadratic_grad(&th, &mut g);
            run.opt.step(&mut st, &mut th, &g, &mut b1).unwrap();
            assert_eq!((st, &th), (s1, &theta1));
            let (s2, _) = one_step(&run.opt, s1, &theta1, &b1);

            // β_{t−1} shifted by ±ε: the state's β_{t−2} shifted by ε shifts it by ε exactly.
            let fd = |shift: &dyn Fn(State, f32) -> State, eps: f32| {
                let (_, plus) = one_step(&run.opt, shift(s, eps), &theta, &buffers);
                let (_, minus) = one_step(&run.opt, shift(s, -eps), &theta, &buffers);
                (loss(&plus) - loss(&minus)) / (2.0 * f64::from(eps))
            };
            // ε large enough that α_{t−1} moves by a tenth (L is quadratic in it, so a large
            // ε costs no accuracy and keeps θ's f32 rounding small beside the change).
            let eps_beta = 0.1 * (s.alpha / s1.previous_dot).abs();
            let d_beta = fd(
                &|s, e| State {
                    beta: s.beta + e,
                    ..s
                },
                eps_beta,
            );
            let d_alpha = fd(
                &|s, e| State {
                    alpha: s.alpha + e,
                    ..s
                },
                0.1 * s.alpha,
            );

            let beta_step = (f64::from(s2.beta) - f64::from(s1.beta)) / kappa;
            let hh = f64::from(s2.previous_dot) * f64::from(s1.previous_dot);
            let h_t = -f64::from(s2.previous_dot);
            let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * b.abs().max(1e-12);
            assert!(hh != 0.0, "{name} t={}: h_t h_(t-1) is 0", before + 2);
            assert!(
                close(-d_beta, hh, 2e-3),
                "{name} t={}: −∂L/∂β {} vs h_t h_(t−1) {hh}",
                before + 2,
                -d_beta
            );
            // β's step is κ times that product, in f32 as DESIGN §2 writes it. (κ h_t h_{t−1} can
            // be below β's last bit late in a run, so the ratio is checked only where it shows.)
            let k32 = config.hyper.unwrap().kappa;
            assert_eq!(s2.beta, s1.beta + k32 * (s2.previous_dot * s1.previous_dot));
            if (beta_step * kappa).abs() > 1e-4 * f64::from(s1.beta) {
                assert!(
                    close(beta_step, hh, 2e-3),
                    "{name} t={}: (β_t − β_(t−1))/κ {beta_step} vs {hh}",
                    before + 2
                );
                ratios_seen += 1;
            }
            assert!(
                close(d_alpha, h_t, 2e-3),
                "{name} t={}: ∂L/∂α {d_alpha} vs h_t {h_t}",
                before + 2
            );
        }
    }
    assert!(
        ratios_seen >= 3,
        "β's step showed in {ratios_seen} cases only"
    );
}

/// β really moves on the test problem (so the reference comparison of `suite.rs` tests the
/// stacked update, not HD with κ·0), and the first two steps, where h_1 = 0, are HD's exactly.
#[test]
fn beta_moves_and_the_first_two_steps_are_hd() {
    for (name, config) in stacked_configs() {
        let hd = Config {
            hyper: config.hyper.map(|h| hd_core::Hyper { kappa: 0.0, ..h }),
            ..config
        };
        let (mut a, mut b) = (Run::new(config, theta0()), Run::new(hd, theta0()));
        a.steps(2, quadratic_grad);
        b.steps(2, quadratic_grad);
        assert_eq!(bits(&a.theta), bits(&b.theta), "{name}");
        assert_eq!(a.state.alpha.to_bits(), b.state.alpha.to_bits(), "{name}");
        assert_eq!(a.state.beta, config.hyper.unwrap().beta, "{name}");
        a.steps(100, quadratic_grad);
        let beta0 = config.hyper.unwrap().beta;
        let moved = (a.state.beta / beta0 - 1.0).abs();
        assert!(moved > 0.01, "{name}: β moved by {moved} only");
    }
}

#[test]
fn kappa_is_validated() {
    let hd = Config::sgd(0.01).with_hd(1e-3);
    for kappa in [-1e-9, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            Optimizer::new(hd.with_kappa(kappa)),
            Err(Error::InvalidHyperparameter { name: "kappa", .. })
        ));
    }
    // β_t sits beside one α: not with HDM, not with an α per parameter.
    for config in [
        Config::sgd(0.01).with_hdm(0.02).with_kappa(1e-9),
        hd.with_scope(Scope::PerParameter).with_kappa(1e-9),
    ] {
        assert!(matches!(
            Optimizer::new(config),
            Err(Error::InvalidHyperparameter { name: "kappa", .. })
        ));
    }
    // The builders keep κ whatever their order.
    let a = Config::adam(1e-3).with_kappa(1e-9).with_hd(1e-7);
    assert_eq!(a, Config::adam(1e-3).with_hd(1e-7).with_kappa(1e-9));
    let opt = Optimizer::new(a).unwrap();
    assert_eq!(opt.init_state().beta, 1e-7);
    // Backends over tensors cannot carry β_t yet and are told so.
    assert!(matches!(
        opt.check_backend_phases(),
        Err(Error::InvalidHyperparameter { name: "kappa", .. })
    ));
    assert_eq!(Optimizer::new(hd).unwrap().check_backend_phases(), Ok(()));
}

/// A β_t that overflows is refused before anything is written, like an α that would.
#[test]
fn an_overflowing_beta_is_refused_untouched() {
    let opt = Optimizer::new(Config::sgd(1e-3).with_hd(1e-3).with_kappa(1e30)).unwrap();
    let mut state = opt.init_state();
    let mut theta = [1e4f32, -1e4];
    let mut buffers = [0.0f32; 2];
    for _ in 0..2 {
        let g = theta;
        opt.step(&mut state, &mut theta, &g, &mut buffers).unwrap();
    }
    let before = (state, theta, buffers);
    let g = theta;
    assert_eq!(
        opt.step(&mut state, &mut theta, &g, &mut buffers),
        Err(Error::NonFinite)
    );
    assert_eq!((state, theta, buffers), before);
}
