//! The table-driven suite (DESIGN §4): every rule and variant through the same checks.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use hd_core::{Config, Error, Optimizer};

#[test]
fn every_rule_reduces_an_ill_conditioned_quadratic() {
    for (name, config) in all_configs() {
        let mut run = Run::new(config, theta0());
        let f0 = quadratic(&run.theta);
        run.steps(300, quadratic_grad);
        let f = quadratic(&run.theta);
        assert!(f < 1e-2 * f0, "{name}: f went from {f0} to {f}");
    }
}

#[test]
fn every_rule_reduces_rosenbrock() {
    for (name, config) in all_configs() {
        // Rosenbrock's gradients are ~100× those of the quadratic and its curvature reaches
        // ~1000 in the valley, so the SGD family needs α ≲ 2e-3: α_0 and α_∞ are scaled down,
        // β (which has units of α/g²) by 1e-4, β′ by 0.1, stacked HD's κ (units of β/(g·d)²)
        // by 1e-8, and α is clamped to ±2e-3 (the opt-in safeguard) so the multiplicative
        // rule cannot leave the stable range. Adam's d is scale-free, so its g·d grows as g:
        // its κ is scaled by 1e-4, the rest of its configuration kept.
        let config = match config.base {
            hd_core::Base::Sgd(_) => Config {
                alpha0: config.alpha0 * 0.05,
                hyper: config.hyper.map(|h| hd_core::Hyper {
                    beta: match h.rule {
                        hd_core::HyperRule::Additive => h.beta * 1e-4,
                        hd_core::HyperRule::Multiplicative => h.beta * 0.1,
                    },
                    transition: h.transition.map(|t| hd_core::Transition {
                        alpha_inf: t.alpha_inf * 0.01,
                        ..t
                    }),
                    clamp: Some(h.clamp.unwrap_or((-2e-3, 2e-3))),
                    kappa: h.kappa * 1e-8,
                    ..h
                }),
                ..config
            },
            hd_core::Base::Adam(_) => Config {
                hyper: config.hyper.map(|h| hd_core::Hyper {
                    kappa: h.kappa * 1e-4,
                    ..h
                }),
                ..config
            },
        };
        let start = vec![-1.2f32, 1.0, -1.2, 1.0, 0.0, 0.0];
        let mut run = Run::new(config, start);
        let f0 = rosenbrock(&run.theta);
        run.steps(2000, rosenbrock_grad);
        let f = rosenbrock(&run.theta);
        assert!(
            f.is_finite() && f < 0.1 * f0,
            "{name}: f went from {f0} to {f}"
        );
    }
}

#[test]
fn beta_zero_reproduces_the_base_rule_bit_for_bit() {
    for (bname, base) in bases() {
        for (hname, hyper) in hypers(0.0, 0.0) {
            if hyper.transition.is_some() {
                continue; // the transition changes the schedule by design, whatever β
            }
            let hyper = hd_core::Hyper {
                beta: 0.0,
                clamp: hyper.clamp.map(|_| (-1.0, 1.0)),
                ..hyper
            };
            let mut a = Run::new(base, theta0());
            let mut b = Run::new(
                Config {
                    hyper: Some(hyper),
                    ..base
                },
                theta0(),
            );
            a.steps(100, quadratic_grad);
            b.steps(100, quadratic_grad);
            assert_eq!(
                bits(&a.theta),
                bits(&b.theta),
                "{bname}-{hname} with beta 0"
            );
            assert_eq!(a.state.alpha.to_bits(), b.state.alpha.to_bits());
        }
    }
}

#[test]
fn every_rule_is_deterministic() {
    for (name, config) in all_configs() {
        let mut a = Run::new(config, theta0());
        let mut b = Run::new(config, theta0());
        a.steps(50, quadratic_grad);
        b.steps(50, quadratic_grad);
        assert_eq!(bits(&a.theta), bits(&b.theta), "{name}");
        assert_eq!(bits(&a.buffers), bits(&b.buffers), "{name}");
        assert_eq!(a.state, b.state, "{name}");
    }
}

