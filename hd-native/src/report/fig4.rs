//! Fig. 4 as the paper draws it: for each HD rule, the iterations until the minibatch training
//! loss first reaches the target (0.29), over α0 (rows) × β (columns), beside the base
//! optimizers' (which have no β), with the paper's number in each cell.
//!
//! An experiment is this grid by its content: its runs stop at a loss (`stop-at-loss`) and
//! differ in α0 and β. A run that reached the target records the iteration
//! (`summary.json`'s `reached`); one that did all its epochs without reaching it shows
//! "> cap", its cap being the iterations it ran (its epochs × the iterations an epoch).
//!
//! **Agreement with the paper** is a factor of 2 either way. A cell one side did not reach
//! is counted as follows (the paper's cap is 468,750 iterations):
//! - ours n, the paper's "> 468750": agrees only if n > 468,750 too (the paper's number is
//!   beyond its cap; any n within it is one the paper did not see);
//! - ours "> cap", the paper's p: disagrees if cap ≥ 2p (we would have reached it by 2p),
//!   otherwise **undecided**: our cap is too short to tell;
//! - ours "> cap", the paper's "> 468750": agrees if cap ≥ 468,750, otherwise undecided.
//!
//! Cells not run, incomplete or diverged are counted apart, never as agreeing.

use super::draw::HeatCell;
use super::paper::fig4::{self as paper, FIG4_CAP, FIG4_TARGET};
use super::runs::{distinct, status_note, status_word, Rec};
use super::stats::stats;
use super::style::{code, text};
use crate::config::Variant;
use crate::data::DatasetKind;
use crate::models::Model;
use hd_core::HyperRule;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Our number in a cell.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ours {
    /// Reached the target at this iteration (the mean over seeds, rounded).
    Reached(u64),
    /// Did all its iterations (`cap`) without reaching it.
    NotReached { cap: u64 },
    /// Not (yet) a result: not run, incomplete, diverged, … (the words, and a word or two
    /// for the heat map).
    Pending(String, &'static str),
    /// No such run in the plan.
    Absent,
}

/// How a cell compares with the paper's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Agreement {
    /// Within a factor of 2.
    Within,
    /// Outside it.
    Outside,
    /// One side did not reach the target within a cap too short to tell.
    Undecided,
    /// The paper has no such cell.
    NoPaper,
    /// No result of ours.
    NoData,
}

/// Compares our cell with the paper's (`Some(n)` reached at n, `None` "> 468750").
pub(super) fn agreement(ours: &Ours, paper: Option<Option<u64>>) -> Agreement {
    let Some(p) = paper else {
        return Agreement::NoPaper;
    };
    let within = |ok: bool| {
        if ok {
            Agreement::Within
        } else {
            Agreement::Outside
        }
    };
    match (ours, p) {
        (Ours::Reached(n), Some(p)) => {
            within(n.saturating_mul(2) >= p && *n <= p.saturating_mul(2))
        }
        (Ours::Reached(n), None) => within(*n > FIG4_CAP),
        (Ours::NotReached { cap }, Some(p)) => {
            if *cap >= p.saturating_mul(2) {
                Agreement::Outside
            } else {
                Agreement::Undecided
            }
        }
        (Ours::NotReached { cap }, None) => {
            if *cap >= FIG4_CAP {
                Agreement::Within
            } else {
                Agreement::Undecided
            }
        }
        (Ours::Pending(..) | Ours::Absent, _) => Agreement::NoData,
    }
}

/// One cell: ours, the paper's, and how they compare.
#[derive(Debug, Clone)]
pub(super) struct Cell {
    pub(super) ours: Ours,
    pub(super) paper: Option<Option<u64>>,
    pub(super) agreement: Agreement,
}

impl Cell {
    fn ours_text(&self) -> String {
        match &self.ours {
            Ours::Reached(n) => n.to_string(),
            Ours::NotReached { cap } => format!("> {cap}"),
            Ours::Pending(w, _) => w.clone(),
            Ours::Absent => "–".into(),
        }
    }

    fn paper_text(&self) -> String {
        match self.paper {
            Some(Some(p)) => p.to_string(),
            Some(None) => format!("> {FIG4_CAP}"),
            None => "–".into(),
        }
    }

