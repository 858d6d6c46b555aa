//! The trainer's tests: learning on separable synthetic digits, side-by-side runs on the
//! same minibatches, divergence, the recorded hypergradient signal and the settings.

use super::*;
use crate::shape::INPUTS;
use hd_core::{Base, Sgd};

/// Synthetic "digits": class c lights pixels 20c..20c+20 (plus a little seeded noise),
/// so a linear model can separate them perfectly and training must drive accuracy to 1.
pub(super) fn separable(n: usize) -> Rc<Dataset> {
    let mut rng = SplitMix64::new(99);
    let mut pixels = vec![0; n * INPUTS];
    let mut labels = Vec::with_capacity(n);
    for (i, img) in pixels.chunks_exact_mut(INPUTS).enumerate() {
        let c = i % 10;
        labels.push(c as u8);
        for (j, p) in img.iter_mut().enumerate() {
            let noise = (rng.next_u64() % 26) as u8;
            *p = if j / 20 == c { 229 + noise } else { noise };
        }
    }
    Rc::new(Dataset::new(pixels, labels).unwrap())
}

pub(super) fn schedule(batch: usize, epochs: u32) -> Schedule {
    Schedule {
        batch,
        epochs,
        seed: 5,
    }
}

/// The paper's hyperparameters with grey levels in [0, 1].
pub(super) fn settings(schedule: Schedule) -> Settings {
    Settings {
        schedule,
        hyper: Hyperparameters::PAPER,
        inputs: Inputs::UNIT,
    }
}

/// A trainer on `n` separable digits that ran `runs` (optimizer, α0) to the end; run i is
/// `runs[i]`.
fn trained(n: usize, schedule: Schedule, runs: &[(Variant, f32)]) -> Trainer {
    let mut t = Trainer::new(separable(n), settings(schedule)).unwrap();
    for &(variant, alpha0) in runs {
        t.add_run(variant, alpha0).unwrap();
    }
    t.step(u32::MAX).unwrap();
    assert!(t.finished());
    t
}

#[test]
fn ids_round_trip_and_unknown_ids_are_rejected() {
    for variant in Variant::ALL {
        assert_eq!(parse_optimizer(variant.id()).unwrap(), variant);
    }
    let err = parse_optimizer("sgd-hdx").unwrap_err();
    assert!(err
        .to_string()
        .contains("unknown optimizer \"sgd-hdx\"; expected one of sgd,"));
}

#[test]
fn each_hd_variant_gets_its_own_beta() {
    // Distinct values, so a mix-up between β, β_Adam and β′ cannot pass.
    let h = Hyperparameters {
        beta: 0.1,
        beta_adam: 0.2,
        beta_mult: 0.3,
        mu: 0.5,
        l2: 0.25,
    };
    let want = [
        None,
        Some(0.1),
        Some(0.3),
        None,
        Some(0.1),
        Some(0.3),
        None,
        Some(0.2),
        Some(0.3),
    ];
    for (variant, beta) in Variant::ALL.into_iter().zip(want) {
        assert_eq!(beta_of(variant, &h), beta, "{variant}");
        let config = config_of(variant, 0.01, &h);
        assert_eq!(config.alpha0, 0.01);
        assert_eq!(config.weight_decay, 0.25);
        assert_eq!(config.hyper.map(|hy| hy.beta), beta, "{variant}");
        if variant.base() == Variant::Sgdn {
            assert_eq!(config.base, Base::Sgd(Sgd::nesterov(0.5)), "{variant}");
        }
    }
}

