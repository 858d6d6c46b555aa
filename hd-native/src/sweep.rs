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
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

mod slurm;

pub use slurm::{submit, write_slurm, Slurm};

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

/// The plan's runs as a sweep directory records them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The plan file.
    pub plan: PathBuf,
    /// Its description.
    pub description: String,
    /// Every run in order: a Slurm array task's index is its position.
    pub runs: Vec<ManifestRun>,
}

/// One run in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRun {
    /// The run's id and directory under the sweep's output.
    pub id: String,
    /// Epochs it runs.
    pub epochs: u32,
}

impl Manifest {
    fn of(plan: &Plan) -> Manifest {
        Manifest {
            plan: std::path::absolute(&plan.file).unwrap_or_else(|_| plan.file.clone()),
            description: plan.description.clone(),
            runs: plan
                .runs
                .iter()
                .map(|r| ManifestRun {
                    id: r.id.clone(),
                    epochs: r.config.epochs,
                })
                .collect(),
        }
    }

    /// Reads `OUT/.sweep/manifest.json`.
    ///
    /// # Errors
    /// The file is missing or malformed.
    pub fn read(out: &Path) -> Result<Manifest> {
        let path = out.join(STATE_DIR).join(MANIFEST);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{} (is it a sweep's --out?)", path.display()))?;
        serde_json::from_str(&text).with_context(|| path.display().to_string())
    }

    fn write(&self, out: &Path) -> Result<()> {
        let path = out.join(STATE_DIR).join(MANIFEST);
        write_atomic(&path, serde_json::to_string_pretty(self)?.as_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees
/// half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())
}

/// What became of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "kebab-case")]
pub enum Outcome {
    /// Every epoch done.
    Done,
    /// Stopped at a non-finite loss (a result of the run, not a failure of the sweep).
    Diverged(String),
    /// Not run: its data are missing.
    Skipped(String),
    /// `train` failed.
    Failed(String),
    /// Stopped by a signal; resumable.
    Interrupted,
}

/// `OUT/.sweep/runs/<id>/`: the sweep's notes about one run.
fn state_dir(out: &Path, id: &str) -> PathBuf {
    id.split('/')
        .fold(out.join(STATE_DIR).join("runs"), |p, c| p.join(c))
}

fn record(out: &Path, id: &str, outcome: &Outcome) -> Result<()> {
    let path = state_dir(out, id).join(STATUS);
    write_atomic(&path, serde_json::to_string_pretty(outcome)?.as_bytes())
}

fn recorded(out: &Path, id: &str) -> Option<Outcome> {
    let text = std::fs::read_to_string(state_dir(out, id).join(STATUS)).ok()?;
    serde_json::from_str(&text).ok()
}

/// What a run directory holds, from `train`'s files.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Nothing yet.
    Empty,
    /// `epochs_completed` of the run's epochs, resumable when a checkpoint exists.
    Partial {
        /// Epochs completed.
        epochs: u32,
        /// A checkpoint to resume from.
        checkpoint: bool,
    },
    /// Every epoch done.
    Finished,
    /// Stopped at a non-finite loss; `summary.json` says where.
    Diverged(String),
}

/// Reads a run directory's state from `summary.json` and the checkpoint.
pub fn run_state(dir: &Path) -> RunState {
    let checkpoint = dir.join("checkpoint.safetensors").is_file();
    let summary: Option<serde_json::Value> = std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let Some(s) = summary else {
        return if checkpoint {
            RunState::Partial {
                epochs: 0,
                checkpoint,
            }
        } else {
            RunState::Empty
        };
    };
    if s["finished"].as_bool() == Some(true) {
        return RunState::Finished;
    }
    if let Some(d) = s.get("diverged").filter(|d| !d.is_null()) {
        let reason = d["reason"].as_str().unwrap_or("non-finite loss");
        return RunState::Diverged(format!(
            "epoch {}, iteration {}: {reason}",
            d["epoch"], d["iteration"]
        ));
    }
    RunState::Partial {
        epochs: s["epochs_completed"]
            .as_u64()
            .and_then(|e| u32::try_from(e).ok())
            .unwrap_or(0),
        checkpoint,
    }
}

/// The last non-empty line of a log: what `train` said last.
fn last_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "no message".into())
        .trim_start_matches("hd-native: error: ")
        .to_string()
}

