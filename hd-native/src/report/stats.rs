//! The figures the report computes from runs: the mean and band over seeds, and the α peaks
//! set beside the paper's stated values.

use crate::config::OptimizerKind;
use crate::models::Model;
use crate::plot::Run;

/// Mean, minimum and maximum of `ys` (finite values only; NaN when none).
pub(super) fn stats(ys: &[f64]) -> (f64, f64, f64) {
    let f: Vec<f64> = ys.iter().copied().filter(|y| y.is_finite()).collect();
    if f.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = f.iter().sum::<f64>() / f.len() as f64;
    let lo = f.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = f.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, lo, hi)
}

/// A curve with its band over seeds: `(x, mean, min, max)`.
pub(super) type Band = Vec<(f64, f64, f64, f64)>;

/// Pointwise mean and band of several runs' curves, over the points all of them have.
pub(super) fn band(curves: &[Vec<(f64, f64)>]) -> Band {
    let n = curves.iter().map(Vec::len).min().unwrap_or(0);
    (0..n)
        .map(|i| {
            let ys: Vec<f64> = curves.iter().map(|c| c[i].1).collect();
            let (m, lo, hi) = stats(&ys);
            (curves[0][i].0, m, lo, hi)
        })
        .filter(|p| p.1.is_finite())
        .collect()
}

/// The paper's stated values for a run: (what, paper value, band low, band high).
pub(super) fn paper_alpha_peak(model: &Model, o: OptimizerKind) -> Option<(f64, f64, f64)> {
    let small = matches!(model, Model::Logreg | Model::Mlp { .. });
    match (o, model) {
        // Read off the paper's Fig. 2: "≈ 0.05"; a factor of two either way.
        (OptimizerKind::SgdHd | OptimizerKind::SgdnHd, _) if small => Some((0.05, 0.025, 0.1)),
        // Stated to four digits in the paper's text; ±5 %.
        (OptimizerKind::AdamHd, Model::Logreg) => {
            Some((0.001174, 0.001174 / 1.05, 0.001174 * 1.05))
        }
        (OptimizerKind::AdamHd, Model::Mlp { .. }) => {
            Some((0.001083, 0.001083 / 1.05, 0.001083 * 1.05))
        }
        _ => None,
    }
}

/// Peak α of a run and the iteration where it is reached.
pub(super) fn alpha_peak(run: &Run) -> (f64, u64) {
    let (peak, epoch) = alpha_peak_epoch(run);
    let s = &run.summary;
    let per_epoch = s.iterations as f64 / f64::from(s.epochs_completed.max(1));
    (peak, (epoch * per_epoch).round() as u64)
}

/// Peak α of a run and the epoch (fraction) where it is reached.
pub(super) fn alpha_peak_epoch(run: &Run) -> (f64, f64) {
    run.alpha.iter().filter(|p| p.1.is_finite()).fold(
        (f64::NEG_INFINITY, 0.0),
        |(best, at), &(x, y)| {
            if y > best {
                (y, x)
            } else {
                (best, at)
            }
        },
    )
}

pub(super) fn tick(ok: bool) -> &'static str {
    if ok {
        "✓"
    } else {
        "✗"
    }
}
