//! The head-to-head of HD against the learning-rate-free optimizers: on the same data, the
//! same minibatches and the same budget, how much does each method's result depend on its one
//! remaining knob?
//!
//! **Methods** ([`Method`]), each with exactly one knob: SGD, SGD-HD and SGD-HD stacked, Adam,
//! Adam-HD and Adam-HD stacked (α0; hd-core's [`Optimizer`](hd_core::Optimizer)); Prodigy (d0;
//! [`hd_core::Prodigy`], lr 1 and its other package defaults); Schedule-Free SGD and AdamW
//! (their learning rate; [`hd_core::ScheduleFree`], evaluated at the average x, trained at y).
//! β and κ of the HD rules are fixed by the plan.
//!
//! **The same problem for all.** Every run of a task minimises the same function: the
//! minibatch cross-entropy plus the coupled L2 term ½λ‖θ‖², whose gradient λθ the runner adds
//! to every method's gradient (g + λθ) while each method's own weight decay is 0. A seed fixes
//! the initialisation and the minibatch order, the same for every method. The model's
//! parameters are one flat buffer in a fixed order (the variables sorted by name), stepped on
//! the CPU by hd-core's slice API: HD's α and Prodigy's d are global, the paper's scope.
//!
//! **Data.** The first [`Plan::training`] images of the dataset's training split train; the
//! last [`Plan::validation`] validate (for MNIST and Fashion-MNIST, 50,000 and 10,000). The
//! test split is not used: the report picks each method's best knob value by validation loss,
//! which would be tuning on the test set.
//!
//! **Files.** `run` writes the plan's text to `DIR/plan.toml` and each finished run (done or
//! diverged) to `DIR/runs/<id>.json` ([`Record`]), atomically; a run whose record is there is
//! not run again, and a record made under other settings than the plan's is refused (stale).
//! `report` reads them back into `DIR/REPORT.md` and one figure per task.
//!
//! The submodules: `plan` (the TOML schema and its runs), `method` (the methods and their
//! [`Stepper`]), `runner` (training one run), `record` (its file), `summary` (the numbers a
//! task's table holds), `verdict` (the one sentence), `report` (the Markdown and figures).

mod method;
mod plan;
mod record;
mod report;
mod runner;
mod summary;
mod verdict;

use std::path::PathBuf;

pub use method::{config, Knob, Method, Side, Stepper, Tuned};
pub use plan::{knob_text, load, parse, Grid, Plan, RunSpec, Settings, Shard, Task};
pub use record::{Diverged, Epoch, Record, Window};
pub use report::report;
pub use runner::{run, Setup, Tally};
pub use summary::{summarise, Cell, Row, TaskSummary, WITHIN};
pub use verdict::{sentence, Standing, LOSS_SLACK, ROBUST_SLACK};

/// What can stop `versus run` or `versus report`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VersusError {
    /// The plan file cannot be read.
    #[error("cannot read the plan {}: {source}", file.display())]
    ReadPlan {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The plan is malformed.
    #[error("{}:{line}: {what}", file.display())]
    Plan {
        /// The file.
        file: PathBuf,
        /// The line (1-based).
        line: usize,
        /// The problem.
        what: String,
    },
    /// `--shard` is not `I/N` with 0 ≤ I < N.
    #[error("--shard {0:?}: expected I/N with 0 <= I < N, e.g. 0/2")]
    Shard(String),
    /// A file cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A record file is not a record.
    #[error("{}: not a record of versus run: {what}", path.display())]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// Why.
        what: String,
    },
    /// A record of the same run made under other settings than the plan's.
    #[error("{}: recorded with other settings than the plan's ({what}); move it aside to run it again", path.display())]
    Stale {
        /// The record.
        path: PathBuf,
        /// The first setting that differs.
        what: String,
    },
    /// The dataset has fewer training images than the plan's training and validation sets.
    #[error("{}: {have} training images, fewer than the plan's {training} for training and {validation} for validation", dir.display())]
    TooFewImages {
        /// The dataset's directory.
        dir: PathBuf,
        /// Its training images.
        have: i64,
        /// The plan's training images.
        training: i64,
        /// The plan's validation images.
        validation: i64,
    },
    /// A dataset file is missing or malformed.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A model cannot be built.
    #[error(transparent)]
    Model(#[from] crate::models::ModelError),
    /// libtorch failed.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// hd-core refused a step for another reason than a non-finite value (which is a
    /// divergence, a result).
    #[error("{run}: {source}")]
    Optimizer {
        /// The run's id.
        run: String,
        /// hd-core's error.
        source: hd_core::Error,
    },
    /// `report` found no plan in the directory.
    #[error("{}: no plan.toml (not an output directory of `hd-native versus run`)", dir.display())]
    NoPlan {
        /// The directory.
        dir: PathBuf,
    },
    /// A figure cannot be drawn.
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
}
