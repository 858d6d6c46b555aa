//! The runs of a report ([`Rec`]): every run the plan asks for and every run directory found,
//! each with what became of it ([`Status`]), read from its `summary.json` and `log.csv`
//! ([`RunData`]), and grouped into series (the seeds of one setting, [`Series`]).

use super::planned::{PlanInfo, Planned};
use crate::config::{RunConfig, Variant};
use crate::plot::{drawable, PlotError};
use crate::run_dir::{self, EpochStats, LogRow, Summary, LOG_HEADER};
use crate::sweep::STATE_DIR;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One iteration of a run's log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Step {
    /// `Iteration`, counted from 1 at the run's start.
    pub(super) iteration: u64,
    /// The epoch it belongs to (from 1).
    pub(super) epoch: u32,
    /// The minibatch loss.
    pub(super) loss: f64,
    /// α after the step.
    pub(super) alpha: f64,
}

/// A run's files as the report reads them.
#[derive(Debug, Clone)]
pub(super) struct RunData {
    pub(super) summary: Summary,
    /// The epoch rows of the log, epoch 0 first.
    pub(super) epochs: Vec<EpochStats>,
    /// Every iteration of the log.
    pub(super) steps: Vec<Step>,
    /// Values of the log left out: infinite or beyond ±`f32::MAX` (an edited log).
    pub(super) dropped: usize,
}

/// `x` if a figure can hold it ([`crate::plot`]'s filter: finite and within ±`f32::MAX`,
/// which no `f32` computation of a run exceeds), else NaN, which every figure and statistic
/// leaves out, as a diverged epoch's; `dropped` counts the values left out (a NaN is not).
fn sane(x: f64, dropped: &mut usize) -> f64 {
    if x.is_nan() || drawable(x) {
        x
    } else {
        *dropped += 1;
        f64::NAN
    }
}

impl RunData {
    /// Reads a run directory.
    ///
    /// # Errors
    /// A sentence naming the file and what is wrong with it.
    pub(super) fn read(dir: &Path) -> Result<RunData, String> {
        // The file's name, not its path: the run's id is beside it in REPORT.md, and a report
        // is shared without the machine it was made on.
        let summary =
            run_dir::read_summary(dir).map_err(|e| format!("{}: {}", run_dir::SUMMARY, e.what))?;
        let log = run_dir::read_log(dir).map_err(|e| format!("{}: {}", run_dir::LOG, e.what))?;
        let mut dropped = 0;
        let mut lines = log.lines().enumerate().peekable();
        if lines.next().map(|(_, l)| l) != Some(LOG_HEADER) {
            return Err(format!(
                "{}: the first line is not the log header",
                run_dir::LOG
            ));
        }
        let mut epochs = Vec::new();
        let mut steps = Vec::new();
        while let Some((i, line)) = lines.next() {
            let fields: Vec<&str> = line.split(',').collect();
            let Some(row) = LogRow::from_fields(&fields) else {
                // The last line may be half written by a run killed mid-write; any other
                // line that is not a row means the file is not a run's log.
                if lines.peek().is_none() {
                    break;
                }
                return Err(format!("{}: line {} is not a log row", run_dir::LOG, i + 1));
            };
            if let Some(mut e) = row.epoch_stats() {
                e.train_loss = sane(e.train_loss, &mut dropped);
                e.test_loss = sane(e.test_loss, &mut dropped);
                e.test_accuracy = sane(e.test_accuracy, &mut dropped);
                e.alpha = sane(e.alpha, &mut dropped);
                epochs.push(e);
            }
            if let Some(loss) = row.loss {
                steps.push(Step {
                    iteration: row.iteration,
                    epoch: row.epoch,
                    loss: sane(f64::from(loss), &mut dropped),
                    alpha: sane(f64::from(row.alpha), &mut dropped),
                });
            }
        }
        Ok(RunData {
            summary,
            epochs,
            steps,
            dropped,
        })
    }

    /// Keeps the first `n` epochs (a run that went on beyond what the plan asks for).
    fn truncate(&mut self, n: u32) {
        self.epochs.retain(|e| e.epoch <= n);
        self.steps.retain(|s| s.epoch <= n);
        self.summary.epochs_completed = self.summary.epochs_completed.min(n);
    }

    /// The loss the run stops at (`--stop-at-loss`), if any.
    pub(super) fn target(&self) -> Option<f64> {
        self.summary.config.stop_at_loss
    }

    /// The iteration at which the run first met its target loss, if it has.
    pub(super) fn reached(&self) -> Option<u64> {
        self.summary.reached.map(|r| r.iteration)
    }

