//! Running a plan: every run as a child `hd-native train` process, N at a time, resumable at
//! every level; and the same runs as a Slurm job array.
//!
//! **Layout.** Run `r` of the plan goes to `OUT/<r.id>`, exactly what `train --out` writes.
//! The sweep's own state lives beside the runs in `OUT/.sweep/`: `manifest.json` (the plan's
//! runs in order), `lock` (an flock: one local sweep at a time, or any number of Slurm tasks),
//! `runs/<id>/status.json` (why a run failed, was skipped or diverged) and
//! `runs/<id>/train.log` (the run's messages), and for Slurm `sweep.sbatch` and
//! `slurm/<job>_<task>.out`.
//!
//! **Per run.** A finished or diverged run is left as it is; a run with a checkpoint is
//! continued with `train --resume`; any other is started (`train` starts over a directory
//! that completed no epoch). So a sweep stopped at any moment, SIGKILL included, and started
//! again ends with the files of a sweep never stopped. `train`'s exit status decides the
//! outcome: 0 done, 3 diverged (a result), 4 data missing (skipped), 130/143 or a signal
//! interrupted, anything else failed (its last message is kept as the reason).
//!
//! **Signals.** SIGINT or SIGTERM (Slurm's warning before preemption or the time limit) is
//! passed to the running `train` processes, which finish their write and stop; the sweep
//! records them and exits 130 / 143. A later sweep, or the requeued task, resumes them.

use crate::data::DatasetKind;
use crate::plan::{self, Plan, Run};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// The directory of the sweep's own state under the output directory.
pub const STATE_DIR: &str = ".sweep";
const MANIFEST: &str = "manifest.json";
const STATUS: &str = "status.json";
const TRAIN_LOG: &str = "train.log";

/// `train`'s exit statuses that are outcomes rather than failures.
const EXIT_DIVERGED: i32 = 3;
const EXIT_NO_DATA: i32 = 4;
const EXIT_SIGINT: i32 = 130;
const EXIT_SIGTERM: i32 = 143;

mod child;
mod slurm;
mod state;

use child::{lock_sweep, run_one};
use state::write_atomic;

pub use child::Stop;
pub use slurm::{submit, write_slurm, Slurm};
pub use state::{
    run_state, status, status_table, Manifest, ManifestRun, Outcome, RunState, StatusRow,
};

/// How a sweep finds datasets and spreads runs over the machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// `ROOT/<dataset>` (`mnist`, `fashion-mnist`, `cifar10`, `cifar100`) unless overridden.
    pub data_root: PathBuf,
    /// Per-dataset directories that override the root.
    pub data: Vec<(String, PathBuf)>,
    /// Devices, one per concurrent job in turn (`cpu`, `cuda:0`, …; `auto` lets `train` pick).
    pub devices: Vec<String>,
    /// Runs at once.
    pub jobs: usize,
    /// CPU threads in all, split evenly over the jobs (`None`: the machine's logical CPUs, or
    /// libtorch's choice for a single job).
    pub threads: Option<usize>,
}

impl Resources {
    /// Where `dataset`'s files are.
    pub fn data_dir(&self, dataset: DatasetKind) -> PathBuf {
        let name = dataset.to_string();
        self.data
            .iter()
            .find(|(d, _)| *d == name)
            .map_or_else(|| self.data_root.join(&name), |(_, p)| p.clone())
    }

    /// Threads for each run: the total (by default the machine's logical CPUs) split evenly
    /// over the jobs; `None` (libtorch's choice) for a single job given no total.
    fn threads_per_job(&self) -> Option<usize> {
        let jobs = self.jobs.max(1);
        let total = self.threads.or_else(|| {
            (jobs > 1).then(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        })?;
        Some((total / jobs).max(1))
    }
}

fn describe(run: &Run, out: &Path, outcome: &Outcome, seconds: Option<f64>) -> String {
    match outcome {
        Outcome::Done => {
            let s: Option<serde_json::Value> =
                std::fs::read_to_string(run.dir(out).join("summary.json"))
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok());
            let acc = s
                .as_ref()
                .and_then(|s| s["last"]["test_accuracy"].as_f64())
                .map_or_else(String::new, |a| {
                    format!(", test accuracy {:.2}%", 100.0 * a)
                });
            match seconds {
                Some(t) => format!("done      {} ({t:.1} s{acc})", run.id),
                None => format!("done      {} (already{acc})", run.id),
            }
        }
        Outcome::Diverged(why) => format!("diverged  {} ({why})", run.id),
        Outcome::Skipped(why) => format!("skipped   {} ({why})", run.id),
        Outcome::Failed(why) => format!("FAILED    {} ({why})", run.id),
        Outcome::Interrupted => format!("stopped   {} (resumable)", run.id),
    }
}

/// The counts of a sweep's outcomes, and the exit status they make.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    /// Runs done (now or before).
    pub done: usize,
    /// Runs that diverged.
    pub diverged: usize,
    /// Runs skipped, with why.
    pub skipped: Vec<(String, String)>,
    /// Runs that failed, with why.
    pub failed: Vec<(String, String)>,
    /// Runs stopped by a signal.
    pub interrupted: usize,
}

impl Report {
    fn add(&mut self, id: &str, o: &Outcome) {
        match o {
            Outcome::Done => self.done += 1,
            Outcome::Diverged(_) => self.diverged += 1,
            Outcome::Skipped(w) => self.skipped.push((id.into(), w.clone())),
            Outcome::Failed(w) => self.failed.push((id.into(), w.clone())),
            Outcome::Interrupted => self.interrupted += 1,
        }
    }

