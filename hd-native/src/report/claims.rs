//! The paper's claims checked on our runs, each with a [`Verdict`]: ✓ or ✗ only when every
//! run the claim rests on is there and done, otherwise what keeps it from being judged.
//!
//! **When a claim is judged.** Every run it rests on (every seed of every series it compares)
//! must be done. The exception is a claim about the first iterations, judged on runs still
//! under way only when they are past what it is about:
//! - an α peak (and which of two peaks comes first), once the run has completed the epoch
//!   after the peak's and its α, averaged over its last completed epoch, has given back at
//!   least [`DECAY_GIVEN_BACK`] of its rise above α0. α climbs while successive minibatch
//!   gradients agree and falls once they do not; after a whole epoch of having given back half
//!   of the rise the peak is behind. (A second, higher peak later is possible in principle and
//!   not in the paper's runs; this rule accepts that risk for peaks only.)
//! - the share of negative α over the reference logs' epochs, once those epochs are complete:
//!   it depends on nothing after them.
//!
//! A diverged seed, a missing run or an unreadable one is never passed over: the claim shows
//! it instead of ✓ or ✗.

use super::paper::{self, Net, Peak, DECAY_GIVEN_BACK};
use super::runs::{least_incomplete, RunData, Series, Status};
use super::stats::{fmt_range, sig, stats};
use crate::config::Variant;
use std::fmt;

/// What a claim came to.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    /// Holds, within the band stated.
    Pass,
    /// Does not hold.
    Fail,
    /// `missing` of the `of` runs it rests on do not exist.
    NotRun {
        who: Option<String>,
        missing: usize,
        of: usize,
        unit: &'static str,
    },
    /// `n` of the `of` runs diverged.
    Diverged {
        who: Option<String>,
        n: usize,
        of: usize,
        unit: &'static str,
    },
    /// `n` of the `of` runs' files cannot be read.
    Unreadable {
        who: Option<String>,
        n: usize,
        of: usize,
    },
    /// A run has completed `done` of its `of` epochs.
    Incomplete {
        who: Option<String>,
        done: u32,
        of: u32,
    },
}

/// The kinds of verdict, for the report's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Pass,
    Fail,
    NotRun,
    Incomplete,
    Diverged,
    Unreadable,
}

impl Verdict {
    pub(super) fn kind(&self) -> Kind {
        match self {
            Verdict::Pass => Kind::Pass,
            Verdict::Fail => Kind::Fail,
            Verdict::NotRun { .. } => Kind::NotRun,
            Verdict::Diverged { .. } => Kind::Diverged,
            Verdict::Unreadable { .. } => Kind::Unreadable,
            Verdict::Incomplete { .. } => Kind::Incomplete,
        }
    }

