//! One experiment's section of the report: its heading, data and runs, then by kind of
//! experiment its figures, tables and claims (the Fig. 4 grid here; the learning curves in
//! `curves`, the α0 study in `study`).

use super::claims::Claim;
use super::draw::draw_heat;
use super::fig4;
use super::paper::Net;
use super::runs::{distinct, settings, Rec, Status};
use super::stats::thousands;
use crate::plot::PlotError;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Known full training sets, to say whether the iterations an epoch imply one.
fn full_size(d: crate::data::DatasetKind) -> u64 {
    use crate::data::DatasetKind as D;
    match d {
        D::Mnist | D::FashionMnist => 60_000,
        D::Cifar10 | D::Cifar100 => 50_000,
    }
}

/// The iterations an epoch of an experiment's runs: the most common among them.
pub(super) fn iterations_an_epoch(rs: &[&Rec]) -> Option<u64> {
    let mut by: BTreeMap<u64, usize> = BTreeMap::new();
    for n in rs.iter().filter_map(|r| r.data()?.iterations_an_epoch()) {
        *by.entry(n).or_default() += 1;
    }
    by.into_iter().max_by_key(|(_, c)| *c).map(|(n, _)| n)
}

/// One experiment's section of the report.
pub(super) struct Section<'a> {
    pub(super) exp: &'a str,
    pub(super) rs: &'a [&'a Rec],
    /// Every run of the report (for the iterations an epoch of an experiment without any).
    pub(super) all: &'a [Rec],
    /// Runs of other experiments that join this one's Fig. 4 grid (its base rows).
    pub(super) joins: Vec<&'a Rec>,
    /// The experiment whose Fig. 4 grid this one's runs are the base rows of.
    pub(super) part_of: Option<&'a str>,
    pub(super) out: &'a Path,
    pub(super) written: &'a mut Vec<PathBuf>,
    pub(super) md: String,
    pub(super) claims: Vec<Claim>,
    /// The Fig. 4 count, for the report's first lines.
    pub(super) grid: Option<String>,
}

