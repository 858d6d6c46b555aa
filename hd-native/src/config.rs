//! What a run is: the model, the data, the optimizer and its hyperparameters, and how they
//! map onto hd-core's [`Config`].
//!
//! The submodules: `options` (the command line's options, resolved or checked on resume),
//! `hyper` (the hyperparameters as options set them, to and from hd-core's [`Config`]),
//! `serial` (how `summary.json` and checkpoints store it) and `flat` (the layout stored
//! before).

use crate::data::DatasetKind;
use crate::models::Model;
use hd_core::{Config, HyperRule};
use hyper::Hyperparameters;
use serial::optimizer_id;

mod flat;
mod hyper;
mod options;
mod serial;
#[cfg(test)]
mod tests;

pub(crate) use options::parse_pair;
pub use options::Options;

/// The optimizer of a run: one of the paper's nine, hd-core's [`Variant`],
/// named by its id on the command line and in `summary.json` (`sgd-hd`, `adam-hdm`, …).
pub use hd_core::Variant;

/// Presets for `--preset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The paper's settings for the model (DESIGN §2).
    Paper,
}

/// Where one α is shared (see [`Scope`](hd_core::Scope)).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ScopeArg {
    /// One α for the whole model (the paper's).
    #[default]
    Global,
    /// One α per parameter tensor.
    PerTensor,
    /// One α per parameter (additive rule only).
    PerParameter,
}

/// Everything that defines a run's trajectory. A resumed run must have the same (except
/// `epochs`, which may grow).
///
/// `summary.json` and checkpoints store it as `model`, `dataset`, `optimizer`, `core` (hd-core's
/// [`Config`]: `base`, `alpha0`, `weight_decay`, `hyper`), `epochs`, `batch_size` and `seed`.
/// They also read the layout written before `core`, with the hyperparameters flattened beside
/// the model (`alpha0`, `beta`, `mu`, …), so runs written then can still be resumed, plotted
/// and reported.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(remote = "Self")]
pub struct RunConfig {
    /// The model.
    pub model: Model,
    /// The dataset.
    pub dataset: DatasetKind,
    /// The optimizer.
    #[serde(with = "optimizer_id")]
    pub optimizer: Variant,
    /// The optimizer's hyperparameters as hd-core runs them: the base rule (μ, Adam's
    /// constants), α0, coupled L2 and the hypergradient settings.
    #[serde(with = "serial::ConfigDef")]
    pub core: Config,
    /// Epochs to train.
    pub epochs: u32,
    /// Minibatch size.
    pub batch_size: i64,
    /// Seed of the initialisation, shuffling and augmentation.
    pub seed: u64,
    /// The training loss to stop at (`--stop-at-loss`): the run records the first iteration
    /// whose minibatch loss is at most this and ends with that epoch; `epochs` is then the
    /// cap. `None` (absent from older files): every epoch is trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_at_loss: Option<f64>,
}

impl RunConfig {
    /// Checks a configuration read back from a file as [`Options::resolve`] checks the
    /// command line: a valid model, at least one epoch and a positive batch, hyperparameters
    /// of the optimizer named that hd-core accepts.
    ///
    /// # Errors
    /// The [`ConfigError`] the command line would give, or
    /// [`ConfigError::NotTheOptimizers`] for hyperparameters of another optimizer.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.model.validate()?;
        if self.epochs == 0 {
            return Err(ConfigError::NotPositive("epochs"));
        }
        if self.batch_size < 1 {
            return Err(ConfigError::NotPositive("batch-size"));
        }
        if self
            .stop_at_loss
            .is_some_and(|l| !(l.is_finite() && l > 0.0))
        {
            return Err(ConfigError::NotAboveZero("stop-at-loss"));
        }
        hd_core::Optimizer::new(self.core).map_err(ConfigError::Invalid)?;
        // Valid values compare equal to themselves (no NaN): a difference is another rule.
        if Hyperparameters::of(&self.core).config(self.optimizer) != self.core {
            return Err(ConfigError::NotTheOptimizers(self.optimizer));
        }
        Ok(())
    }

    /// hd-core's configuration for this run.
    pub fn core(&self) -> Config {
        self.core
    }

    /// The hypergradient rate in use: β for HD, β′ for HDM, 0 for a base optimizer.
    pub fn beta(&self) -> f32 {
        self.core.hyper.map_or(0.0, |h| h.beta)
    }

    /// The first setting in which the run `self` and the run `other` differ, as `summary.json`
    /// names it (`epochs`, `core.alpha0`, `core.hyper.beta`, …), with its value in each; `None`
    /// when they are the same run. The fields are compared in this order: model, dataset,
    /// optimizer, the hyperparameters (`core`, leaf by leaf), epochs, batch size, seed, target
    /// loss.
    pub fn first_difference(&self, other: &RunConfig) -> Option<Difference> {
        if self == other {
            return None;
        }
        // Through the text `summary.json` holds, so an f32 reads as written (0.001, not
        // 0.0010000000474974513).
        let json = |c: &RunConfig| {
            serde_json::to_string(c)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .unwrap_or_default()
        };
        let (a, b) = (json(self), json(other));
        // Declaration order first (the object's keys are sorted), then anything else.
        let order = [
            "model",
            "dataset",
            "optimizer",
            "core",
            "epochs",
            "batch_size",
            "seed",
            "stop_at_loss",
        ];
        let keys = order.iter().map(|k| (*k).to_string()).chain(
            a.as_object()
                .into_iter()
                .chain(b.as_object())
                .flat_map(|o| o.keys().cloned()),
        );
        for key in keys {
            let null = serde_json::Value::Null;
            let (x, y) = (a.get(&key).unwrap_or(&null), b.get(&key).unwrap_or(&null));
            if let Some(d) = leaf_difference(key, x, y) {
                return Some(d);
            }
        }
        // Equal as stored but not as values (no valid configuration has a NaN): the whole.
        Some(Difference {
            field: "config".into(),
            this: a.to_string(),
            other: b.to_string(),
        })
    }

    /// A short legend for plots: the optimizer and its rates.
    pub fn label(&self) -> String {
        let (a, b) = (short(self.core.alpha0), short(self.beta()));
        match self.optimizer.rule() {
            None => format!("{} α0={a}", self.optimizer),
            Some(HyperRule::Additive) => format!("{} α0={a} β={b}", self.optimizer),
            Some(HyperRule::Multiplicative) => format!("{} α0={a} β′={b}", self.optimizer),
        }
    }

    /// A title for plots: the model on the dataset.
    pub fn title(&self) -> String {
        format!("{} on {}", self.model, self.dataset)
    }
}