    fn tick(ok: bool) -> Verdict {
        if ok {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = |w: &Option<String>| w.as_ref().map_or(String::new(), |w| format!("{w}: "));
        match self {
            Verdict::Pass => f.write_str("✓"),
            Verdict::Fail => f.write_str("✗"),
            Verdict::NotRun {
                who: w,
                missing,
                of,
                unit,
            } => {
                if missing == of {
                    match w {
                        Some(w) => write!(f, "not run ({w})"),
                        None => f.write_str("not run"),
                    }
                } else {
                    write!(f, "not run ({}{missing} of {of} {unit})", who(w))
                }
            }
            Verdict::Diverged {
                who: w,
                n,
                of,
                unit,
            } => write!(f, "diverged ({}{n} of {of} {unit})", who(w)),
            Verdict::Unreadable { who: w, n, of } => {
                write!(f, "unreadable ({}{n} of {of} runs)", who(w))
            }
            Verdict::Incomplete { who: w, done, of } => {
                write!(f, "incomplete ({}{done} of {of} epochs)", who(w))
            }
        }
    }
}

/// One row of a claims table.
#[derive(Debug, Clone)]
pub(super) struct Claim {
    pub(super) what: String,
    pub(super) paper: String,
    pub(super) band: String,
    pub(super) reference: String,
    pub(super) ours: String,
    pub(super) verdict: Verdict,
}

/// What keeps `series` from being judged, `None` when it can be: a diverged, missing or
/// unreadable run, or one incomplete that `early` does not accept. With several series the
/// verdict names the one (`who`).
pub(super) fn gate(
    series: &[&Series],
    unit: &'static str,
    early: &dyn Fn(&RunData) -> bool,
) -> Option<Verdict> {
    let named = series.len() > 1;
    let who = |s: &Series| named.then(|| name(s));
    for s in series {
        let of = s.runs.len();
        let n = s
            .runs
            .iter()
            .filter(|r| r.status() == Status::Diverged)
            .count();
        if n > 0 {
            return Some(Verdict::Diverged {
                who: who(s),
                n,
                of,
                unit,
            });
        }
    }
    for s in series {
        let of = s.runs.len();
        let missing = s
            .runs
            .iter()
            .filter(|r| r.status() == Status::NotRun)
            .count();
        if missing > 0 {
            return Some(Verdict::NotRun {
                who: who(s),
                missing,
                of,
                unit,
            });
        }
    }
    for s in series {
        let n = s
            .runs
            .iter()
            .filter(|r| r.status() == Status::Unreadable)
            .count();
        if n > 0 {
            return Some(Verdict::Unreadable {
                who: who(s),
                n,
                of: s.runs.len(),
            });
        }
    }
    for s in series {
        let blocking: Vec<_> = s
            .runs
            .iter()
            .filter(|r| match r.status() {
                Status::Incomplete { .. } => !r.data().is_some_and(early),
                _ => false,
            })
            .copied()
            .collect();
        if let Some((done, of)) = least_incomplete(&blocking) {
            return Some(Verdict::Incomplete {
                who: who(s),
                done,
                of,
            });
        }
    }
    None
}

/// Only done runs.
fn never(_: &RunData) -> bool {
    false
}

/// A run whose α peak is behind it (the module's rule).
pub(super) fn peak_settled(d: &RunData) -> bool {
    let Some((peak, _, epoch)) = d.alpha_peak() else {
        return false;
    };
    let k = d.summary.epochs_completed;
    let a0 = d.alpha0();
    if k <= epoch || peak <= a0 {
        return false;
    }
    d.epoch_mean_alpha(k)
        .is_some_and(|last| peak - last >= DECAY_GIVEN_BACK * (peak - a0))
}

/// The runs a claim reads: done, or incomplete and accepted by `early`.
fn judged<'a>(s: &Series<'a>, early: &dyn Fn(&RunData) -> bool) -> Vec<&'a RunData> {
    s.runs
        .iter()
        .filter_map(|r| match r.status() {
            Status::Done => r.data(),
            Status::Incomplete { .. } => r.data().filter(|d| early(d)),
            _ => None,
        })
        .collect()
}

/// For a claim judged on runs still under way: " — judged at k of n epochs (why that is
/// enough)"; empty when every run is done.
fn early_note(series: &[&Series], why: &str) -> String {
    let runs: Vec<_> = series.iter().flat_map(|s| s.runs.iter().copied()).collect();
    least_incomplete(&runs).map_or(String::new(), |(done, of)| {
        format!(" — judged at {done} of {of} epochs ({why})")
    })
}