impl Section<'_> {
    pub(super) fn write(&mut self) -> Result<(), PlotError> {
        let (exp, rs) = (self.exp, self.rs);
        let _ = writeln!(
            self.md,
            "## {}: {}\n",
            super::style::text(exp),
            settings(rs)
        );
        let (ipe, from) = self.iterations_an_epoch();
        let _ = writeln!(self.md, "{}\n", self.data_line(ipe, from));
        let _ = writeln!(self.md, "Runs: {}.\n", run_counts(rs.iter().copied()));
        if let Some(host) = self.part_of {
            let _ = writeln!(
                self.md,
                "Its runs are the base rows of Fig. 4: see `{host}`.\n"
            );
            Ok(())
        } else if fig4::is_target_study(rs) {
            self.grid(ipe)
        } else if distinct(rs, "a0").len() > 1 {
            self.alpha0_study()
        } else {
            self.curves(ipe)
        }
    }

    /// The iterations an epoch of this experiment's runs, else of other runs on the same data
    /// at the same batch (and which experiment they are from).
    pub(super) fn iterations_an_epoch(&self) -> (Option<u64>, Option<String>) {
        if let Some(n) = iterations_an_epoch(self.rs) {
            return (Some(n), None);
        }
        let Some(c) = self.rs.iter().find_map(|r| r.config()) else {
            return (None, None);
        };
        let same: Vec<&Rec> = self
            .all
            .iter()
            .filter(|r| {
                r.data().is_some_and(|d| {
                    d.summary.config.dataset == c.dataset
                        && d.summary.config.batch_size == c.batch_size
                })
            })
            .collect();
        match iterations_an_epoch(&same) {
            Some(n) => {
                let from = same
                    .iter()
                    .find(|r| r.data().and_then(|d| d.iterations_an_epoch()) == Some(n))
                    .map(|r| r.experiment.clone());
                (Some(n), from)
            }
            None => (None, None),
        }
    }

    /// "Data: mnist, 469 iterations an epoch at batch 128 (59,905–60,032 training images: the
    /// full set of 60,000)."
    pub(super) fn data_line(&self, ipe: Option<u64>, from: Option<String>) -> String {
        let Some(c) = self.rs.iter().find_map(|r| r.config()) else {
            return "Data: unknown (no run, and the plan does not give its settings).".into();
        };
        let batch = u64::try_from(c.batch_size).unwrap_or(1).max(1);
        let Some(n) = ipe else {
            return format!(
                "Data: {}, batch {batch}; iterations an epoch unknown (no run has completed \
                 an epoch).",
                c.dataset
            );
        };
        let (lo, hi) = ((n - 1).saturating_mul(batch) + 1, n.saturating_mul(batch));
        let full = full_size(c.dataset);
        let which = if (lo..=hi).contains(&full) {
            format!("the full training set of {}", thousands(full))
        } else {
            format!("not the full training set of {}", thousands(full))
        };
        let mut s = format!(
            "Data: {}, {n} iterations an epoch at batch {batch} ({}), so {}–{} training images: \
             {which}.",
            c.dataset,
            from.map_or("from the runs' summaries".to_string(), |e| format!(
                "from the summaries of `{e}`, on the same data at the same batch: no run of this \
                 experiment has completed an epoch"
            )),
            thousands(lo),
            thousands(hi)
        );
        let others: Vec<u64> = {
            let mut v: Vec<u64> = self
                .rs
                .iter()
                .filter_map(|r| r.data()?.iterations_an_epoch())
                .filter(|m| *m != n)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        if !others.is_empty() {
            let _ = write!(
                s,
                " Some runs have other counts: {}.",
                others
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        s
    }

    /// The paper's net of this experiment, with what differs from the paper's setting.
    pub(super) fn net(&self) -> Option<(Net, Vec<String>)> {
        let c = self.rs.iter().find_map(|r| r.config())?;
        let net = Net::of(&c.model)?;
        let mut differs = Vec::new();
        if c.dataset != crate::data::DatasetKind::Mnist {
            differs.push(format!("the dataset is {}, the paper's MNIST", c.dataset));
        }
        if let crate::models::Model::Mlp { hidden } = &c.model {
            if hidden != &[1000, 1000] {
                differs.push(format!(
                    "the MLP is {}, the paper's MLP(1000-1000)",
                    c.model
                ));
            }
        }
        if c.batch_size != 128 {
            differs.push(format!("batch {}, the paper's 128", c.batch_size));
        }
        if c.core.alpha0 != hd_core::paper::ALPHA0 {
            differs.push(format!("α0 = {}, the paper's 0.001", c.core.alpha0));
        }
        Some((net, differs))
    }

    pub(super) fn grid(&mut self, ipe: Option<u64>) -> Result<(), PlotError> {
        let exp = self.exp;
        let mut rs: Vec<&Rec> = self.rs.to_vec();
        rs.extend(self.joins.iter().copied());
        let g = fig4::grid(&rs);
        if !self.joins.is_empty() {
            let mut from: Vec<String> = self
                .joins
                .iter()
                .map(|r| super::style::code(&r.experiment))
                .collect();
            from.dedup();
            let _ = writeln!(self.md, "With the base rows from {}.\n", from.join(", "));
        }
        fig4::markdown(&g, ipe, &mut self.md);
        self.grid = Some(fig4::count_sentence(&g, Some(exp)));
        if g.hd.is_empty() && g.base.is_empty() {
            return Ok(());
        }
        let (panels, range) = fig4::panels(&g);
        let rows_up: Vec<String> = g.alpha0.iter().rev().cloned().collect();
        let title = format!("{exp}: iterations to training loss ≤ {}", g.target);
        let w = 720 * panels.len() as u32;
        figure!(
            self.out,
            super::style::stem(exp, "fig4"),
            (w, 640),
            self.written,
            |root| {
                let (head, body) = root.split_vertically(40);
                head.titled(&title, ("sans-serif", 22))
                    .map_err(|e| e.to_string())?;
                let areas = body.split_evenly((1, panels.len()));
                let mut r: Result<(), String> = Ok(());
                for (area, p) in areas.iter().zip(&panels) {
                    let t = format!("{} (log colour: fewer dark)", p.name);
                    r = r.and(draw_heat(
                        area,
                        &t,
                        ("β", &p.columns),
                        ("α0", &rows_up),
                        &p.cells,
                        range,
                    ));
                }
                r
            }
        );
        let _ = writeln!(
            self.md,
            "![Fig. 4: iterations to the loss]({}.png)\n\nThe heat map: colour by log10 \
             of our iterations (dark fewer), a cell not reached at the top of the scale, grey \
             where there is no result; each cell gives ours above the paper's (in brackets).\n",
            super::style::stem(exp, "fig4")
        );
        Ok(())
    }
}

/// "36 runs: 27 done, 9 not run".
pub(super) fn run_counts<'a>(recs: impl IntoIterator<Item = &'a Rec>) -> String {
    let mut total = 0;
    let mut done = 0;
    let mut incomplete = 0;
    let mut diverged = 0;
    let mut not_run = 0;
    let mut unreadable = 0;
    for r in recs {
        total += 1;
        match r.status() {
            Status::Done => done += 1,
            Status::Incomplete { .. } => incomplete += 1,
            Status::Diverged => diverged += 1,
            Status::NotRun => not_run += 1,
            Status::Unreadable => unreadable += 1,
        }
    }
    let mut parts = vec![format!("{done} done")];
    for (n, what) in [
        (incomplete, "incomplete"),
        (diverged, "diverged"),
        (not_run, "not run"),
        (unreadable, "unreadable"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!("{total} runs, {}", parts.join(", "))
}

/// A claims table.
pub(super) fn claims_table(claims: &[Claim]) -> String {
    let mut s = String::from(
        "| claim | paper | band | reference code's logs | ours | |\n|---|---|---|---|---|---|\n",
    );
    for c in claims {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            c.what, c.paper, c.band, c.reference, c.ours, c.verdict
        );
    }
    s
}