#[test]
fn every_optimizer_learns_a_separable_problem() {
    let mut t = Trainer::new(separable(200), settings(schedule(16, 10))).unwrap();
    for variant in Variant::ALL {
        let alpha0 = if matches!(variant, Variant::Adam | Variant::AdamHd | Variant::AdamHdm) {
            0.01
        } else {
            0.1
        };
        t.add_run(variant, alpha0).unwrap();
    }
    while !t.finished() {
        t.step(7).unwrap();
    }
    assert_eq!(t.epoch(), 10);
    assert_eq!(t.iteration(), 10 * 10); // 160 training images / 16
    for run in t.runs() {
        assert_eq!(run.status(), Status::Finished, "{}", run.method());
        let train = run.epoch_train_loss();
        assert_eq!(train.len(), 11);
        // Entry 0 is the zero model: ln 10 on any data.
        assert!((train[0] - 10f32.ln()).abs() < 1e-5);
        assert!(train[10] < 0.5 * train[0], "{}: {train:?}", run.method());
        assert_eq!(
            *run.epoch_test_accuracy().last().unwrap(),
            1.0,
            "{}",
            run.method()
        );
        assert_eq!(run.iteration_loss().len(), 100);
    }
}

#[test]
fn hd_moves_alpha_and_base_optimizers_keep_it() {
    let runs = [
        (Variant::Sgd, 0.01),
        (Variant::SgdHd, 0.01),
        (Variant::SgdHdm, 0.01),
    ];
    let t = trained(200, schedule(20, 2), &runs);
    let (sgd, sgd_hd, hdm) = (0, 1, 2);
    assert!(t
        .run(sgd)
        .unwrap()
        .iteration_alpha()
        .iter()
        .all(|&a| a == 0.01));
    // With a small α0 on a problem this easy successive gradients agree, g·d > 0, so HD
    // raises α (paper §4: α grows early in training).
    assert!(t.run(sgd_hd).unwrap().alpha() > 0.01);
    assert!(t.run(hdm).unwrap().alpha() > 0.01);
}

#[test]
fn runs_share_the_minibatch_order_and_are_deterministic() {
    // Two runs of the same optimizer added to one trainer must produce identical curves,
    // and a second trainer with the same seed must reproduce them bit for bit.
    let curves = |seed| {
        let mut t = Trainer::new(
            separable(100),
            settings(Schedule {
                batch: 8,
                epochs: 2,
                seed,
            }),
        )
        .unwrap();
        t.add_run(Variant::AdamHd, 0.01).unwrap();
        t.add_run(Variant::AdamHd, 0.01).unwrap();
        t.step(u32::MAX).unwrap();
        let a = t.runs()[0].iteration_loss().to_vec();
        assert_eq!(a, t.runs()[1].iteration_loss());
        a
    };
    assert_eq!(curves(1), curves(1));
    assert_ne!(curves(1), curves(2));
}

#[test]
fn huge_alpha_is_reported_as_diverged_not_as_an_error() {
    // α0 = 1e30: the first step makes logits around 1e30, so the second minibatch's loss
    // is far above DIVERGED_LOSS.
    let t = trained(
        100,
        schedule(10, 3),
        &[(Variant::SgdHd, 1e30), (Variant::Sgd, 0.1)],
    );
    let (bad, good) = (0, 1);
    let bad = t.run(bad).unwrap();
    assert!(matches!(bad.status(), Status::Diverged(i) if i >= 2));
    assert!(bad.iteration_loss().last().unwrap().is_nan());
    assert_eq!(
        bad.iteration_loss().len(),
        t.run(good).unwrap().iteration_loss().len()
    );
    assert_eq!(t.run(good).unwrap().status(), Status::Finished);
}

