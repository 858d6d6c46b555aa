//! The `train` child processes: each run's command line, starting or resuming it and
//! recording its [`Outcome`], the signals the sweep passes on ([`Stop`]), and the lock that
//! keeps one local sweep per output directory.

use super::names::{STATE_DIR, STATUS, TRAIN_LOG};
use super::resources::{missing_data, Resources};
use super::state::{
    fit, inspect, last_line, no_follow, record, run_state, state_dir, state_dirs, Fit, Outcome,
    RunState, Stored,
};
use crate::lock::{self as locks, Lock, Mode, Strategy};
use crate::plan::Run;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `train`'s exit statuses that are outcomes rather than failures.
const EXIT_DIVERGED: i32 = crate::run_dir::exit::DIVERGED as i32;
const EXIT_NO_DATA: i32 = crate::run_dir::exit::NO_DATA as i32;
const EXIT_SIGINT: i32 = crate::run_dir::exit::SIGINT as i32;
const EXIT_SIGTERM: i32 = crate::run_dir::exit::SIGTERM as i32;

/// Signals received by the sweep, shared with its workers.
#[derive(Debug, Default, Clone)]
pub struct Stop {
    int: Arc<AtomicBool>,
    term: Arc<AtomicBool>,
    /// SIGUSR1: the Slurm script's warning before the time limit.
    limit: Arc<AtomicBool>,
}

