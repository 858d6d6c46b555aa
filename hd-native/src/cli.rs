//! The `hd-native` command line (clap).

use crate::bench::{self, BenchArgs};
use crate::config::{OptimizerKind, Options, ScopeArg};
use crate::data::DatasetKind;
use crate::models::Model;
use crate::train::{self, Setup};
use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Hypergradient descent (Baydin et al., ICLR 2018) on libtorch: train, plot, benchmark.
#[derive(Debug, Parser)]
#[command(name = "hd-native", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model, logging to RUN_DIR (log.csv, summary.json, checkpoint.safetensors).
    Train(Box<TrainArgs>),
    /// Draw test loss, test accuracy, training loss and α against epoch for some runs.
    Plot {
        /// Run directories written by `hd-native train`.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Directory for the figures (PNG and SVG).
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure optimizer step time and training throughput.
    Bench(BenchArgs),
}

/// Model names for `--model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelName {
    /// Logistic regression.
    Logreg,
    /// Multilayer perceptron (`--hidden`).
    Mlp,
    /// VGG-16 with one fc-512 (`--no-batch-norm` to drop batch norm).
    Vgg,
    /// ResNet-18, CIFAR form.
    Resnet18,
    /// ResNet-101, CIFAR form.
    Resnet101,
    /// WideResNet (`--depth`, `--width`).
    Wrn,
}

/// Presets for `--preset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// The paper's settings for the model (DESIGN §2).
    Paper,
}

/// `hd-native train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Model.
    #[arg(long)]
    pub model: Option<ModelName>,
    /// MLP hidden widths, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<i64>>,
    /// VGG without batch norm.
    #[arg(long)]
    pub no_batch_norm: bool,
    /// WideResNet depth (6n+4).
    #[arg(long)]
    pub depth: Option<i64>,
    /// WideResNet widening factor.
    #[arg(long)]
    pub width: Option<i64>,
    /// Dataset.
    #[arg(long)]
    pub dataset: Option<DatasetKind>,
    /// Directory holding the dataset's files.
    #[arg(long)]
    pub data_dir: PathBuf,
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
    /// Device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Fill every option not given with the paper's setting for the model.
    #[arg(long)]
    pub preset: Option<Preset>,
    /// Run directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// CPU threads for libtorch's operations [default: libtorch's choice].
    #[arg(long)]
    pub threads: Option<i32>,
}

fn parse_pair(s: &str) -> Result<(f32, f32), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("expected two numbers A,B, got {s:?}"))?;
    let p = |x: &str| x.trim().parse::<f32>().map_err(|e| format!("{x:?}: {e}"));
    Ok((p(a)?, p(b)?))
}

impl TrainArgs {
    /// The model the size options describe (`None` when `--model` is not given).
    ///
    /// # Errors
    /// A size option given for a model it does not apply to.
    pub fn model(&self) -> Result<Option<Model>> {
        let Some(name) = self.model else {
            if self.hidden.is_some()
                || self.no_batch_norm
                || self.depth.is_some()
                || self.width.is_some()
            {
                bail!("--hidden, --no-batch-norm, --depth and --width need --model");
            }
            return Ok(None);
        };
        if self.hidden.is_some() && name != ModelName::Mlp {
            bail!("--hidden applies to --model mlp only");
        }
        if self.no_batch_norm && name != ModelName::Vgg {
            bail!("--no-batch-norm applies to --model vgg only");
        }
        if (self.depth.is_some() || self.width.is_some()) && name != ModelName::Wrn {
            bail!("--depth and --width apply to --model wrn only");
        }
        Ok(Some(match name {
            ModelName::Logreg => Model::Logreg,
            ModelName::Mlp => Model::Mlp {
                hidden: self.hidden.clone().unwrap_or_else(|| vec![1000, 1000]),
            },
            ModelName::Vgg => Model::Vgg {
                batch_norm: !self.no_batch_norm,
            },
            ModelName::Resnet18 => Model::Resnet18,
            ModelName::Resnet101 => Model::Resnet101,
            ModelName::Wrn => Model::Wrn {
                depth: self.depth.unwrap_or(28),
                width: self.width.unwrap_or(10),
            },
        }))
    }

    /// The run options (before defaults and presets).
    ///
    /// # Errors
    /// As [`model`](TrainArgs::model).
    pub fn options(&self) -> Result<Options> {
        Ok(Options {
            model: self.model()?,
            dataset: self.dataset,
            optimizer: self.optimizer,
            alpha0: self.alpha0,
            beta: self.beta,
            beta_mult: self.beta_mult,
            mu: self.mu,
            weight_decay: self.weight_decay,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            adam_sqrt_decay: self.adam_sqrt_decay.then_some(true),
            scope: self.scope,
            clamp: self.clamp,
            transition: self.transition,
            epochs: self.epochs,
            batch_size: self.batch_size,
            seed: self.seed,
            paper: self.preset == Some(Preset::Paper),
        })
    }

    /// Where and how to run.
    pub fn setup(&self) -> Setup {
        Setup {
            data_dir: self.data_dir.clone(),
            device: self.device.clone(),
            out: self.out.clone(),
            resume: self.resume,
            progress: !self.quiet && std::io::stderr().is_terminal(),
        }
    }
}

/// Runs a parsed command line.
///
/// # Errors
/// Whatever the command fails with, as one line for the user.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => {
            if let Some(n) = args.threads {
                if n < 1 {
                    bail!("--threads must be at least 1");
                }
                tch::set_num_threads(n);
            }
            let summary = train::run(&args.options()?, &args.setup())?;
            let n = summary.epochs_completed;
            eprintln!(
                "{}: {n} epoch{}, test loss {:.4}, test accuracy {:.2}%, α {:.4e} ({})",
                summary.title,
                if n == 1 { "" } else { "s" },
                summary.last.test_loss,
                100.0 * summary.last.test_accuracy,
                summary.last.alpha,
                args.out.display()
            );
            Ok(())
        }
        Command::Plot { runs, out } => {
            for f in crate::plot::plot(&runs, &out)? {
                println!("{}", f.display());
            }
            Ok(())
        }
        Command::Bench(args) => bench::run(&args),
    }
}

/// The nine optimizer ids as the possible values (listed in `--help`), parsed by hd-core.
fn optimizer_parser() -> impl clap::builder::TypedValueParser<Value = OptimizerKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(OptimizerKind::ALL.map(OptimizerKind::id))
        .try_map(|id| id.parse::<OptimizerKind>())
}
