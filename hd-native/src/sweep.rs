//! Running a plan: every run as a child `hd-native train` process, N at a time, resumable at
//! every level; and the same runs as a Slurm job array.
//!
//! **Layout.** Run `r` of the plan goes to `OUT/<r.id>`, exactly what `train --out` writes.
//! The sweep's own state lives beside the runs in `OUT/.sweep/`: `manifest.json` (the plan's
//! runs in order), `plan.toml` (the plan's text, a file or a shipped plan alike: what the Slurm
//! tasks read), `lock` (an flock, or lock files beside it where flock is refused: see
//! [`crate::lock`]; one local sweep at a time, or any number of Slurm tasks),
//! `runs/<id>/status.json` (why a run failed, misses its data or diverged) and
//! `runs/<id>/train.log` (the run's messages), `stale/<id>-<n>` (stale runs moved aside by
//! `--rerun-stale`), and for Slurm `sweep.sbatch` and `slurm/<job>_<task>.out`.
//!
//! **Per run.** A run's identity is its resolved options (the [`crate::config::RunConfig`]
//! that `summary.json` stores as `config`). A run directory recording other options than the
//! plan's is *stale* ([`Fit`]): it is left alone and fails the sweep, unless the sweep is told to
//! rerun stale runs, which moves the directory to `OUT/.sweep/stale/<id>-<n>` first; the same
//! run asked for more epochs is extended (`train --resume`). Otherwise a finished or diverged
//! run is left as it is; a run whose dataset files are not all there ([`missing_data`]) is not
//! started and is *missing data*; a run with a checkpoint is continued with `train --resume`;
//! any other is started (`train` starts over a directory that completed no epoch). So a
//! sweep stopped at any moment, SIGKILL included, and started again ends with the files of a
//! sweep never stopped. `train`'s exit status decides the outcome: 0 done, 3 diverged (a
//! result), 4 data missing, 130/143 or a signal the sweep passed on interrupted, anything else
//! failed (its last message is kept as the reason). A `train` killed by a signal the sweep did
//! not pass on (the OOM killer's SIGKILL) failed: "killed by signal 9 (resumable)", and the next
//! sweep resumes it.
//!
//! **Exit status** ([`Tally::finish`], [`SweepError::exit_code`]): 0 when every run is done or
//! diverged; 1 when a run failed or is stale; 4 (`train`'s status for missing dataset files) when runs miss
//! their data and none failed, unless the sweep allows it (`--allow-missing`); 130/143 when
//! stopped by SIGINT/SIGTERM.
//!
//! **Signals.** SIGINT or SIGTERM (`scancel`, Slurm's warning before preemption) is passed
//! to the running `train` processes, which finish their write and stop; the sweep records
//! them and exits 130 / 143. SIGUSR1 (the Slurm script's warning two minutes before the time
//! limit) stops them alike, as SIGTERM, and a Slurm task then requeues itself
//! ([`requeue`]). A later sweep, or the requeued task, resumes them.

use crate::data::DatasetKind;
use crate::plan::{self, Plan, Run};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

mod child;
mod names;
mod resources;
mod sinfo;
mod slurm;
mod state;

use child::{lock_sweep, run_one, Ran};
use state::prepare;

pub use child::Stop;
pub use names::{PLAN_COPY, STATE_DIR};
pub use resources::{fetch_hint, missing_data, missing_runs, Resources};
pub use sinfo::check as check_nodes;
pub use slurm::{requeue, submit, write_slurm, Slurm, DEFAULT_MEM};
pub use state::{
    fit, inspect, run_state, status, status_table, Fit, Manifest, ManifestRun, Outcome, RunState,
    StatusRow, Stored,
};