impl Stop {
    /// Registers SIGINT, SIGTERM and SIGUSR1: from now on they set this flag instead of
    /// ending the process.
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
            signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&stop.limit))?;
        }
        Ok(stop)
    }

    /// Whether a signal came.
    pub fn requested(&self) -> bool {
        self.int.load(Ordering::Relaxed) || self.terminate()
    }

    /// Whether the signal that came asks the run to end as SIGTERM does (SIGTERM or SIGUSR1).
    fn terminate(&self) -> bool {
        self.term.load(Ordering::Relaxed) || self.limit.load(Ordering::Relaxed)
    }

    /// Whether the warning before the time limit came (SIGUSR1): a Slurm task stopped by it
    /// requeues itself.
    pub fn time_limit(&self) -> bool {
        self.limit.load(Ordering::Relaxed)
    }

    /// The exit status for the signal that came (143 for SIGTERM or SIGUSR1, 130 for SIGINT).
    pub fn exit_code(&self) -> i32 {
        if self.terminate() {
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
        // train knows SIGINT and SIGTERM; the time limit's warning is a SIGTERM to it.
        let sig = if stop.terminate() {
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

/// `e`, or, where `path` is a symbolic link (`O_NOFOLLOW` gives ELOOP), a clear refusal.
fn link_refused(path: &Path, e: std::io::Error) -> std::io::Error {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a symbolic link, which the sweep does not follow",
        )
    } else {
        e
    }
}

/// Locks `OUT/.sweep/lock` for a local sweep (exclusive) or a Slurm task (shared: the tasks
/// of one array run side by side).
///
/// # Errors
/// Another sweep holds it, or it cannot be created.
pub(super) fn lock_sweep(out: &Path, exclusive: bool) -> Result<Lock> {
    let state = out.join(STATE_DIR);
    if std::fs::symlink_metadata(&state).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "{} is a symbolic link: refused, the sweep keeps its state only in a directory of its own",
            state.display()
        );
    }
    std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    let path = state.join("lock");
    let mode = if exclusive {
        Mode::Exclusive
    } else {
        Mode::Shared
    };
    locks::try_lock(&path, mode, Strategy::from_env())
        .map_err(|e| link_refused(&path, e))
        .with_context(|| format!("locking {}", path.display()))?
        .map_err(|busy| {
            anyhow!(
                "{} is being swept by another hd-native sweep (its lock {} is held: {busy}); wait for it or choose another --out",
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

/// What [`run_one`] did with a run.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ran {
    /// What became of it.
    pub outcome: Outcome,
    /// Whether `train` ran for it (not when it was done already, stale or missing data).
    pub trained: bool,
}

/// Runs (or continues, or extends, or leaves alone) one run and records what became of it.
///
/// The run directory's recorded options decide first: the plan's options are the same run;
/// the same run with more epochs is extended (`train --resume`); anything else is *stale*,
/// left alone unless `rerun_stale`, which moves it to `OUT/.sweep/stale/<id>-<n>` and starts
/// the run afresh.
pub(super) fn run_one(
    exe: &Path,
    run: &Run,
    out: &Path,
    res: &Resources,
    device: &str,
    stop: &Stop,
    rerun_stale: bool,
) -> Result<Ran> {
    let dir = run.dir(out);
    // A `train` still holding the run (left by a sweep that was killed) finishes first.
    let run_lock = dir.join(".lock");
    if locks::exists(&run_lock) {
        let strategy = Strategy::from_env();
        let taken = |wait: bool| {
            let take = if wait {
                locks::lock_wait
            } else {
                locks::try_lock
            };
            take(&run_lock, Mode::Exclusive, strategy)
                .map_err(|e| link_refused(&run_lock, e))
                .with_context(|| format!("locking {}", run_lock.display()))
        };
        if taken(false)?.is_err() {
            eprintln!(
                "{}: another process still trains it; waiting for it to finish",
                run.id
            );
            // A lock file held from another host is not waited on: its holder may be gone
            // for good, which only a person can tell.
            if let Err(busy) = taken(true)? {
                let outcome = Outcome::Failed(format!("its run directory is locked ({busy})"));
                record(out, &run.id, &outcome)?;
                return Ok(Ran {
                    outcome,
                    trained: false,
                });
            }
        }
    }
    let Stored { state, config } = inspect(&dir);
    let state = match (state, fit(config.as_ref(), &run.config)) {
        (RunState::Unreadable(why), _) => RunState::Unreadable(why),
        (_, Fit::Stale(why)) if !rerun_stale => {
            let outcome = Outcome::Stale(why);
            record(out, &run.id, &outcome)?;
            return Ok(Ran {
                outcome,
                trained: false,
            });
        }
        (_, Fit::Stale(why)) => {
            let to = move_aside(out, run)?;
            eprintln!(
                "hd-native: note: {} was a stale run ({why}); moved to {}",
                run.id,
                to.display()
            );
            RunState::Empty
        }
        (RunState::Finished, Fit::MoreEpochs { from, .. }) => RunState::Partial {
            epochs: from,
            checkpoint: true,
        },
        (state, _) => state,
    };
    let mut trained = false;
    let outcome = match state {
        RunState::Finished => Outcome::Done,
        RunState::Diverged(why) => Outcome::Diverged(why),
        RunState::Unreadable(why) => Outcome::Failed(why),
        state => match missing_data(res, run.config.dataset) {
            Some(why) => Outcome::MissingData(why),
            None => {
                let resume = matches!(
                    state,
                    RunState::Partial {
                        checkpoint: true,
                        ..
                    }
                );
                let data_dir = res.data_dir(run.config.dataset);
                trained = !stop.requested();
                launch(exe, run, out, res, &data_dir, device, resume, stop)?
            }
        },
    };
    match &outcome {
        Outcome::Done => {
            // A run that once failed and now succeeded keeps no stale reason.
            let _ = std::fs::remove_file(state_dir(out, &run.id).join(STATUS));
        }
        o => record(out, &run.id, o)?,
    }
    Ok(Ran { outcome, trained })
}

/// Moves a stale run's directory, and the sweep's log of it, to `OUT/.sweep/stale/<id>-<n>`
/// (the first `n` from 1 not taken): kept, never deleted. Returns where it went.
fn move_aside(out: &Path, run: &Run) -> Result<PathBuf> {
    let dir = run.dir(out);
    let (parent, last) = run
        .id
        .rsplit_once('/')
        .map_or(("", run.id.as_str()), |(p, l)| (p, l));
    let under = parent
        .split('/')
        .filter(|c| !c.is_empty())
        .fold(out.join(STATE_DIR).join("stale"), |p, c| p.join(c));
    state_dirs(&under, true)?;
    let to = (1u32..)
        .map(|n| under.join(format!("{last}-{n}")))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .ok_or_else(|| anyhow!("no free name under {}", under.display()))?;
    std::fs::rename(&dir, &to)
        .with_context(|| format!("moving {} to {}", dir.display(), to.display()))?;
    let notes = state_dir(out, &run.id);
    state_dirs(&notes, false)?;
    let log = notes.join(TRAIN_LOG);
    if log.is_file() {
        std::fs::rename(&log, to.join(TRAIN_LOG))
            .with_context(|| format!("moving {} to {}", log.display(), to.display()))?;
    }
    let _ = std::fs::remove_file(notes.join(STATUS));
    Ok(to)
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
    state_dirs(&notes, true)?;
    let log_path = notes.join(TRAIN_LOG);
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    no_follow(&mut options);
    let log = options
        .open(&log_path)
        .map_err(|e| link_refused(&log_path, e))
        .with_context(|| format!("opening {}", log_path.display()))?;
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
    let end = match status.code() {
        Some(code) => End::Exit(code),
        None => End::Signal(signal_of(&status)),
    };
    Ok(outcome(
        end,
        forwarded,
        &run_state(&run.dir(out)),
        &last_line(&log_path),
    ))
}

/// How a `train` process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// It exited with this status.
    Exit(i32),
    /// A signal killed it (its number; 0 where the platform does not tell).
    Signal(i32),
}

/// The signal that ended a process that has no exit status.
fn signal_of(status: &ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal().unwrap_or(0)
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        0
    }
}

