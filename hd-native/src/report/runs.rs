//! The runs of a sweep as the report reads them: each run with its experiment and axis
//! values ([`Rec`]), grouped into series (the seeds of one setting), with the settings they
//! share and the values an axis takes.

use crate::config::OptimizerKind;
use crate::plot::{read_run, PlotError, Run};
use crate::sweep::STATE_DIR;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One run read from a sweep.
#[derive(Debug, Clone)]
pub(super) struct Rec {
    pub(super) experiment: String,
    /// Axis values from the id (`a0`, `b`, `s`, …).
    pub(super) axes: BTreeMap<String, String>,
    pub(super) run: Run,
}

impl Rec {
    pub(super) fn optimizer(&self) -> OptimizerKind {
        self.run.summary.config.optimizer
    }
    /// The series: optimizer and every axis but the seed.
    pub(super) fn series(&self) -> String {
        let rest: Vec<String> = self
            .axes
            .iter()
            .filter(|(k, _)| k.as_str() != "s")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if rest.is_empty() {
            self.optimizer().label().to_string()
        } else {
            format!("{} {}", self.optimizer().label(), rest.join(","))
        }
    }
    /// The last epoch's training loss; NaN for a diverged run, whose last finite epoch is not
    /// where it ended.
    pub(super) fn final_train_loss(&self) -> f64 {
        if self.run.summary.diverged.is_some() {
            return f64::NAN;
        }
        self.run.epochs.last().map_or(f64::NAN, |e| e.train_loss)
    }
}

/// Every directory under `dir` (but `.sweep`) that holds a `summary.json`.
pub(super) fn find_runs(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), PlotError> {
    let entries = std::fs::read_dir(dir).map_err(|source| PlotError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut subdirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != STATE_DIR))
        .collect();
    subdirs.sort();
    if dir.join("summary.json").is_file() {
        found.push(dir.to_path_buf());
    }
    for d in subdirs {
        find_runs(&d, found)?;
    }
    Ok(())
}

pub(super) fn read_all(dir: &Path) -> Result<(Vec<Rec>, Vec<String>), PlotError> {
    let mut dirs = Vec::new();
    find_runs(dir, &mut dirs)?;
    let mut recs = Vec::new();
    let mut unreadable = Vec::new();
    for d in dirs {
        let id = d
            .strip_prefix(dir)
            .unwrap_or(&d)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .collect::<Vec<_>>()
            .join("/");
        match read_run(&d) {
            Ok(run) => {
                let parts: Vec<&str> = id.split('/').collect();
                let experiment = parts.first().copied().unwrap_or("runs").to_string();
                let axes = parts
                    .get(2)
                    .map(|s| {
                        s.split(',')
                            .filter_map(|kv| kv.split_once('='))
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                recs.push(Rec {
                    experiment,
                    axes,
                    run,
                });
            }
            // A run that has not written its first epoch yet is not an error of the report.
            Err(e) => unreadable.push(format!("{id}: {e}")),
        }
    }
    Ok((recs, unreadable))
}

/// The series of an experiment, in optimizer order, each with its runs (seeds).
pub(super) fn series(recs: &[&Rec]) -> Vec<(String, OptimizerKind, Vec<Rec>)> {
    let mut by: Vec<(String, OptimizerKind, Vec<Rec>)> = Vec::new();
    for r in recs {
        let key = r.series();
        match by.iter_mut().find(|(k, ..)| *k == key) {
            Some(s) => s.2.push((*r).clone()),
            None => by.push((key, r.optimizer(), vec![(*r).clone()])),
        }
    }
    by.sort_by_key(|(k, o, _)| {
        (
            OptimizerKind::ALL.iter().position(|x| x == o).unwrap_or(9),
            k.clone(),
        )
    });
    by
}

/// The settings common to an experiment's runs, for figure titles.
pub(super) fn settings(rs: &[&Rec]) -> String {
    let c = &rs[0].run.summary.config;
    let same_alpha0 = rs
        .iter()
        .all(|r| r.run.summary.config.core.alpha0 == c.core.alpha0);
    format!(
        "{}, {}batch {}, λ={}, {} epochs",
        rs[0].run.summary.title,
        if same_alpha0 {
            format!("α0={}, ", c.core.alpha0)
        } else {
            String::new()
        },
        c.batch_size,
        c.core.weight_decay,
        c.epochs
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
    let mut k = r.optimizer().label().to_string();
    for b in ["b", "bm"] {
        if let Some(v) = r.axes.get(b) {
            let _ = write!(k, " {b}={v}");
        }
    }
    k
}