    /// α0 of the run.
    pub(super) fn alpha0(&self) -> f64 {
        f64::from(self.summary.config.core.alpha0)
    }

    /// Iterations an epoch: the run's iterations over its completed epochs (each summary is
    /// written at the end of an epoch); `None` before the first or for a diverged run, whose
    /// count ends mid-epoch.
    pub(super) fn iterations_an_epoch(&self) -> Option<u64> {
        let s = &self.summary;
        (s.epochs_completed > 0 && s.diverged.is_none())
            .then(|| s.iterations / u64::from(s.epochs_completed))
            .filter(|n| *n > 0)
    }

    /// The epoch row of epoch `e`.
    pub(super) fn epoch(&self, e: u32) -> Option<&EpochStats> {
        self.epochs.iter().rev().find(|s| s.epoch == e)
    }

    /// The last completed epoch's mean minibatch loss.
    pub(super) fn final_train_loss(&self) -> Option<f64> {
        self.epoch(self.summary.epochs_completed)
            .map(|e| e.train_loss)
            .filter(|l| l.is_finite())
    }

    /// The peak α over the iterations logged and where: (α, iteration, epoch). The first of
    /// equal peaks.
    pub(super) fn alpha_peak(&self) -> Option<(f64, u64, u32)> {
        self.steps
            .iter()
            .filter(|s| s.alpha.is_finite())
            .fold(None, |best: Option<&Step>, s| match best {
                Some(b) if b.alpha >= s.alpha => Some(b),
                _ => Some(s),
            })
            .map(|s| (s.alpha, s.iteration, s.epoch))
    }

    /// Mean α over the iterations of epoch `e`.
    pub(super) fn epoch_mean_alpha(&self, e: u32) -> Option<f64> {
        let v: Vec<f64> = self
            .steps
            .iter()
            .filter(|s| s.epoch == e && s.alpha.is_finite())
            .map(|s| s.alpha)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// The share of the iterations of epochs 1 to `e` whose α is below zero.
    pub(super) fn negative_share(&self, e: u32) -> Option<f64> {
        let v: Vec<f64> = self
            .steps
            .iter()
            .filter(|s| s.epoch <= e && !s.alpha.is_nan())
            .map(|s| s.alpha)
            .collect();
        (!v.is_empty()).then(|| v.iter().filter(|a| **a < 0.0).count() as f64 / v.len() as f64)
    }
}

/// What a run's directory holds.
#[derive(Debug, Clone)]
pub(super) enum State {
    /// No directory.
    Absent,
    /// A directory without `summary.json`: started, no epoch finished.
    Started,
    /// Files that are not a run's (why).
    Unreadable(String),
    /// Its files.
    Read(Box<RunData>),
}

/// What became of a run, against the plan's epochs where there is a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Every epoch the plan asks for (or stopped at its loss target).
    Done,
    /// `done` of the `of` epochs the plan asks for.
    Incomplete {
        /// Epochs completed.
        done: u32,
        /// Epochs asked for.
        of: u32,
    },
    /// Stopped at a non-finite loss.
    Diverged,
    /// No directory or no files.
    NotRun,
    /// Its files cannot be read.
    Unreadable,
}

/// One run of the report.
#[derive(Debug, Clone)]
pub(super) struct Rec {
    /// `experiment/optimizer[/axis=value,…]`.
    pub(super) id: String,
    pub(super) experiment: String,
    pub(super) optimizer: Variant,
    /// Axis values from the id (`a0`, `b`, `s`, …).
    pub(super) axes: BTreeMap<String, String>,
    /// What the plan asks for (none without a plan).
    pub(super) planned: Option<Planned>,
    pub(super) state: State,
}

impl Rec {
    /// The run's files, when read.
    pub(super) fn data(&self) -> Option<&RunData> {
        match &self.state {
            State::Read(d) => Some(d),
            _ => None,
        }
    }

    /// The run's configuration: its own, else the plan's.
    pub(super) fn config(&self) -> Option<&RunConfig> {
        self.data()
            .map(|d| &d.summary.config)
            .or_else(|| self.planned.as_ref().and_then(|p| p.config.as_ref()))
    }

    /// The loss the run stops at: its own, else the plan's.
    pub(super) fn target(&self) -> Option<f64> {
        self.data()
            .and_then(RunData::target)
            .or_else(|| self.planned.as_ref().and_then(|p| p.target))
    }

