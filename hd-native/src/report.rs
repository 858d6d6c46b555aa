//! The suite's report: figures and `REPORT.md` from every run under a sweep's output.
//!
//! Runs are grouped by experiment (the first component of their id) and, within one, into
//! series: the optimizer and every axis value except the seed, so the seeds of a series give
//! its mean and a shaded band (minimum to maximum over seeds). Each optimizer has one colour
//! in every figure ([`colour`]).
//!
//! - An experiment whose runs differ in α0 is an **α0 study**: final training loss against α0
//!   (log axes) per series; if its runs differ in β (or β′) too, one Fig. 4-style heat map per
//!   optimizer of the final training loss over α0 × β.
//! - Any other experiment gets the seed's panels: test loss, test accuracy and training loss
//!   against epoch, and α against iteration with the SGD and Adam families in panels of
//!   their own (Adam's α, about 0.001, would sit flat under SGD's 0.05 on one axis).
//!
//! `REPORT.md` has a table per experiment and, where the paper states a value (α peaks; the
//! HD optimizers' lower training loss than their base ones), the paper's value beside ours
//! with ✓ or ✗ against a stated band.
//!
//! The submodules: `runs` (reading and grouping the runs), `stats` (bands over seeds, α
//! peaks against the paper's), `draw` (the plotting).

use crate::config::OptimizerKind;
use crate::plot::{register_font, PlotError};
use hd_core::{Family, HyperRule};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod draw;
mod runs;
mod stats;

use draw::{draw_heat, draw_lines, Axes, Line};
use runs::{distinct, read_all, series, settings, study_key, Rec};
use stats::{alpha_peak, band, paper_alpha_peak, stats, tick, Band};

/// Writes a figure as `stem.png` and `stem.svg` with `draw` (called once per backend).
macro_rules! figure {
    ($out:expr, $stem:expr, $size:expr, $written:expr, |$root:ident| $draw:expr) => {{
        let png = $out.join(format!("{}.png", $stem));
        let svg = $out.join(format!("{}.svg", $stem));
        figure!(@on BitMapBackend, &png, $size, |$root| $draw);
        figure!(@on SVGBackend, &svg, $size, |$root| $draw);
        $written.push(png);
        $written.push(svg);
    }};
    (@on $backend:ident, $path:expr, $size:expr, |$root:ident| $draw:expr) => {{
        let $root = $backend::new($path, $size).into_drawing_area();
        let r: Result<(), String> = (|| {
            $root.fill(&WHITE).map_err(|e| e.to_string())?;
            $draw?;
            $root.present().map_err(|e| e.to_string())
        })();
        r.map_err(|what| PlotError::Draw {
            path: $path.to_path_buf(),
            what,
        })?;
    }};
}

/// The colour of an optimizer in every figure: a hue per family (SGD blue, SGDN green, Adam
/// red), the HD and HDM variants in neighbouring hues.
pub fn colour(o: OptimizerKind) -> RGBColor {
    match o {
        OptimizerKind::Sgd => RGBColor(31, 119, 180),
        OptimizerKind::SgdHd => RGBColor(23, 190, 207),
        OptimizerKind::SgdHdm => RGBColor(148, 103, 189),
        OptimizerKind::Sgdn => RGBColor(44, 160, 44),
        OptimizerKind::SgdnHd => RGBColor(188, 189, 34),
        OptimizerKind::SgdnHdm => RGBColor(140, 86, 75),
        OptimizerKind::Adam => RGBColor(214, 39, 40),
        OptimizerKind::AdamHd => RGBColor(255, 127, 14),
        OptimizerKind::AdamHdm => RGBColor(227, 119, 194),
    }
}

/// Whether a family's α goes in the Adam panel of the α figure: Adam's α, about 0.001, would
/// sit flat under SGD's 0.05 on one axis. Exhaustive, so a new family is placed on purpose.
fn in_adam_panel(family: Family) -> bool {
    match family {
        Family::Sgd | Family::Sgdn => false,
        Family::Adam => true,
    }
}

