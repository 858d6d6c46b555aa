//! `summary.json` ([`Summary`]): the configuration, the latest figures of each epoch
//! ([`EpochStats`]), when a run diverged, where and why ([`Divergence`]), and where a run with
//! a target loss met it ([`Reached`], found in the log by `Reached::first`).

use crate::config::RunConfig;

/// Where and why a run diverged (`summary.json`'s `diverged`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Divergence {
    /// The epoch under way.
    pub epoch: u32,
    /// The iteration (counted from the start of the run).
    pub iteration: u64,
    /// What was not finite.
    pub reason: String,
}

/// Where a run with a target loss (`--stop-at-loss`) first met it (`summary.json`'s `reached`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reached {
    /// The iteration, counted from 1 at the run's first step (log.csv's `Iteration`).
    pub iteration: u64,
    /// Its epoch.
    pub epoch: u32,
    /// Its minibatch training loss, at most the target.
    pub loss: f64,
}

/// One epoch's figures, as in the epoch columns of `log.csv`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochStats {
    /// Epoch (0 is before training).
    pub epoch: u32,
    /// Mean training minibatch loss over the epoch (epoch 0: training-set loss).
    #[serde(deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    /// Test-set loss.
    #[serde(deserialize_with = "nan_if_null")]
    pub test_loss: f64,
    /// Test-set accuracy in [0, 1].
    #[serde(deserialize_with = "nan_if_null")]
    pub test_accuracy: f64,
    /// α at the end of the epoch.
    #[serde(deserialize_with = "nan_if_null")]
    pub alpha: f64,
}

/// JSON has no NaN: serde_json writes a non-finite figure as `null`, and this reads `null`
/// back as NaN, so every `summary.json` written reads back.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// `summary.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// The run's configuration.
    pub config: RunConfig,
    /// Plot legend.
    pub label: String,
    /// Plot title.
    pub title: String,
    /// The device it ran on last.
    pub device: String,
    /// Trainable parameters.
    pub parameters: i64,
    /// Epochs completed.
    pub epochs_completed: u32,
    /// Iterations completed.
    pub iterations: u64,
    /// Whether every epoch asked for is done.
    pub finished: bool,
    /// Wall-clock seconds, over every session of the run.
    #[serde(deserialize_with = "nan_if_null")]
    pub elapsed_seconds: f64,
    /// Training images per second in the last epoch (training only, not evaluation).
    #[serde(deserialize_with = "nan_if_null")]
    pub images_per_second: f64,
    /// The last epoch's figures.
    pub last: EpochStats,
    /// The best test accuracy of any epoch.
    #[serde(deserialize_with = "nan_if_null")]
    pub best_test_accuracy: f64,
    /// Where and why the run diverged; `null` while it has not.
    #[serde(default)]
    pub diverged: Option<Divergence>,
    /// With a target loss, where it was first met; `null` while it has not been (or without
    /// a target).
    #[serde(default)]
    pub reached: Option<Reached>,
}

pub(crate) fn best(history: &[EpochStats]) -> f64 {
    history
        .iter()
        .map(|s| s.test_accuracy)
        .fold(f64::NAN, f64::max)
}