/// A series' label as REPORT.md text: it holds axis values from run ids, which are file
/// names and may hold markup.
fn name(s: &Series) -> String {
    super::style::text(&s.label)
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

/// The claims of a Fig. 3 experiment (LogReg or the MLP over the paper's optimizers): α peaks
/// with their iterations, α's decay, SGDN-HD's α rising first, the share of negative α, each
/// HD rule below its base in training loss, and on the MLP Adam-HD an order of magnitude below
/// Adam. `iterations_an_epoch` places a peak in the first epoch where the reference logs give
/// no iteration.
pub(super) fn curves(net: Net, series: &[Series], iterations_an_epoch: Option<u64>) -> Vec<Claim> {
    let one = |o: Variant| -> Option<&Series> {
        let mut it = series.iter().filter(|s| s.optimizer == o);
        let s = it.next()?;
        // Several series of one optimizer (another axis): the claims do not pick one.
        it.next().is_none().then_some(s)
    };
    let hd = [Variant::SgdHd, Variant::SgdnHd, Variant::AdamHd];
    let mut claims = Vec::new();
    for o in hd {
        if let (Some(s), Some(p)) = (one(o), paper::alpha_peak(net, o)) {
            claims.push(alpha_peak(s, &p, iterations_an_epoch));
        }
    }
    for o in hd {
        if let (Some(s), Some(_)) = (one(o), paper::alpha_peak(net, o)) {
            claims.push(decay(net, s));
        }
    }
    if let (Some(sgd), Some(sgdn)) = (one(Variant::SgdHd), one(Variant::SgdnHd)) {
        claims.push(sgdn_first(net, sgd, sgdn));
    }
    for o in hd {
        if let (Some(s), Some(r)) = (one(o), paper::negative_share(net, o)) {
            claims.push(negative_share(net, s, r));
        }
    }
    for o in hd {
        if let (Some(h), Some(b)) = (one(o), one(o.base())) {
            claims.push(below_base(net, h, b));
        }
    }
    if net == Net::Mlp {
        if let (Some(h), Some(b)) = (one(Variant::AdamHd), one(Variant::Adam)) {
            claims.push(order_of_magnitude(h, b));
        }
    }
    claims
}

fn alpha_peak(s: &Series, p: &Peak, iterations_an_epoch: Option<u64>) -> Claim {
    let window = p.window.range(iterations_an_epoch);
    let window_text = match (p.window, window) {
        (paper::Window::AroundReference(at), Some((lo, hi))) => format!(
            "iteration {lo}–{hi} (×{} of the reference's {at})",
            paper::PEAK_ITERATION_FACTOR
        ),
        (_, Some((lo, hi))) => format!("iteration {lo}–{hi} (the first epoch)"),
        (_, None) => "the first epoch".into(),
    };
    let mut claim = Claim {
        what: format!("α peak and its iteration, {}", name(s)),
        paper: format!("{}", p.paper),
        band: format!(
            "{}–{} ({}); {window_text}",
            sig(p.band.0, 4),
            sig(p.band.1, 4),
            p.band_why
        ),
        reference: p
            .reference
            .map_or("–".into(), |(v, at)| format!("{v} at iteration {at}")),
        ours: "–".into(),
        verdict: Verdict::Fail,
    };
    if let Some(v) = gate(&[s], "seeds", &peak_settled) {
        claim.verdict = v;
        return claim;
    }
    let peaks: Vec<(f64, u64)> = judged(s, &peak_settled)
        .iter()
        .filter_map(|d| d.alpha_peak().map(|(v, at, _)| (v, at)))
        .collect();
    if peaks.is_empty() {
        claim.ours = "no α logged".into();
        return claim;
    }
    let values: Vec<f64> = peaks.iter().map(|p| p.0).collect();
    let its: Vec<f64> = peaks.iter().map(|p| p.1 as f64).collect();
    let in_band = peaks.iter().all(|(v, _)| *v >= p.band.0 && *v <= p.band.1);
    let in_window =
        window.is_some_and(|(lo, hi)| peaks.iter().all(|(_, at)| *at >= lo && *at <= hi));
    claim.ours = format!(
        "{} at iteration {}",
        fmt_range(&values, |x| format!("{x:.6}")),
        fmt_range(&its, |x| format!("{x:.0}"))
    );
    if !in_band {
        claim.ours.push_str(" — value outside the band");
    }
    if !in_window {
        claim.ours.push_str(" — iteration outside the window");
    }
    claim
        .ours
        .push_str(&early_note(&[s], "the peak is behind it"));
    claim.verdict = Verdict::tick(in_band && in_window);
    claim
}

fn decay(net: Net, s: &Series) -> Claim {
    let reference = paper::last_epoch_alpha(net, s.optimizer).map_or("–".into(), |v| {
        format!("mean α {v} in epoch {}", net.reference_epochs())
    });
    let mut claim = Claim {
        what: format!("α decays after its peak, {}", name(s)),
        paper: match s.optimizer {
            Variant::AdamHd => "decays".into(),
            _ => "decays to a range around zero".into(),
        },
        band: format!(
            "the last epoch's mean α has given back ≥ {:.0} % of the rise above α0",
            100.0 * DECAY_GIVEN_BACK
        ),
        reference,
        ours: "–".into(),
        verdict: Verdict::Fail,
    };
    if let Some(v) = gate(&[s], "seeds", &never) {
        claim.verdict = v;
        return claim;
    }
    let runs = s.done();
    let mut given_back = Vec::new();
    let mut last = Vec::new();
    let mut epoch = 0;
    for d in &runs {
        let k = d.summary.epochs_completed;
        epoch = k;
        let (Some((peak, ..)), Some(mean)) = (d.alpha_peak(), d.epoch_mean_alpha(k)) else {
            continue;
        };
        last.push(mean);
        let rise = peak - d.alpha0();
        given_back.push(if rise > 0.0 {
            (peak - mean) / rise
        } else {
            f64::NAN
        });
    }
    if last.is_empty() {
        claim.ours = "no α logged".into();
        return claim;
    }
    claim.ours = format!(
        "mean α {} in epoch {epoch}: {} of the rise given back",
        fmt_range(&last, |x| format!("{x:.6}")),
        fmt_range(&given_back, pct)
    );
    if given_back.iter().any(|g| g.is_nan()) {
        claim.ours.push_str(" (α never rose above α0)");
    }
    claim.verdict = Verdict::tick(
        given_back
            .iter()
            .all(|g| g.is_finite() && *g >= DECAY_GIVEN_BACK),
    );
    claim
}

/// "Seed ranges overlap" or not, for claims that compare two series' means.
fn overlap(a: &[f64], b: &[f64]) -> &'static str {
    if a.len() < 2 && b.len() < 2 {
        return "";
    }
    let (_, alo, ahi) = stats(a);
    let (_, blo, bhi) = stats(b);
    if alo <= bhi && blo <= ahi {
        "; the seed ranges overlap"
    } else {
        "; the seed ranges do not overlap"
    }
}