fn describe(run: &Run, out: &Path, outcome: &Outcome, seconds: Option<f64>) -> String {
    match outcome {
        Outcome::Done => {
            let s = crate::run_dir::read_summary(&run.dir(out)).ok();
            let acc = s.map_or_else(String::new, |s| {
                format!(", test accuracy {:.2}%", 100.0 * s.last.test_accuracy)
            });
            match seconds {
                Some(t) => format!("done      {} ({t:.1} s{acc})", run.id),
                None => format!("done      {} (already{acc})", run.id),
            }
        }
        Outcome::Diverged(why) => format!("diverged  {} ({why})", run.id),
        Outcome::MissingData(why) => format!("MISSING   {}: missing data ({why})", run.id),
        Outcome::Failed(why) => format!("FAILED    {} ({why})", run.id),
        Outcome::Interrupted => format!("stopped   {} (resumable)", run.id),
        Outcome::Stale(why) => format!(
            "STALE     {} ({why}; --rerun-stale moves it to {} and runs it again)",
            run.id,
            out.join(STATE_DIR).join("stale").display()
        ),
    }
}

/// How a sweep or a Slurm task ends when not every run is done or diverged: the one line the
/// binary prints, and its exit status ([`SweepError::exit_code`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// Some run failed (exit 1).
    #[error("{0}")]
    Failed(String),
    /// Some run directory holds a run with other options than the plan's, and the sweep was
    /// not told to rerun it (exit 1).
    #[error("{0}")]
    Stale(String),
    /// Some run has no data and the sweep was not told to allow it (exit 4, `train`'s status
    /// for missing dataset files).
    #[error("{0}")]
    MissingData(String),
    /// SIGINT or SIGTERM stopped it; the runs are resumable.
    #[error("{line}")]
    Stopped {
        /// What was done, and how to continue.
        line: String,
        /// 130 for SIGINT, 143 for SIGTERM.
        code: u8,
    },
}

impl SweepError {
    /// The exit status: 1 failed or stale, 4 missing data, 130/143 stopped.
    pub fn exit_code(&self) -> u8 {
        match self {
            SweepError::Failed(_) | SweepError::Stale(_) => 1,
            SweepError::MissingData(_) => crate::run_dir::exit::NO_DATA,
            SweepError::Stopped { code, .. } => *code,
        }
    }

    /// The error a signal makes (`code` 130 or 143), with `line` saying what stopped.
    pub fn stopped(line: String, code: i32) -> SweepError {
        SweepError::Stopped {
            line,
            code: u8::try_from(code).unwrap_or(1),
        }
    }
}

/// The counts of a sweep's outcomes, and the exit status they make.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// Runs done (now or before).
    pub done: usize,
    /// Runs that diverged.
    pub diverged: usize,
    /// Runs whose data are missing: id, dataset and why.
    pub missing: Vec<(String, DatasetKind, String)>,
    /// Runs that failed, with why.
    pub failed: Vec<(String, String)>,
    /// Runs stopped by a signal.
    pub interrupted: usize,
    /// Runs whose directory holds other options than the plan's, with the first that differs.
    pub stale: Vec<(String, String)>,
}

impl Tally {
    /// Counts `run`'s outcome.
    pub fn add(&mut self, run: &Run, o: &Outcome) {
        let id = run.id.clone();
        match o {
            Outcome::Done => self.done += 1,
            Outcome::Diverged(_) => self.diverged += 1,
            Outcome::MissingData(w) => self.missing.push((id, run.config.dataset, w.clone())),
            Outcome::Failed(w) => self.failed.push((id, w.clone())),
            Outcome::Interrupted => self.interrupted += 1,
            Outcome::Stale(w) => self.stale.push((id, w.clone())),
        }
    }

