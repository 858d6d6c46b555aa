//! `versus report DIR`: `DIR/REPORT.md` and one figure per task (final validation loss against
//! the knob, one line per method, PNG and SVG), from the plan and the records `run` left there.

use super::method::Method;
use super::plan::{self, knob_text, Plan};
use super::record::{self, Record};
use super::summary::{summarise, Cell, Row, TaskSummary};
use super::verdict::{sentence, Standing};
use super::VersusError;
use crate::config::Variant;
use crate::plot::{register_font, PlotError};
use crate::report::draw::{draw_lines, Axes, Line};
use crate::report::stats::{sig, thousands};
use crate::report::style::text;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The colour of a method in the figures: the paper's rules keep the suite's colours.
fn colour(m: Method) -> RGBColor {
    match m {
        Method::Sgd => crate::report::colour(Variant::Sgd),
        Method::SgdHd => crate::report::colour(Variant::SgdHd),
        Method::SgdHdStacked => RGBColor(148, 103, 189),
        Method::Adam => crate::report::colour(Variant::Adam),
        Method::AdamHd => crate::report::colour(Variant::AdamHd),
        Method::AdamHdStacked => RGBColor(227, 119, 194),
        Method::Prodigy => RGBColor(44, 160, 44),
        Method::SfSgd => RGBColor(188, 189, 34),
        Method::SfAdamw => RGBColor(140, 86, 75),
    }
}

/// Reads `DIR/plan.toml` and every record in `DIR/runs`, writes `DIR/REPORT.md` and each
/// task's figure, and returns the files written.
///
/// # Errors
/// No plan in `dir` ([`VersusError::NoPlan`]), an invalid plan, a record that cannot be read
/// or is not one, no font for the figures, a file that cannot be written.
pub fn report(dir: &Path) -> Result<Vec<PathBuf>, VersusError> {
    let plan_file = plan::copy_in(dir);
    if !plan_file.is_file() {
        return Err(VersusError::NoPlan {
            dir: dir.to_path_buf(),
        });
    }
    let plan = plan::load(&plan_file)?;
    let records = read_records(&record::dir(dir))?;
    let tasks = summarise(&plan, &records);
    register_font()?;
    let mut written = Vec::new();
    let left_out = records.len() - tasks.iter().map(|t| t.records).sum::<usize>();
    let mut md = opening(&plan, &tasks, left_out);
    for t in &tasks {
        let stem = format!("{}-knob", t.task.name);
        figure(dir, &stem, t, &mut written)?;
        md.push_str(&section(&plan, t, &stem));
    }
    let path = dir.join("REPORT.md");
    std::fs::write(&path, md).map_err(|source| VersusError::Io {
        path: path.clone(),
        source,
    })?;
    written.push(path);
    Ok(written)
}

