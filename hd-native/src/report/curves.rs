//! The learning curves of an experiment: test loss, test accuracy, training loss and α
//! against epoch, the table of its series, and the paper's claims about them.

use super::claims;
use super::draw::{draw_lines, Axes, Line};
use super::paper::{self, Net};
use super::runs::{self, series, settings, RunData, Series};
use super::section::claims_table;
use super::section::Section;
use super::stats::{band, fmt_range};
use super::style::{colour, in_adam_panel};
use crate::plot::PlotError;
use plotters::prelude::*;
use std::fmt::Write as _;

impl Section<'_> {
    pub(super) fn curves(&mut self, ipe: Option<u64>) -> Result<(), PlotError> {
        let (exp, rs) = (self.exp, self.rs);
        let ss = series(rs);
        let title = format!("{exp}: {}", settings(rs));
        let legend = |s: &Series| match s.note() {
            Some(n) => format!("{} — {n}", s.label),
            None => s.label.clone(),
        };
        let drawn = ss.iter().any(|s| !s.drawable().is_empty());
        if drawn {
            // A series with nothing to draw keeps its place in the legend, saying why.
            // One series' line: each drawable run's points, banded over the seeds.
            let line = |s: &Series, points: &dyn Fn(&RunData) -> Vec<(f64, f64)>| Line {
                label: legend(s),
                colour: colour(s.optimizer),
                points: band(&s.drawable().iter().map(|d| points(d)).collect::<Vec<_>>()),
            };
            let epoch_lines = |f: fn(&crate::run_dir::EpochStats) -> f64| -> Vec<Line> {
                let points = |d: &RunData| {
                    d.epochs
                        .iter()
                        .map(|e| (f64::from(e.epoch), f(e)))
                        .collect()
                };
                ss.iter().map(|s| line(s, &points)).collect()
            };
            for (stem, y, f) in [
                (
                    "test-loss",
                    "Test loss",
                    (|s: &crate::run_dir::EpochStats| s.test_loss) as fn(&_) -> f64,
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
                figure!(
                    self.out,
                    super::style::stem(exp, stem),
                    (960, 640),
                    self.written,
                    |root| { draw_lines(&root, &ax, &lines) }
                );
            }
            // α: the HD optimizers only (a base optimizer's α is α0 throughout), SGD
            // families and Adam's in separate panels; x in epochs.
            let per_epoch = ipe.unwrap_or(1).max(1) as f64;
            let alpha_lines = |adam: bool| -> Vec<Line> {
                let points = |d: &RunData| {
                    d.steps
                        .iter()
                        .map(|p| (p.iteration as f64 / per_epoch, p.alpha))
                        .collect()
                };
                ss.iter()
                    .filter(|s| {
                        s.optimizer.rule().is_some() && in_adam_panel(s.optimizer.family()) == adam
                    })
                    .map(|s| line(s, &points))
                    .collect()
            };
            let panels: Vec<(Vec<Line>, &str)> =
                [(false, "SGD and SGDN families"), (true, "Adam family")]
                    .into_iter()
                    .map(|(adam, name)| (alpha_lines(adam), name))
                    .filter(|(l, _)| !l.is_empty())
                    .collect();
            if !panels.is_empty() {
                let h = 420 * panels.len() as u32;
                figure!(
                    self.out,
                    super::style::stem(exp, "alpha"),
                    (960, h),
                    self.written,
                    |root| {
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
                    }
                );
            }
            let _ = writeln!(
                self.md,
                "![test loss]({}.png) ![test accuracy]({}.png)\n\n![training loss]({}.png){}\n",
                super::style::stem(exp, "test-loss"),
                super::style::stem(exp, "test-accuracy"),
                super::style::stem(exp, "train-loss"),
                if panels.is_empty() {
                    String::new()
                } else {
                    format!(" ![alpha]({}.png)", super::style::stem(exp, "alpha"))
                }
            );
        }
        let net = self.net();
        if rs.iter().any(|r| r.data().is_some()) {
            self.curves_table(&ss, net.as_ref().map(|n| n.0));
        } else {
            let _ = writeln!(self.md, "No run of this experiment has a result yet.\n");
        }
        if let Some((net, differs)) = net {
            let claims = claims::curves(net, &ss, ipe);
            if !claims.is_empty() {
                let _ = writeln!(
                    self.md,
                    "Beside the paper ({} on MNIST, Fig. 3) and the reference code's logs \
                     ({} epochs). A claim holds for every seed (α peaks, decay) or for the \
                     mean over seeds (the others).{}\n\n{}",
                    net.name(),
                    net.reference_epochs(),
                    if differs.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " Not the paper's setting: {}; the verdicts are for this setting.",
                            differs.join("; ")
                        )
                    },
                    claims_table(&claims)
                );
                self.claims.extend(claims);
            }
        }
        Ok(())
    }
    pub(super) fn curves_table(&mut self, ss: &[Series], net: Option<Net>) {
        let at = net.map(Net::reference_epochs);
        let at_head = at.map_or(String::new(), |e| {
            format!(
                " training / test loss at epoch {e} | reference code's logs, epoch {e} (training / validation) |"
            )
        });
        if let Some(e) = at {
            let _ = writeln!(
                self.md,
                "The losses at epoch {e} are read from each run's `log.csv`, to stand beside the \
                 reference code's logs, which end there. Final figures are over the seeds that \
                 are done.\n"
            );
        }
        let _ = writeln!(
            self.md,
            "| series | seeds | status | final test loss | final test accuracy | best accuracy, at epoch | final training loss |{at_head} α peak, at iteration | wall time | device |\n|---|---|---|---|---|---|---|{}---|---|---|",
            if at.is_some() { "---|---|" } else { "" }
        );
        for s in ss {
            let done = s.done();
            let col = |f: &dyn Fn(&runs::RunData) -> Option<f64>, fmt: &dyn Fn(f64) -> String| {
                let v: Vec<f64> = done.iter().filter_map(|d| f(d)).collect();
                if v.is_empty() {
                    "–".to_string()
                } else {
                    fmt_range(&v, fmt)
                }
            };
            let test_loss = col(&|d| Some(d.summary.last.test_loss), &|x| format!("{x:.4}"));
            let test_acc = col(&|d| Some(d.summary.last.test_accuracy), &|x| {
                format!("{:.2}%", 100.0 * x)
            });
            let best = col(
                &|d| {
                    d.epochs
                        .iter()
                        .map(|e| e.test_accuracy)
                        .filter(|a| a.is_finite())
                        .reduce(f64::max)
                },
                &|x| format!("{:.2}%", 100.0 * x),
            );
            let best_epoch = col(
                &|d| {
                    d.epochs
                        .iter()
                        .filter(|e| e.test_accuracy.is_finite())
                        .fold(None, |b: Option<&crate::run_dir::EpochStats>, e| match b {
                            Some(b) if b.test_accuracy >= e.test_accuracy => Some(b),
                            _ => Some(e),
                        })
                        .map(|e| f64::from(e.epoch))
                },
                &|x| format!("{x:.0}"),
            );
            let best_cell = if done.is_empty() {
                "–".to_string()
            } else {
                format!("{best} at {best_epoch}")
            };
            let train = col(&|d| d.final_train_loss(), &|x| format!("{x:.4}"));
            let peak = if s.optimizer.rule().is_some() && !done.is_empty() {
                let v = col(&|d| d.alpha_peak().map(|p| p.0), &|x| format!("{x:.6}"));
                let i = col(&|d| d.alpha_peak().map(|p| p.1 as f64), &|x| {
                    format!("{x:.0}")
                });
                format!("{v} at {i}")
            } else {
                "–".into()
            };
            let wall = col(&|d| Some(d.summary.elapsed_seconds), &|x| {
                format!("{x:.1} s")
            });
            let device = done
                .first()
                .map_or("–".to_string(), |d| super::style::text(&d.summary.device));
            let at_cells = at.map_or(String::new(), |e| {
                // Any run past epoch e has it, done or not.
                let reached: Vec<&runs::RunData> = s
                    .drawable()
                    .into_iter()
                    .filter(|d| d.summary.epochs_completed >= e)
                    .collect();
                let v = |f: fn(&crate::run_dir::EpochStats) -> f64| -> Vec<f64> {
                    reached.iter().filter_map(|d| d.epoch(e).map(f)).collect()
                };
                let (tl, vl) = (v(|x| x.train_loss), v(|x| x.test_loss));
                let ours = if tl.is_empty() {
                    "–".to_string()
                } else {
                    format!(
                        "{} / {}",
                        fmt_range(&tl, |x| format!("{x:.4}")),
                        fmt_range(&vl, |x| format!("{x:.4}"))
                    )
                };
                let reference = net
                    .and_then(|n| paper::final_losses(n, s.optimizer))
                    .map_or("–".to_string(), |(t, v)| format!("{t} / {v}"));
                format!(" {ours} | {reference} |")
            });
            let _ = writeln!(
                self.md,
                "| {} | {} | {} | {test_loss} | {test_acc} | {best_cell} | {train} |{at_cells} {peak} | {wall} | {device} |",
                super::style::text(&s.label),
                s.runs.len(),
                s.note().unwrap_or_else(|| "done".into()),
            );
        }
        self.md.push('\n');
    }
}
