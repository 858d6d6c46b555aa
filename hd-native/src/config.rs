//! What a run is: the model, the data, the optimizer and its hyperparameters, and how they
//! map onto hd-core's [`Config`].

use crate::data::DatasetKind;
use crate::models::{Model, ModelName};
use hd_core::{paper, Adam, Base, Config, Family, Hyper, HyperRule, Scope, Sgd, Transition};
use std::fmt;

mod serial;

/// The optimizer of a run: one of the paper's nine, hd-core's [`Variant`](hd_core::Variant),
/// named by its id on the command line and in `summary.json` (`sgd-hd`, `adam-hdm`, …).
pub type OptimizerKind = hd_core::Variant;

/// `summary.json` and checkpoints write the optimizer as its id.
mod optimizer_id {
    use super::OptimizerKind;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &OptimizerKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.id())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OptimizerKind, D::Error> {
        let id = String::deserialize(d)?;
        id.parse().map_err(D::Error::custom)
    }
}

/// Where one α is shared (see [`Scope`]).
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
    pub optimizer: OptimizerKind,
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
}

impl serde::Serialize for RunConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The derived (remote = "Self") layout: always the current one.
        RunConfig::serialize(self, s)
    }
}

impl<'de> serde::Deserialize<'de> for RunConfig {
    /// The current layout (with `core`), or the one before it (flattened hyperparameters).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        let read = if value.get("core").is_some() {
            RunConfig::deserialize(value)
        } else {
            Flattened::deserialize(value).map(RunConfig::from)
        };
        read.map_err(D::Error::custom)
    }
}

/// A run's configuration in the layout written before it held hd-core's [`Config`].
#[derive(serde::Deserialize)]
struct Flattened {
    model: Model,
    dataset: DatasetKind,
    #[serde(with = "optimizer_id")]
    optimizer: OptimizerKind,
    #[serde(flatten)]
    hyper: Hyperparameters,
    epochs: u32,
    batch_size: i64,
    seed: u64,
}

impl From<Flattened> for RunConfig {
    fn from(f: Flattened) -> Self {
        RunConfig {
            core: f.hyper.config(f.optimizer),
            model: f.model,
            dataset: f.dataset,
            optimizer: f.optimizer,
            epochs: f.epochs,
            batch_size: f.batch_size,
            seed: f.seed,
        }
    }
}

/// Every hyperparameter as an option of `train` sets it: the command line's view of hd-core's
/// [`Config`] (and the layout runs were stored in before they stored that `Config`). Those
/// that do not apply to an optimizer hold their defaults.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
struct Hyperparameters {
    /// α0.
    alpha0: f32,
    /// The hypergradient rate in use: β for HD, β′ for HDM, 0 for a base optimizer.
    beta: f32,
    /// Nesterov momentum μ (SGDN family only).
    mu: f32,
    /// Coupled L2 weight decay λ.
    weight_decay: f32,
    /// Adam's β1.
    beta1: f32,
    /// Adam's β2.
    beta2: f32,
    /// Adam's ε.
    eps: f32,
    /// Adam's step divided by √t (the paper's logistic-regression setting).
    adam_sqrt_decay: bool,
    /// α's scope.
    scope: ScopeArg,
    /// Optional clamp of α to `[lo, hi]`.
    clamp: Option<(f32, f32)>,
    /// Optional convergent transition `(p, α∞)` of paper §5.1.
    transition: Option<(f32, f32)>,
}

