//! `log.csv`'s schema: [`LOG_HEADER`], owned by [`LogRow`], the one place its columns are
//! written and read.

use super::summary::{EpochStats, Reached};

/// The header of `log.csv`.
pub const LOG_HEADER: &str =
    "Epoch,Iteration,Time,Loss,LossEpoch,ValidLossEpoch,Alpha,AlphaEpoch,Beta,ValidAccEpoch";

/// An f32 written so that it reads back to the same bits.
fn num(x: f32) -> String {
    format!("{x}")
}

/// The epoch columns of a log row: on row 0 (the model before training) and on each epoch's
/// last row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochColumns {
    /// `LossEpoch`: the mean training minibatch loss (row 0: the training-set loss).
    pub train_loss: f64,
    /// `ValidLossEpoch`: the test-set loss.
    pub test_loss: f64,
    /// `ValidAccEpoch`: the test-set accuracy in [0, 1].
    pub test_accuracy: f64,
}

/// One row of `log.csv`: the one place its columns ([`LOG_HEADER`]) are written and read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRow {
    /// `Epoch` (0: before training).
    pub epoch: u32,
    /// `Iteration`, counted from the start of the run.
    pub iteration: u64,
    /// `Time`: wall-clock seconds since the run started, over every session.
    pub time: f64,
    /// `Loss`: the minibatch loss (none on row 0).
    pub loss: Option<f32>,
    /// `Alpha` (and `AlphaEpoch` on an epoch row): α after this iteration.
    pub alpha: f32,
    /// `Beta`: the hypergradient rate in use.
    pub beta: f32,
    /// The epoch columns, on row 0 and each epoch's last row.
    pub epoch_columns: Option<EpochColumns>,
}

impl LogRow {
    /// The row as a line of `log.csv` (with its newline). Numbers are written so that they
    /// read back to the same value; absent values are empty fields.
    pub fn to_line(&self) -> String {
        let e = self.epoch_columns;
        let field = |x: Option<String>| x.unwrap_or_default();
        format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            self.epoch,
            self.iteration,
            self.time,
            field(self.loss.map(num)),
            field(e.map(|e| e.train_loss.to_string())),
            field(e.map(|e| e.test_loss.to_string())),
            num(self.alpha),
            field(e.map(|_| num(self.alpha))),
            num(self.beta),
            field(e.map(|e| e.test_accuracy.to_string())),
        )
    }

    /// Parses the fields of a line (split at commas); `None` for anything but a whole row.
    pub fn from_fields(fields: &[&str]) -> Option<LogRow> {
        let [epoch, iteration, time, loss, train_loss, test_loss, alpha, _, beta, test_accuracy] =
            fields
        else {
            return None;
        };
        let optional = |f: &str| -> Option<Option<f64>> {
            if f.is_empty() {
                Some(None)
            } else {
                f.parse().ok().map(Some)
            }
        };
        let epoch_columns = match (
            optional(train_loss)?,
            optional(test_loss)?,
            optional(test_accuracy)?,
        ) {
            (Some(train_loss), Some(test_loss), Some(test_accuracy)) => Some(EpochColumns {
                train_loss,
                test_loss,
                test_accuracy,
            }),
            (None, None, None) => None,
            _ => return None,
        };
        Some(LogRow {
            epoch: epoch.parse().ok()?,
            iteration: iteration.parse().ok()?,
            time: time.parse().ok()?,
            loss: if loss.is_empty() {
                None
            } else {
                Some(loss.parse().ok()?)
            },
            alpha: alpha.parse().ok()?,
            beta: beta.parse().ok()?,
            epoch_columns,
        })
    }

    /// The figures of an epoch row (`None` for other rows).
    pub fn epoch_stats(&self) -> Option<EpochStats> {
        self.epoch_columns.map(|e| EpochStats {
            epoch: self.epoch,
            train_loss: e.train_loss,
            test_loss: e.test_loss,
            test_accuracy: e.test_accuracy,
            alpha: f64::from(self.alpha),
        })
    }
}

/// The figures of an epoch's last row (`None` for other rows).
pub fn parse_epoch_row(fields: &[&str]) -> Option<EpochStats> {
    LogRow::from_fields(fields)?.epoch_stats()
}

impl Reached {
    /// The first row of `rows` whose minibatch loss is at most `target`.
    pub fn first(rows: &[LogRow], target: f64) -> Option<Reached> {
        rows.iter().find_map(|r| {
            let loss = f64::from(r.loss?);
            (loss <= target).then_some(Reached {
                iteration: r.iteration,
                epoch: r.epoch,
                loss,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three kinds of row, written by hand in LOG_HEADER's column order, and read back.
    #[test]
    fn log_rows_own_the_schema() {
        let epoch_columns = Some(EpochColumns {
            train_loss: 2.5,
            test_loss: 2.25,
            test_accuracy: 0.125,
        });
        let first = LogRow {
            epoch: 0,
            iteration: 0,
            time: 0.5,
            loss: None,
            alpha: 0.001,
            beta: 0.0,
            epoch_columns,
        };
        assert_eq!(first.to_line(), "0,0,0.5,,2.5,2.25,0.001,0.001,0,0.125\n");
        let step = LogRow {
            epoch: 1,
            iteration: 7,
            time: 1.5,
            loss: Some(0.75),
            alpha: 0.002,
            beta: 1e-7,
            epoch_columns: None,
        };
        assert_eq!(step.to_line(), "1,7,1.5,0.75,,,0.002,,0.0000001,\n");
        let last = LogRow {
            epoch_columns,
            ..step
        };
        assert_eq!(
            last.to_line(),
            "1,7,1.5,0.75,2.5,2.25,0.002,0.002,0.0000001,0.125\n"
        );
        for row in [first, step, last] {
            let line = row.to_line();
            let fields: Vec<&str> = line.trim_end().split(',').collect();
            assert_eq!(fields.len(), LOG_HEADER.split(',').count());
            assert_eq!(LogRow::from_fields(&fields), Some(row));
        }
        assert_eq!(
            parse_epoch_row(&[
                "1", "7", "1.5", "0.75", "2.5", "2.25", "0.002", "0.002", "0", "0.125"
            ]),
            Some(EpochStats {
                epoch: 1,
                train_loss: 2.5,
                test_loss: 2.25,
                test_accuracy: 0.125,
                alpha: f64::from(0.002f32),
            })
        );
        // Half a line (a killed run) or epoch columns half filled are not rows.
        assert_eq!(LogRow::from_fields(&["1", "7", "1.5"]), None);
        assert_eq!(
            LogRow::from_fields(&["1", "7", "1.5", "0.75", "2.5", "", "0.002", "", "0", ""]),
            None
        );
    }
}