/// Every `*.json` record in `runs` (none when the directory is not there), sorted by name.
fn read_records(runs: &Path) -> Result<Vec<Record>, VersusError> {
    let entries = match std::fs::read_dir(runs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(VersusError::Io {
                path: runs.to_path_buf(),
                source,
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    paths.iter().map(|p| record::read(p)).collect()
}

/// Whether every run of task `t` is recorded (a diverged run is recorded).
fn complete(t: &TaskSummary) -> bool {
    t.rows.iter().all(|r| {
        r.cells
            .iter()
            .all(|(_, c)| !matches!(c, Cell::Missing { .. }))
    })
}

/// Each method's standing over the tasks whose runs are all recorded, for the sentence: a
/// task under way would count its missing values as far from the best.
fn standings(plan: &Plan, tasks: &[TaskSummary]) -> Vec<Standing> {
    let whole: Vec<&TaskSummary> = tasks.iter().filter(|t| complete(t)).collect();
    plan.methods
        .iter()
        .enumerate()
        .map(|(i, g)| Standing {
            method: g.tuned.method,
            values: g.values.len(),
            within: whole.iter().map(|t| t.rows[i].within).collect(),
            best_valid: whole
                .iter()
                .map(|t| t.rows[i].best_valid.map(|b| b.1))
                .collect(),
        })
        .collect()
}

/// The title, the counts, the sentence and how the numbers were made; `left_out` records
/// in the directory are of runs the plan does not hold.
fn opening(plan: &Plan, tasks: &[TaskSummary], left_out: usize) -> String {
    let planned = plan.runs().len();
    let recorded: usize = tasks.iter().map(|t| t.records).sum();
    let mut md = String::from("# HD against the learning-rate-free optimizers\n\n");
    let _ = writeln!(md, "{}\n", text(&plan.description));
    let _ = write!(md, "Runs recorded: {recorded} of the plan's {planned}.");
    if left_out > 0 {
        let _ = write!(
            md,
            " {left_out} other record{} in `runs/` (another plan's tasks or settings) {} left out.",
            if left_out == 1 { "" } else { "s" },
            if left_out == 1 { "is" } else { "are" }
        );
    }
    md.push_str("\n\n");
    let whole = tasks.iter().filter(|t| complete(t)).count();
    let _ = write!(
        md,
        "**Is HD still worth it?** {}",
        sentence(&standings(plan, tasks))
    );
    if whole > 0 && whole < tasks.len() {
        let _ = write!(
            md,
            " (This weighs the {whole} of {} tasks whose runs are all recorded.)",
            tasks.len()
        );
    }
    md.push_str("\n\n");
    let seeds: Vec<String> = plan.seeds.iter().map(u64::to_string).collect();
    let settings: Vec<String> = plan
        .methods
        .iter()
        .filter_map(|g| {
            let m = g.tuned.method;
            let beta = g.tuned.beta.map(|b| format!("β = {}", setting(b)));
            let kappa = g.tuned.kappa.map(|k| format!("κ = {}", setting(k)));
            let s: Vec<String> = beta.into_iter().chain(kappa).collect();
            (!s.is_empty()).then(|| format!("{} {}", m.label(), s.join(", ")))
        })
        .collect();
    let _ = writeln!(
        md,
        "Every method has one knob: α0 for SGD and Adam and their HD forms ({}), d0 for \
         Prodigy (lr 1), the learning rate for Schedule-Free SGD and AdamW; everything else \
         is its package's default. Every run minimises the same function: the minibatch \
         cross-entropy with coupled L2 λ = {:e} added to the gradient (each method's own weight \
         decay 0); batch {}; seeds {}, each fixing the initialisation and the minibatch order \
         for every method. The first {} training images train, the last {} validate; the test \
         set is not used, since the best knob value is chosen by validation loss. A knob \
         value's numbers are means over the seeds; one where a seed diverged is \"diverged\" \
         and counts as not within 10 %. Losses are cross-entropy, without the L2 term. \
         Schedule-Free is evaluated at its average x.\n",
        settings.join("; "),
        plan.l2,
        plan.batch,
        seeds.join(", "),
        thousands(plan.training.unsigned_abs()),
        thousands(plan.validation.unsigned_abs()),
    );
    md
}

/// β or κ as the report writes it: `1e-4`, `0`.
fn setting(x: f32) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        knob_text(x)
    }
}

/// A loss and the knob value it was met at: `0.2712 (α0 = 1e-3)`.
fn at(row: &Row, best: Option<(f32, f64)>) -> String {
    best.map_or_else(
        || "–".into(),
        |(v, x)| {
            format!(
                "{} ({} = {})",
                sig(x, 4),
                row.method.knob().symbol(),
                knob_text(v)
            )
        },
    )
}

/// A cell of the knob table.
fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Done { valid, .. } => sig(*valid, 4),
        Cell::Diverged { seeds, of } => format!("diverged ({seeds} of {of} seeds)"),
        Cell::Missing { have: 0, .. } => "not run".into(),
        Cell::Missing { have, of } => format!("{have} of {of} seeds run"),
    }
}