    /// The epochs asked for: the plan's, else the run's own.
    pub(super) fn epochs_asked(&self) -> Option<u32> {
        self.planned
            .as_ref()
            .map(|p| p.epochs)
            .or_else(|| self.data().map(|d| d.summary.config.epochs))
    }

    pub(super) fn status(&self) -> Status {
        let of = self.epochs_asked().unwrap_or(0);
        match &self.state {
            State::Absent => Status::NotRun,
            State::Started => Status::Incomplete { done: 0, of },
            State::Unreadable(_) => Status::Unreadable,
            State::Read(d) => {
                let s = &d.summary;
                if s.diverged.is_some() {
                    Status::Diverged
                } else if s.epochs_completed >= of || (s.finished && d.reached().is_some()) {
                    // A run with a loss target that reached it stops there, done.
                    Status::Done
                } else {
                    Status::Incomplete {
                        done: s.epochs_completed,
                        of,
                    }
                }
            }
        }
    }

    /// The run's data when it is done.
    pub(super) fn done(&self) -> Option<&RunData> {
        (self.status() == Status::Done)
            .then(|| self.data())
            .flatten()
    }

    /// The series: optimizer and every axis but the seed.
    pub(super) fn series_key(&self) -> String {
        let rest: Vec<String> = self
            .axes
            .iter()
            .filter(|(k, _)| k.as_str() != "s")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if rest.is_empty() {
            self.optimizer.label().to_string()
        } else {
            format!("{} {}", self.optimizer.label(), rest.join(","))
        }
    }
}

