//! The configuration's tests: presets, explicit options, resuming, both stored layouts.

use super::*;
use hd_core::{Base, Scope, Sgd, Transition};

impl RunConfig {
    /// The run's settings as options would give them.
    fn hyper(&self) -> Hyperparameters {
        Hyperparameters::of(&self.core)
    }
}

fn given(model: Model, optimizer: Variant) -> Options {
    Options {
        model: Some(model),
        dataset: Some(DatasetKind::Mnist),
        optimizer: Some(optimizer),
        ..Options::default()
    }
}

/// `--model logreg --optimizer sgdn-hdm --scope per-tensor --clamp 0,0.1 --transition 2,0.01`:
/// every option of the hypergradient at once.
fn sgdn_hdm_with_every_option() -> Options {
    Options {
        scope: Some(ScopeArg::PerTensor),
        clamp: Some((0.0, 0.1)),
        transition: Some((2.0, 0.01)),
        ..given(Model::Logreg, Variant::SgdnHdm)
    }
}

/// The paper's settings (DESIGN §2): α0 = 0.001, batch 128, μ = 0.9, L2 1e-4 on LogReg and
/// MLP, β = 0.001 for SGD-HD/SGDN-HD, 1e-7 for Adam-HD on LogReg/MLP and 1e-8 on VGG,
/// Adam's 1/√t on LogReg only, 20/100/200 epochs.
#[test]
fn preset_paper_fills_the_papers_settings() {
    let paper = |m: Model, o: Variant| {
        Options {
            paper: true,
            ..given(m, o)
        }
        .resolve()
        .expect("valid")
    };
    let c = paper(Model::Logreg, Variant::AdamHd);
    assert_eq!(
        (c.hyper().alpha0, c.hyper().beta, c.hyper().weight_decay),
        (1e-3, 1e-7, 1e-4)
    );
    // The paper decays plain Adam's step on LogReg, not Adam-HD's (the reference code's
    // Adam-HD has no decay).
    assert!(!c.hyper().adam_sqrt_decay);
    assert!(paper(Model::Logreg, Variant::Adam).hyper().adam_sqrt_decay);
    assert!(
        !paper(Model::Logreg, Variant::AdamHdm)
            .hyper()
            .adam_sqrt_decay
    );
    assert_eq!((c.epochs, c.batch_size), (20, 128));
    let c = paper(
        Model::Mlp {
            hidden: vec![1000, 1000],
        },
        Variant::SgdnHd,
    );
    assert_eq!(
        (
            c.hyper().beta,
            c.hyper().mu,
            c.hyper().weight_decay,
            c.epochs
        ),
        (1e-3, 0.9, 1e-4, 100)
    );
    let c = paper(
        Model::Mlp {
            hidden: vec![1000, 1000],
        },
        Variant::AdamHd,
    );
    assert!(!c.hyper().adam_sqrt_decay);
    let c = paper(Model::Vgg { batch_norm: true }, Variant::AdamHd);
    assert_eq!(
        (c.hyper().beta, c.hyper().weight_decay, c.epochs),
        (1e-8, 0.0, 200)
    );
    let c = paper(Model::Vgg { batch_norm: true }, Variant::SgdHdm);
    assert_eq!(c.hyper().beta, 0.02);
    // Without the preset: the common defaults, no L2, ten epochs.
    let c = given(Model::Logreg, Variant::AdamHd)
        .resolve()
        .expect("valid");
    assert_eq!(
        (c.hyper().beta, c.hyper().weight_decay, c.epochs),
        (1e-7, 0.0, 10)
    );
    assert!(!c.hyper().adam_sqrt_decay);
}

#[test]
fn explicit_options_override_the_preset() {
    let c = Options {
        paper: true,
        epochs: Some(3),
        weight_decay: Some(0.0),
        beta: Some(0.01),
        ..given(Model::Logreg, Variant::SgdHd)
    }
    .resolve()
    .expect("valid");
    assert_eq!(
        (c.epochs, c.hyper().weight_decay, c.hyper().beta),
        (3, 0.0, 0.01)
    );
}

