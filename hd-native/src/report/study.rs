//! An α0 study: the final training loss against α0, its table, and whether each
//! hypergradient rule depends less on α0 than its base optimizer (the paper's Fig. 2); where β
//! varies too (without a loss target), a heat map of the final training loss over α0 × β.

use super::claims;
use super::draw::{draw_heat, draw_lines, Axes, HeatCell, Line};
use super::runs::{self, distinct, settings, status_note, status_word, study_key, Rec, Series};
use super::section::claims_table;
use super::section::Section;
use super::stats::{stats, Band};
use super::style::colour;
use crate::config::Variant;
use crate::plot::{drawable, PlotError};
use hd_core::HyperRule;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;

impl Section<'_> {
    pub(super) fn alpha0_study(&mut self) -> Result<(), PlotError> {
        let (exp, rs) = (self.exp, self.rs);
        let a0s = distinct(rs, "a0");
        let title = format!("{exp}: {}", settings(rs));
        // The lines of the study: optimizer and β or β′ where they vary; each with its runs
        // over every α0.
        let mut keys: Vec<Series> = Vec::new();
        for r in rs {
            let key = study_key(r);
            match keys.iter_mut().find(|s| s.label == key) {
                Some(s) => s.runs.push(r),
                None => keys.push(Series {
                    label: key,
                    optimizer: r.optimizer,
                    runs: vec![r],
                }),
            }
        }
        keys.sort_by_key(|s| (runs::optimizer_order(s.optimizer), s.label.clone()));
        // The final training loss of a line at one α0: the mean over its seeds when all are
        // done, else what they are.
        let cell = |s: &Series<'_>, a: &str| -> Result<(f64, f64, f64), String> {
            let runs = runs_at(s, a);
            if runs.is_empty() {
                return Err("–".into());
            }
            if let Some(note) = status_note(&runs, "seeds") {
                return Err(note);
            }
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.done()?.final_train_loss())
                .collect();
            Ok(stats(&v))
        };
        let several_betas = distinct(rs, "b").len() > 1 || distinct(rs, "bm").len() > 1;
        if !several_betas {
            let lines: Vec<Line> = keys
                .iter()
                .map(|s| {
                    let points: Band = a0s
                        .iter()
                        .filter_map(|a| {
                            let (m, lo, hi) = cell(s, a).ok()?;
                            let x = a.parse::<f64>().ok().filter(|x| drawable(*x))?;
                            m.is_finite().then_some((x, m, lo, hi))
                        })
                        .collect();
                    Line {
                        label: match status_note(&s.runs, "runs") {
                            Some(n) => format!("{} — {n}", s.label),
                            None => s.label.clone(),
                        },
                        colour: colour(s.optimizer),
                        points,
                    }
                })
                .collect();
            let absurd: Vec<&String> = a0s
                .iter()
                .filter(|a| a.parse::<f64>().is_ok_and(|x| !drawable(x)))
                .collect();
            if !absurd.is_empty() {
                let _ = writeln!(
                    self.md,
                    "α0 = {} left out of the figure (infinite or beyond ±f32::MAX, which no \
                     run computes with).\n",
                    absurd
                        .iter()
                        .map(|a| super::style::text(a))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            // A line with nothing to draw keeps its place in the legend, saying why.
            if lines.iter().any(|l| !l.points.is_empty()) {
                let ax = Axes {
                    title: &title,
                    x: "α0",
                    y: "Final training loss",
                    log_x: true,
                    log_y: true,
                    // Losses fall as α0 grows: the upper right stays empty.
                    legend: SeriesLabelPosition::UpperRight,
                };
                figure!(
                    self.out,
                    super::style::stem(exp, "alpha0"),
                    (960, 640),
                    self.written,
                    |root| { draw_lines(&root, &ax, &lines) }
                );
                let _ = writeln!(
                    self.md,
                    "![final training loss against α0]({}.png)\n",
                    super::style::stem(exp, "alpha0")
                );
            }
        } else {
            // A heat map of the final training loss over α0 × β, one per optimizer.
            let mut opts: Vec<Variant> = keys.iter().map(|s| s.optimizer).collect();
            opts.dedup();
            for o in opts {
                let bkey = if o.rule() == Some(HyperRule::Multiplicative) {
                    "bm"
                } else {
                    "b"
                };
                let of_o: Vec<&Rec> = rs.iter().copied().filter(|r| r.optimizer == o).collect();
                let bs = distinct(&of_o, bkey);
                let mut cells = BTreeMap::new();
                for (i, a) in a0s.iter().enumerate() {
                    for (j, b) in bs.iter().enumerate() {
                        let runs: Vec<&Rec> = of_o
                            .iter()
                            .copied()
                            .filter(|r| r.axes.get("a0") == Some(a) && r.axes.get(bkey) == Some(b))
                            .collect();
                        if runs.is_empty() {
                            continue;
                        }
                        let heat = match status_word(&runs) {
                            Some(word) => HeatCell {
                                shade: None,
                                text: vec![word.into()],
                            },
                            None => {
                                let v: Vec<f64> = runs
                                    .iter()
                                    .filter_map(|r| r.done()?.final_train_loss())
                                    .collect();
                                let m = stats(&v).0;
                                HeatCell {
                                    shade: (m > 0.0).then(|| m.log10()),
                                    text: vec![format!("{m:.3}")],
                                }
                            }
                        };
                        cells.insert((i, j), heat);
                    }
                }
                let t = format!("{exp}: {} final training loss over α0 × β", o.label());
                let ylabel = if bkey == "bm" { "β′" } else { "β" };
                figure!(
                    self.out,
                    super::style::stem(exp, &format!("{}-heatmap", o.id())),
                    (960, 640),
                    self.written,
                    |root| { draw_heat(&root, &t, ("α0", &a0s), (ylabel, &bs), &cells, None) }
                );
                let _ = writeln!(
                    self.md,
                    "![{} heat map]({}.png)\n",
                    o.label(),
                    super::style::stem(exp, &format!("{}-heatmap", o.id()))
                );
            }
        }
        let any_data = rs.iter().any(|r| r.data().is_some());
        if !any_data {
            let _ = writeln!(self.md, "No run of this experiment has a result yet.\n");
        }
        if any_data {
            let _ = writeln!(
                self.md,
                "Final training loss (mean over seeds; – not in the plan):\n\n| series | {} |\n|---|{}",
                a0s.iter()
                    .map(|a| format!("α0={}", super::style::text(a)))
                    .collect::<Vec<_>>()
                    .join(" | "),
                "---|".repeat(a0s.len())
            );
            for s in &keys {
                let row: Vec<String> = a0s
                    .iter()
                    .map(|a| match cell(s, a) {
                        Ok((m, ..)) => format!("{m:.4}"),
                        Err(why) => why,
                    })
                    .collect();
                let _ = writeln!(
                    self.md,
                    "| {} | {} |",
                    super::style::text(&s.label),
                    row.join(" | ")
                );
            }
            self.md.push('\n');
        }
        if several_betas {
            return Ok(());
        }
        // The paper's Fig. 2: the hypergradient rules depend less on α0 than their base
        // optimizers. The spread of a line: its largest final training loss over α0 divided
        // by its smallest.
        let spread = |s: &Series<'_>| -> Option<(f64, usize)> {
            let means: Vec<f64> = a0s
                .iter()
                .filter_map(|a| cell(s, a).ok().map(|c| c.0))
                .collect();
            let (_, lo, hi) = stats(&means);
            (lo > 0.0 && hi.is_finite()).then_some((hi / lo, means.len()))
        };
        let range = match (a0s.first(), a0s.last()) {
            (Some(a), Some(b)) => format!("{a} … {b}"),
            _ => String::new(),
        };
        let mut claims = Vec::new();
        let mut sentences = Vec::new();
        for s in keys.iter().filter(|s| s.optimizer.rule().is_some()) {
            let Some(base) = keys.iter().find(|b| b.optimizer == s.optimizer.base()) else {
                continue;
            };
            let (c, sentence) = claims::alpha0_dependence(s, base, &spread, &range);
            claims.push(c);
            sentences.extend(sentence);
        }
        let mut spreads = String::from(
            "| series | spread over α0 (largest / smallest) | decades |\n|---|---|---|\n",
        );
        for s in &keys {
            let text = match (status_note(&s.runs, "runs"), spread(s)) {
                (Some(n), _) => format!("{n} | –"),
                (None, Some((x, _))) => format!("{x:.2}× | {:.2}", x.log10()),
                (None, None) => "no final loss | –".into(),
            };
            let _ = writeln!(spreads, "| {} | {text} |", super::style::text(&s.label));
        }
        if !claims.is_empty() {
            let rates: Vec<String> = keys
                .iter()
                .filter_map(|s| {
                    let c = s.runs.iter().find_map(|r| r.config())?;
                    match s.optimizer.rule()? {
                        HyperRule::Additive => {
                            Some(format!("{} β = {}", super::style::text(&s.label), c.beta()))
                        }
                        HyperRule::Multiplicative => Some(format!(
                            "{} β′ = {}",
                            super::style::text(&s.label),
                            c.beta()
                        )),
                    }
                })
                .collect();
            let epochs = rs.iter().filter_map(|r| r.epochs_asked()).max();
            let settings_note = format!(
                " This study's rates: {}; {} epochs (the paper's Fig. 2: β = 1e-4, β′ = 0.02, \
                 50 epochs).",
                rates.join(", "),
                epochs.map_or("?".into(), |e| e.to_string())
            );
            if any_data {
                let _ = writeln!(
                    self.md,
                    "The spread of each line (its largest final training loss over α0 divided \
                     by its smallest):\n\n{spreads}"
                );
            }
            let _ = writeln!(
                self.md,
                "Beside the paper (Fig. 2: HD makes α0 matter less).{settings_note}\n\n{}",
                claims_table(&claims)
            );
            for s in &sentences {
                let _ = writeln!(self.md, "- {s}");
            }
            self.md.push('\n');
            self.claims.extend(claims);
        }
        Ok(())
    }
}

/// The runs of a line of an α0 study at α0 `a`.
fn runs_at<'a>(s: &Series<'a>, a: &str) -> Vec<&'a Rec> {
    s.runs
        .iter()
        .copied()
        .filter(|r| r.axes.get("a0").map(String::as_str) == Some(a))
        .collect()
}
