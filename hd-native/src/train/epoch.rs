//! One epoch of training, as the [`Trainer`] runs it (and its row 0, the model before
//! training): the evaluation on a split, the per-epoch seed, the batch arithmetic and the
//! progress bar.

use super::log::{read_back, LOG_EVERY};
use super::signals::stop_requested;
use super::{TrainError, Trainer};
use crate::data::{Dataset, Split};
use crate::models::Net;
use crate::run_dir::{Divergence, EpochColumns, EpochStats, LogRow, Reached};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;
use tch::{Kind, TchError, Tensor};

/// The seed of one epoch's shuffling and augmentation: a SplitMix64 finaliser of
/// `(seed, epoch)`, so neighbouring epochs and seeds get unrelated streams.
fn epoch_seed(seed: u64, epoch: u32) -> i64 {
    let mut z = seed ^ (u64::from(epoch).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as i64 & i64::MAX
}

/// Mean loss and accuracy of `net` on a split, evaluated in inference mode.
pub(crate) fn evaluate(net: &Net, data: &Dataset, split: &Split) -> Result<(f64, f64), TchError> {
    let n = split.len();
    let device = split.labels.device();
    tch::no_grad(|| {
        let mut loss = Tensor::f_zeros([], (Kind::Double, device))?;
        let mut correct = Tensor::f_zeros([], (Kind::Int64, device))?;
        let mut start = 0;
        while start < n {
            let len = 500.min(n - start);
            let index = Tensor::f_arange_start(start, start + len, (Kind::Int64, device))?;
            let (x, y) = data.batch(split, &index, false)?;
            let logits = net.forward_t(&x, false);
            let l = logits.f_log_softmax(-1, Kind::Float)?.f_nll_loss(
                &y,
                None::<Tensor>,
                tch::Reduction::Sum,
                -100,
            )?;
            loss = loss.f_add(&l.f_to_kind(Kind::Double)?)?;
            let hits = logits
                .f_argmax(-1, false)?
                .f_eq_tensor(&y)?
                .f_sum(Kind::Int64)?;
            correct = correct.f_add(&hits)?;
            start += len;
        }
        let loss = loss.f_double_value(&[])? / n.max(1) as f64;
        let acc = correct.f_int64_value(&[])? as f64 / n.max(1) as f64;
        Ok((loss, acc))
    })
}

/// Mean cross-entropy of `logits` `[b, classes]` against class indices `labels` `[b]`.
///
/// # Errors
/// A libtorch error (shapes that do not match, a label out of range).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor, TchError> {
    logits.f_log_softmax(-1, Kind::Float)?.f_nll_loss(
        labels,
        None::<Tensor>,
        tch::Reduction::Mean,
        -100,
    )
}

/// How an epoch ended.
pub(super) enum EpochEnd {
    /// Every iteration done and the model finite: its figures and training seconds.
    Done(EpochStats, f64),
    /// A loss, parameter or α became non-finite.
    Diverged(Divergence),
    /// A stop signal arrived (its number).
    Stopped(i32),
}

