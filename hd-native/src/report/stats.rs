//! The figures the report computes from runs: the mean and band over seeds, and a value with
//! its range over seeds as the report writes it.

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

/// The mean of `ys` written by `f`, followed by their range when there are several that
/// differ: `0.0490 (0.0460–0.0510)`.
pub(super) fn fmt_range(ys: &[f64], f: impl Fn(f64) -> String) -> String {
    let (mean, lo, hi) = stats(ys);
    let (m, l, h) = (f(mean), f(lo), f(hi));
    if ys.len() > 1 && l != h {
        format!("{m} ({l}–{h})")
    } else {
        m
    }
}

/// `x` to `digits` significant digits, plainly written: `0.001115`, `0.05`, `33`.
pub(crate) fn sig(x: f64, digits: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (digits - 1 - x.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// 60000 as "60,000".
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A curve with its band over seeds: `(x, mean, min, max)`.
pub(crate) type Band = Vec<(f64, f64, f64, f64)>;

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
