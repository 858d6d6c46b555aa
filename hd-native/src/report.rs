//! The suite's report: figures and `REPORT.md` from a sweep's runs, held against its plan.
//!
//! **The plan.** `--plan PLAN` if given, else the plan the sweep's own state names
//! (`DIR/.sweep/manifest.json`: the plan's text if the sweep stored it, else the plan file at
//! the path it recorded, else the manifest's run ids and epochs alone). Every run of the plan
//! is then **done**, **incomplete (k of n epochs)** (n the plan's epochs: a run whose own
//! configuration asks for fewer is incomplete too), **diverged** or **not run** (no directory
//! or no `summary.json`); files that cannot be read mark their run **unreadable**. Without a
//! plan the report reads every run directory under `DIR`, holds each against its own epochs,
//! and says at the top that a claim cannot be marked "not run" without one.
//!
//! Runs are grouped by experiment (the first component of their id) and, within one, into
//! series: the optimizer and every axis value except the seed, so the seeds of a series give
//! its mean and a shaded band (minimum to maximum over seeds). Each optimizer has one colour
//! in every figure ([`colour`]). No seed is dropped silently: a series that is not whole says
//! so in every legend and table ("diverged (1 of 3 seeds)", "incomplete (5 of 20 epochs)").
//!
//! Each experiment's section states the dataset, the iterations an epoch (from the runs'
//! summaries) and the training set size they imply, then, by what the experiment is:
//! - **Fig. 4** (its runs stop at a loss and differ in α0 and β): the iterations until the
//!   minibatch training loss reaches the target, per HD rule over α0 × β and per base
//!   optimizer over α0, with the paper's number in each cell and the count of cells within a
//!   factor of 2 of it, as tables and a heat map ([`fig4`](self)).
//! - **an α0 study** (its runs differ in α0): the final training loss against α0 (log axes),
//!   a table of it, and for each hypergradient rule whether its final loss spreads less over
//!   α0 than its base optimizer's (the paper's Fig. 2); where β varies too, a heat map of the
//!   final training loss over α0 × β per optimizer.
//! - **learning curves** (any other): test loss, test accuracy and training loss against
//!   epoch, and α at every iteration with the SGD and Adam families in panels of their own;
//!   a table per series (with our losses at the reference logs' last epoch beside theirs);
//!   and on LogReg and the MLP the paper's claims: α peaks with their iterations, α's decay,
//!   SGDN-HD's α peaking first, the share of negative α, each HD rule below its base in
//!   training loss, and the MLP's Adam-HD an order of magnitude below Adam.
//!
//! Every claim comes out ✓ or ✗ against a band stated beside it, or as "not run",
//! "incomplete (k of n epochs)", "diverged (s of S seeds)" or "unreadable" when its runs do
//! not allow a verdict (see `claims` for the one exception: claims about the first iterations
//! of runs still under way). `REPORT.md` opens with the count of each.
//!
//! **What is read, and how.** Nothing under `DIR` is followed through a symbolic link: a link
//! to a directory is not walked (an `ln -s ..` would count runs twice, or loop) and is named
//! in a note; `summary.json` and `log.csv` are read only as regular files (never a link, a
//! FIFO or a device), `summary.json` up to 16 MiB and `log.csv` up to 256 MiB, else their
//! run is marked unreadable with why. A value no run computes (infinite, or beyond
//! ±`f32::MAX`: losses and α are `f32`) is left out of every figure and number, as `plot`
//! leaves it out, and a note says how many. Text from the files and names (experiment names,
//! run ids, series labels, summary fields) is escaped for Markdown and HTML; figure file
//! names are cut to 80 bytes, a name that is long or has other characters than letters,
//! digits, `.`, `_` and `-` followed by a hash of it. `REPORT.md` links only figures written.
//!
//! The submodules: `planned` (finding the plan), `runs` (reading the runs, their status and
//! series), `paper` (the paper's and the reference code's numbers, with their bands),
//! `claims`, `fig4`, `stats` (bands over seeds) and `draw` (the plotting).

use crate::plan::PlanError;
use crate::plot::{register_font, PlotError};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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

mod claims;
mod curves;
pub(crate) mod draw;
mod fig4;
mod paper;
mod planned;
mod runs;
mod section;
pub(crate) mod stats;
mod study;
pub(crate) mod style;

use claims::{Claim, Kind};
use runs::{status_note, Rec, Status};
use section::{run_counts, Section};
pub use style::colour;
use style::{code, text};