/// Signals received by the sweep, shared with its workers.
#[derive(Debug, Default, Clone)]
pub struct Stop {
    int: Arc<AtomicBool>,
    term: Arc<AtomicBool>,
}

impl Stop {
    /// Registers SIGINT and SIGTERM: from now on they set this flag instead of ending the
    /// process.
    ///
    /// # Errors
    /// The handlers cannot be installed.
    pub fn install() -> Result<Stop> {
        let stop = Stop::default();
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGINT, SIGTERM};
            signal_hook::flag::register(SIGINT, Arc::clone(&stop.int))?;
            signal_hook::flag::register(SIGTERM, Arc::clone(&stop.term))?;
        }
        Ok(stop)
    }

    /// Whether a signal came.
    pub fn requested(&self) -> bool {
        self.int.load(Ordering::Relaxed) || self.term.load(Ordering::Relaxed)
    }

    /// The exit status for the signal that came (143 for SIGTERM, 130 for SIGINT).
    pub fn exit_code(&self) -> i32 {
        if self.term.load(Ordering::Relaxed) {
            EXIT_SIGTERM
        } else {
            EXIT_SIGINT
        }
    }
}

/// Passes the signal the sweep received on to a `train` it started.
fn forward(child: &std::process::Child, stop: &Stop) {
    #[cfg(unix)]
    {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let sig = if stop.term.load(Ordering::Relaxed) {
            Signal::SIGTERM
        } else {
            Signal::SIGINT
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // The child may have ended already: nothing to do then.
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
    #[cfg(not(unix))]
    let _ = (child, stop);
}

/// Holds an flock on a file while alive (released when dropped).
#[cfg(unix)]
type Lock = nix::fcntl::Flock<std::fs::File>;
#[cfg(not(unix))]
type Lock = std::fs::File;

/// Takes the lock on `path`: exclusive or shared, waiting for it or not.
fn lock(path: &Path, exclusive: bool, wait: bool) -> Result<Option<Lock>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .with_context(|| path.display().to_string())?;
    #[cfg(unix)]
    {
        use nix::fcntl::{Flock, FlockArg};
        let arg = match (exclusive, wait) {
            (true, true) => FlockArg::LockExclusive,
            (true, false) => FlockArg::LockExclusiveNonblock,
            (false, true) => FlockArg::LockShared,
            (false, false) => FlockArg::LockSharedNonblock,
        };
        match Flock::lock(file, arg) {
            Ok(l) => Ok(Some(l)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(anyhow!("locking {}: {e}", path.display())),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (exclusive, wait);
        Ok(Some(file))
    }
}

/// Locks `OUT/.sweep/lock` for a local sweep (exclusive) or a Slurm task (shared: the tasks
/// of one array run side by side).
///
/// # Errors
/// Another sweep holds it, or it cannot be created.
fn lock_sweep(out: &Path, exclusive: bool) -> Result<Lock> {
    let path = out.join(STATE_DIR).join("lock");
    lock(&path, exclusive, false)?.ok_or_else(|| {
        anyhow!(
            "{} is being swept by another hd-native sweep (its lock {} is held); wait for it or choose another --out",
            out.display(),
            path.display()
        )
    })
}

/// One run's `train` command line.
fn train_command(
    exe: &Path,
    run: &Run,
    out: &Path,
    data_dir: &Path,
    device: &str,
    threads: Option<usize>,
    resume: bool,
) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg("train")
        .args(run.train_args())
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--out")
        .arg(run.dir(out))
        .args(["--device", device, "--quiet"]);
    if let Some(t) = threads {
        cmd.args(["--threads", &t.to_string()]);
    }
    if resume {
        cmd.arg("--resume");
    }
    cmd
}

/// Runs (or continues, or leaves alone) one run and records what became of it.
fn run_one(
    exe: &Path,
    run: &Run,
    out: &Path,
    res: &Resources,
    device: &str,
    stop: &Stop,
) -> Result<Outcome> {
    let dir = run.dir(out);
    // A `train` still holding the run (left by a sweep that was killed) finishes first.
    let run_lock = dir.join(".lock");
    if run_lock.is_file() && lock(&run_lock, true, false)?.is_none() {
        eprintln!(
            "{}: another process still trains it; waiting for it to finish",
            run.id
        );
        drop(lock(&run_lock, true, true)?);
    }
    let outcome = match run_state(&dir) {
        RunState::Finished => Outcome::Done,
        RunState::Diverged(why) => Outcome::Diverged(why),
        state => {
            let data_dir = res.data_dir(run.config.dataset);
            if !data_dir.is_dir() {
                Outcome::Skipped(format!(
                    "no {} data: {} does not exist",
                    run.config.dataset,
                    data_dir.display()
                ))
            } else {
                let resume = matches!(
                    state,
                    RunState::Partial {
                        checkpoint: true,
                        ..
                    }
                );
                launch(exe, run, out, res, &data_dir, device, resume, stop)?
            }
        }
    };
    match &outcome {
        Outcome::Done => {
            // A run that once failed and now succeeded keeps no stale reason.
            let _ = std::fs::remove_file(state_dir(out, &run.id).join(STATUS));
        }
        o => record(out, &run.id, o)?,
    }
    Ok(outcome)
}

#[allow(clippy::too_many_arguments)]
fn launch(
    exe: &Path,
    run: &Run,
    out: &Path,
    res: &Resources,
    data_dir: &Path,
    device: &str,
    resume: bool,
    stop: &Stop,
) -> Result<Outcome> {
    if stop.requested() {
        return Ok(Outcome::Interrupted);
    }
    let notes = state_dir(out, &run.id);
    std::fs::create_dir_all(&notes).with_context(|| notes.display().to_string())?;
    let log_path = notes.join(TRAIN_LOG);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| log_path.display().to_string())?;
    let mut cmd = train_command(
        exe,
        run,
        out,
        data_dir,
        device,
        res.threads_per_job(),
        resume,
    );
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let mut forwarded = false;
    let status: ExitStatus = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if stop.requested() && !forwarded {
            forward(&child, stop);
            forwarded = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(outcome(
        status.code(),
        &run_state(&run.dir(out)),
        &last_line(&log_path),
    ))
}

/// What `train`'s exit status (`None`: killed by a signal), the run directory's state after it
/// and its last message make of a run (the contract of `train`'s exit statuses).
fn outcome(code: Option<i32>, state: &RunState, last: &str) -> Outcome {
    match (code, state) {
        (Some(0), RunState::Finished) => Outcome::Done,
        (Some(0), _) => Outcome::Failed("train exited 0 but its summary says unfinished".into()),
        (Some(EXIT_DIVERGED), RunState::Diverged(why)) => Outcome::Diverged(why.clone()),
        (Some(EXIT_DIVERGED), _) => Outcome::Diverged(last.to_string()),
        (Some(EXIT_NO_DATA), _) => Outcome::Skipped(last.to_string()),
        (Some(EXIT_SIGINT | EXIT_SIGTERM) | None, _) => Outcome::Interrupted,
        (Some(c), _) => Outcome::Failed(format!("exit {c}: {last}")),
    }
}

/// One line for a finished run; `seconds` is `None` when it had been finished before.
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

/// One row of `sweep status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRow {
    /// The run's id.
    pub id: String,
    /// done / partial / failed / skipped / diverged / pending.
    pub state: &'static str,
    /// Epochs completed and asked for.
    pub epochs: (u32, u32),
    /// Why, for failed, skipped and diverged runs.
    pub note: String,
}

/// The state of every run of the sweep in `out`.
///
/// # Errors
/// `out` holds no sweep manifest.
pub fn status(out: &Path) -> Result<Vec<StatusRow>> {
    let manifest = Manifest::read(out)?;
    Ok(manifest
        .runs
        .iter()
        .map(|r| {
            let dir = r.id.split('/').fold(out.to_path_buf(), |p, c| p.join(c));
            let state = run_state(&dir);
            let note = recorded(out, &r.id);
            let (state, done, note) = match (state, note) {
                (RunState::Finished, _) => ("done", r.epochs, String::new()),
                (RunState::Diverged(why), _) => ("diverged", 0, why),
                (_, Some(Outcome::Failed(why))) => ("failed", 0, why),
                (_, Some(Outcome::Skipped(why))) => ("skipped", 0, why),
                (RunState::Partial { epochs, .. }, _) => ("partial", epochs, String::new()),
                (RunState::Empty, _) => ("pending", 0, String::new()),
            };
            StatusRow {
                id: r.id.clone(),
                state,
                epochs: (done, r.epochs),
                note,
            }
        })
        .collect())
}

/// `sweep status` as a table.
pub fn status_table(rows: &[StatusRow]) -> String {
    let w = rows.iter().map(|r| r.id.len()).max().unwrap_or(2).max(3);
    let mut s = format!("{:<w$}  {:<8}  {:>7}  note\n", "run", "state", "epochs");
    for r in rows {
        s.push_str(&format!(
            "{:<w$}  {:<8}  {:>7}  {}\n",
            r.id,
            r.state,
            format!("{}/{}", r.epochs.0, r.epochs.1),
            r.note
        ));
    }
    s.trim_end().to_string()
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

    /// `train`'s exit statuses (README, "Runs, resume and errors"): 0 done, 3 diverged (a result), 4 data missing (skipped), 130/143 or a
    /// signal interrupted (resumable), anything else failed with train's last message.
    #[test]
    fn trains_exit_status_decides_the_outcome() {
        let partial = RunState::Partial {
            epochs: 1,
            checkpoint: true,
        };
        let msg = "data/mnist/train-images-idx3-ubyte: not found";
        assert_eq!(outcome(Some(0), &RunState::Finished, ""), Outcome::Done);
        assert!(matches!(outcome(Some(0), &partial, ""), Outcome::Failed(_)));
        let why = "epoch 2, iteration 300: loss is NaN".to_string();
        assert_eq!(
            outcome(Some(3), &RunState::Diverged(why.clone()), "x"),
            Outcome::Diverged(why)
        );
        assert_eq!(
            outcome(Some(3), &partial, "diverged"),
            Outcome::Diverged("diverged".into())
        );
        assert_eq!(
            outcome(Some(4), &RunState::Empty, msg),
            Outcome::Skipped(msg.into())
        );
        for code in [Some(130), Some(143), None] {
            assert_eq!(outcome(code, &partial, ""), Outcome::Interrupted);
        }
        assert_eq!(
            outcome(Some(1), &partial, msg),
            Outcome::Failed(format!("exit 1: {msg}"))
        );
        assert_eq!(
            outcome(Some(2), &RunState::Empty, "bad flag"),
            Outcome::Failed("exit 2: bad flag".into())
        );
    }

    #[test]
    fn a_run_directory_tells_its_state() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        assert_eq!(run_state(d), RunState::Empty);
        std::fs::write(d.join("checkpoint.safetensors"), b"x").expect("write");
        let summary = |extra: &str| {
            std::fs::write(
                d.join("summary.json"),
                format!(r#"{{"finished": false, "epochs_completed": 2{extra}}}"#),
            )
            .expect("write");
        };
        summary("");
        assert_eq!(
            run_state(d),
            RunState::Partial {
                epochs: 2,
                checkpoint: true
            }
        );
        summary(r#", "diverged": null"#);
        assert!(matches!(run_state(d), RunState::Partial { .. }));
        summary(r#", "diverged": {"epoch": 3, "iteration": 250, "reason": "loss is NaN"}"#);
        assert_eq!(
            run_state(d),
            RunState::Diverged("epoch 3, iteration 250: loss is NaN".into())
        );
        std::fs::write(d.join("summary.json"), r#"{"finished": true}"#).expect("write");
        assert_eq!(run_state(d), RunState::Finished);
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