/// The fused f32 implementation follows the independent f64 reference of DESIGN §2 for 100
/// steps. The tolerance covers f32 rounding only; any slip in the equations (bias correction,
/// α used before or after its update, Nesterov's form) is orders of magnitude larger.
#[test]
fn every_rule_matches_the_f64_reference_equations() {
    for (name, config) in all_configs() {
        let mut run = Run::new(config, theta0());
        let reference = reference(&config, &theta0(), 100, quadratic_grad);
        for (t, (theta_ref, alpha_ref)) in reference.iter().enumerate() {
            run.steps(1, quadratic_grad);
            for (i, (x, r)) in run.theta.iter().zip(theta_ref).enumerate() {
                let err = (f64::from(*x) - r).abs();
                assert!(
                    err <= 1e-4 * r.abs().max(1e-2),
                    "{name} step {} θ[{i}]: {x} vs {r}",
                    t + 1
                );
            }
            if config
                .hyper
                .is_some_and(|h| h.scope != hd_core::Scope::PerParameter)
            {
                let err = (f64::from(run.state.alpha) - alpha_ref[0]).abs();
                assert!(
                    err <= 1e-5 * alpha_ref[0].abs().max(1e-3),
                    "{name} step {} α: {} vs {}",
                    t + 1,
                    run.state.alpha,
                    alpha_ref[0]
                );
            }
        }
    }
}

/// The Adam family, whose bias corrections are computed in f32 (no f64 anywhere), against the
/// f64 reference over 200 steps with tighter bounds than above. Measured with the f64 bias
/// corrections and with the f32 ones alike: α within 3.5e-7 (HD) and 2.5e-6 (HDM, whose cos
/// adds rounding), θ within 1.6e-5 of max(|θ_ref|, 0.01).
#[test]
fn the_adam_family_tracks_the_f64_reference_closely() {
    for (name, config) in all_configs() {
        if !matches!(config.base, hd_core::Base::Adam(_)) {
            continue;
        }
        let mut run = Run::new(config, theta0());
        let reference = reference(&config, &theta0(), 200, quadratic_grad);
        let hdm = config
            .hyper
            .is_some_and(|h| h.rule == hd_core::HyperRule::Multiplicative);
        let alpha_tol = if hdm { 3e-6 } else { 5e-7 };
        for (t, (theta_ref, alpha_ref)) in reference.iter().enumerate() {
            run.steps(1, quadratic_grad);
            for (x, r) in run.theta.iter().zip(theta_ref) {
                let err = (f64::from(*x) - r).abs() / r.abs().max(1e-2);
                assert!(err <= 2e-5, "{name} step {}: θ {x} vs {r}", t + 1);
            }
            if config
                .hyper
                .is_some_and(|h| h.scope != hd_core::Scope::PerParameter)
            {
                let err = ((f64::from(run.state.alpha) - alpha_ref[0]) / alpha_ref[0]).abs();
                assert!(err <= alpha_tol, "{name} step {}: α off by {err:e}", t + 1);
            }
        }
    }
}

/// Snapshot of everything a step may touch.
fn snapshot(run: &Run) -> (Vec<u32>, Vec<u32>, hd_core::State) {
    (bits(&run.theta), bits(&run.buffers), run.state)
}

#[test]
fn every_rule_rejects_non_finite_gradients_and_changes_nothing() {
    for (name, config) in all_configs() {
        let mut run = Run::new(config, theta0());
        run.steps(5, quadratic_grad); // mid-run: buffers and α are non-trivial
        let before = snapshot(&run);
        for (pos, bad) in [
            (0, f32::NAN),
            (12, f32::INFINITY),
            (7, f32::NEG_INFINITY),
            (3, f32::NAN),
        ] {
            let mut g = vec![0.0; N];
            quadratic_grad(&run.theta, &mut g);
            g[pos] = bad;
            let r = run
                .opt
                .step(&mut run.state, &mut run.theta, &g, &mut run.buffers);
            assert_eq!(r, Err(Error::NonFinite), "{name} with {bad} at {pos}");
            assert_eq!(snapshot(&run), before, "{name}: state changed on error");
        }
    }
}