#[test]
fn rejects_bad_settings() {
    assert!(Trainer::new(separable(100), settings(schedule(0, 1))).is_err());
    assert!(Trainer::new(separable(100), settings(schedule(81, 1))).is_err());
    assert!(Trainer::new(separable(100), settings(schedule(80, 0))).is_err());
    let nan = Settings {
        hyper: Hyperparameters {
            mu: f32::NAN,
            ..Hyperparameters::PAPER
        },
        ..settings(schedule(8, 1))
    };
    assert!(Trainer::new(separable(100), nan).is_err());
    let flat = Settings {
        inputs: Inputs {
            mean: 0.0,
            std: 0.0,
        },
        ..settings(schedule(8, 1))
    };
    assert!(Trainer::new(separable(100), flat).is_err());
    let mut t = Trainer::new(separable(100), settings(schedule(8, 1))).unwrap();
    assert!(matches!(
        t.add_run(Variant::Sgd, f32::NAN),
        Err(Error::Optimizer(_))
    ));
    t.add_run(Variant::Sgd, 0.1).unwrap();
    t.step(1).unwrap();
    assert!(matches!(
        t.add_run(Variant::Sgd, 0.1),
        Err(Error::Settings(_))
    ));
    assert!(t.run(5).is_err());
}

#[test]
fn the_recorded_signal_is_what_moved_alpha() {
    // HD: α_t = α_{t−1} + β g_t·d_{t−1}, so (α_t − α_{t−1}) / β must equal the recorded g·d
    // (up to f32 rounding of the addition). HDM: α_t = α_{t−1}(1 + β′ cos), with |cos| ≤ 1.
    // The first step has d_0 = 0: signal 0 and α unchanged. A base optimizer has no signal.
    let runs = [
        (Variant::Sgd, 0.01),
        (Variant::SgdHd, 0.01),
        (Variant::AdamHdm, 0.01),
    ];
    let t = trained(200, schedule(20, 1), &runs);
    let (sgd, hd, hdm) = (0, 1, 2);
    assert!(t
        .run(sgd)
        .unwrap()
        .iteration_signal()
        .iter()
        .all(|s| s.is_nan()));
    let beta = Hyperparameters::PAPER.beta;
    let run = t.run(hd).unwrap();
    let (alpha, signal) = (run.iteration_alpha(), run.iteration_signal());
    assert_eq!((signal[0], alpha[0]), (0.0, 0.01));
    for i in 1..alpha.len() {
        let moved = (alpha[i] - alpha[i - 1]) / beta;
        let tolerance = 1e-6 * alpha[i].abs() / beta + 1e-6 * signal[i].abs();
        assert!(
            (moved - signal[i]).abs() <= tolerance,
            "{i}: {moved} vs {}",
            signal[i]
        );
    }
    assert!(signal[1..].iter().any(|&s| s != 0.0));
    let run = t.run(hdm).unwrap();
    let (alpha, cos) = (run.iteration_alpha(), run.iteration_signal());
    let beta_mult = Hyperparameters::PAPER.beta_mult;
    for i in 1..alpha.len() {
        assert!(cos[i].abs() <= 1.0 + 1e-6, "{}", cos[i]);
        let want = alpha[i - 1] * (1.0 + beta_mult * cos[i]);
        assert!((alpha[i] - want).abs() <= 1e-6 * want.abs(), "{i}");
    }
}

#[test]
fn standardised_inputs_change_training_but_not_the_zero_model() {
    let run = |inputs| {
        let s = Settings {
            inputs,
            ..settings(schedule(20, 1))
        };
        let mut t = Trainer::new(separable(100), s).unwrap();
        t.add_run(Variant::Sgd, 0.01).unwrap();
        t.step(u32::MAX).unwrap();
        t.runs()[0].iteration_loss().to_vec()
    };
    let (unit, standard) = (run(Inputs::UNIT), run(Inputs::STANDARDISED));
    // The zero model scores ln 10 whatever its inputs; the next steps see other inputs.
    assert_eq!(unit[0], standard[0]);
    assert_ne!(unit[1], standard[1]);
}