    /// `ours / paper mark` for a table.
    fn markdown(&self) -> String {
        let mark = match self.agreement {
            Agreement::Within => " ≈",
            Agreement::Outside => " ≠",
            Agreement::Undecided => " ?",
            Agreement::NoPaper | Agreement::NoData => "",
        };
        format!("{} / {}{mark}", self.ours_text(), self.paper_text())
    }

    /// The cell of the heat map: shaded by log10 of our iterations (a cell not reached at
    /// the top of the scale).
    pub(super) fn heat(&self, top: f64) -> HeatCell {
        let shade = match &self.ours {
            Ours::Reached(n) => Some((*n as f64).max(1.0).log10()),
            Ours::NotReached { .. } => Some(top),
            _ => None,
        };
        let ours = match &self.ours {
            Ours::Pending(_, word) => (*word).to_string(),
            _ => self.ours_text(),
        };
        HeatCell {
            shade,
            text: vec![ours, format!("({})", self.paper_text())],
        }
    }
}

/// The grid of one experiment.
#[derive(Debug, Clone)]
pub(super) struct Grid {
    /// α0 values, largest first (the paper's rows).
    pub(super) alpha0: Vec<String>,
    /// β values, smallest first (the paper's columns).
    pub(super) beta: Vec<String>,
    /// Each HD rule's cells, `[row][column]`.
    pub(super) hd: Vec<(Variant, Vec<Vec<Cell>>)>,
    /// Each base optimizer's cells by row.
    pub(super) base: Vec<(Variant, Vec<Cell>)>,
    /// The loss target.
    pub(super) target: f64,
    /// Why the paper's numbers are not set beside ours, if they are not.
    pub(super) not_comparable: Option<String>,
}

/// Whether an experiment's runs are (part of) a Fig. 4 grid: they stop at a loss and differ in
/// α0. With several β they are a grid of their own; without, they may be the base rows of one.
pub(super) fn is_target_study(rs: &[&Rec]) -> bool {
    rs.iter().any(|r| r.target().is_some()) && distinct(rs, "a0").len() > 1
}

/// What a Fig. 4 grid's experiments must share to be one figure: the loss target, the model
/// and the data.
pub(super) fn grid_key(rs: &[&Rec]) -> Option<String> {
    let target = rs.iter().find_map(|r| r.target())?;
    let c = rs.iter().find_map(|r| r.config())?;
    Some(format!("{target} {} {}", c.title(), c.batch_size))
}

/// The experiments whose runs are only the base rows of a Fig. 4 grid (a loss target and α0,
/// no β), each with the experiment of the grid they join (one with β, the same target, model,
/// data and batch).
pub(super) fn base_rows<'a>(experiments: &[(&'a str, Vec<&Rec>)]) -> Vec<(&'a str, &'a str)> {
    let with_beta = |rs: &[&Rec]| distinct(rs, "b").len() > 1;
    experiments
        .iter()
        .filter(|(_, rs)| is_target_study(rs) && !with_beta(rs))
        .filter_map(|(exp, rs)| {
            let key = grid_key(rs)?;
            let host = experiments.iter().find(|(_, h)| {
                is_target_study(h) && with_beta(h) && grid_key(h).as_deref() == Some(&key)
            })?;
            Some((*exp, host.0))
        })
        .collect()
}

/// Our cell from the runs of one setting (its seeds).
fn ours(runs: &[&Rec]) -> Ours {
    if runs.is_empty() {
        return Ours::Absent;
    }
    if let (Some(note), Some(word)) = (status_note(runs, "seeds"), status_word(runs)) {
        return Ours::Pending(note, word);
    }
    let data: Vec<_> = runs.iter().filter_map(|r| r.data()).collect();
    let reached: Vec<u64> = data.iter().filter_map(|d| d.reached()).collect();
    if reached.len() == data.len() {
        let mean = reached.iter().map(|&n| n as f64).sum::<f64>() / reached.len() as f64;
        Ours::Reached(mean.round() as u64)
    } else if reached.is_empty() {
        Ours::NotReached {
            cap: data.iter().map(|d| d.summary.iterations).min().unwrap_or(0),
        }
    } else {
        Ours::Pending(
            format!("reached by {} of {} seeds", reached.len(), data.len()),
            "some seeds",
        )
    }
}