    /// One line: the counts, the failed runs by id, and what fetches the missing data.
    pub fn line(&self, res: &Resources) -> String {
        let mut s = format!(
            "{} done, {} diverged, {} missing data, {} failed",
            self.done,
            self.diverged,
            self.missing.len(),
            self.failed.len()
        );
        if !self.stale.is_empty() {
            s.push_str(&format!(", {} stale", self.stale.len()));
        }
        if self.interrupted > 0 {
            s.push_str(&format!(", {} stopped (resumable)", self.interrupted));
        }
        let ids = |runs: &[(String, String)]| {
            runs.iter()
                .map(|(id, ..)| id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.failed.is_empty() {
            s.push_str(&format!(": failed {}", ids(&self.failed)));
        }
        if !self.stale.is_empty() {
            let (first, why) = &self.stale[0];
            s.push_str(&format!(
                "{} stale {} ({first}: {why})",
                if self.failed.is_empty() { ":" } else { ";" },
                ids(&self.stale)
            ));
        }
        if !self.missing.is_empty() {
            let datasets: Vec<DatasetKind> = self.missing.iter().map(|(_, d, _)| *d).collect();
            s.push_str(&format!("; {}", fetch_hint(&datasets, res)));
        }
        s
    }

    /// The sweep's verdict: its summary line when it succeeded (every run done or diverged, or
    /// missing its data with `allow_missing`), else the [`SweepError`] that says why, in order:
    /// stopped by `signal` (130/143), a run failed, a run stale, runs missing data.
    ///
    /// # Errors
    /// As above.
    pub fn finish(
        &self,
        res: &Resources,
        allow_missing: bool,
        signal: Option<i32>,
    ) -> Result<String, SweepError> {
        let line = self.line(res);
        if let Some(code) = signal {
            return Err(SweepError::stopped(
                format!("sweep stopped: {line}; run the same command again to continue"),
                code,
            ));
        }
        // Runs stop only on a signal the sweep passed on; stopped without one, they did not
        // finish and the sweep must not pass.
        if !self.failed.is_empty() || self.interrupted > 0 {
            return Err(SweepError::Failed(line));
        }
        if !self.stale.is_empty() {
            return Err(SweepError::Stale(format!(
                "{line}; --rerun-stale moves them to .sweep/stale and runs them again"
            )));
        }
        if !self.missing.is_empty() && !allow_missing {
            return Err(SweepError::MissingData(format!(
                "{line} (--allow-missing lets the sweep pass without them)"
            )));
        }
        Ok(line)
    }
}

/// Runs every run of `plan` under `out`, `res.jobs` at a time; returns the outcomes. A stale
/// run (its directory holds other options than the plan's) is left alone and reported, or,
/// with `rerun_stale`, moved to `OUT/.sweep/stale/<id>-<n>` and run again.
///
/// # Errors
/// The sweep's state cannot be written, another sweep holds `out`, or `train` cannot be
/// started. A run that fails is an outcome, not an error.
pub fn sweep(
    plan: &Plan,
    out: &Path,
    res: &Resources,
    stop: &Stop,
    rerun_stale: bool,
) -> Result<Tally> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let _lock = lock_sweep(out, true)?;
    prepare(plan, out)?;
    let exe = std::env::current_exe().context("finding the hd-native binary")?;
    let queue: Mutex<VecDeque<&Run>> = Mutex::new(plan.runs.iter().collect());
    let report = Mutex::new(Tally::default());
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
                match run_one(exe, run, out, res, &device, stop, rerun_stale) {
                    Ok(Ran {
                        outcome: o,
                        trained,
                    }) => {
                        if o != Outcome::Interrupted || !stop.requested() {
                            let t = trained.then(|| started.elapsed().as_secs_f64());
                            say(describe(run, out, &o, t));
                        }
                        if let Ok(mut r) = report.lock() {
                            r.add(run, &o);
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
    rerun_stale: bool,
) -> Result<Outcome> {
    let run = plan.run(index).ok_or_else(|| {
        anyhow!(
            "task {index} is outside the plan (runs 0 to {})",
            plan.runs.len().saturating_sub(1)
        )
    })?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let _lock = lock_sweep(out, false)?;
    match Manifest::read(out) {
        Ok(m) => {
            // After a local `sweep --only`, the manifest lists the runs of the plan restricted
            // to the experiments it records: the plan is unchanged if it restricts alike.
            let unchanged = if m.only.is_empty() {
                m.runs.get(index).map(|r| &r.id) == Some(&run.id)
            } else {
                plan.clone().restrict_to(&m.only).is_ok_and(|p| {
                    p.runs.len() == m.runs.len()
                        && p.runs.iter().zip(&m.runs).all(|(a, b)| a.id == b.id)
                })
            };
            if !unchanged {
                bail!(
                    "{} changed since the sweep in {} was set up: task {index} is {} there; write the Slurm script again",
                    plan.source,
                    out.display(),
                    m.runs.get(index).map_or("missing".into(), |r| state::printable(&r.id))
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
    let Ran { outcome, trained } = run_one(&exe, run, out, res, &device, stop, rerun_stale)?;
    let t = trained.then(|| started.elapsed().as_secs_f64());
    println!("{}", describe(run, out, &outcome, t));
    Ok(outcome)
}

/// The plan a command-line argument names, a file or a shipped plan (see [`plan::find`]).
///
/// # Errors
/// As [`plan::find`].
pub fn load(arg: &Path) -> Result<Plan> {
    Ok(plan::find(arg)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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

    /// The exit status a sweep's outcomes make: a signal first, then a failure, then missing
    /// data (unless allowed).
    #[test]
    fn a_stop_outranks_a_failure_which_outranks_missing_data() {
        let res = Resources {
            data_root: PathBuf::from("/d"),
            ..Resources::default()
        };
        let missing = (
            "m/sgd".to_string(),
            DatasetKind::Mnist,
            "/d/mnist: x".into(),
        );
        let mut r = Tally {
            done: 2,
            missing: vec![missing],
            ..Tally::default()
        };
        let code = |r: &Tally, allow, signal| {
            r.finish(&res, allow, signal)
                .map_err(|e| (e.exit_code(), e.to_string()))
        };
        let line = "2 done, 0 diverged, 1 missing data, 0 failed; fetch MNIST and Fashion-MNIST with `cargo xtask data --dir /d`";
        assert_eq!(code(&r, true, None), Ok(line.to_string()));
        assert_eq!(
            code(&r, false, None),
            Err((
                4,
                format!("{line} (--allow-missing lets the sweep pass without them)")
            ))
        );
        r.failed.push(("f/sgd".into(), "exit 1: boom".into()));
        assert!(matches!(code(&r, true, None), Err((1, l)) if l.contains(": failed f/sgd; fetch")));
        assert!(
            matches!(code(&r, true, Some(143)), Err((143, l)) if l.starts_with("sweep stopped: "))
        );
        assert!(matches!(code(&r, false, Some(130)), Err((130, _))));
        assert_eq!(
            code(&Tally::default(), false, None),
            Ok("0 done, 0 diverged, 0 missing data, 0 failed".into())
        );
    }

    /// MNIST and Fashion-MNIST get the `cargo xtask data` command that fills their directories
    /// (one per root), CIFAR where to put it by hand.
    #[test]
    fn the_hint_fetches_what_is_missing_where_the_sweep_looks() {
        let res = Resources {
            data_root: PathBuf::from("/d"),
            data: vec![
                ("fashion-mnist".into(), PathBuf::from("/e/fashion-mnist")),
                ("cifar100".into(), PathBuf::from("/c")),
            ],
            ..Resources::default()
        };
        use DatasetKind::{Cifar10, Cifar100, FashionMnist, Mnist};
        assert_eq!(
            fetch_hint(&[Mnist, Mnist], &res),
            "fetch MNIST and Fashion-MNIST with `cargo xtask data --dir /d`"
        );
        assert_eq!(
            fetch_hint(&[FashionMnist, Mnist, Cifar10, Cifar100], &res),
            "fetch MNIST and Fashion-MNIST with `cargo xtask data --dir /d` and `cargo xtask data --dir /e`; \
             place CIFAR-10 in /d/cifar10 by hand (the files of cifar-10-binary.tar.gz); \
             place CIFAR-100 in /c by hand (the files of cifar-100-binary.tar.gz)"
        );
        let odd = Resources {
            data: vec![("mnist".into(), PathBuf::from("/digits"))],
            ..Resources::default()
        };
        assert_eq!(
            fetch_hint(&[Mnist], &odd),
            "`cargo xtask data --dir DIR` fetches MNIST and Fashion-MNIST into DIR/mnist and DIR/fashion-mnist"
        );
    }
}