#[test]
fn settings_are_read_by_name_and_bad_fields_are_named() {
    let fields = |overrides: &[(&str, f64)], inputs: &str| {
        let mut all = vec![
            ("batch", 32.0),
            ("epochs", 3.0),
            ("seed", 9.0),
            ("beta", 0.1),
            ("beta_adam", 0.2),
            ("beta_mult", 0.3),
            ("mu", 0.4),
            ("l2", 0.5),
        ];
        all.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        all.extend_from_slice(overrides);
        let inputs = inputs.to_owned();
        Settings::from_fields(
            move |key| all.iter().find(|(k, _)| *k == key).map(|&(_, v)| v),
            move |key| (key == "inputs").then(|| inputs.clone()),
        )
    };
    let s = fields(&[], "standardised").unwrap();
    assert_eq!(
        s.schedule,
        Schedule {
            batch: 32,
            epochs: 3,
            seed: 9
        }
    );
    // Distinct values: three adjacent βs cannot be swapped unnoticed.
    assert_eq!(
        (s.hyper.beta, s.hyper.beta_adam, s.hyper.beta_mult),
        (0.1, 0.2, 0.3)
    );
    assert_eq!((s.hyper.mu, s.hyper.l2), (0.4, 0.5));
    assert_eq!(s.inputs, Inputs::STANDARDISED);
    assert_eq!(fields(&[], "unit").unwrap().inputs, Inputs::UNIT);
    let message = |r: Result<Settings, Error>| r.unwrap_err().to_string();
    assert!(message(fields(&[], "raw")).contains("settings.inputs"));
    assert!(message(fields(&[("batch", 2.5)], "unit")).contains("settings.batch"));
    assert!(message(fields(&[("seed", -1.0)], "unit")).contains("settings.seed"));
    let missing = Settings::from_fields(|_| None, |_| Some("unit".into()));
    assert!(message(missing).contains("settings.batch"));
}

#[test]
fn the_beta_sweep_scales_each_runs_own_beta() {
    let mut t = Trainer::new(separable(100), settings(schedule(10, 1))).unwrap();
    let hd = t.add_run_scaled(Variant::SgdHd, 0.01, 10.0).unwrap();
    let adam = t.add_run_scaled(Variant::AdamHd, 0.01, 0.1).unwrap();
    let base = t.add_run_scaled(Variant::Sgd, 0.01, 10.0).unwrap();
    // The paper's β = 1e-3 and β_Adam = 1e-7, scaled; a base optimizer has none.
    assert_eq!(t.run(hd).unwrap().beta(), Some(1e-3 * 10.0));
    assert_eq!(t.run(adam).unwrap().beta(), Some(1e-7 * 0.1));
    assert_eq!(t.run(base).unwrap().beta(), None);
    let unscaled = t.add_run(Variant::SgdHd, 0.01).unwrap();
    assert_eq!(t.run(unscaled).unwrap().beta(), Some(1e-3));
    assert!(matches!(
        t.add_run_scaled(Variant::SgdHd, 0.01, -1.0),
        Err(Error::Optimizer(_))
    ));
}

/// The page's preset, typed from DESIGN §2 (the paper's §4, logistic regression): α0 =
/// 0.001, β = 0.001 for SGD-HD and SGDN-HD, 1e-7 for Adam-HD, HDM's β′ = 0.02, μ = 0.9,
/// L2 1e-4, batch 128, as f32 (the page writes each f32's shortest decimal, which its unit
/// test checks is the paper's number).
#[test]
fn the_paper_preset_is_the_papers_logistic_regression() {
    assert_eq!(
        Hyperparameters::PAPER,
        Hyperparameters {
            beta: 1e-3,
            beta_adam: 1e-7,
            beta_mult: 0.02,
            mu: 0.9,
            l2: 1e-4
        }
    );
    assert_eq!(
        paper_preset(),
        [
            ("alpha0", f64::from(1e-3f32)),
            ("beta", f64::from(1e-3f32)),
            ("beta_adam", f64::from(1e-7f32)),
            ("beta_mult", f64::from(0.02f32)),
            ("mu", f64::from(0.9f32)),
            ("l2", f64::from(1e-4f32)),
            ("batch", 128.0),
        ]
    );
}
