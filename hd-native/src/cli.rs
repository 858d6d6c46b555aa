//! The `hd-native` command line (clap): `train`, `plot` and `bench` here, the suite's
//! `plan`, `sweep` and `report` in [`suite`], the head-to-head's `versus` in [`versus`]. The
//! only modules that parse arguments or decide an exit status; the modules below them return
//! typed errors.

pub mod suite;
pub mod versus;

use crate::bench::{self, BenchArgs};
use crate::config::{Options, Preset};
pub use crate::models::ModelName;
use crate::models::{Model, ModelSpec};
use crate::train::{self, Setup};
use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use std::io::{IsTerminal, Write};
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
    /// Experiment plans (TOML): `plan list` lists the shipped ones, `plan show PLAN` prints
    /// the runs a plan (a file or a shipped plan's name) expands to.
    #[command(subcommand)]
    Plan(crate::cli::suite::PlanCommand),
    /// Run every run of a plan (locally, N at a time, resumable), or write and submit it as a
    /// Slurm job array (`--slurm`); `sweep status DIR` tells where each run stands.
    Sweep(Box<crate::cli::suite::SweepCommand>),
    /// Figures and REPORT.md (ours beside the paper's values) from a sweep's runs.
    Report(crate::cli::suite::ReportArgs),
    /// The head-to-head of HD against Prodigy and Schedule-Free: `versus run --plan PLAN
    /// --out DIR` runs a plan's grids (resumable, shardable), `versus report DIR` writes
    /// REPORT.md and the figures.
    #[command(subcommand)]
    Versus(crate::cli::versus::VersusCommand),
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
    /// Directory holding the dataset's files.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The run's options: dataset, optimizer and hyperparameters, epochs, batch, seed.
    #[command(flatten)]
    pub run: Options,
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

impl TrainArgs {
    /// The model the size options describe (`None` when `--model` is not given).
    ///
    /// # Errors
    /// A size option given for a model it does not apply to.
    pub fn model(&self) -> Result<Option<Model>, crate::models::ModelError> {
        ModelSpec {
            name: self.model,
            hidden: self.hidden.clone(),
            no_batch_norm: self.no_batch_norm,
            depth: self.depth,
            width: self.width,
        }
        .model()
    }

    /// The run options (before defaults and presets).
    ///
    /// # Errors
    /// As [`model`](TrainArgs::model).
    pub fn options(&self) -> Result<Options> {
        Ok(Options {
            model: self.model()?,
            paper: self.preset == Some(Preset::Paper),
            ..self.run.clone()
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

/// `--threads n`, at most the machine's logical CPUs (more only adds contention), with a note
/// when it is lowered.
fn bounded_threads(n: i32) -> i32 {
    let cpus = std::thread::available_parallelism()
        .map_or(1, |c| i32::try_from(c.get()).unwrap_or(i32::MAX));
    if n > cpus {
        let _ = writeln!(
            std::io::stderr(),
            "hd-native: note: --threads {n} exceeds the {cpus} logical CPUs; using {cpus}"
        );
        cpus
    } else {
        n
    }
}

/// An error as the one line the binary prints: the message and its causes, `a: b: c` (a
/// context such as `creating runs/.sweep` and the system's reason, `File exists (os error
/// 17)`). A cause the text before it already states is left out, and the chain ends at the
/// first of our own errors (they name their cause themselves, a libtorch one cut to its first
/// line); any line break within them becomes a space.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = match cause.downcast_ref::<tch::TchError>() {
            Some(t) => train::torch_message(&t.to_string()),
            None => cause.to_string(),
        };
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        if states_its_cause(cause) {
            break;
        }
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `e` is one of our errors, whose message already gives its cause.
fn states_its_cause(e: &(dyn std::error::Error + 'static)) -> bool {
    e.is::<train::TrainError>()
        || e.is::<crate::plan::PlanError>()
        || e.is::<crate::sweep::SweepError>()
        || e.is::<crate::data::DataError>()
        || e.is::<hd_tch::OptimError>()
        || e.is::<crate::plot::PlotError>()
        || e.is::<tch::TchError>()
        || e.is::<crate::versus::VersusError>()
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
                tch::set_num_threads(bounded_threads(n));
            }
            train::stop_on_signals()?;
            let summary = train::run(&args.options()?, &args.setup())?;
            let n = summary.epochs_completed;
            let target = match (summary.config.stop_at_loss, summary.reached) {
                (_, Some(r)) => format!(", loss {:.4} at iteration {}", r.loss, r.iteration),
                (Some(t), None) => format!(
                    ", loss {t} not reached in {} iterations",
                    summary.iterations
                ),
                (None, None) => String::new(),
            };
            // A closed stderr (`2>&1 | head`) is no reason to fail a finished run.
            let _ = writeln!(
                std::io::stderr(),
                "{}: {n} epoch{}{target}, test loss {:.4}, test accuracy {:.2}%, α {:.4e} ({})",
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
            let mut stdout = std::io::stdout().lock();
            for f in crate::plot::plot(&runs, &out)? {
                // The figures are written; a reader that went away (`| head`) ends the list.
                if writeln!(stdout, "{}", f.display()).is_err() {
                    break;
                }
            }
            Ok(())
        }
        Command::Bench(args) => bench::run(&args),
        Command::Plan(cmd) => crate::cli::suite::plan(cmd),
        Command::Sweep(cmd) => crate::cli::suite::sweep(*cmd),
        Command::Report(args) => crate::cli::suite::report(&args),
        Command::Versus(cmd) => crate::cli::versus::versus(cmd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    /// A context keeps its cause (`a: b: c`); a cause already stated, or under one of our own
    /// errors, is not repeated.
    #[test]
    fn an_error_is_one_line_with_its_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device");
        let e = anyhow::Error::new(io)
            .context("writing out/.sweep/manifest.json.tmp1")
            .context("run k/sgd-hd");
        assert_eq!(
            error_line(&e),
            "run k/sgd-hd: writing out/.sweep/manifest.json.tmp1: No space left on device"
        );
        let plan = crate::plan::PlanError::Read {
            file: "p.toml".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        let e = anyhow::Error::new(plan).context("sweeping");
        assert_eq!(
            error_line(&e),
            "sweeping: cannot read the plan p.toml: gone"
        );
        let e: anyhow::Result<()> = Err(anyhow::anyhow!("two\nlines")).context("ctx");
        assert_eq!(error_line(&e.expect_err("an error")), "ctx: two lines");
    }
}