#[test]
fn every_rule_rejects_mismatched_lengths_and_changes_nothing() {
    for (name, config) in all_configs() {
        let mut run = Run::new(config, theta0());
        run.steps(3, quadratic_grad);
        let before = snapshot(&run);
        let mut g = vec![0.0; N];
        quadratic_grad(&run.theta, &mut g);
        let short = &g[..N - 1];
        assert!(
            matches!(
                run.opt.step(&mut run.state, &mut run.theta, short, &mut run.buffers),
                Err(Error::LengthMismatch { name: "grads", expected: N, found }) if found == N - 1
            ),
            "{name}"
        );
        let mut longer = run.buffers.clone();
        longer.push(0.0);
        assert!(
            matches!(
                run.opt
                    .step(&mut run.state, &mut run.theta, &g, &mut longer),
                Err(Error::LengthMismatch {
                    name: "buffers",
                    ..
                })
            ),
            "{name}"
        );
        assert_eq!(snapshot(&run), before, "{name}");
    }
}

#[test]
fn invalid_hyperparameters_are_rejected_by_name() {
    let adam = |f: fn(&mut hd_core::Adam)| {
        let mut a = hd_core::Adam::default();
        f(&mut a);
        Config {
            base: hd_core::Base::Adam(a),
            ..Config::adam(0.001)
        }
    };
    let hyper = |f: fn(&mut hd_core::Hyper)| {
        let mut h = hd_core::Hyper::additive(0.001);
        f(&mut h);
        Config {
            hyper: Some(h),
            ..Config::sgd(0.001)
        }
    };
    let cases: Vec<(Config, &str)> = vec![
        (Config::sgd(f32::NAN), "alpha0"),
        (Config::sgd(f32::INFINITY), "alpha0"),
        (Config::sgd(0.1).with_hd(-1e-3), "beta"),
        (Config::sgd(0.1).with_hd(f32::NAN), "beta"),
        (Config::sgd(0.1).with_hdm(f32::INFINITY), "beta"),
        (Config::sgdn(0.1, 1.0), "mu"),
        (Config::sgdn(0.1, -0.1), "mu"),
        (Config::sgdn(0.1, f32::NAN), "mu"),
        (Config::sgd(0.1).with_weight_decay(-1e-4), "weight_decay"),
        (adam(|a| a.beta1 = 1.0), "beta1"),
        (adam(|a| a.beta1 = -0.5), "beta1"),
        (adam(|a| a.beta2 = 1.5), "beta2"),
        (adam(|a| a.eps = 0.0), "eps"),
        (adam(|a| a.eps = f32::NAN), "eps"),
        (hyper(|h| h.clamp = Some((1.0, 0.5))), "clamp"),
        (hyper(|h| h.clamp = Some((f32::NAN, 0.5))), "clamp"),
        (
            hyper(|h| {
                h.transition = Some(hd_core::Transition {
                    power: 1.0,
                    alpha_inf: 0.01,
                })
            }),
            "p",
        ),
        (
            hyper(|h| {
                h.transition = Some(hd_core::Transition {
                    power: 2.0,
                    alpha_inf: f32::NAN,
                })
            }),
            "alpha_inf",
        ),
        (
            hyper(|h| {
                h.rule = hd_core::HyperRule::Multiplicative;
                h.scope = hd_core::Scope::PerParameter;
            }),
            "scope",
        ),
    ];
    for (config, expected) in cases {
        match Optimizer::new(config) {
            Err(Error::InvalidHyperparameter { name, .. }) => {
                assert_eq!(name, expected, "{config:?}")
            }
            other => panic!("{config:?}: expected {expected} to be rejected, got {other:?}"),
        }
    }
}

#[test]
fn errors_read_as_sentences() {
    let e = Optimizer::new(Config::sgd(0.1).with_hd(-1.0)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid hyperparameter beta: must be finite and >= 0"
    );
    let e = Error::LengthMismatch {
        name: "grads",
        expected: 3,
        found: 2,
    };
    assert_eq!(e.to_string(), "grads has length 2, expected 3");
}