/// What the end of `train` (its exit status, or the signal that killed it), whether the sweep
/// had passed it a signal (`forwarded`), the run directory's state after it and its last
/// message make of a run (the contract of `train`'s exit statuses). A stop the sweep asked for
/// is an interruption; a signal it did not send (the OOM killer's SIGKILL, a `kill` from
/// elsewhere) fails the run, which stays resumable.
fn outcome(end: End, forwarded: bool, state: &RunState, last: &str) -> Outcome {
    match (end, state) {
        (End::Exit(0), RunState::Finished) => Outcome::Done,
        (End::Exit(0), _) => {
            Outcome::Failed("train exited 0 but its summary says unfinished".into())
        }
        (End::Exit(EXIT_DIVERGED), RunState::Diverged(why)) => Outcome::Diverged(why.clone()),
        (End::Exit(EXIT_DIVERGED), _) => Outcome::Diverged(last.to_string()),
        (End::Exit(EXIT_NO_DATA), _) => Outcome::MissingData(last.to_string()),
        (End::Exit(EXIT_SIGINT | EXIT_SIGTERM) | End::Signal(_), _) if forwarded => {
            Outcome::Interrupted
        }
        (End::Exit(c @ (EXIT_SIGINT | EXIT_SIGTERM)), _) => Outcome::Failed(format!(
            "stopped by a signal the sweep did not send (exit {c}; resumable)"
        )),
        (End::Signal(sig), _) => Outcome::Failed(format!("killed by signal {sig} (resumable)")),
        (End::Exit(c), _) => Outcome::Failed(format!("exit {c}: {last}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `train`'s exit statuses (README, "Runs, resume and errors"): 0 done, 3 diverged (a
    /// result), 4 data missing, 130/143 or a signal interrupted (resumable) when the sweep
    /// passed a signal on and failed otherwise, anything else failed with train's last message.
    #[test]
    fn trains_exit_status_decides_the_outcome() {
        let partial = RunState::Partial {
            epochs: 1,
            checkpoint: true,
        };
        let msg = "data/mnist/train-images-idx3-ubyte: not found";
        let exit = |c, state: &RunState, last| outcome(End::Exit(c), false, state, last);
        assert_eq!(exit(0, &RunState::Finished, ""), Outcome::Done);
        assert!(matches!(exit(0, &partial, ""), Outcome::Failed(_)));
        let why = "epoch 2, iteration 300: loss is NaN".to_string();
        assert_eq!(
            exit(3, &RunState::Diverged(why.clone()), "x"),
            Outcome::Diverged(why)
        );
        assert_eq!(
            exit(3, &partial, "diverged"),
            Outcome::Diverged("diverged".into())
        );
        assert_eq!(
            exit(4, &RunState::Empty, msg),
            Outcome::MissingData(msg.into())
        );
        for end in [
            End::Exit(130),
            End::Exit(143),
            End::Signal(2),
            End::Signal(9),
        ] {
            assert_eq!(outcome(end, true, &partial, ""), Outcome::Interrupted);
        }
        // A signal the sweep did not send (the OOM killer's SIGKILL) fails the run.
        assert_eq!(
            outcome(End::Signal(9), false, &partial, ""),
            Outcome::Failed("killed by signal 9 (resumable)".into())
        );
        assert_eq!(
            exit(143, &partial, ""),
            Outcome::Failed(
                "stopped by a signal the sweep did not send (exit 143; resumable)".into()
            )
        );
        assert_eq!(
            exit(1, &partial, msg),
            Outcome::Failed(format!("exit 1: {msg}"))
        );
        assert_eq!(
            exit(2, &RunState::Empty, "bad flag"),
            Outcome::Failed("exit 2: bad flag".into())
        );
    }
}