fn sgdn_first(net: Net, sgd: &Series, sgdn: &Series) -> Claim {
    let reference = match (
        paper::alpha_peak(net, Variant::SgdnHd).and_then(|p| p.reference),
        paper::alpha_peak(net, Variant::SgdHd).and_then(|p| p.reference),
    ) {
        (Some((_, a)), Some((_, b))) => format!("iteration {a} vs {b}"),
        _ => "–".into(),
    };
    let mut claim = Claim {
        what: "SGDN-HD's α peaks before SGD-HD's".into(),
        paper: match net {
            Net::Mlp => "SGDN-HD first".into(),
            Net::Logreg => "– (stated for the MLP and VGG)".into(),
        },
        band: "mean peak iteration lower".into(),
        reference,
        ours: "–".into(),
        verdict: Verdict::Fail,
    };
    if let Some(v) = gate(&[sgdn, sgd], "seeds", &peak_settled) {
        claim.verdict = v;
        return claim;
    }
    let at = |s: &Series| -> Vec<f64> {
        judged(s, &peak_settled)
            .iter()
            .filter_map(|d| d.alpha_peak().map(|p| p.1 as f64))
            .collect()
    };
    let (a, b) = (at(sgdn), at(sgd));
    if a.is_empty() || b.is_empty() {
        claim.ours = "no α logged".into();
        return claim;
    }
    claim.ours = format!(
        "iteration {} vs {}{}",
        fmt_range(&a, |x| format!("{x:.0}")),
        fmt_range(&b, |x| format!("{x:.0}")),
        overlap(&a, &b)
    );
    claim
        .ours
        .push_str(&early_note(&[sgdn, sgd], "both peaks are behind them"));
    claim.verdict = Verdict::tick(stats(&a).0 < stats(&b).0);
    claim
}

fn negative_share(net: Net, s: &Series, reference: f64) -> Claim {
    let asked = s
        .runs
        .iter()
        .filter_map(|r| r.epochs_asked())
        .min()
        .unwrap_or(0);
    // Over the reference logs' epochs, or all of ours when we run fewer.
    let window = net.reference_epochs().min(asked.max(1));
    let (band, ok): (String, Box<dyn Fn(f64) -> bool>) = if reference > 0.0 {
        let (lo, hi) = (
            reference / paper::NEGATIVE_SHARE_FACTOR,
            reference * paper::NEGATIVE_SHARE_FACTOR,
        );
        (
            format!(
                "{}–{} (×{} either way: it moves with the seed)",
                pct(lo),
                pct(hi),
                paper::NEGATIVE_SHARE_FACTOR
            ),
            Box::new(move |x| x >= lo && x <= hi),
        )
    } else {
        (
            format!("< {} (what rounds to 0 %)", pct(paper::NEGATIVE_SHARE_ZERO)),
            Box::new(|x| x < paper::NEGATIVE_SHARE_ZERO),
        )
    };
    let mut claim = Claim {
        what: format!("share of iterations with α < 0, {}", name(s)),
        paper: match s.optimizer {
            Variant::AdamHd => "none (\"decays smoothly\")".into(),
            _ => "some minibatches".into(),
        },
        band,
        reference: format!(
            "{:.0} % (epochs 1–{})",
            100.0 * reference,
            net.reference_epochs()
        ),
        ours: "–".into(),
        verdict: Verdict::Fail,
    };
    let early = |d: &RunData| d.summary.epochs_completed >= window;
    if let Some(v) = gate(&[s], "seeds", &early) {
        claim.verdict = v;
        return claim;
    }
    let shares: Vec<f64> = judged(s, &early)
        .iter()
        .filter_map(|d| d.negative_share(window))
        .collect();
    if shares.is_empty() {
        claim.ours = "no α logged".into();
        return claim;
    }
    let mean = stats(&shares).0;
    claim.ours = format!(
        "{} over epochs 1–{window}{}",
        pct(mean),
        if shares.len() > 1 {
            format!(" (seeds {})", fmt_range(&shares, pct))
        } else {
            String::new()
        }
    );
    claim.ours.push_str(&early_note(
        &[s],
        &format!("epochs 1–{window} are complete"),
    ));
    claim.verdict = Verdict::tick(ok(mean));
    claim
}

