//! The numbers of one task's table, from its records: per method and knob value the means
//! over seeds, and per method its best knob values, how many values come close to its best,
//! and how fast its best value reaches a training loss every method reaches.

use super::method::Method;
use super::plan::{Plan, Task};
use super::record::{Record, Window};

/// "Close to the best": a knob value whose mean final validation loss is at most
/// (1 + `WITHIN`) times the method's best.
pub const WITHIN: f64 = 0.10;

/// One method at one knob value, over the plan's seeds.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Every seed finished: the means over seeds.
    Done {
        /// Mean final training loss (the last epoch's mean minibatch loss).
        train: f64,
        /// Mean final validation loss.
        valid: f64,
        /// The lowest and highest seed's final validation loss.
        valid_range: (f64, f64),
        /// The windowed training loss, mean over seeds window by window.
        curve: Vec<Window>,
    },
    /// At least one seed diverged.
    Diverged {
        /// Seeds that diverged.
        seeds: usize,
        /// Seeds in the plan.
        of: usize,
    },
    /// Not every seed has a record yet (and none diverged).
    Missing {
        /// Seeds recorded.
        have: usize,
        /// Seeds in the plan.
        of: usize,
    },
}

/// One method on one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The method.
    pub method: Method,
    /// Its cells, one per knob value, in the plan's order.
    pub cells: Vec<(f32, Cell)>,
    /// The knob value of the lowest mean final training loss, and that loss.
    pub best_train: Option<(f32, f64)>,
    /// The knob value of the lowest mean final validation loss, and that loss.
    pub best_valid: Option<(f32, f64)>,
    /// Knob values whose mean final validation loss is within [`WITHIN`] of the best (a
    /// diverged or missing value is not).
    pub within: usize,
    /// At the knob value of its best training loss, the first iteration at which the mean
    /// windowed training loss is at most the task's target.
    pub to_target: Option<u64>,
}

/// One task's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSummary {
    /// The task.
    pub task: Task,
    /// One row per method, in the plan's order.
    pub rows: Vec<Row>,
    /// The largest of the methods' best final training losses: the training loss every
    /// method reaches at its best knob value.
    pub target: Option<f64>,
    /// The task's records.
    pub records: usize,
    /// Their wall-clock seconds, summed.
    pub seconds: f64,
}

/// The cell of `records` (one method at one knob value, any seeds) out of `seeds` seeds.
pub(super) fn cell(records: &[&Record], seeds: usize) -> Cell {
    let diverged = records.iter().filter(|r| r.diverged.is_some()).count();
    if diverged > 0 {
        return Cell::Diverged {
            seeds: diverged,
            of: seeds,
        };
    }
    let finals: Option<Vec<(f64, f64)>> = records
        .iter()
        .map(|r| Some((r.final_train_loss?, r.final_validation_loss?)))
        .collect();
    match finals {
        Some(f) if records.len() == seeds && seeds > 0 => {
            let n = seeds as f64;
            let valids = f.iter().map(|p| p.1);
            Cell::Done {
                train: f.iter().map(|p| p.0).sum::<f64>() / n,
                valid: f.iter().map(|p| p.1).sum::<f64>() / n,
                valid_range: (
                    valids.clone().fold(f64::INFINITY, f64::min),
                    valids.fold(f64::NEG_INFINITY, f64::max),
                ),
                curve: mean_curve(records),
            }
        }
        _ => Cell::Missing {
            have: records.len(),
            of: seeds,
        },
    }
}

/// The windowed training loss averaged over runs, window by window, over the windows every
/// run has (they share them: the same task has the same iterations an epoch).
fn mean_curve(records: &[&Record]) -> Vec<Window> {
    let n = records.iter().map(|r| r.windows.len()).min().unwrap_or(0);
    (0..n)
        .map(|i| Window {
            iteration: records[0].windows[i].iteration,
            loss: records.iter().map(|r| r.windows[i].loss).sum::<f64>() / records.len() as f64,
        })
        .collect()
}

/// The lowest of `cells`' values by `key`, with its knob value.
fn best(cells: &[(f32, Cell)], key: impl Fn(&Cell) -> Option<f64>) -> Option<(f32, f64)> {
    cells.iter().filter_map(|(v, c)| Some((*v, key(c)?))).fold(
        None,
        |b: Option<(f32, f64)>, (v, x)| match b {
            Some((_, y)) if y <= x => b,
            _ => Some((v, x)),
        },
    )
}

/// A row's numbers but the iterations to the target (which need every row's best).
pub(super) fn row(method: Method, cells: Vec<(f32, Cell)>) -> Row {
    let best_train = best(&cells, |c| match c {
        Cell::Done { train, .. } => Some(*train),
        _ => None,
    });
    let best_valid = best(&cells, |c| match c {
        Cell::Done { valid, .. } => Some(*valid),
        _ => None,
    });
    let within = best_valid.map_or(0, |(_, b)| {
        cells
            .iter()
            .filter(|(_, c)| matches!(c, Cell::Done { valid, .. } if *valid <= b * (1.0 + WITHIN)))
            .count()
    });
    Row {
        method,
        cells,
        best_train,
        best_valid,
        within,
        to_target: None,
    }
}

