//! What a [`Trainer`](super::Trainer) is set up from: the optimizer ids, the hyperparameters
//! shared by every run (and the paper's), the minibatch schedule and the settings object a front
//! end passes, read by name.

use hd_core::{paper, Config, Family, HyperRule, Variant};

use crate::data::Inputs;
use crate::Error;

/// The optimizer with id `id` (`sgd`, `sgd-hd`, …, `adam-hdm`: hd-core's [`Variant`] list).
///
/// # Errors
/// [`Error::Settings`] naming the unknown id.
pub fn parse_optimizer(id: &str) -> Result<Variant, Error> {
    id.parse().map_err(|_| {
        let ids: Vec<&str> = Variant::ALL.iter().map(|v| v.id()).collect();
        Error::Settings(format!(
            "unknown optimizer {id:?}; expected one of {}",
            ids.join(", ")
        ))
    })
}

/// Which β `variant` uses with these hyperparameters: β for SGD-HD and SGDN-HD, β_Adam for
/// Adam-HD, β′ for the HDM variants, none for a base optimizer.
pub fn beta_of(variant: Variant, h: &Hyperparameters) -> Option<f32> {
    match (variant.rule(), variant.family()) {
        (None, _) => None,
        (Some(HyperRule::Multiplicative), _) => Some(h.beta_mult),
        (Some(HyperRule::Additive), Family::Sgd | Family::Sgdn) => Some(h.beta),
        (Some(HyperRule::Additive), Family::Adam) => Some(h.beta_adam),
    }
}

/// hd-core's configuration of `variant` from α0 with these hyperparameters and coupled L2.
/// Adam uses the usual (β1, β2, ε) = (0.9, 0.999, 1e-8) without the paper's optional 1/√t
/// decay, so the α on screen is the step size Adam really takes.
pub fn config_of(variant: Variant, alpha0: f32, h: &Hyperparameters) -> Config {
    config_with(variant, alpha0, beta_of(variant, h), h)
}

/// As [`config_of`] with this β (β′ for HDM; `None` for a base optimizer).
pub(super) fn config_with(
    variant: Variant,
    alpha0: f32,
    beta: Option<f32>,
    h: &Hyperparameters,
) -> Config {
    variant
        .config(alpha0, beta.unwrap_or(0.0), h.mu)
        .with_weight_decay(h.l2)
}

/// Hyperparameters shared by every run of a trainer (α0 is per run, for the α0 sweep).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyperparameters {
    /// β of additive HD for SGD-HD and SGDN-HD (paper: 0.001).
    pub beta: f32,
    /// β of additive HD for Adam-HD (paper: 1e-7).
    pub beta_adam: f32,
    /// β′ of multiplicative HDM (paper's α0 study: 0.02).
    pub beta_mult: f32,
    /// Nesterov momentum μ of the SGDN family (paper: 0.9).
    pub mu: f32,
    /// Coupled L2 weight decay λ (paper: 1e-4; 0 turns it off).
    pub l2: f32,
}

impl Hyperparameters {
    /// The paper's logistic-regression settings, from hd-core's [`paper`] module.
    pub const PAPER: Hyperparameters = Hyperparameters {
        beta: paper::beta(Variant::SgdHd, paper::ModelKind::LogReg),
        beta_adam: paper::beta(Variant::AdamHd, paper::ModelKind::LogReg),
        beta_mult: paper::beta(Variant::SgdHdm, paper::ModelKind::LogReg),
        mu: paper::MU,
        l2: paper::weight_decay(paper::ModelKind::LogReg),
    };
}

/// The page's "Paper settings" preset, as (settings field, value) pairs in the page's units:
/// the paper's logistic-regression settings ([`Hyperparameters::PAPER`], α0 and batch from
/// hd-core's [`paper`] module), each f32 widened exactly to f64 (1e-7 arrives as
/// 1.0000000116860974e-7). The page writes each as the shortest decimal that reads back as the
/// same f32 (`f32Decimal` in www/src/params.js), so it shows and parses the number written in the
/// paper. Not formatted and parsed here: Rust's float formatting and parsing would add a third
/// to the wasm module's size. The page's `inputs` choice is `"standardised"`, the paper's,
/// besides these.
pub fn paper_preset() -> [(&'static str, f64); 7] {
    let h = Hyperparameters::PAPER;
    [
        ("alpha0", f64::from(paper::ALPHA0)),
        ("beta", f64::from(h.beta)),
        ("beta_adam", f64::from(h.beta_adam)),
        ("beta_mult", f64::from(h.beta_mult)),
        ("mu", f64::from(h.mu)),
        ("l2", f64::from(h.l2)),
        ("batch", f64::from(paper::BATCH_SIZE)),
    ]
}

/// Everything a [`Trainer`](super::Trainer) needs besides the data: one value, so that a front end passes one
/// settings object rather than a row of numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Minibatch size, epochs and seed.
    pub schedule: Schedule,
    /// β, β_Adam, β′, μ and L2, shared by every run.
    pub hyper: Hyperparameters,
    /// How grey levels become model inputs.
    pub inputs: Inputs,
}

impl Settings {
    /// The settings from named fields, as the page's settings object holds them: `batch`,
    /// `epochs`, `seed` (whole numbers), `beta`, `beta_adam`, `beta_mult`, `mu`, `l2` (numbers)
    /// and `inputs` (`"standardised"` or `"unit"`). `number` and `text` read one field each.
    ///
    /// # Errors
    /// [`Error::Settings`] naming the first field that is missing, of the wrong type or out of
    /// range for its integer type.
    pub fn from_fields(
        number: impl Fn(&str) -> Option<f64>,
        text: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, Error> {
        let real = |key: &str| {
            number(key)
                .map(|v| v as f32)
                .ok_or_else(|| Error::Settings(format!("settings.{key} must be a number")))
        };
        let whole = |key: &str, max: f64| {
            number(key)
                .filter(|v| v.fract() == 0.0 && (0.0..=max).contains(v))
                .ok_or_else(|| {
                    Error::Settings(format!("settings.{key} must be a whole number from 0"))
                })
        };
        let schedule = Schedule {
            batch: whole("batch", f64::from(u32::MAX))? as usize,
            epochs: whole("epochs", f64::from(u32::MAX))? as u32,
            seed: whole("seed", f64::from(u32::MAX))? as u64,
        };
        let hyper = Hyperparameters {
            beta: real("beta")?,
            beta_adam: real("beta_adam")?,
            beta_mult: real("beta_mult")?,
            mu: real("mu")?,
            l2: real("l2")?,
        };
        let inputs = match text("inputs").as_deref() {
            Some("standardised") => Inputs::STANDARDISED,
            Some("unit") => Inputs::UNIT,
            _ => {
                return Err(Error::Settings(
                    "settings.inputs must be \"standardised\" or \"unit\"".into(),
                ))
            }
        };
        Ok(Settings {
            schedule,
            hyper,
            inputs,
        })
    }
}

/// How the minibatches are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Images per minibatch (the last one of an epoch may be smaller).
    pub batch: usize,
    /// Passes over the training set.
    pub epochs: u32,
    /// Seeds the train/test split and the minibatch order.
    pub seed: u64,
}