/// The grid of an experiment's runs.
pub(super) fn grid(rs: &[&Rec]) -> Grid {
    let mut alpha0 = distinct(rs, "a0");
    alpha0.reverse();
    let beta = distinct(rs, "b");
    let target = rs.iter().find_map(|r| r.target()).unwrap_or(f64::NAN);
    let config = rs.iter().find_map(|r| r.config());
    let not_comparable = if (target - FIG4_TARGET).abs() > 1e-9 {
        Some(format!(
            "this grid's target is {target}, the paper's {FIG4_TARGET}"
        ))
    } else {
        match config {
            Some(c) if c.model != Model::Logreg || c.dataset != DatasetKind::Mnist => Some(
                format!("this grid is {}, the paper's LogReg on MNIST", c.title()),
            ),
            _ => None,
        }
    };
    let num = |s: &str| s.parse::<f64>().ok();
    let cell = |o: Variant, a: &str, b: Option<&str>| -> Cell {
        let runs: Vec<&Rec> = rs
            .iter()
            .copied()
            .filter(|r| {
                r.optimizer == o
                    && r.axes.get("a0").map(String::as_str) == Some(a)
                    && b.is_none_or(|b| r.axes.get("b").map(String::as_str) == Some(b))
            })
            .collect();
        let ours = ours(&runs);
        let paper = match (not_comparable.is_none(), num(a)) {
            (true, Some(a)) => paper::cell(o, a, b.and_then(num)),
            _ => None,
        };
        Cell {
            agreement: agreement(&ours, paper),
            ours,
            paper,
        }
    };
    let mut opts: Vec<Variant> = Vec::new();
    for r in rs {
        if !opts.contains(&r.optimizer) {
            opts.push(r.optimizer);
        }
    }
    opts.sort_by_key(|o| super::runs::optimizer_order(*o));
    let hd = opts
        .iter()
        .filter(|o| o.rule() == Some(HyperRule::Additive))
        .map(|&o| {
            let rows = alpha0
                .iter()
                .map(|a| beta.iter().map(|b| cell(o, a, Some(b))).collect())
                .collect();
            (o, rows)
        })
        .collect();
    let base = opts
        .iter()
        .filter(|o| o.rule().is_none())
        .map(|&o| (o, alpha0.iter().map(|a| cell(o, a, None)).collect()))
        .collect();
    Grid {
        alpha0,
        beta,
        hd,
        base,
        target,
        not_comparable,
    }
}

/// The count of cells by agreement: (within, outside, undecided, no data), over the cells the
/// paper has.
pub(super) fn count(g: &Grid) -> (usize, usize, usize, usize) {
    let all =
        g.hd.iter()
            .flat_map(|(_, rows)| rows.iter().flatten())
            .chain(g.base.iter().flat_map(|(_, c)| c.iter()));
    let mut n = (0, 0, 0, 0);
    for c in all {
        match c.agreement {
            Agreement::Within => n.0 += 1,
            Agreement::Outside => n.1 += 1,
            Agreement::Undecided => n.2 += 1,
            Agreement::NoData if c.paper.is_some() => n.3 += 1,
            _ => {}
        }
    }
    n
}

/// The grid's tables and count in Markdown.
pub(super) fn markdown(g: &Grid, iterations_an_epoch: Option<u64>, md: &mut String) {
    let _ = writeln!(
        md,
        "Fig. 4: iterations until the minibatch training loss is at most {}, ours / the \
         paper's (Baydin et al. 2018, Fig. 4) in each cell. \"> N\": not reached in the N \
         iterations the run had (its epochs × {} iterations an epoch); the paper's cap is \
         468,750 (1,000 epochs). ≈ within a factor of 2 of the paper's, ≠ not, ? undecided \
         (one side did not reach the loss, within a cap too short to tell); a paper's \
         \"> 468750\" agrees with ours only if ours is beyond 468,750 too (a cap at least that, \
         or a number above it).\n",
        g.target,
        iterations_an_epoch.map_or("the".into(), |n| n.to_string())
    );
    if let Some(why) = &g.not_comparable {
        let _ = writeln!(md, "The paper's numbers are not set beside ours: {why}.\n");
    }
    // α0 and β are the values written in run ids, which are file names: text, not markup.
    for (o, rows) in &g.hd {
        let _ = writeln!(
            md,
            "**{}**\n\n| α0 \\ β | {} |\n|---|{}",
            o.label(),
            g.beta
                .iter()
                .map(|b| text(b))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(g.beta.len())
        );
        for (a, row) in g.alpha0.iter().zip(rows) {
            let cells: Vec<String> = row.iter().map(Cell::markdown).collect();
            let _ = writeln!(md, "| {} | {} |", text(a), cells.join(" | "));
        }
        md.push('\n');
    }
    if !g.base.is_empty() {
        let _ = writeln!(
            md,
            "**Base optimizers** (no β)\n\n| α0 | {} |\n|---|{}",
            g.base
                .iter()
                .map(|(o, _)| o.label())
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(g.base.len())
        );
        for (i, a) in g.alpha0.iter().enumerate() {
            let cells: Vec<String> = g
                .base
                .iter()
                .map(|(_, c)| c.get(i).map_or("–".into(), Cell::markdown))
                .collect();
            let _ = writeln!(md, "| {} | {} |", text(a), cells.join(" | "));
        }
        md.push('\n');
    }
    let _ = writeln!(md, "{}\n", count_sentence(g, None));
}