/// A setting in which two runs differ ([`RunConfig::first_difference`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Its path in `summary.json`'s `config` (`core.alpha0`).
    pub field: String,
    /// Its value in the first run, as JSON.
    pub this: String,
    /// Its value in the other, as JSON.
    pub other: String,
}

/// The first leaf under `path` at which `a` and `b` differ (object keys in sorted order).
fn leaf_difference(
    path: String,
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Option<Difference> {
    use serde_json::Value;
    if a == b {
        return None;
    }
    if let (Value::Object(x), Value::Object(y)) = (a, b) {
        let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
        keys.sort();
        keys.dedup();
        return keys.into_iter().find_map(|k| {
            let (u, v) = (
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
            );
            leaf_difference(format!("{path}.{k}"), u, v)
        });
    }
    Some(Difference {
        field: path,
        this: a.to_string(),
        other: b.to_string(),
    })
}

/// A number as written by hand: `0.001`, but `1e-7` rather than `0.0000001`.
fn short(x: f32) -> String {
    let plain = format!("{x}");
    if plain.len() <= 6 {
        plain
    } else {
        format!("{x:e}")
    }
}

/// An option combination that does not make a run.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required option is missing.
    #[error("--{0} is required")]
    Missing(&'static str),
    /// An option does not apply to the chosen optimizer.
    #[error("--{option} does not apply to {optimizer}")]
    NotApplicable {
        /// The option.
        option: &'static str,
        /// The optimizer chosen.
        optimizer: Variant,
    },
    /// hd-core rejects a hyperparameter.
    #[error("{0}")]
    Invalid(hd_core::Error),
    /// A stored configuration whose hyperparameters are not those of its optimizer (another
    /// base rule or hypergradient rule).
    #[error("its hyperparameters are not those of {0}")]
    NotTheOptimizers(Variant),
    /// A model size option is invalid.
    #[error(transparent)]
    Model(#[from] crate::models::ModelError),
    /// The batch size or epoch count is not positive.
    #[error("--{0} must be at least 1")]
    NotPositive(&'static str),
    /// A real-valued option that must be finite and above 0 is not.
    #[error("--{0} must be a finite number above 0")]
    NotAboveZero(&'static str),
    /// `--epochs` on resume is below what the run has already completed.
    #[error("--epochs {given} is fewer than the {completed} epochs the run has completed; a run cannot shrink")]
    BelowCompleted {
        /// The epochs asked for.
        given: u32,
        /// The epochs completed.
        completed: u32,
    },
    /// `--preset paper` on resume would set something other than the run's setting.
    #[error("--preset paper sets {field} = {preset}, but the run was started with {saved}; drop --preset or start a new run")]
    PresetDiffers {
        /// The option.
        field: &'static str,
        /// Its value in the run.
        saved: String,
        /// The preset's value.
        preset: String,
    },
    /// A resumed run was given a setting that differs from the one it was started with.
    #[error("the run was started with {field} = {saved}, not {given}; drop --{field} or start a new run")]
    Differs {
        /// The option.
        field: &'static str,
        /// Its value in the run.
        saved: String,
        /// The value given now.
        given: String,
    },
}