    /// One line: the counts, and the failed runs by id.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} done, {} diverged, {} skipped, {} failed",
            self.done,
            self.diverged,
            self.skipped.len(),
            self.failed.len()
        );
        if self.interrupted > 0 {
            s.push_str(&format!(", {} stopped (resumable)", self.interrupted));
        }
        if !self.failed.is_empty() {
            let ids: Vec<&str> = self.failed.iter().map(|(id, _)| id.as_str()).collect();
            s.push_str(&format!(": failed {}", ids.join(", ")));
        }
        s
    }
}

/// Prepares `out` for `plan`: creates it, records the manifest.
fn prepare(plan: &Plan, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out.join(STATE_DIR)).with_context(|| out.display().to_string())?;
    Manifest::of(plan).write(out)
}

/// Runs every run of `plan` under `out`, `res.jobs` at a time; returns the outcomes.
///
/// # Errors
/// The sweep's state cannot be written, another sweep holds `out`, or `train` cannot be
/// started. A run that fails is an outcome, not an error.
pub fn sweep(plan: &Plan, out: &Path, res: &Resources, stop: &Stop) -> Result<Report> {
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let _lock = lock_sweep(out, true)?;
    prepare(plan, out)?;
    let exe = std::env::current_exe().context("finding the hd-native binary")?;
    let queue: Mutex<VecDeque<&Run>> = Mutex::new(plan.runs.iter().collect());
    let report = Mutex::new(Report::default());
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(plan.runs.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let say = |line: String| {
        if bar.is_hidden() {
            println!("{line}");
        } else {
            bar.println(line);
        }
    };
    let devices = if res.devices.is_empty() {
        vec!["auto".to_string()]
    } else {
        res.devices.clone()
    };
    let errors: Mutex<Vec<anyhow::Error>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for slot in 0..res.jobs.max(1) {
            let device = devices[slot % devices.len()].clone();
            let (queue, report, errors, exe, bar, say) =
                (&queue, &report, &errors, &exe, &bar, &say);
            s.spawn(move || loop {
                let Some(run) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                    return;
                };
                let started = Instant::now();
                let before = run_state(&run.dir(out)) == RunState::Finished;
                match run_one(exe, run, out, res, &device, stop) {
                    Ok(o) => {
                        if o != Outcome::Interrupted || !stop.requested() {
                            let t = (!before).then(|| started.elapsed().as_secs_f64());
                            say(describe(run, out, &o, t));
                        }
                        if let Ok(mut r) = report.lock() {
                            r.add(&run.id, &o);
                        }
                        bar.inc(1);
                    }
                    Err(e) => {
                        if let Ok(mut v) = errors.lock() {
                            v.push(e.context(format!("run {}", run.id)));
                        }
                        return;
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = errors.into_inner().ok().and_then(|mut v| v.pop()) {
        return Err(e);
    }
    report
        .into_inner()
        .map_err(|_| anyhow!("a sweep worker panicked"))
}

/// Runs task `index` of the plan alone: what one Slurm array task does.
///
/// # Errors
/// As [`sweep`]; also an index outside the plan, or a plan that no longer matches the
/// manifest written when the array was submitted.
pub fn task(
    plan: &Plan,
    out: &Path,
    index: usize,
    res: &Resources,
    stop: &Stop,
) -> Result<Outcome> {
    let run = plan.run(index).ok_or_else(|| {
        anyhow!(
            "task {index} is outside the plan (runs 0 to {})",
            plan.runs.len().saturating_sub(1)
        )
    })?;
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let _lock = lock_sweep(out, false)?;
    match Manifest::read(out) {
        Ok(m) => {
            if m.runs.get(index).map(|r| &r.id) != Some(&run.id) {
                bail!(
                    "{} changed since the sweep in {} was set up: task {index} is {} there; write the Slurm script again",
                    plan.file.display(),
                    out.display(),
                    m.runs.get(index).map_or("missing", |r| r.id.as_str())
                );
            }
        }
        Err(_) => prepare(plan, out)?,
    }
    let exe = std::env::current_exe().context("finding the hd-native binary")?;
    let device = res
        .devices
        .first()
        .cloned()
        .unwrap_or_else(|| "auto".into());
    let started = Instant::now();
    let before = run_state(&run.dir(out)) == RunState::Finished;
    let outcome = run_one(&exe, run, out, res, &device, stop)?;
    let t = (!before).then(|| started.elapsed().as_secs_f64());
    println!("{}", describe(run, out, &outcome, t));
    Ok(outcome)
}

/// Loads a plan for the sweep (re-exported for the command line).
///
/// # Errors
/// As [`plan::load`].
pub fn load(file: &Path) -> Result<Plan> {
    Ok(plan::load(file)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(threads: Option<usize>, jobs: usize) -> Resources {
        Resources {
            threads,
            jobs,
            ..Resources::default()
        }
    }

    #[test]
    fn threads_are_split_evenly_over_the_jobs() {
        assert_eq!(res(Some(8), 3).threads_per_job(), Some(2));
        assert_eq!(res(Some(8), 1).threads_per_job(), Some(8));
        // Never fewer than one thread a run.
        assert_eq!(res(Some(1), 4).threads_per_job(), Some(1));
        // One job given no total: libtorch's own choice.
        assert_eq!(res(None, 1).threads_per_job(), None);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(res(None, 2).threads_per_job(), Some((cpus / 2).max(1)));
    }

    #[test]
    fn data_directories_come_from_the_root_unless_overridden() {
        let r = Resources {
            data_root: PathBuf::from("d"),
            data: vec![("cifar10".into(), PathBuf::from("elsewhere"))],
            ..Resources::default()
        };
        assert_eq!(
            r.data_dir(DatasetKind::FashionMnist),
            Path::new("d/fashion-mnist")
        );
        assert_eq!(r.data_dir(DatasetKind::Cifar10), Path::new("elsewhere"));
    }
}