fn final_losses(s: &Series) -> Vec<f64> {
    s.done()
        .iter()
        .filter_map(|d| d.final_train_loss())
        .collect()
}

fn below_base(net: Net, hd: &Series, base: &Series) -> Claim {
    let reference = match (
        paper::final_losses(net, hd.optimizer),
        paper::final_losses(net, base.optimizer),
    ) {
        (Some((h, _)), Some((b, _))) => {
            format!("{h} vs {b} (epoch {})", net.reference_epochs())
        }
        _ => "–".into(),
    };
    let mut claim = Claim {
        what: format!("final training loss, {} below {}", name(hd), name(base)),
        paper: "below (Fig. 3)".into(),
        band: "mean over seeds lower".into(),
        reference,
        ours: "–".into(),
        verdict: Verdict::Fail,
    };
    if let Some(v) = gate(&[hd, base], "seeds", &never) {
        claim.verdict = v;
        return claim;
    }
    let (h, b) = (final_losses(hd), final_losses(base));
    if h.is_empty() || b.is_empty() {
        claim.ours = "no final loss".into();
        return claim;
    }
    claim.ours = format!(
        "{} vs {}{}",
        fmt_range(&h, |x| format!("{x:.4}")),
        fmt_range(&b, |x| format!("{x:.4}")),
        overlap(&h, &b)
    );
    claim.verdict = Verdict::tick(stats(&h).0 < stats(&b).0);
    claim
}

fn order_of_magnitude(hd: &Series, base: &Series) -> Claim {
    let mut claim = Claim {
        what: format!(
            "final training loss, {} an order of magnitude below {}",
            name(hd),
            name(base)
        ),
        paper: "an order of magnitude below".into(),
        band: format!(
            "ratio ≥ 10^0.5 = {:.2} (a decade, to the nearest decade on the paper's log axis)",
            paper::ORDER_OF_MAGNITUDE
        ),
        reference: "– (no Adam-HD in the MLP logs)".into(),
        ours: "–".into(),
        verdict: Verdict::Fail,
    };
    if let Some(v) = gate(&[hd, base], "seeds", &never) {
        claim.verdict = v;
        return claim;
    }
    let (h, b) = (stats(&final_losses(hd)).0, stats(&final_losses(base)).0);
    if !(h.is_finite() && b.is_finite() && h > 0.0) {
        claim.ours = "no final loss".into();
        return claim;
    }
    claim.ours = format!("{b:.4} / {h:.4} = {:.2}×", b / h);
    claim.verdict = Verdict::tick(b / h >= paper::ORDER_OF_MAGNITUDE);
    claim
}

/// The α0 study's claim for one hypergradient rule against its base: the spread of final
/// training loss over α0 (largest over smallest of the per-α0 means), smaller for the rule.
/// `spread` gives each series' spread (`None`: no finite loss). Returns the claim and its
/// sentence.
pub(super) fn alpha0_dependence(
    hd: &Series,
    base: &Series,
    spread: &dyn Fn(&Series) -> Option<(f64, usize)>,
    range: &str,
) -> (Claim, Option<String>) {
    let mut claim = Claim {
        what: format!("{} depends less on α0 than {}", name(hd), name(base)),
        paper: "less (Fig. 2)".into(),
        band: "smaller spread: largest final training loss over α0 / smallest".into(),
        reference: "–".into(),
        ours: "–".into(),
        verdict: Verdict::Fail,
    };
    if let Some(v) = gate(&[hd, base], "runs", &never) {
        claim.verdict = v;
        return (claim, None);
    }
    let (Some((h, _)), Some((b, _))) = (spread(hd), spread(base)) else {
        claim.ours = "no final loss".into();
        return (claim, None);
    };
    let decades = |x: f64| x.log10();
    // The α0 values come from run ids, as the labels do.
    let range = super::style::text(range);
    claim.ours = format!(
        "{h:.2}× ({:.2} decades) vs {b:.2}× ({:.2} decades)",
        decades(h),
        decades(b)
    );
    let less = h < b;
    claim.verdict = Verdict::tick(less);
    let sentence = format!(
        "{}'s final training loss spans {:.2} decades over α0 = {range}, {}'s {:.2}: {} {} on α0 than {}.",
        name(hd),
        decades(h),
        name(base),
        decades(b),
        name(hd),
        if less { "depends less" } else { "does not depend less" },
        name(base)
    );
    (claim, Some(sentence))
}

#[cfg(test)]
mod tests;