/// The axis values written in a run id's third component (`a0=1e-3,s=0`).
fn axes_of(id: &str) -> BTreeMap<String, String> {
    id.split('/')
        .nth(2)
        .map(|s| {
            s.split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `path` is there, as itself (a link is not followed: a dangling one is there too).
fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Whether `path` is a directory, itself (not a link to one).
fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_dir())
}

/// Every directory under `dir` (but `.sweep`) that holds a `summary.json` (of any kind: one
/// that is not a regular file marks its run unreadable). Links to directories are not walked
/// (an `ln -s ..` would count runs twice, or loop); `links` collects them.
fn find_runs(
    dir: &Path,
    found: &mut Vec<PathBuf>,
    links: &mut Vec<PathBuf>,
) -> Result<(), PlotError> {
    let entries = std::fs::read_dir(dir).map_err(|source| PlotError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut subdirs: Vec<PathBuf> = Vec::new();
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() && p.file_name().is_some_and(|n| n != STATE_DIR) {
            subdirs.push(p);
        } else if t.is_symlink() && p.is_dir() {
            links.push(p);
        }
    }
    subdirs.sort();
    if exists(&run_dir::summary(dir)) {
        found.push(dir.to_path_buf());
    }
    for d in subdirs {
        find_runs(&d, found, links)?;
    }
    Ok(())
}

/// The runs found under `dir` and, with a plan, every run it asks for; and notes on what was
/// left out (runs not in the plan, ids that name no optimizer).
pub(super) fn collect(
    dir: &Path,
    plan: Option<&PlanInfo>,
) -> Result<(Vec<Rec>, Vec<String>), PlotError> {
    let mut found = Vec::new();
    let mut links = Vec::new();
    find_runs(dir, &mut found, &mut links)?;
    let id_of = |d: &Path| {
        d.strip_prefix(dir)
            .unwrap_or(d)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    let read = |d: &Path, planned: Option<&Planned>| -> State {
        // A run directory reached through a link (a planned id's) is not one of the sweep's.
        let through_link = d.strip_prefix(dir).ok().and_then(|rel| {
            rel.ancestors()
                .filter(|a| !a.as_os_str().is_empty())
                .find(|a| {
                    std::fs::symlink_metadata(dir.join(a)).is_ok_and(|m| m.file_type().is_symlink())
                })
                .map(|a| dir.join(a))
        });
        if let Some(link) = through_link {
            return State::Unreadable(format!(
                "{}: a symbolic link, which the report does not follow",
                link.strip_prefix(dir).unwrap_or(&link).display()
            ));
        }
        if !is_real_dir(d) {
            return State::Absent;
        }
        if !exists(&run_dir::summary(d)) {
            return State::Started;
        }
        match RunData::read(d) {
            Ok(mut data) => {
                if let Some(p) = planned {
                    data.truncate(p.epochs);
                }
                State::Read(Box::new(data))
            }
            Err(why) => State::Unreadable(why),
        }
    };
    let mut recs = Vec::new();
    let mut notes = Vec::new();
    links.sort();
    if !links.is_empty() {
        let names: Vec<String> = links
            .iter()
            .map(|l| super::style::code(&id_of(l)))
            .collect();
        notes.push(format!(
            "{} link{} to a directory not followed: {}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        ));
    }
    match plan {
        Some(plan) => {
            for p in &plan.runs {
                let run_dir = p.id.split('/').fold(dir.to_path_buf(), |d, c| d.join(c));
                let state = read(&run_dir, Some(p));
                let optimizer = match (&state, p.config.as_ref(), p.optimizer()) {
                    (State::Read(d), ..) => d.summary.config.optimizer,
                    (_, Some(c), _) => c.optimizer,
                    (_, None, Some(o)) => o,
                    (_, None, None) => {
                        notes.push(format!(
                            "{}: its id names no optimizer; left out",
                            super::style::code(&p.id)
                        ));
                        continue;
                    }
                };
                recs.push(Rec {
                    id: p.id.clone(),
                    experiment: p.experiment.clone(),
                    optimizer,
                    axes: axes_of(&p.id),
                    planned: Some(p.clone()),
                    state,
                });
            }
            let mut strays = Vec::new();
            for d in &found {
                let id = id_of(d);
                if !plan.runs.iter().any(|p| p.id == id) {
                    strays.push(super::style::code(&id));
                }
            }
            if !strays.is_empty() {
                notes.push(format!(
                    "{} run director{} not in the plan, left out: {}",
                    strays.len(),
                    if strays.len() == 1 { "y" } else { "ies" },
                    strays.join(", ")
                ));
            }
        }
        None => {
            for d in &found {
                let id = id_of(d);
                let state = read(d, None);
                let optimizer = match &state {
                    State::Read(data) => data.summary.config.optimizer,
                    _ => match id.split('/').nth(1).and_then(|o| o.parse().ok()) {
                        Some(o) => o,
                        None => {
                            let why = match &state {
                                State::Unreadable(w) => w.clone(),
                                _ => "no optimizer in its id".into(),
                            };
                            notes.push(format!(
                                "{}: {}; left out",
                                super::style::code(&id),
                                super::style::text(&why)
                            ));
                            continue;
                        }
                    },
                };
                recs.push(Rec {
                    experiment: id.split('/').next().unwrap_or("runs").to_string(),
                    axes: axes_of(&id),
                    id,
                    optimizer,
                    planned: None,
                    state,
                });
            }
        }
    }
    for r in &recs {
        if let Some(d) = r.data().filter(|d| d.dropped > 0) {
            notes.push(format!(
                "{}: {} value{} of its log left out of the figures and numbers (infinite or \
                 beyond ±f32::MAX, which no run computes)",
                super::style::code(&r.id),
                d.dropped,
                if d.dropped == 1 { "" } else { "s" }
            ));
        }
    }
    Ok((recs, notes))
}

/// The seeds of one setting.
#[derive(Debug, Clone)]
pub(super) struct Series<'a> {
    /// The optimizer and the other axes' values.
    pub(super) label: String,
    pub(super) optimizer: Variant,
    pub(super) runs: Vec<&'a Rec>,
}

impl Series<'_> {
    /// The runs that are done, with their data.
    pub(super) fn done(&self) -> Vec<&RunData> {
        self.runs.iter().filter_map(|r| r.done()).collect()
    }

    /// The runs that have data to draw: done or incomplete; when every seed diverged, those
    /// up to where they diverged (a diverged seed beside others would cut their band short).
    pub(super) fn drawable(&self) -> Vec<&RunData> {
        let of = |f: &dyn Fn(Status) -> bool| -> Vec<&RunData> {
            self.runs
                .iter()
                .filter(|r| f(r.status()))
                .filter_map(|r| r.data())
                .collect()
        };
        let going = of(&|s| matches!(s, Status::Done | Status::Incomplete { .. }));
        if going.is_empty() {
            of(&|s| s == Status::Diverged)
        } else {
            going
        }
    }

    /// What keeps the series from being whole, for its legend and table row: "diverged (1 of
    /// 3 seeds)", "incomplete (5 of 20 epochs)", "not run"; `None` when every run is done.
    pub(super) fn note(&self) -> Option<String> {
        status_note(&self.runs, "seeds")
    }
}

/// What keeps `runs` from being whole, `unit` naming them ("seeds", "runs"); `None` when every
/// one is done. Every kind present is named: "diverged (1 of 3 seeds), incomplete (5 of 20
/// epochs)".
pub(super) fn status_note(runs: &[&Rec], unit: &str) -> Option<String> {
    let n = runs.len();
    let count = |f: &dyn Fn(Status) -> bool| runs.iter().filter(|r| f(r.status())).count();
    let mut parts = Vec::new();
    let diverged = count(&|s| s == Status::Diverged);
    if diverged > 0 {
        parts.push(format!("diverged ({diverged} of {n} {unit})"));
    }
    let not_run = count(&|s| s == Status::NotRun);
    if not_run == n {
        parts.push("not run".to_string());
    } else if not_run > 0 {
        parts.push(format!("not run ({not_run} of {n} {unit})"));
    }
    let unreadable = count(&|s| s == Status::Unreadable);
    if unreadable > 0 {
        parts.push(format!("unreadable ({unreadable} of {n} {unit})"));
    }
    if let Some((done, of)) = least_incomplete(runs) {
        parts.push(format!("incomplete ({done} of {of} epochs)"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// What keeps `runs` from being whole, in a word or two for a heat map's cell: "diverged",
/// "not run", "unreadable" or "incomplete"; `None` when every one is done.
pub(super) fn status_word(runs: &[&Rec]) -> Option<&'static str> {
    let any = |s: &dyn Fn(Status) -> bool| runs.iter().any(|r| s(r.status()));
    if any(&|s| s == Status::Diverged) {
        Some("diverged")
    } else if any(&|s| s == Status::NotRun) {
        Some("not run")
    } else if any(&|s| s == Status::Unreadable) {
        Some("unreadable")
    } else if any(&|s| matches!(s, Status::Incomplete { .. })) {
        Some("incomplete")
    } else {
        None
    }
}

/// The incomplete run furthest behind: (epochs done, epochs asked for).
pub(super) fn least_incomplete(runs: &[&Rec]) -> Option<(u32, u32)> {
    runs.iter()
        .filter_map(|r| match r.status() {
            Status::Incomplete { done, of } => Some((done, of)),
            _ => None,
        })
        .min()
}

/// The series of an experiment's runs, in optimizer order.
pub(super) fn series<'a>(recs: &[&'a Rec]) -> Vec<Series<'a>> {
    let mut by: Vec<Series<'a>> = Vec::new();
    for r in recs {
        let key = r.series_key();
        match by.iter_mut().find(|s| s.label == key) {
            Some(s) => s.runs.push(r),
            None => by.push(Series {
                label: key,
                optimizer: r.optimizer,
                runs: vec![r],
            }),
        }
    }
    by.sort_by_key(|s| (optimizer_order(s.optimizer), s.label.clone()));
    by
}

/// An optimizer's place in the paper's order.
pub(super) fn optimizer_order(o: Variant) -> usize {
    Variant::ALL
        .iter()
        .position(|x| *x == o)
        .unwrap_or(Variant::ALL.len())
}

/// The settings common to an experiment's runs, for titles: the model on the dataset, α0 when
/// it is one, batch, λ and epochs.
pub(super) fn settings(rs: &[&Rec]) -> String {
    let Some(c) = rs.iter().find_map(|r| r.config()) else {
        return "settings unknown (no run, and the plan does not give them)".into();
    };
    let same_alpha0 = rs
        .iter()
        .filter_map(|r| r.config())
        .all(|x| x.core.alpha0 == c.core.alpha0);
    let epochs = rs
        .iter()
        .filter_map(|r| r.epochs_asked())
        .max()
        .unwrap_or(c.epochs);
    format!(
        "{}, {}batch {}, λ={}, {} epochs",
        c.title(),
        if same_alpha0 {
            format!("α0={}, ", c.core.alpha0)
        } else {
            String::new()
        },
        c.batch_size,
        c.core.weight_decay,
        epochs
    )
}

/// The distinct values of axis `key` among `rs`, in numeric order.
pub(super) fn distinct(rs: &[&Rec], key: &str) -> Vec<String> {
    let mut v: Vec<String> = rs.iter().filter_map(|r| r.axes.get(key).cloned()).collect();
    v.sort_by(|a, b| {
        let (x, y) = (a.parse::<f64>().ok(), b.parse::<f64>().ok());
        x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
    });
    v.dedup();
    v
}

/// A line of the α0 study: the optimizer and its β or β′ when the study varies them.
pub(super) fn study_key(r: &Rec) -> String {
    let mut k = r.optimizer.label().to_string();
    for b in ["b", "bm"] {
        if let Some(v) = r.axes.get(b) {
            let _ = write!(k, " {b}={v}");
        }
    }
    k
}
