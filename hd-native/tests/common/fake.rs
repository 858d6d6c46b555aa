//! Runs as `train` writes them, built without training ([`Fake`]), for the report's tests.

use hd_native::config::{Options, Variant};
use hd_native::data::DatasetKind;
use hd_native::models::Model;
use hd_native::run_dir::{EpochColumns, LogRow, LOG_HEADER};
use serde_json::json;
use std::path::Path;

/// A run as `train` writes it, built here: LogReg on MNIST at the paper's settings.
pub struct Fake {
    pub optimizer: Variant,
    pub alpha0: f32,
    pub beta: Option<f32>,
    /// Epochs its configuration asks for.
    pub epochs: u32,
    /// Epochs it completed (a diverged run: before the one it diverged in).
    pub completed: u32,
    /// Iterations an epoch.
    pub per_epoch: u64,
    /// α after iteration i (from 1).
    pub alpha: Box<dyn Fn(u64) -> f32>,
    /// The minibatch loss of iteration i.
    pub loss: Box<dyn Fn(u64) -> f32>,
    pub diverged: bool,
    /// `config.stop_at_loss`: the run stops after the epoch in which the loss first reaches it.
    pub stop_at_loss: Option<f64>,
}

impl Fake {
    pub fn new(optimizer: Variant, epochs: u32) -> Fake {
        Fake {
            optimizer,
            alpha0: 0.001,
            beta: None,
            epochs,
            completed: epochs,
            per_epoch: 469,
            alpha: Box::new(|_| 0.001),
            loss: Box::new(|i| 0.3 + 1.0 / (i as f32)),
            diverged: false,
            stop_at_loss: None,
        }
    }

    pub fn alpha(mut self, f: impl Fn(u64) -> f32 + 'static) -> Fake {
        self.alpha = Box::new(f);
        self
    }

    pub fn loss(mut self, f: impl Fn(u64) -> f32 + 'static) -> Fake {
        self.loss = Box::new(f);
        self
    }

    pub fn completed(mut self, epochs: u32) -> Fake {
        self.completed = epochs;
        self
    }

    pub fn diverged(mut self) -> Fake {
        self.diverged = true;
        self
    }

    pub fn grid(mut self, alpha0: f32, beta: Option<f32>) -> Fake {
        self.alpha0 = alpha0;
        self.beta = beta;
        self.stop_at_loss = Some(0.29);
        self
    }

    /// Writes `summary.json` and `log.csv` into `dir`.
    pub fn write(&self, dir: &Path) {
        let config = Options {
            model: Some(Model::Logreg),
            dataset: Some(DatasetKind::Mnist),
            optimizer: Some(self.optimizer),
            alpha0: Some(self.alpha0),
            beta: self.beta,
            epochs: Some(self.epochs),
            stop_at_loss: self.stop_at_loss,
            paper: true,
            ..Default::default()
        }
        .resolve()
        .expect("a valid run");
        let mut log = format!("{LOG_HEADER}\n");
        let first = EpochColumns {
            train_loss: 2.3,
            test_loss: 2.3,
            test_accuracy: 0.1,
        };
        log.push_str(
            &LogRow {
                epoch: 0,
                iteration: 0,
                time: 0.0,
                loss: None,
                alpha: self.alpha0,
                beta: config.beta(),
                epoch_columns: Some(first),
            }
            .to_line(),
        );
        let mut last = json!({"epoch": 0, "train_loss": 2.3, "test_loss": 2.3,
                              "test_accuracy": 0.1, "alpha": self.alpha0});
        let mut reached = None;
        let mut completed = 0;
        let mut iterations = 0;
        let mut divergence = None;
        'epochs: for epoch in 1..=self.completed + u32::from(self.diverged) {
            let mut sum = 0.0;
            for k in 1..=self.per_epoch {
                let i = u64::from(epoch - 1) * self.per_epoch + k;
                let diverges = self.diverged && epoch > self.completed && k == 3;
                let loss = if diverges { f32::NAN } else { (self.loss)(i) };
                let alpha = (self.alpha)(i);
                sum += f64::from(loss);
                let end = k == self.per_epoch;
                let mean = sum / self.per_epoch as f64;
                let columns = end.then_some(EpochColumns {
                    train_loss: mean,
                    test_loss: mean + 0.01,
                    test_accuracy: 0.9,
                });
                log.push_str(
                    &LogRow {
                        epoch,
                        iteration: i,
                        time: i as f64 * 1e-3,
                        loss: Some(loss),
                        alpha,
                        beta: config.beta(),
                        epoch_columns: columns,
                    }
                    .to_line(),
                );
                if diverges {
                    divergence = Some(json!({"epoch": epoch, "iteration": i,
                                             "reason": "the training loss is NaN"}));
                    break 'epochs;
                }
                if let Some(t) = self.stop_at_loss {
                    if reached.is_none() && f64::from(loss) <= t {
                        reached = Some(json!({"iteration": i, "epoch": epoch,
                                              "loss": f64::from(loss)}));
                    }
                }
                if end {
                    completed = epoch;
                    iterations = i;
                    last = json!({"epoch": epoch, "train_loss": mean, "test_loss": mean + 0.01,
                                  "test_accuracy": 0.9, "alpha": alpha});
                }
            }
            if reached.is_some() {
                break;
            }
        }
        let config = serde_json::to_value(&config).expect("config");
        let finished = divergence.is_none() && (completed == self.epochs || reached.is_some());
        let mut summary = json!({
            "config": config,
            "label": self.optimizer.label(),
            "title": "LogReg on mnist",
            "device": "Cpu",
            "parameters": 7850,
            "epochs_completed": completed,
            "iterations": iterations,
            "finished": finished,
            "elapsed_seconds": 1.0,
            "images_per_second": 1000.0,
            "last": last,
            "best_test_accuracy": 0.9,
            "diverged": divergence,
        });
        if self.stop_at_loss.is_some() {
            summary["reached"] = reached.unwrap_or(serde_json::Value::Null);
        }
        std::fs::create_dir_all(dir).expect("run dir");
        std::fs::write(dir.join("log.csv"), log).expect("log");
        std::fs::write(
            dir.join("summary.json"),
            serde_json::to_string_pretty(&summary).expect("json"),
        )
        .expect("summary");
        // What the report reads must be what `train` writes.
        let _ = super::summary(dir);
    }
}