impl Hyperparameters {
    /// hd-core's configuration of `optimizer` with these settings (those that do not apply
    /// to it left out).
    fn config(&self, optimizer: OptimizerKind) -> Config {
        let base = match optimizer.family() {
            Family::Sgd => Base::Sgd(Sgd::PLAIN),
            Family::Sgdn => Base::Sgd(Sgd::nesterov(self.mu)),
            Family::Adam => Base::Adam(Adam {
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
                sqrt_decay: self.adam_sqrt_decay,
            }),
        };
        let hyper = optimizer.rule().map(|rule| Hyper {
            rule,
            beta: self.beta,
            scope: match self.scope {
                ScopeArg::Global => Scope::Global,
                ScopeArg::PerTensor => Scope::PerTensor,
                ScopeArg::PerParameter => Scope::PerParameter,
            },
            clamp: self.clamp,
            transition: self
                .transition
                .map(|(power, alpha_inf)| Transition { power, alpha_inf }),
        });
        Config {
            base,
            alpha0: self.alpha0,
            weight_decay: self.weight_decay,
            hyper,
        }
    }

    /// The settings of `config`: [`config`](Self::config)'s inverse, with what does not apply
    /// at its default (μ = 0 without momentum, Adam's defaults outside Adam, β = 0 and a global
    /// α without hypergradient).
    fn of(config: &Config) -> Self {
        let adam_defaults = Adam::default();
        let (mu, adam) = match config.base {
            Base::Sgd(sgd) => (sgd.momentum, adam_defaults),
            Base::Adam(adam) => (0.0, adam),
        };
        let hyper = config.hyper;
        Hyperparameters {
            alpha0: config.alpha0,
            beta: hyper.map_or(0.0, |h| h.beta),
            mu,
            weight_decay: config.weight_decay,
            beta1: adam.beta1,
            beta2: adam.beta2,
            eps: adam.eps,
            adam_sqrt_decay: adam.sqrt_decay,
            scope: match hyper.map_or(Scope::Global, |h| h.scope) {
                Scope::Global => ScopeArg::Global,
                Scope::PerTensor => ScopeArg::PerTensor,
                Scope::PerParameter => ScopeArg::PerParameter,
            },
            clamp: hyper.and_then(|h| h.clamp),
            transition: hyper
                .and_then(|h| h.transition)
                .map(|t| (t.power, t.alpha_inf)),
        }
    }
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

/// A number as written by hand: `0.001`, but `1e-7` rather than `0.0000001`.
fn short(x: f32) -> String {
    let plain = format!("{x}");
    if plain.len() <= 6 {
        plain
    } else {
        format!("{x:e}")
    }
}

/// The options of a run before defaults and presets are filled in: `None` means "not given".
/// They are also `hd-native train`'s command-line options (flattened into it), so each is
/// declared and documented once.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct Options {
    /// Model with its size options (the command line builds it from --model and its sizes).
    #[arg(skip)]
    pub model: Option<Model>,
    /// Dataset.
    #[arg(long)]
    pub dataset: Option<DatasetKind>,
    /// Optimizer.
    #[arg(long, value_parser = optimizer_parser())]
    pub optimizer: Option<OptimizerKind>,
    /// Initial learning rate α0 [default: 0.001].
    #[arg(long)]
    pub alpha0: Option<f32>,
    /// Hypergradient rate β of the additive rule (HD) [default: 0.001; Adam-HD 1e-7].
    #[arg(long)]
    pub beta: Option<f32>,
    /// Hypergradient rate β′ of the multiplicative rule (HDM) [default: 0.02].
    #[arg(long)]
    pub beta_mult: Option<f32>,
    /// Nesterov momentum μ of the SGDN family [default: 0.9].
    #[arg(long)]
    pub mu: Option<f32>,
    /// Coupled L2 weight decay λ [default: 0; 1e-4 on LogReg and MLP with --preset paper].
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Adam β1 [default: 0.9].
    #[arg(long)]
    pub beta1: Option<f32>,
    /// Adam β2 [default: 0.999].
    #[arg(long)]
    pub beta2: Option<f32>,
    /// Adam ε [default: 1e-8].
    #[arg(long)]
    pub eps: Option<f32>,
    /// Divide Adam's step by √t (the paper's LogReg setting; on with --preset paper there).
    #[arg(long)]
    pub adam_sqrt_decay: bool,
    /// Where one α is shared [default: global].
    #[arg(long)]
    pub scope: Option<ScopeArg>,
    /// Clamp α to the interval from LO to HI after every update, e.g. `--clamp 0,0.1`.
    #[arg(long, value_name = "LO,HI", value_parser = parse_pair)]
    pub clamp: Option<(f32, f32)>,
    /// The convergent schedule of paper §5.1, `P,ALPHA_INF`: γ_t = α_t/t^P + (1 − 1/t^P)·α∞.
    #[arg(long, value_name = "P,ALPHA_INF", value_parser = parse_pair)]
    pub transition: Option<(f32, f32)>,
    /// Epochs [default: 10; the paper's count with --preset paper].
    #[arg(long)]
    pub epochs: Option<u32>,
    /// Minibatch size [default: 128].
    #[arg(long)]
    pub batch_size: Option<i64>,
    /// Seed of initialisation, shuffling and augmentation [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Fill unset options with the paper's settings for the model (`--preset paper`).
    #[arg(skip)]
    pub paper: bool,
}