/// What can stop a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The runs cannot be read or a figure written.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// The plan given with `--plan` is invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// Writes the report of the sweep in `dir` into `out`: figures (PNG and SVG) and
/// `REPORT.md`. `plan` is the plan to hold the runs against (else the one the sweep's state
/// names, if any). Returns the files written.
///
/// # Errors
/// [`ReportError`] when `dir` cannot be read or holds no run (and no plan names any), the
/// plan given is invalid, no font is found, or a file cannot be written. A run whose files
/// are corrupt is marked in the report, not an error.
pub fn report(dir: &Path, out: &Path, plan: Option<&Path>) -> Result<Vec<PathBuf>, ReportError> {
    let (plan, mut notes) = planned::resolve(dir, plan)?;
    let (recs, more) = runs::collect(dir, plan.as_ref())?;
    notes.extend(more);
    if recs.is_empty() {
        return Err(PlotError::NoRuns.into());
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
    let mut body = String::new();
    let mut all_claims: Vec<Claim> = Vec::new();
    let mut grids: Vec<String> = Vec::new();
    let by_experiment: Vec<(&str, Vec<&Rec>)> = experiments
        .iter()
        .map(|e| {
            let rs: Vec<&Rec> = recs.iter().filter(|r| &r.experiment == e).collect();
            (e.as_str(), rs)
        })
        .collect();
    // Fig. 4's base rows may be an experiment of their own (a base optimizer takes no β).
    let base_rows = fig4::base_rows(&by_experiment);
    for (exp, rs) in &by_experiment {
        let joins: Vec<&Rec> = base_rows
            .iter()
            .filter(|(_, host)| host == exp)
            .flat_map(|(base, _)| {
                by_experiment
                    .iter()
                    .filter(move |(e, _)| e == base)
                    .flat_map(|(_, rs)| rs.iter().copied())
            })
            .collect();
        let mut section = Section {
            exp,
            rs,
            all: &recs,
            joins,
            part_of: base_rows
                .iter()
                .find(|(base, _)| base == exp)
                .map(|(_, host)| *host),
            out,
            written: &mut written,
            md: String::new(),
            claims: Vec::new(),
            grid: None,
        };
        section.write()?;
        body.push_str(&section.md);
        all_claims.append(&mut section.claims);
        grids.extend(section.grid);
    }
    let not_done = not_done(dir, &recs);

    let mut md = String::from("# Report\n\n");
    let dir_name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().to_string(),
    );
    let counts = run_counts(&recs);
    match &plan {
        Some(p) => {
            let _ = writeln!(
                md,
                "Runs of {} held against the {}: {counts}.\n",
                code(&dir_name),
                p.source
            );
        }
        None => {
            let _ = writeln!(
                md,
                "Runs of {}: {counts}. **No plan**: neither `--plan` nor the sweep's \
                 state (`.sweep/manifest.json`) names one, so the report holds each run \
                 against its own epochs, and a claim whose runs are missing cannot be marked \
                 \"not run\": it is left out.\n",
                code(&dir_name)
            );
        }
    }
    if all_claims.is_empty() {
        let _ = writeln!(
            md,
            "**Claims: none of the paper's claims rests on these runs.**\n"
        );
    } else {
        let _ = writeln!(md, "{}\n", claim_counts(&all_claims));
    }
    for g in &grids {
        let _ = writeln!(md, "{g}\n");
    }
    for n in &notes {
        let _ = writeln!(md, "- {n}");
    }
    if !notes.is_empty() {
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "Figures: the mean over seeds, shaded from the lowest to the highest seed where a \
         series has several; a series that is not whole says so in its legend. The claims set \
         ours beside Baydin et al. 2018 (the paper) and, where they give a number, the \
         reference code's logs (its PyTorch re-run), ✓ or ✗ against the band stated beside \
         each; a claim whose runs are not all done says so instead.\n"
    );
    md.push_str(&body);
    if !not_done.is_empty() {
        let _ = writeln!(md, "## Runs not done\n\n{}\n", not_done.join("\n"));
    }
    let path = out.join("REPORT.md");
    std::fs::write(&path, md).map_err(|source| PlotError::Io {
        path: path.clone(),
        source,
    })?;
    written.push(path);
    Ok(written)
}

/// The list of runs that are not done, with why where the run or the sweep says; runs simply
/// not run are counted per experiment rather than listed.
fn not_done(dir: &Path, recs: &[Rec]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut plain: Vec<(String, usize)> = Vec::new();
    for r in recs.iter().filter(|r| r.status() != Status::Done) {
        let why = match &r.state {
            runs::State::Unreadable(why) => why.clone(),
            _ => planned::sweep_note(dir, &r.id).unwrap_or_default(),
        };
        let status = status_note(&[r], "runs").unwrap_or_default();
        if why.is_empty() && r.status() == Status::NotRun {
            match plain.iter_mut().find(|(e, _)| *e == r.experiment) {
                Some((_, n)) => *n += 1,
                None => plain.push((r.experiment.clone(), 1)),
            }
        } else if why.is_empty() {
            lines.push(format!("- {}: {status}", code(&r.id)));
        } else {
            lines.push(format!("- {}: {status} — {}", code(&r.id), text(&why)));
        }
    }
    for (e, n) in plain {
        lines.push(format!(
            "- {}: {n} run{} not run",
            code(&e),
            if n == 1 { "" } else { "s" }
        ));
    }
    lines
}

/// "**Claims: 10 ✓, 2 ✗, 12 not run, 0 incomplete.**" (diverged and unreadable when any).
fn claim_counts(claims: &[Claim]) -> String {
    let n = |k: Kind| claims.iter().filter(|c| c.verdict.kind() == k).count();
    let mut s = format!(
        "**Claims: {} ✓, {} ✗, {} not run, {} incomplete",
        n(Kind::Pass),
        n(Kind::Fail),
        n(Kind::NotRun),
        n(Kind::Incomplete)
    );
    for (k, what) in [
        (Kind::Diverged, "diverged"),
        (Kind::Unreadable, "unreadable"),
    ] {
        if n(k) > 0 {
            let _ = write!(s, ", {} {what}", n(k));
        }
    }
    s.push_str(".**");
    s
}