/// One task's section: the figure, the table of best values, the table of every knob value,
/// the wall times.
fn section(plan: &Plan, t: &TaskSummary, stem: &str) -> String {
    let mut md = format!(
        "## {}: {} on {}, {} epoch{}\n\n![final validation loss against the knob]({stem}.png)\n\n",
        t.task.name,
        t.task.model,
        t.task.dataset,
        t.task.epochs,
        if t.task.epochs == 1 { "" } else { "s" }
    );
    let target = t.target.map_or_else(
        || "the target".into(),
        |x| format!("training loss {}", sig(x, 4)),
    );
    let _ = writeln!(
        md,
        "| method | best final training loss | best final validation loss | knob values within \
         10 % of its best | iterations to {target} |\n|---|---|---|---|---|"
    );
    for (r, g) in t.rows.iter().zip(&plan.methods) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} of {} | {} |",
            r.method.label(),
            at(r, r.best_train),
            at(r, r.best_valid),
            r.within,
            g.values.len(),
            r.to_target.map_or_else(|| "–".into(), thousands)
        );
    }
    let _ = writeln!(
        md,
        "\nThe target is the largest of the methods' best final training losses, so every \
         method reaches it; its iterations are counted at the knob value of the method's best \
         training loss, from the training loss over windows of a tenth of an epoch (mean over \
         seeds), \"–\" where it is not reached.\n"
    );
    let mut values: Vec<f32> = t
        .rows
        .iter()
        .flat_map(|r| r.cells.iter().map(|c| c.0))
        .collect();
    values.sort_by(|a, b| b.total_cmp(a));
    values.dedup();
    let head: Vec<String> = values.iter().map(|v| knob_text(*v)).collect();
    let _ = writeln!(
        md,
        "Mean final validation loss at each knob value:\n\n| method | {} |\n|---|{}",
        head.join(" | "),
        "---|".repeat(values.len())
    );
    for r in &t.rows {
        let cells: Vec<String> = values
            .iter()
            .map(|v| {
                r.cells
                    .iter()
                    .find(|c| c.0 == *v)
                    .map_or_else(String::new, |c| cell_text(&c.1))
            })
            .collect();
        let _ = writeln!(md, "| {} | {} |", r.method.label(), cells.join(" | "));
    }
    let mean = if t.records == 0 {
        "–".into()
    } else {
        format!("{} s", sig(t.seconds / t.records as f64, 3))
    };
    let _ = writeln!(
        md,
        "\nWall time: {} s over {} runs, {mean} a run.\n",
        sig(t.seconds, 4),
        t.records
    );
    md
}

/// The task's figure, `stem.png` and `stem.svg` in `dir`: mean final validation loss against
/// the knob value, shaded from the lowest to the highest seed, one line per method.
fn figure(
    dir: &Path,
    stem: &str,
    t: &TaskSummary,
    written: &mut Vec<PathBuf>,
) -> Result<(), VersusError> {
    let lines: Vec<Line> = t
        .rows
        .iter()
        .map(|r| {
            let mut points: Vec<(f64, f64, f64, f64)> = r
                .cells
                .iter()
                .filter_map(|(v, c)| match c {
                    Cell::Done {
                        valid, valid_range, ..
                    } => Some((f64::from(*v), *valid, valid_range.0, valid_range.1)),
                    Cell::Diverged { .. } | Cell::Missing { .. } => None,
                })
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            // A value where a seed diverged has no point: the legend says how many.
            let diverged = r
                .cells
                .iter()
                .filter(|(_, c)| matches!(c, Cell::Diverged { .. }))
                .count();
            let label = match diverged {
                0 => r.method.label().to_string(),
                k => format!("{} ({k} of {} diverged)", r.method.label(), r.cells.len()),
            };
            Line {
                label,
                colour: colour(r.method),
                points,
            }
        })
        .collect();
    // A method with no point at all is named in the title, not left out silently.
    let (lines, empty): (Vec<Line>, Vec<Line>) =
        lines.into_iter().partition(|l| !l.points.is_empty());
    let missing: Vec<&str> = empty.iter().map(|l| l.label.as_str()).collect();
    let title = match missing.as_slice() {
        [] => format!("{}: final validation loss against the knob", t.task.name),
        _ => format!(
            "{}: final validation loss against the knob; not drawn: {}",
            t.task.name,
            missing.join(", ")
        ),
    };
    let ax = Axes {
        title: &title,
        x: "knob value (α0, d0 or lr)",
        y: "final validation loss (mean over seeds)",
        log_x: true,
        log_y: true,
        // Losses are lowest between the grids' ends, high at both: the top middle stays clear.
        legend: SeriesLabelPosition::UpperMiddle,
    };
    let (png, svg) = (
        dir.join(format!("{stem}.png")),
        dir.join(format!("{stem}.svg")),
    );
    let size = (960, 640);
    let drawn = |path: &Path, r: Result<(), String>| {
        r.map_err(|what| PlotError::Draw {
            path: path.to_path_buf(),
            what,
        })
    };
    drawn(
        &png,
        draw(
            &BitMapBackend::new(&png, size).into_drawing_area(),
            &ax,
            &lines,
        ),
    )?;
    drawn(
        &svg,
        draw(
            &SVGBackend::new(&svg, size).into_drawing_area(),
            &ax,
            &lines,
        ),
    )?;
    written.push(png);
    written.push(svg);
    Ok(())
}

/// White background, the lines, and the file written.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    ax: &Axes,
    lines: &[Line],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    draw_lines(root, ax, lines)?;
    root.present().map_err(|e| e.to_string())
}