#[test]
fn core_config_matches_the_run() {
    let c = sgdn_hdm_with_every_option()
        .resolve()
        .expect("valid")
        .core();
    assert_eq!(c.base, Base::Sgd(Sgd::nesterov(0.9)));
    let h = c.hyper.expect("hyper");
    assert_eq!(h.rule, HyperRule::Multiplicative);
    assert_eq!(
        (h.beta, h.scope, h.clamp),
        (0.02, Scope::PerTensor, Some((0.0, 0.1)))
    );
    assert_eq!(
        h.transition,
        Some(Transition {
            power: 2.0,
            alpha_inf: 0.01
        })
    );
    let base = given(Model::Logreg, Variant::Adam)
        .resolve()
        .expect("valid");
    assert_eq!(base.core().hyper, None);
}

#[test]
fn inapplicable_or_invalid_options_are_errors() {
    let err = |o: Options| o.resolve().expect_err("invalid");
    assert_eq!(
        err(Options {
            mu: Some(0.5),
            ..given(Model::Logreg, Variant::Adam)
        }),
        ConfigError::NotApplicable {
            option: "mu",
            optimizer: Variant::Adam
        }
    );
    assert!(matches!(
        err(Options {
            alpha0: Some(f32::NAN),
            ..given(Model::Logreg, Variant::Sgd)
        }),
        ConfigError::Invalid(_)
    ));
    assert!(matches!(
        err(Options {
            clamp: Some((1.0, 0.0)),
            ..given(Model::Logreg, Variant::SgdHd)
        }),
        ConfigError::Invalid(_)
    ));
    assert_eq!(
        err(Options {
            model: None,
            ..given(Model::Logreg, Variant::Sgd)
        }),
        ConfigError::Missing("model")
    );
}

#[test]
fn resuming_keeps_the_run_and_refuses_changes() {
    let saved = given(Model::Logreg, Variant::SgdHd)
        .resolve()
        .expect("valid");
    let more = Options {
        epochs: Some(30),
        ..Options::default()
    };
    assert_eq!(more.resume(&saved).expect("ok").epochs, 30);
    let changed = Options {
        beta: Some(0.5),
        ..Options::default()
    };
    assert!(matches!(
        changed.resume(&saved),
        Err(ConfigError::Differs { field: "beta", .. })
    ));
}

/// The flattened layout, as the writer before `core` wrote it (`summary.json`'s `config`
/// of `train --model logreg --optimizer sgdn-hdm --scope per-tensor --clamp 0,0.1
/// --transition 2,0.01 --epochs 1`), reads as the run those options resolve to; the
/// current layout is written with `core` and reads back the same.
#[test]
fn both_stored_layouts_read_and_the_current_one_is_written() {
    let options = Options {
        epochs: Some(1),
        ..sgdn_hdm_with_every_option()
    };
    let expected = options.resolve().expect("valid");
    let old: RunConfig =
        serde_json::from_str(include_str!("../../tests/fixtures/config-before-core.json"))
            .expect("the old layout reads");
    assert_eq!(old, expected);

    let json = serde_json::to_value(&expected).expect("writes");
    assert!(json.get("core").is_some(), "{json}");
    assert!(
        json.get("mu").is_none() && json.get("beta").is_none(),
        "{json}"
    );
    assert_eq!(json["core"]["base"]["sgd"]["momentum"], 0.9f32);
    assert_eq!(json["core"]["hyper"]["scope"], "per-tensor");
    let back: RunConfig = serde_json::from_value(json).expect("reads back");
    assert_eq!(back, expected);
}

/// A stored configuration whose hyperparameters belong to another optimizer is refused.
#[test]
fn hyperparameters_of_another_optimizer_are_refused() {
    let mut c = given(Model::Logreg, Variant::SgdHd)
        .resolve()
        .expect("valid");
    c.validate().expect("valid");
    c.core.hyper = None;
    assert_eq!(
        c.validate(),
        Err(ConfigError::NotTheOptimizers(Variant::SgdHd))
    );
    c.core = Config::adam(0.001).with_hd(1e-7);
    assert_eq!(
        c.validate(),
        Err(ConfigError::NotTheOptimizers(Variant::SgdHd))
    );
}