/// Writes the report of every run under `dir` into `out`: figures (PNG and SVG) and
/// `REPORT.md`. Returns the files written.
///
/// # Errors
/// [`PlotError`] when `dir` cannot be read, holds no run, no font is found, or a file cannot
/// be written.
pub fn report(dir: &Path, out: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let (recs, unreadable) = read_all(dir)?;
    if recs.is_empty() {
        return Err(PlotError::NoRuns);
    }
    register_font()?;
    std::fs::create_dir_all(out).map_err(|source| PlotError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let mut experiments: Vec<String> = Vec::new();
    for r in &recs {
        if !experiments.contains(&r.experiment) {
            experiments.push(r.experiment.clone());
        }
    }
    let mut written: Vec<PathBuf> = Vec::new();
    let mut md = String::from("# Report\n\n");
    let _ = writeln!(
        md,
        "{} runs from `{}`. Figures: mean over seeds, shaded from the lowest to the highest seed \
         where a series has several. ✓/✗ compare with the paper (Baydin et al., ICLR 2018) \
         within the band stated beside each value.\n",
        recs.len(),
        dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().to_string()
        )
    );
    for exp in &experiments {
        let rs: Vec<&Rec> = recs.iter().filter(|r| &r.experiment == exp).collect();
        let _ = writeln!(md, "## {exp}: {}\n", settings(&rs));
        let a0s: Vec<String> = distinct(&rs, "a0");
        let betas: Vec<String> = {
            let mut b = distinct(&rs, "b");
            b.extend(distinct(&rs, "bm"));
            b
        };
        if a0s.len() > 1 {
            alpha0_study(exp, &rs, &a0s, &betas, out, &mut written, &mut md)?;
        } else {
            curves(exp, &rs, out, &mut written, &mut md)?;
        }
    }
    if !unreadable.is_empty() {
        let _ = writeln!(md, "## Runs not included\n");
        for u in &unreadable {
            let _ = writeln!(md, "- {u}");
        }
        md.push('\n');
    }
    let path = out.join("REPORT.md");
    std::fs::write(&path, md).map_err(|source| PlotError::Io {
        path: path.clone(),
        source,
    })?;
    written.push(path);
    Ok(written)
}