/// "k of N cells within a factor of 2 of the paper's", with the undecided and missing ones;
/// `of` names the grid's experiment.
pub(super) fn count_sentence(g: &Grid, of: Option<&str>) -> String {
    let (within, outside, undecided, missing) = count(g);
    let judged = within + outside + undecided;
    let of = of.map_or(String::new(), |e| format!(" ({})", code(e)));
    let mut s =
        format!("**Fig. 4{of}: {within} of {judged} cells within a factor of 2 of the paper's**");
    let mut rest = Vec::new();
    if undecided > 0 {
        rest.push(format!("{undecided} undecided"));
    }
    if missing > 0 {
        rest.push(format!(
            "{missing} of the paper's cells without a result of ours: not run, incomplete or \
             diverged"
        ));
    }
    if !rest.is_empty() {
        let _ = write!(s, "; {}", rest.join("; "));
    }
    s.push('.');
    s
}

/// One panel of the heat map: a rule's cells over β (and its base optimizer's column), α0 up.
pub(super) struct Panel {
    pub(super) name: String,
    /// The columns' labels.
    pub(super) columns: Vec<String>,
    /// `(column, row)`, row 0 the smallest α0 (at the bottom).
    pub(super) cells: BTreeMap<(usize, usize), HeatCell>,
}

