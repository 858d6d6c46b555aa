//! [`Options`]: a run's options as `train` takes them (`None`: not given), resolved into a
//! [`RunConfig`] with the paper's defaults and presets, or checked against a run being resumed.

use super::hyper::Hyperparameters;
use super::{ConfigError, RunConfig, ScopeArg, Variant};
use crate::data::DatasetKind;
use crate::models::{Model, ModelName};
use hd_core::{paper, Adam, BaseOptions, HyperRule};
use std::fmt;

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
    pub optimizer: Option<Variant>,
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
    /// Divide Adam's step by √t (the paper's LogReg setting for plain Adam; on with --preset
    /// paper there). On Adam-HD/HDM the hypergradient then follows the decayed step.
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
    /// Stop at the first iteration whose minibatch training loss is at most LOSS (the paper's
    /// Fig. 4 counts iterations to 0.29): it is recorded in summary.json's `reached`, the
    /// run ends with that epoch, and --epochs becomes the cap.
    #[arg(long, value_name = "LOSS")]
    pub stop_at_loss: Option<f64>,
    /// Fill unset options with the paper's settings for the model (`--preset paper`).
    #[arg(skip)]
    pub paper: bool,
}

/// The nine optimizer ids as the possible values (listed in `--help`), parsed by hd-core.
fn optimizer_parser() -> impl clap::builder::TypedValueParser<Value = Variant> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Variant::ALL.map(Variant::id))
        .try_map(|id| id.parse::<Variant>())
}

/// `A,B` as two numbers (`--clamp`, `--transition` and their plan keys).
pub(crate) fn parse_pair(s: &str) -> Result<(f32, f32), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("expected two numbers A,B, got {s:?}"))?;
    let p = |x: &str| x.trim().parse::<f32>().map_err(|e| format!("{x:?}: {e}"));
    Ok((p(a)?, p(b)?))
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
    /// LogReg and MLP, plain Adam's 1/√t on LogReg, β = 1e-8 for Adam-HD on convnets, and the
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
        // Destructured without `..`: an option added to BaseOptions does not compile until it
        // is checked and resolved here.
        let BaseOptions {
            mu: takes_mu,
            adam: takes_adam,
        } = optimizer.family().options();
        let not_for = |option| ConfigError::NotApplicable { option, optimizer };
        if self.beta.is_some() && rule != Some(HyperRule::Additive) {
            return Err(not_for("beta"));
        }
        if self.beta_mult.is_some() && rule != Some(HyperRule::Multiplicative) {
            return Err(not_for("beta-mult"));
        }
        if self.mu.is_some() && !takes_mu {
            return Err(not_for("mu"));
        }
        if !takes_adam
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
            mu: if takes_mu {
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
            // A flag can only switch it on; the preset switches it on for plain Adam on LogReg.
            adam_sqrt_decay: self.adam_sqrt_decay
                || preset.is_some_and(|m| paper::adam_sqrt_decay(optimizer, m)),
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
            stop_at_loss: self.stop_at_loss,
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
                stop_at_loss: preset.stop_at_loss,
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
        // Destructured without `..`: an option added to Options does not compile until it is
        // compared here.
        let Options {
            model,
            dataset,
            optimizer,
            alpha0,
            beta,
            beta_mult,
            mu,
            weight_decay,
            beta1,
            beta2,
            eps,
            adam_sqrt_decay,
            scope,
            clamp,
            transition,
            epochs,
            batch_size,
            seed,
            stop_at_loss,
            // Handled above: the preset's settings were compared as given options.
            paper: _,
        } = self;
        let h = Hyperparameters::of(&saved.core);
        same("model", model, &saved.model)?;
        same("dataset", dataset, &saved.dataset)?;
        same("optimizer", optimizer, &saved.optimizer)?;
        same("alpha0", alpha0, &h.alpha0)?;
        same("beta", beta, &h.beta)?;
        same("beta-mult", beta_mult, &h.beta)?;
        same("mu", mu, &h.mu)?;
        same("weight-decay", weight_decay, &h.weight_decay)?;
        same("beta1", beta1, &h.beta1)?;
        same("beta2", beta2, &h.beta2)?;
        same("eps", eps, &h.eps)?;
        same(
            "adam-sqrt-decay",
            &adam_sqrt_decay.then_some(true),
            &h.adam_sqrt_decay,
        )?;
        same("scope", scope, &h.scope)?;
        same("clamp", &clamp.map(Some), &h.clamp)?;
        same("transition", &transition.map(Some), &h.transition)?;
        same("batch-size", batch_size, &saved.batch_size)?;
        same("seed", seed, &saved.seed)?;
        same("stop-at-loss", &stop_at_loss.map(Some), &saved.stop_at_loss)?;
        // The one option a resumed run may change.
        let mut config = saved.clone();
        if let Some(e) = *epochs {
            if e == 0 {
                return Err(ConfigError::NotPositive("epochs"));
            }
            config.epochs = e;
        }
        Ok(config)
    }
}