fn curves(
    exp: &str,
    rs: &[&Rec],
    out: &Path,
    written: &mut Vec<PathBuf>,
    md: &mut String,
) -> Result<(), PlotError> {
    let ss = series(rs);
    let title = format!("{exp}: {}", settings(rs));
    let epoch_lines = |f: fn(&crate::train::EpochStats) -> f64| -> Vec<Line> {
        ss.iter()
            .map(|(label, o, runs)| Line {
                label: label.clone(),
                colour: colour(*o),
                points: band(
                    &runs
                        .iter()
                        .map(|r| {
                            r.run
                                .epochs
                                .iter()
                                .map(|s| (f64::from(s.epoch), f(s)))
                                .collect()
                        })
                        .collect::<Vec<_>>(),
                ),
            })
            .collect()
    };
    for (stem, y, f) in [
        (
            "test-loss",
            "Test loss",
            (|s: &crate::train::EpochStats| s.test_loss) as fn(&_) -> f64,
        ),
        ("test-accuracy", "Test accuracy", |s| s.test_accuracy),
        ("train-loss", "Training loss", |s| s.train_loss),
    ] {
        let lines = epoch_lines(f);
        let ax = Axes {
            title: &title,
            x: "Epoch",
            y,
            log_x: false,
            log_y: false,
            legend: if stem == "test-accuracy" {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            },
        };
        figure!(out, format!("{exp}-{stem}"), (960, 640), written, |root| {
            draw_lines(&root, &ax, &lines)
        });
    }
    // α: the HD optimizers only (a base optimizer's α is α0 throughout), SGD families and
    // Adam's in separate panels.
    let alpha_lines = |adam: bool| -> Vec<Line> {
        ss.iter()
            .filter(|(_, o, _)| o.rule().is_some() && in_adam_panel(o.family()) == adam)
            .map(|(label, o, runs)| Line {
                label: label.clone(),
                colour: colour(*o),
                points: band(&runs.iter().map(|r| r.run.alpha.clone()).collect::<Vec<_>>()),
            })
            .collect()
    };
    let panels: Vec<(Vec<Line>, &str)> = [(false, "SGD and SGDN families"), (true, "Adam family")]
        .into_iter()
        .map(|(adam, name)| (alpha_lines(adam), name))
        .filter(|(l, _)| !l.is_empty())
        .collect();
    if !panels.is_empty() {
        let h = 420 * panels.len() as u32;
        figure!(out, format!("{exp}-alpha"), (960, h), written, |root| {
            let areas = root.split_evenly((panels.len(), 1));
            let mut r: Result<(), String> = Ok(());
            for (area, (lines, name)) in areas.iter().zip(&panels) {
                let t = format!("{exp}: α, {name}");
                let ax = Axes {
                    title: &t,
                    x: "Epoch (α at every iteration)",
                    y: "α",
                    log_x: false,
                    log_y: false,
                    legend: SeriesLabelPosition::UpperRight,
                };
                r = r.and(draw_lines(area, &ax, lines));
            }
            r
        });
    }
    // The table.
    let _ = writeln!(
        md,
        "![test loss]({exp}-test-loss.png) ![test accuracy]({exp}-test-accuracy.png)\n\n\
         ![training loss]({exp}-train-loss.png) ![alpha]({exp}-alpha.png)\n"
    );
    let _ = writeln!(
        md,
        "| series | seeds | final test loss | final test accuracy | best accuracy (epoch) | final training loss | α peak (iteration) | wall time | device |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (label, _, runs) in &ss {
        let last = |f: fn(&Rec) -> f64| stats(&runs.iter().map(f).collect::<Vec<_>>()).0;
        let tl = last(|r| r.run.summary.last.test_loss);
        let ta = last(|r| r.run.summary.last.test_accuracy);
        let (best, best_epoch) = runs[0]
            .run
            .epochs
            .iter()
            .map(|e| (e.test_accuracy, e.epoch))
            .fold((f64::NEG_INFINITY, 0), |a, b| if b.0 > a.0 { b } else { a });
        let (peak, at) = alpha_peak(&runs[0].run);
        let _ = writeln!(
            md,
            "| {label} | {} | {tl:.4} | {:.2}% | {:.2}% ({best_epoch}) | {:.4} | {peak:.6} ({at}) | {:.1} s | {} |",
            runs.len(),
            100.0 * ta,
            100.0 * best,
            last(Rec::final_train_loss),
            last(|r| r.run.summary.elapsed_seconds),
            runs[0].run.summary.device
        );
    }
    md.push('\n');
    // Beside the paper.
    let mut rows = String::new();
    for (label, o, runs) in &ss {
        let c = &runs[0].run.summary.config;
        if let Some((paper, lo, hi)) = paper_alpha_peak(&c.model, *o) {
            let peak = stats(
                &runs
                    .iter()
                    .map(|r| alpha_peak(&r.run).0)
                    .collect::<Vec<_>>(),
            )
            .0;
            let _ = writeln!(
                rows,
                "| α peak, {label} | {paper} | {lo:.6} – {hi:.6} | {peak:.6} | {} |",
                tick(peak >= lo && peak <= hi)
            );
        }
    }
    for (label, o, runs) in &ss {
        if o.rule() != Some(HyperRule::Additive) {
            continue;
        }
        let Some((base_label, _, base_runs)) = ss.iter().find(|(_, b, _)| *b == o.base()) else {
            continue;
        };
        let hd = stats(&runs.iter().map(Rec::final_train_loss).collect::<Vec<_>>()).0;
        let base = stats(
            &base_runs
                .iter()
                .map(Rec::final_train_loss)
                .collect::<Vec<_>>(),
        )
        .0;
        let _ = writeln!(
            rows,
            "| final training loss, {label} below {base_label} | {label} < {base_label} | lower | {hd:.4} vs {base:.4} | {} |",
            tick(hd < base)
        );
    }
    if !rows.is_empty() {
        let dataset = rs[0].run.summary.config.dataset;
        if dataset != crate::data::DatasetKind::Mnist {
            let _ = writeln!(
                md,
                "The paper's values below are for MNIST; this experiment is on {dataset}.\n"
            );
        }
        let _ = writeln!(
            md,
            "Beside the paper (its α peaks: SGD-HD and SGDN-HD ≈ 0.05 read off its figures, \
             band a factor of 2; Adam-HD 0.001174 on LogReg and 0.001083 on the MLP as stated, \
             band ±5 %; its figures show each HD optimizer ending below its base optimizer in \
             training loss):\n\n| quantity | paper | band | ours | |\n|---|---|---|---|---|\n{rows}"
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn alpha0_study(
    exp: &str,
    rs: &[&Rec],
    a0s: &[String],
    betas: &[String],
    out: &Path,
    written: &mut Vec<PathBuf>,
    md: &mut String,
) -> Result<(), PlotError> {
    let title = format!("{exp}: {}", settings(rs));
    // Final training loss against α0, one line per optimizer (and β where several).
    let mut lines: Vec<Line> = Vec::new();
    let mut table: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let mut order: Vec<(String, OptimizerKind)> = Vec::new();
    for r in rs {
        let key = study_key(r);
        if !order.iter().any(|(k, _)| *k == key) {
            order.push((key.clone(), r.optimizer()));
        }
        table.entry(key).or_default();
    }
    order.sort_by_key(|(k, o)| {
        (
            OptimizerKind::ALL.iter().position(|x| x == o).unwrap_or(9),
            k.clone(),
        )
    });
    for (key, o) in &order {
        let mut pts: Band = Vec::new();
        for a in a0s {
            let losses: Vec<f64> = rs
                .iter()
                .filter(|r| r.axes.get("a0") == Some(a) && study_key(r) == *key)
                .map(|r| r.final_train_loss())
                .collect();
            if losses.is_empty() {
                continue;
            }
            let (m, lo, hi) = stats(&losses);
            if let Some(t) = table.get_mut(key) {
                t.insert(a.clone(), m);
            }
            if let Ok(x) = a.parse::<f64>() {
                if m.is_finite() {
                    pts.push((x, m, lo, hi));
                }
            }
        }
        lines.push(Line {
            label: key.clone(),
            colour: colour(*o),
            points: pts,
        });
    }
    let several_betas = betas.len() > 1;
    if !several_betas {
        let ax = Axes {
            title: &title,
            x: "α0",
            y: "Final training loss",
            log_x: true,
            log_y: true,
            // Losses fall as α0 grows: the upper right stays empty.
            legend: SeriesLabelPosition::UpperRight,
        };
        figure!(out, format!("{exp}-alpha0"), (960, 640), written, |root| {
            draw_lines(&root, &ax, &lines)
        });
        let _ = writeln!(md, "![final training loss against α0]({exp}-alpha0.png)\n");
    }
    // The heat maps over α0 × β, one per optimizer.
    if several_betas {
        let mut opts: Vec<OptimizerKind> = order.iter().map(|(_, o)| *o).collect();
        opts.dedup();
        for o in opts {
            let bkey = if o.rule() == Some(HyperRule::Multiplicative) {
                "bm"
            } else {
                "b"
            };
            let bs: Vec<String> = distinct(
                &rs.iter()
                    .copied()
                    .filter(|r| r.optimizer() == o)
                    .collect::<Vec<_>>(),
                bkey,
            );
            let mut cells = BTreeMap::new();
            for (i, a) in a0s.iter().enumerate() {
                for (j, b) in bs.iter().enumerate() {
                    let v: Vec<f64> = rs
                        .iter()
                        .filter(|r| {
                            r.optimizer() == o
                                && r.axes.get("a0") == Some(a)
                                && r.axes.get(bkey) == Some(b)
                        })
                        .map(|r| r.final_train_loss())
                        .collect();
                    if !v.is_empty() {
                        cells.insert((i, j), stats(&v).0);
                    }
                }
            }
            let t = format!("{exp}: {} final training loss over α0 × β", o.label());
            let ylabel = if bkey == "bm" { "β′" } else { "β" };
            figure!(
                out,
                format!("{exp}-{}-heatmap", o.id()),
                (960, 640),
                written,
                |root| { draw_heat(&root, &t, ("α0", a0s), (ylabel, &bs), &cells) }
            );
            let _ = writeln!(
                md,
                "![{} heat map]({exp}-{}-heatmap.png)\n",
                o.label(),
                o.id()
            );
        }
    }
    let _ = writeln!(
        md,
        "Final training loss (mean over seeds; — not run, NaN diverged):\n\n| series | {} |\n|---|{}",
        a0s.iter().map(|a| format!("α0={a}")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(a0s.len())
    );
    for (key, _) in &order {
        let row: Vec<String> = a0s
            .iter()
            .map(|a| {
                table
                    .get(key)
                    .and_then(|t| t.get(a))
                    .map_or("—".into(), |v| format!("{v:.4}"))
            })
            .collect();
        let _ = writeln!(md, "| {key} | {} |", row.join(" | "));
    }
    md.push('\n');
    // The paper (§4.3): the HD variants are much less sensitive to α0 than their base
    // optimizers. Sensitivity here: the largest final training loss over α0 divided by the
    // smallest.
    if !several_betas {
        let spread = |key: &str| {
            let v: Vec<f64> = table
                .get(key)
                .map(|t| t.values().copied().collect())
                .unwrap_or_default();
            // A run that diverged at some α0 is as sensitive as it gets.
            if v.iter().any(|x| !x.is_finite()) {
                return f64::INFINITY;
            }
            let (_, lo, hi) = stats(&v);
            hi / lo
        };
        let mut rows = String::new();
        for (key, o) in &order {
            if o.rule() != Some(HyperRule::Additive) {
                continue;
            }
            let Some((base_key, _)) = order.iter().find(|(_, b)| *b == o.base()) else {
                continue;
            };
            let (hd, base) = (spread(key), spread(base_key));
            let _ = writeln!(
                rows,
                "| {key} less sensitive to α0 than {base_key} | {key} < {base_key} | lower | {hd:.2} vs {base:.2} | {} |",
                tick(hd < base)
            );
        }
        if !rows.is_empty() {
            let _ = writeln!(
                md,
                "Beside the paper (§4.3: the HD variants are much less sensitive to α0; here the \
                 largest final training loss over α0 divided by the smallest):\n\n\
                 | quantity | paper | band | ours | |\n|---|---|---|---|---|\n{rows}"
            );
        }
    }
    Ok(())
}