/// The heat map's panels, one per HD rule: β across, α0 up (1e-1 at the top, as the paper's
/// rows) and the base optimizer's column at the right; a base optimizer whose HD rule is not
/// in the grid in a panel of the base optimizers. With the log10 range of the colour scale,
/// one over all panels (a cell not reached at its top).
pub(super) fn panels(g: &Grid) -> (Vec<Panel>, Option<(f64, f64)>) {
    let shades: Vec<f64> =
        g.hd.iter()
            .flat_map(|(_, rows)| rows.iter().flatten())
            .chain(g.base.iter().flat_map(|(_, c)| c.iter()))
            .filter_map(|c| match c.ours {
                Ours::Reached(n) => Some((n as f64).max(1.0).log10()),
                Ours::NotReached { cap } => Some((cap as f64).max(1.0).log10()),
                _ => None,
            })
            .collect();
    let (_, lo, hi) = stats(&shades);
    let top = if hi.is_finite() { hi } else { 0.0 };
    let range = lo.is_finite().then_some((lo, top));
    let ny = g.alpha0.len();
    let mut panels = Vec::new();
    for (o, rows) in &g.hd {
        let mut columns = g.beta.clone();
        let base = g.base.iter().find(|(b, _)| *b == o.base());
        if let Some((b, _)) = base {
            columns.push(b.label().to_string());
        }
        let mut cells = BTreeMap::new();
        for (i, row) in rows.iter().enumerate() {
            for (j, c) in row.iter().enumerate() {
                cells.insert((j, ny - 1 - i), c.heat(top));
            }
            if let Some(c) = base.and_then(|(_, cs)| cs.get(i)) {
                cells.insert((g.beta.len(), ny - 1 - i), c.heat(top));
            }
        }
        panels.push(Panel {
            name: o.label().to_string(),
            columns,
            cells,
        });
    }
    let lone: Vec<_> = g
        .base
        .iter()
        .filter(|(b, _)| !g.hd.iter().any(|(o, _)| o.base() == *b))
        .collect();
    if !lone.is_empty() {
        let mut cells = BTreeMap::new();
        for (j, (_, cs)) in lone.iter().enumerate() {
            for (i, c) in cs.iter().enumerate() {
                cells.insert((j, ny - 1 - i), c.heat(top));
            }
        }
        panels.push(Panel {
            name: "base optimizers".into(),
            columns: lone.iter().map(|(b, _)| b.label().to_string()).collect(),
            cells,
        });
    }
    (panels, range)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pairing of a result of ours with the paper's, at the edges of the factor of 2
    /// and of the caps.
    #[test]
    fn cells_agree_within_a_factor_of_two_and_caps_decide_or_not() {
        use Agreement::*;
        let reached = |n| Ours::Reached(n);
        let capped = |cap| Ours::NotReached { cap };
        for (ours, paper, expected) in [
            (reached(50), Some(Some(100)), Within),
            (reached(200), Some(Some(100)), Within),
            (reached(49), Some(Some(100)), Outside),
            (reached(201), Some(Some(100)), Outside),
            // The paper did not reach it within 468,750: only a number beyond that agrees.
            (reached(400_000), Some(None), Outside),
            (reached(468_751), Some(None), Within),
            // Not reached by us: decided only when our cap is at least twice the paper's.
            (capped(200), Some(Some(100)), Outside),
            (capped(199), Some(Some(100)), Undecided),
            // Neither reached: agreed only when our cap is at least the paper's.
            (capped(468_750), Some(None), Within),
            (capped(9_380), Some(None), Undecided),
            (reached(10), None, NoPaper),
            (
                Ours::Pending("not run".into(), "not run"),
                Some(Some(100)),
                NoData,
            ),
        ] {
            assert_eq!(agreement(&ours, paper), expected, "{ours:?} vs {paper:?}");
        }
    }

    /// The paper's grid as printed: rows α0 1e-1 … 1e-6, columns β 1e-6 … 1e-1, base rows
    /// independent of β.
    #[test]
    fn the_papers_grid_reads_as_printed() {
        use crate::config::Variant as O;
        assert_eq!(paper::cell(O::SgdHd, 1e-1, Some(1e-3)), Some(Some(76)));
        assert_eq!(paper::cell(O::SgdHd, 1e-4, Some(1e-6)), Some(Some(1452)));
        assert_eq!(paper::cell(O::SgdnHd, 1e-1, Some(1e-1)), Some(Some(2492)));
        assert_eq!(
            paper::cell(O::AdamHd, 1e-3, Some(1e-1)),
            Some(Some(467_678))
        );
        assert_eq!(paper::cell(O::Sgd, 1e-6, Some(1e-3)), Some(None));
        assert_eq!(paper::cell(O::Adam, 1e-4, None), Some(Some(73_079)));
        assert_eq!(paper::cell(O::SgdnHd, 1e-2, None), None);
        assert_eq!(paper::cell(O::SgdHdm, 1e-2, Some(1e-3)), None);
        assert_eq!(paper::cell(O::Sgd, 3e-3, None), None);
    }

    /// α0 and β labels and the experiment's name come from run ids, which are file names:
    /// REPORT.md shows them as text, no HTML and no table row of their own.
    #[test]
    fn labels_from_file_names_are_escaped() {
        let cell = Cell {
            ours: Ours::Reached(10),
            paper: None,
            agreement: Agreement::NoPaper,
        };
        let g = Grid {
            alpha0: vec!["1e-1<script>alert(1)</script>".into()],
            beta: vec!["1e-3\n| fake | row |".into()],
            hd: vec![(Variant::SgdHd, vec![vec![cell.clone()]])],
            base: vec![(Variant::Sgd, vec![cell])],
            target: FIG4_TARGET,
            not_comparable: None,
        };
        let mut md = String::new();
        markdown(&g, Some(469), &mut md);
        md.push_str(&count_sentence(&g, Some("e`|<b>")));
        for bad in ["<script", "\n| fake", "<b>", "`|"] {
            assert!(!md.contains(bad), "{bad:?} in\n{md}");
        }
        assert!(
            md.contains("| 1e-1&#60;script&#62;alert&#40;1&#41;"),
            "{md}"
        );
        assert!(md.contains("(e&#96;&#124;&#60;b&#62;)"), "{md}");
    }
}