/// Sets the task's target (the largest best final training loss) and each row's iterations
/// to it at the knob value of its best training loss.
pub(super) fn with_target(rows: &mut [Row]) -> Option<f64> {
    let target = rows
        .iter()
        .filter_map(|r| r.best_train.map(|b| b.1))
        .fold(None, |t: Option<f64>, x| Some(t.map_or(x, |t| t.max(x))));
    for r in rows.iter_mut() {
        r.to_target = target.and_then(|t| {
            let (v, _) = r.best_train?;
            let (_, cell) = r.cells.iter().find(|(k, _)| *k == v)?;
            let Cell::Done { curve, .. } = cell else {
                return None;
            };
            curve.iter().find(|w| w.loss <= t).map(|w| w.iteration)
        });
    }
    target
}

/// Each task's numbers from `records` (any order; records of runs the plan does not hold are
/// left out).
pub fn summarise(plan: &Plan, records: &[Record]) -> Vec<TaskSummary> {
    let runs = plan.runs();
    let of_plan: Vec<&Record> = records
        .iter()
        .filter(|r| runs.iter().any(|s| r.is_of(s)))
        .collect();
    plan.tasks
        .iter()
        .map(|task| {
            let mine: Vec<&Record> = of_plan
                .iter()
                .copied()
                .filter(|r| r.task == task.name)
                .collect();
            let mut rows: Vec<Row> = plan
                .methods
                .iter()
                .map(|g| {
                    let cells = g
                        .values
                        .iter()
                        .map(|&v| {
                            let rs: Vec<&Record> = mine
                                .iter()
                                .copied()
                                .filter(|r| r.method == g.tuned.method && r.value == v)
                                .collect();
                            (v, cell(&rs, plan.seeds.len()))
                        })
                        .collect();
                    row(g.tuned.method, cells)
                })
                .collect();
            let target = with_target(&mut rows);
            TaskSummary {
                task: task.clone(),
                rows,
                target,
                records: mine.len(),
                seconds: mine.iter().map(|r| r.seconds).sum(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versus::Diverged;

    fn record(valid: Option<f64>, diverged: bool) -> Record {
        Record {
            task: "t".into(),
            method: Method::Sgd,
            knob: Method::Sgd.knob(),
            value: 1e-3,
            seed: 0,
            settings: crate::versus::Settings {
                model: crate::models::Model::Logreg,
                dataset: crate::data::DatasetKind::Mnist,
                epochs: 1,
                batch: 128,
                l2: 1e-4,
                training: 50_000,
                validation: 10_000,
                beta: None,
                kappa: None,
            },
            iterations_per_epoch: 2,
            windows: vec![Window {
                iteration: 2,
                loss: valid.unwrap_or(1.0),
            }],
            epochs: Vec::new(),
            final_train_loss: valid,
            final_validation_loss: valid,
            seconds: 1.0,
            diverged: diverged.then(|| Diverged {
                iteration: 1,
                reason: "r".into(),
            }),
        }
    }

    /// A diverged seed makes the value diverged, even with seeds missing; fewer records than
    /// seeds is missing; all of them is their means, with the range over seeds.
    #[test]
    fn a_cell_is_diverged_missing_or_the_means_over_seeds() {
        let (a, b, d) = (
            record(Some(0.2), false),
            record(Some(0.4), false),
            record(None, true),
        );
        assert_eq!(cell(&[&d], 3), Cell::Diverged { seeds: 1, of: 3 });
        assert_eq!(cell(&[&a], 3), Cell::Missing { have: 1, of: 3 });
        let Cell::Done {
            train,
            valid,
            valid_range,
            curve,
        } = cell(&[&a, &b], 2)
        else {
            panic!("done");
        };
        assert!((train - 0.3).abs() < 1e-15 && (valid - 0.3).abs() < 1e-15);
        assert_eq!(valid_range, (0.2, 0.4));
        assert_eq!(curve.len(), 1);
        assert!((curve[0].loss - 0.3).abs() < 1e-15);
    }

    /// Best 0.30: 0.32 is within 10 % (≤ 0.33), 0.34 is not, a diverged value never; the
    /// target is the larger best training loss, met at the first window at or below it.
    #[test]
    fn within_counts_and_the_target_follow_their_definitions() {
        let done = |loss: f64, curve: &[f64]| Cell::Done {
            train: loss,
            valid: loss,
            valid_range: (loss, loss),
            curve: curve
                .iter()
                .enumerate()
                .map(|(i, &l)| Window {
                    iteration: 10 * (i as u64 + 1),
                    loss: l,
                })
                .collect(),
        };
        let a = row(
            Method::Sgd,
            vec![
                (1e-1, Cell::Diverged { seeds: 1, of: 1 }),
                (1e-2, done(0.30, &[0.9, 0.45, 0.3])),
                (1e-3, done(0.32, &[0.9, 0.5, 0.32])),
                (1e-4, done(0.34, &[0.9, 0.5, 0.34])),
            ],
        );
        assert_eq!((a.best_valid, a.within), (Some((1e-2, 0.30)), 2));
        let b = row(Method::Prodigy, vec![(1e-6, done(0.5, &[0.9, 0.5]))]);
        let mut rows = [a, b];
        assert_eq!(with_target(&mut rows), Some(0.5));
        assert_eq!((rows[0].to_target, rows[1].to_target), (Some(20), Some(20)));
    }
}