#[test]
fn variants_parse_their_ids_and_configure_as_named() {
    use hd_core::{Base, HyperRule, Variant};
    for v in Variant::ALL {
        assert_eq!(v.id().parse::<Variant>(), Ok(v));
        let c = v.config(0.001, 0.25, 0.9);
        Optimizer::new(c).unwrap();
        let (base, rule) = (v.base(), v.rule());
        match (base, c.base) {
            (Variant::Sgd, Base::Sgd(s)) => assert_eq!(s.momentum, 0.0),
            (Variant::Sgdn, Base::Sgd(s)) => assert!(s.nesterov && s.momentum == 0.9),
            (Variant::Adam, Base::Adam(a)) => assert_eq!(a, hd_core::Adam::default()),
            other => panic!("{v}: base {other:?}"),
        }
        assert_eq!(c.hyper.map(|h| h.rule), rule, "{v}");
        assert_eq!(c.hyper.map(|h| h.beta), rule.map(|_| 0.25), "{v}");
        // The label is the id in the paper's capitals.
        assert_eq!(v.label().to_lowercase(), v.id(), "{v}");
    }
    assert_eq!(Variant::AdamHdm.rule(), Some(HyperRule::Multiplicative));
    assert_eq!("sgd_hd".parse::<Variant>(), Err(Error::UnknownOptimizer));
    // The error lists exactly the ids, in order, so it cannot go stale.
    let ids: Vec<&str> = Variant::ALL.iter().map(|v| v.id()).collect();
    assert!(Error::UnknownOptimizer
        .to_string()
        .ends_with(&ids.join(", ")));
}

/// DESIGN §7's table, typed in from the document.
#[test]
fn the_cost_model_is_design_section_7() {
    use hd_core::Variant::*;
    let table = [
        (Sgd, 12),
        (SgdHd, 24),
        (SgdHdm, 24),
        (Sgdn, 20),
        (SgdnHd, 32),
        (SgdnHdm, 32),
        (Adam, 28),
        (AdamHd, 40),
        (AdamHdm, 40),
    ];
    for (v, bytes) in table {
        assert_eq!(v.model_bytes_per_parameter(), bytes, "{v}");
    }
    use hd_core::{Prodigy, ProdigyConfig, ScheduleFree, ScheduleFreeConfig};
    let p = ProdigyConfig::DEFAULT;
    let coupled = ProdigyConfig {
        weight_decay: 0.1,
        decouple: false,
        ..p
    };
    for (c, bytes) in [(p, 52), (coupled, 52)] {
        let opt = Prodigy::new(c).unwrap();
        assert_eq!(opt.model_bytes_per_parameter(), bytes, "{c:?}");
    }
    let (sgd, adamw) = (ScheduleFreeConfig::sgd(0.1), ScheduleFreeConfig::adamw(0.1));
    let decayed = |c| ScheduleFreeConfig {
        weight_decay: 0.1,
        ..c
    };
    for (c, bytes) in [
        (sgd, 24),
        (decayed(sgd), 28),
        (adamw, 32),
        (decayed(adamw), 32),
    ] {
        let opt = ScheduleFree::new(c).unwrap();
        assert_eq!(opt.model_bytes_per_parameter(), bytes, "{c:?}");
    }
}

#[test]
fn init_buffers_sets_alpha0_in_the_alpha_slot_and_refuses_partial_slots() {
    let per_parameter = Config {
        hyper: Some(hd_core::Hyper {
            scope: hd_core::Scope::PerParameter,
            ..hd_core::Hyper::additive(1e-3)
        }),
        ..Config::adam(0.5)
    };
    let opt = Optimizer::new(per_parameter).unwrap();
    assert_eq!(opt.alpha_slot(), Some(2)); // m, v, then α
    let mut b = [7.0f32; 6]; // two parameters
    opt.init_buffers(&mut b).unwrap();
    assert_eq!(b, [0.0, 0.0, 0.0, 0.0, 0.5, 0.5]);
    let mut odd = [7.0f32; 7];
    assert_eq!(
        opt.init_buffers(&mut odd),
        Err(Error::LengthMismatch {
            name: "buffers",
            expected: 6,
            found: 7
        })
    );
    assert_eq!(odd, [7.0; 7]);
    // Plain SGD keeps no buffers at all.
    let sgd = Optimizer::new(Config::sgd(0.1)).unwrap();
    assert_eq!(sgd.alpha_slot(), None);
    assert_eq!(
        sgd.init_buffers(&mut [0.0; 3]),
        Err(Error::LengthMismatch {
            name: "buffers",
            expected: 0,
            found: 3
        })
    );
}