/// The nine optimizer ids as the possible values (listed in `--help`), parsed by hd-core.
fn optimizer_parser() -> impl clap::builder::TypedValueParser<Value = OptimizerKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(OptimizerKind::ALL.map(OptimizerKind::id))
        .try_map(|id| id.parse::<OptimizerKind>())
}

/// `A,B` as two numbers.
fn parse_pair(s: &str) -> Result<(f32, f32), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("expected two numbers A,B, got {s:?}"))?;
    let p = |x: &str| x.trim().parse::<f32>().map_err(|e| format!("{x:?}: {e}"));
    Ok((p(a)?, p(b)?))
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
        optimizer: OptimizerKind,
    },
    /// hd-core rejects a hyperparameter.
    #[error("{0}")]
    Invalid(hd_core::Error),
    /// A stored configuration whose hyperparameters are not those of its optimizer (another
    /// base rule or hypergradient rule).
    #[error("its hyperparameters are not those of {0}")]
    NotTheOptimizers(OptimizerKind),
    /// A model size option is invalid.
    #[error(transparent)]
    Model(#[from] crate::models::ModelError),
    /// The batch size or epoch count is not positive.
    #[error("--{0} must be at least 1")]
    NotPositive(&'static str),
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

/// Epochs of a run given neither `--epochs` nor `--preset paper`.
const DEFAULT_EPOCHS: u32 = 10;

/// Which of the paper's kinds of model `model` is: its settings for VGG apply to every convnet.
fn paper_model(model: &Model) -> paper::ModelKind {
    match model.name() {
        ModelName::Logreg => paper::ModelKind::LogReg,
        ModelName::Mlp => paper::ModelKind::Mlp,
        ModelName::Vgg | ModelName::Resnet18 | ModelName::Resnet101 | ModelName::Wrn => {
            paper::ModelKind::Convnet
        }
    }
}

impl Options {
    /// Fills defaults (the paper's common settings) and, with `paper`, its per-model ones.
    ///
    /// Defaults, from hd-core's [`paper`] module: α0 = 0.001, β = 0.001 for SGD-HD and SGDN-HD
    /// and 1e-7 for Adam-HD, β′ = 0.02 (the α0-sensitivity study's), μ = 0.9, Adam (0.9, 0.999,
    /// 1e-8), batch 128; then 10 epochs, seed 0, global α. `--preset paper` adds L2 1e-4 on
    /// LogReg and MLP, Adam's 1/√t on LogReg, β = 1e-8 for Adam-HD on convnets, and the
    /// paper's epoch counts (DESIGN §2).
    ///
    /// # Errors
    /// [`ConfigError`] for a missing model, dataset or optimizer, options that do not apply
    /// to the optimizer, or hyperparameters hd-core rejects.
    pub fn resolve(&self) -> Result<RunConfig, ConfigError> {
        let model = self.model.clone().ok_or(ConfigError::Missing("model"))?;
        model.validate()?;
        let dataset = self.dataset.ok_or(ConfigError::Missing("dataset"))?;
        let optimizer = self.optimizer.ok_or(ConfigError::Missing("optimizer"))?;
        let rule = optimizer.rule();
        let not_for = |option| ConfigError::NotApplicable { option, optimizer };
        if self.beta.is_some() && rule != Some(HyperRule::Additive) {
            return Err(not_for("beta"));
        }
        if self.beta_mult.is_some() && rule != Some(HyperRule::Multiplicative) {
            return Err(not_for("beta-mult"));
        }
        if self.mu.is_some() && optimizer.base() != OptimizerKind::Sgdn {
            return Err(not_for("mu"));
        }
        if optimizer.base() != OptimizerKind::Adam
            && (self.beta1.is_some()
                || self.beta2.is_some()
                || self.eps.is_some()
                || self.adam_sqrt_decay)
        {
            return Err(not_for("beta1/--beta2/--eps/--adam-sqrt-decay"));
        }
        if rule.is_none() && (self.scope.is_some() || self.clamp.is_some()) {
            return Err(not_for("scope/--clamp"));
        }
        if rule.is_none() && self.transition.is_some() {
            return Err(not_for("transition"));
        }
        // Without the preset every model gets the paper's settings for logistic regression and
        // the MLP (its Adam-HD β among them), without their L2, 1/√t decay and epoch counts.
        let preset = self.paper.then(|| paper_model(&model));
        let paper_beta = paper::beta(optimizer, preset.unwrap_or(paper::ModelKind::Mlp));
        let beta = match rule {
            None => 0.0,
            Some(HyperRule::Additive) => self.beta.unwrap_or(paper_beta),
            Some(HyperRule::Multiplicative) => self.beta_mult.unwrap_or(paper_beta),
        };
        let adam = Adam::default();
        let hyper = Hyperparameters {
            alpha0: self.alpha0.unwrap_or(paper::ALPHA0),
            beta,
            mu: if optimizer.base() == OptimizerKind::Sgdn {
                self.mu.unwrap_or(paper::MU)
            } else {
                0.0
            },
            weight_decay: self
                .weight_decay
                .unwrap_or(preset.map_or(0.0, paper::weight_decay)),
            beta1: self.beta1.unwrap_or(adam.beta1),
            beta2: self.beta2.unwrap_or(adam.beta2),
            eps: self.eps.unwrap_or(adam.eps),
            // A flag can only switch it on; the preset switches it on for LogReg.
            adam_sqrt_decay: self.adam_sqrt_decay
                || (optimizer.base() == OptimizerKind::Adam
                    && preset.is_some_and(paper::adam_sqrt_decay)),
            scope: self.scope.unwrap_or_default(),
            clamp: self.clamp,
            transition: self.transition,
        };
        let config = RunConfig {
            core: hyper.config(optimizer),
            epochs: self
                .epochs
                .unwrap_or(preset.map_or(DEFAULT_EPOCHS, paper::epochs)),
            batch_size: self.batch_size.unwrap_or(i64::from(paper::BATCH_SIZE)),
            seed: self.seed.unwrap_or(0),
            model,
            dataset,
            optimizer,
        };
        config.validate()?;
        Ok(config)
    }

    /// The configuration of a run being resumed: `saved`, with `epochs` changed if given.
    /// Any other option given must equal the saved value; with `--preset paper`, so must
    /// every setting the preset fills (the model, dataset and optimizer default to the
    /// saved ones), so a preset that would have made another run is refused, not ignored.
    ///
    /// # Errors
    /// [`ConfigError::Differs`] naming the first option that differs.
    pub fn resume(&self, saved: &RunConfig) -> Result<RunConfig, ConfigError> {
        if self.paper {
            let preset = Options {
                model: Some(self.model.clone().unwrap_or_else(|| saved.model.clone())),
                dataset: Some(self.dataset.unwrap_or(saved.dataset)),
                optimizer: Some(self.optimizer.unwrap_or(saved.optimizer)),
                ..self.clone()
            }
            .resolve()?;
            let rule = preset.optimizer.rule();
            let p = Hyperparameters::of(&preset.core);
            let given = Options {
                model: Some(preset.model),
                dataset: Some(preset.dataset),
                optimizer: Some(preset.optimizer),
                alpha0: Some(p.alpha0),
                beta: (rule == Some(HyperRule::Additive)).then_some(p.beta),
                beta_mult: (rule == Some(HyperRule::Multiplicative)).then_some(p.beta),
                mu: Some(p.mu),
                weight_decay: Some(p.weight_decay),
                beta1: Some(p.beta1),
                beta2: Some(p.beta2),
                eps: Some(p.eps),
                adam_sqrt_decay: p.adam_sqrt_decay,
                scope: Some(p.scope),
                clamp: p.clamp,
                transition: p.transition,
                // The preset's epoch count applies to new runs; a resumed run keeps its own
                // unless --epochs is given.
                epochs: self.epochs,
                batch_size: Some(preset.batch_size),
                seed: Some(preset.seed),
                paper: false,
            };
            if !p.adam_sqrt_decay && Hyperparameters::of(&saved.core).adam_sqrt_decay {
                return Err(ConfigError::PresetDiffers {
                    field: "adam-sqrt-decay",
                    saved: "true".into(),
                    preset: "false".into(),
                });
            }
            // An option given explicitly that differs is reported as such by the plain
            // comparison; anything else that differs came from the preset.
            Options {
                paper: false,
                ..self.clone()
            }
            .resume(saved)?;
            return given.resume(saved).map_err(|e| match e {
                ConfigError::Differs {
                    field,
                    saved,
                    given,
                } => ConfigError::PresetDiffers {
                    field,
                    saved,
                    preset: given,
                },
                e => e,
            });
        }
        fn same<T: PartialEq + fmt::Debug>(
            field: &'static str,
            given: &Option<T>,
            saved: &T,
        ) -> Result<(), ConfigError> {
            match given {
                Some(g) if g != saved => Err(ConfigError::Differs {
                    field,
                    saved: format!("{saved:?}"),
                    given: format!("{g:?}"),
                }),
                _ => Ok(()),
            }
        }
        let h = Hyperparameters::of(&saved.core);
        same("model", &self.model, &saved.model)?;
        same("dataset", &self.dataset, &saved.dataset)?;
        same("optimizer", &self.optimizer, &saved.optimizer)?;
        same("alpha0", &self.alpha0, &h.alpha0)?;
        same("beta", &self.beta, &h.beta)?;
        same("beta-mult", &self.beta_mult, &h.beta)?;
        same("mu", &self.mu, &h.mu)?;
        same("weight-decay", &self.weight_decay, &h.weight_decay)?;
        same("beta1", &self.beta1, &h.beta1)?;
        same("beta2", &self.beta2, &h.beta2)?;
        same("eps", &self.eps, &h.eps)?;
        same(
            "adam-sqrt-decay",
            &self.adam_sqrt_decay.then_some(true),
            &h.adam_sqrt_decay,
        )?;
        same("scope", &self.scope, &h.scope)?;
        same("clamp", &self.clamp.map(Some), &h.clamp)?;
        same("transition", &self.transition.map(Some), &h.transition)?;
        same("batch-size", &self.batch_size, &saved.batch_size)?;
        same("seed", &self.seed, &saved.seed)?;
        let mut config = saved.clone();
        if let Some(e) = self.epochs {
            if e == 0 {
                return Err(ConfigError::NotPositive("epochs"));
            }
            config.epochs = e;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl RunConfig {
        /// The run's settings as options would give them.
        fn hyper(&self) -> Hyperparameters {
            Hyperparameters::of(&self.core)
        }
    }

    fn given(model: Model, optimizer: OptimizerKind) -> Options {
        Options {
            model: Some(model),
            dataset: Some(DatasetKind::Mnist),
            optimizer: Some(optimizer),
            ..Options::default()
        }
    }

    /// The paper's settings (DESIGN §2): α0 = 0.001, batch 128, μ = 0.9, L2 1e-4 on LogReg and
    /// MLP, β = 0.001 for SGD-HD/SGDN-HD, 1e-7 for Adam-HD on LogReg/MLP and 1e-8 on VGG,
    /// Adam's 1/√t on LogReg only, 20/100/200 epochs.
    #[test]
    fn preset_paper_fills_the_papers_settings() {
        let paper = |m: Model, o: OptimizerKind| {
            Options {
                paper: true,
                ..given(m, o)
            }
            .resolve()
            .expect("valid")
        };
        let c = paper(Model::Logreg, OptimizerKind::AdamHd);
        assert_eq!(
            (c.hyper().alpha0, c.hyper().beta, c.hyper().weight_decay),
            (1e-3, 1e-7, 1e-4)
        );
        assert!(c.hyper().adam_sqrt_decay);
        assert_eq!((c.epochs, c.batch_size), (20, 128));
        let c = paper(
            Model::Mlp {
                hidden: vec![1000, 1000],
            },
            OptimizerKind::SgdnHd,
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
            OptimizerKind::AdamHd,
        );
        assert!(!c.hyper().adam_sqrt_decay);
        let c = paper(Model::Vgg { batch_norm: true }, OptimizerKind::AdamHd);
        assert_eq!(
            (c.hyper().beta, c.hyper().weight_decay, c.epochs),
            (1e-8, 0.0, 200)
        );
        let c = paper(Model::Vgg { batch_norm: true }, OptimizerKind::SgdHdm);
        assert_eq!(c.hyper().beta, 0.02);
        // Without the preset: the common defaults, no L2, ten epochs.
        let c = given(Model::Logreg, OptimizerKind::AdamHd)
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
            ..given(Model::Logreg, OptimizerKind::SgdHd)
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
        let c = Options {
            scope: Some(ScopeArg::PerTensor),
            clamp: Some((0.0, 0.1)),
            transition: Some((2.0, 0.01)),
            ..given(Model::Logreg, OptimizerKind::SgdnHdm)
        }
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
        let base = given(Model::Logreg, OptimizerKind::Adam)
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
                ..given(Model::Logreg, OptimizerKind::Adam)
            }),
            ConfigError::NotApplicable {
                option: "mu",
                optimizer: OptimizerKind::Adam
            }
        );
        assert!(matches!(
            err(Options {
                alpha0: Some(f32::NAN),
                ..given(Model::Logreg, OptimizerKind::Sgd)
            }),
            ConfigError::Invalid(_)
        ));
        assert!(matches!(
            err(Options {
                clamp: Some((1.0, 0.0)),
                ..given(Model::Logreg, OptimizerKind::SgdHd)
            }),
            ConfigError::Invalid(_)
        ));
        assert_eq!(
            err(Options {
                model: None,
                ..given(Model::Logreg, OptimizerKind::Sgd)
            }),
            ConfigError::Missing("model")
        );
    }

    #[test]
    fn resuming_keeps_the_run_and_refuses_changes() {
        let saved = given(Model::Logreg, OptimizerKind::SgdHd)
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
            scope: Some(ScopeArg::PerTensor),
            clamp: Some((0.0, 0.1)),
            transition: Some((2.0, 0.01)),
            epochs: Some(1),
            ..given(Model::Logreg, OptimizerKind::SgdnHdm)
        };
        let expected = options.resolve().expect("valid");
        let old: RunConfig =
            serde_json::from_str(include_str!("../tests/fixtures/config-before-core.json"))
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
        let mut c = given(Model::Logreg, OptimizerKind::SgdHd)
            .resolve()
            .expect("valid");
        c.validate().expect("valid");
        c.core.hyper = None;
        assert_eq!(
            c.validate(),
            Err(ConfigError::NotTheOptimizers(OptimizerKind::SgdHd))
        );
        c.core = Config::adam(0.001).with_hd(1e-7);
        assert_eq!(
            c.validate(),
            Err(ConfigError::NotTheOptimizers(OptimizerKind::SgdHd))
        );
    }
}