impl Trainer<'_> {
    /// Evaluates the model before training and logs it as row 0.
    pub(super) fn initial_row(&mut self) -> Result<Result<EpochStats, Divergence>, TrainError> {
        let (train_loss, _) = evaluate(self.net, self.data, &self.data.train)?;
        let (test_loss, test_accuracy) = evaluate(self.net, self.data, &self.data.test)?;
        let row = LogRow {
            epoch: 0,
            iteration: 0,
            time: self.clock.seconds(),
            loss: None,
            alpha: self.opt.alpha_value()?,
            beta: self.config.beta(),
            epoch_columns: Some(EpochColumns {
                train_loss,
                test_loss,
                test_accuracy,
            }),
        };
        self.log.append(&[row])?;
        self.log.sync()?;
        if !train_loss.is_finite() || !test_loss.is_finite() {
            return Ok(Err(Divergence {
                epoch: 0,
                iteration: 0,
                reason: "the loss of the initial model is not finite".into(),
            }));
        }
        Ok(row.epoch_stats().ok_or(Divergence {
            epoch: 0,
            iteration: 0,
            reason: "row 0 has no figures".into(),
        }))
    }

    /// Trains one epoch: a fresh shuffle from (seed, epoch), one step per minibatch, the
    /// losses and α read back [`LOG_EVERY`] iterations at a time and logged, then the test
    /// set evaluated and the epoch row logged and synced.
    pub(super) fn epoch(&mut self, epoch: u32) -> Result<EpochEnd, TrainError> {
        let (n, batch, per_epoch) = (self.data.train.len(), self.batch, self.per_epoch);
        let device = self.data.train.labels.device();
        let bar = progress_bar(self.progress, per_epoch as u64, epoch, self.config.epochs);
        tch::manual_seed(epoch_seed(self.config.seed, epoch));
        let perm = Tensor::f_randperm(n, (Kind::Int64, device))?;
        let epoch_start = Instant::now();
        let mut pending: Vec<(Tensor, Tensor, f64)> = Vec::with_capacity(LOG_EVERY);
        let mut loss_sum = 0.0f64;
        let mut last_row = None;
        for i in 0..per_epoch {
            // i · batch < n: only a batch smaller than the set makes more than one.
            let start = i * batch;
            let index = perm.f_narrow(0, start, batch.min(n - start))?;
            let (x, y) = self.data.batch(&self.data.train, &index, true)?;
            let loss = cross_entropy(&self.net.forward_t(&x, true), &y)?;
            self.opt.backward_step(&loss)?;
            pending.push((loss.f_detach()?, self.opt.alpha()?, self.clock.seconds()));
            if let Some(signal) = stop_requested() {
                // The rows of this epoch are ahead of the checkpoint: a resume drops them.
                return Ok(EpochEnd::Stopped(signal));
            }
            if pending.len() < LOG_EVERY && i + 1 < per_epoch {
                continue;
            }
            let mut rows = read_back(&pending)?
                .into_iter()
                .map(|(loss, alpha, time)| {
                    self.iteration += 1;
                    LogRow {
                        epoch,
                        iteration: self.iteration,
                        time,
                        loss: Some(loss),
                        alpha,
                        beta: self.config.beta(),
                        epoch_columns: None,
                    }
                })
                .collect::<Vec<_>>();
            if let Some(bad) = rows
                .iter()
                .position(|r| r.loss.is_some_and(|l| !l.is_finite()))
            {
                self.log.append(&rows[..bad])?;
                return Ok(EpochEnd::Diverged(Divergence {
                    epoch,
                    iteration: rows[bad].iteration,
                    reason: "the training loss is not finite".into(),
                }));
            }
            if let (Some(target), None) = (self.config.stop_at_loss, self.reached) {
                self.reached = Reached::first(&rows, target);
            }
            loss_sum += rows
                .iter()
                .filter_map(|r| r.loss)
                .map(f64::from)
                .sum::<f64>();
            if let Some(r) = rows.last() {
                bar.set_message(format!(
                    "loss {:.4}  α {:.3e}",
                    r.loss.unwrap_or(f32::NAN),
                    r.alpha
                ));
            }
            bar.inc(pending.len() as u64);
            pending.clear();
            // The epoch's last row gets the epoch columns once the test set is evaluated.
            if i + 1 == per_epoch {
                last_row = rows.pop();
            }
            self.log.append(&rows)?;
        }
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        let (test_loss, test_accuracy) = evaluate(self.net, self.data, &self.data.test)?;
        let train_loss = loss_sum / per_epoch as f64;
        let alpha = self.opt.alpha_value()?;
        let row = LogRow {
            alpha,
            epoch_columns: Some(EpochColumns {
                train_loss,
                test_loss,
                test_accuracy,
            }),
            ..last_row.unwrap_or(LogRow {
                epoch,
                iteration: self.iteration,
                time: self.clock.seconds(),
                loss: None,
                alpha,
                beta: self.config.beta(),
                epoch_columns: None,
            })
        };
        self.log.append(&[row])?;
        self.log.sync()?;
        bar.finish_with_message(format!(
            "loss {train_loss:.4}  test loss {test_loss:.4}  test acc {:.2}%  α {alpha:.3e}",
            100.0 * test_accuracy
        ));
        // A blown-up model can still give finite minibatch losses until the test set shows
        // it: its checkpoint must not replace the last finite one.
        let reason = if !test_loss.is_finite() {
            Some("the test loss is not finite")
        } else if !train_loss.is_finite() {
            Some("the training loss is not finite")
        } else if self.opt.check_finite().is_err() {
            Some("a parameter or α is not finite")
        } else {
            None
        };
        Ok(match (reason, row.epoch_stats()) {
            (None, Some(stats)) => EpochEnd::Done(stats, train_seconds),
            (reason, _) => EpochEnd::Diverged(Divergence {
                epoch,
                iteration: self.iteration,
                reason: reason.unwrap_or("the epoch row has no figures").into(),
            }),
        })
    }
}

/// The batch size in use and the iterations per epoch for `n` training images: a batch
/// larger than the set is the whole set (ceil(n / batch) computed without overflow).
pub(crate) fn batches(n: i64, batch: i64) -> (i64, i64) {
    let batch = batch.clamp(1, n.max(1));
    let per_epoch = if n <= 0 { 0 } else { (n - 1) / batch + 1 };
    (batch, per_epoch)
}

fn progress_bar(show: bool, len: u64, epoch: u32, epochs: u32) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len} {rate} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key(
        "rate",
        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0} it/s", state.per_sec());
        },
    )
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ceil(n / batch) by hand, and a batch beyond the set (up to i64::MAX, which overflowed
    /// `n + batch - 1`) is the whole set.
    #[test]
    fn batches_never_overflow() {
        assert_eq!(batches(640, 32), (32, 20));
        assert_eq!(batches(641, 32), (32, 21));
        assert_eq!(batches(200, 100_000), (200, 1));
        assert_eq!(batches(200, i64::MAX), (200, 1));
        assert_eq!(batches(1, 1), (1, 1));
    }
}
