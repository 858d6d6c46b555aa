//! One finished run as a JSON file, `DIR/runs/<id>.json`: what `run` writes once a run ends
//! (done or diverged) and `report` reads.

use super::method::{Knob, Method};
use super::plan::{RunSpec, Settings};
use super::VersusError;
use crate::files;
use std::path::{Path, PathBuf};

/// The mean minibatch training loss over a window of iterations (about a tenth of an epoch).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// The iteration at the window's end, counted from 1 at the run's start.
    pub iteration: u64,
    /// The mean minibatch loss over the window's iterations.
    pub loss: f64,
}

/// One epoch's figures.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Epoch {
    /// The epoch, from 1.
    pub epoch: u32,
    /// The mean minibatch training loss over the epoch.
    pub train_loss: f64,
    /// The mean loss on the validation images, at the method's evaluation point.
    pub validation_loss: f64,
    /// The share of validation images classified correctly.
    pub validation_accuracy: f64,
}

/// Where and why a run diverged.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Diverged {
    /// The iteration at which it was found (counted from 1).
    pub iteration: u64,
    /// What was not finite.
    pub reason: String,
}

/// A finished run. Losses are cross-entropy (the L2 term is in the gradient every method
/// follows, not in the losses reported).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The task's name.
    pub task: String,
    /// The method.
    pub method: Method,
    /// What its knob is.
    pub knob: Knob,
    /// The knob's value.
    pub value: f32,
    /// The seed.
    pub seed: u64,
    /// Everything else the result depends on.
    pub settings: Settings,
    /// Iterations an epoch.
    pub iterations_per_epoch: u64,
    /// The training loss over windows of about a tenth of an epoch (ten an epoch, fewer when
    /// an epoch has fewer iterations), up to the last whole window before a divergence.
    pub windows: Vec<Window>,
    /// Every epoch completed.
    pub epochs: Vec<Epoch>,
    /// The last epoch's mean minibatch loss (`None` when the run diverged).
    pub final_train_loss: Option<f64>,
    /// The last epoch's validation loss (`None` when the run diverged).
    pub final_validation_loss: Option<f64>,
    /// Wall-clock seconds of the run (model built to last evaluation; data loading excluded).
    pub seconds: f64,
    /// `None` when every loss stayed finite; otherwise where it stopped.
    pub diverged: Option<Diverged>,
}

impl Record {
    /// Whether this record is of `run`: the same task, method, knob value, seed and settings.
    pub fn is_of(&self, run: &RunSpec) -> bool {
        self.task == run.task.name
            && self.method == run.tuned.method
            && self.value == run.value
            && self.seed == run.seed
            && self.settings == run.settings
    }
}

/// The directory of the records under an output directory.
pub fn dir(out: &Path) -> PathBuf {
    out.join("runs")
}

/// The record file of `run` under `out`.
pub fn path(out: &Path, run: &RunSpec) -> PathBuf {
    dir(out).join(format!("{}.json", run.id()))
}

/// Reads the record at `path` (a regular file, never through a link, up to 16 MiB).
///
/// # Errors
/// [`VersusError::Io`] when it cannot be read, [`VersusError::BadRecord`] when it is not a
/// record.
pub fn read(path: &Path) -> Result<Record, VersusError> {
    let text =
        files::read_text(path, files::STATE_LIMIT, files::Links::Refuse).map_err(|source| {
            VersusError::Io {
                path: path.to_path_buf(),
                source,
            }
        })?;
    serde_json::from_str(&text).map_err(|e| VersusError::BadRecord {
        path: path.to_path_buf(),
        what: e.to_string(),
    })
}

/// Writes `record` to `path` atomically (a reader sees the whole file or none).
///
/// # Errors
/// [`VersusError::Io`] naming the file.
pub fn write(path: &Path, record: &Record) -> Result<(), VersusError> {
    let io = |source| VersusError::Io {
        path: path.to_path_buf(),
        source,
    };
    let json = serde_json::to_string_pretty(record).map_err(|e| io(std::io::Error::other(e)))?;
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    // Two shards never write one record, but the temporary is per process all the same.
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    files::write_atomic(path, &tmp, |t| std::fs::write(t, json.as_bytes())).map_err(io)
}
