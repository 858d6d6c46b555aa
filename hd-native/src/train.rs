//! The experiment runner: trains a model, logs every iteration, evaluates and checkpoints
//! every epoch, and resumes from the last checkpoint.
//!
//! A run directory (its format is [`crate::run_dir`]'s) holds:
//! - `log.csv`: one row per iteration, header [`LOG_HEADER`](crate::run_dir::LOG_HEADER) (the reference implementation's
//!   schema plus test accuracy). Epoch columns are empty except on an epoch's last row. Row 0
//!   is the evaluation before training (its `LossEpoch` is the training-set loss).
//! - `checkpoint.safetensors`: weights, optimizer state and progress after the last complete
//!   epoch, replaced atomically (written to a temporary file, synced, renamed).
//! - `summary.json`: the configuration and the latest figures, rewritten every epoch.
//! - `.lock`: an advisory lock (`flock`) held for the run's whole life, so two processes
//!   never write one directory; the kernel releases it when the process dies, so a killed
//!   run leaves no stale lock. It holds the holder's pid and host as text. Where the file
//!   system refuses flock (or `HD_LOCK=file`), `.lock.excl` instead, created with `O_EXCL`
//!   and removed at the end; a killed run leaves it, and the next one takes it over when its
//!   holder was on the same host and no longer runs ([`crate::lock`]).
//!
//! **Which directories are written.** Without `--resume`: a new or empty directory, or one of
//! ours that completed no epoch (nothing to lose: it starts over). With `--resume`: a
//! directory whose checkpoint and log agree. Anything else is refused with what to do, and
//! nothing in it is changed.
//!
//! **Stopping.** A non-finite training or test loss (or parameter) is divergence: the run
//! stops, the last finite checkpoint is kept and `summary.json` says where and why. After
//! SIGINT or SIGTERM (with [`stop_on_signals`]) a run stops at the next iteration, with its
//! files consistent and resumable from the last checkpoint.
//!
//! **Reproducibility.** Each epoch reseeds libtorch's generator from `(seed, epoch)` before it
//! shuffles and augments, so a run resumed from the checkpoint of epoch e replays epoch e + 1
//! exactly; on the CPU a killed and resumed run ends bit-identical to one that never stopped.
//!
//! **No host–device synchronisation per step.** Losses and α stay on the device and are read
//! back [`LOG_EVERY`] iterations at a time.
//!
//! The submodules, in the order a run uses them: `resume` (opening the directory, the
//! checkpoint's content, the resume checks), `log` (appending to `log.csv`), `epoch` (one
//! epoch of a `Trainer`), `signals` (stopping cleanly), `error` (what can stop a run).

use crate::config::{Options, RunConfig};
use crate::data::Dataset;
use crate::models::{self, Net};
use crate::run_dir::{best, Divergence, EpochStats, LogRow, Reached, Summary};
use hd_tch::HdOptimizer;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;
use tch::{nn, Device, TchError};

mod epoch;
mod error;
mod log;
mod resume;
mod signals;

use epoch::EpochEnd;
pub(crate) use epoch::{batches, evaluate};
use error::io;
use log::Log;
use resume::{
    check_data, check_progress, open_run, replace_log, restore, save_checkpoint, write_summary,
    Opened, Progress,
};
use signals::stop_requested;

pub use epoch::cross_entropy;
pub use error::{panic_message, torch_message, TrainError};
pub use log::LOG_EVERY;
pub use signals::stop_on_signals;

/// A note to the user on stderr; a closed stderr is not an error.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "hd-native: note: {text}");
}

/// Wall-clock time over every session of a run.
struct Clock {
    before: f64,
    started: Instant,
}

impl Clock {
    fn seconds(&self) -> f64 {
        self.before + self.started.elapsed().as_secs_f64()
    }
}

/// One run's training state: the model, its optimizer and data, the log and the clock.
struct Trainer<'a> {
    config: &'a RunConfig,
    data: &'a Dataset,
    net: &'a Net,
    opt: HdOptimizer,
    log: Log,
    clock: Clock,
    /// The batch size in use and the iterations per epoch.
    batch: i64,
    per_epoch: i64,
    /// Iterations done, counted from the start of the run.
    iteration: u64,
    /// With a target loss, where it was first met.
    reached: Option<Reached>,
    progress: bool,
}

/// Settings that may change between a run and its resumption.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The data directory.
    pub data_dir: PathBuf,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// The run directory.
    pub out: PathBuf,
    /// Continue from the last checkpoint.
    pub resume: bool,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

/// Parses `auto`, `cpu`, `cuda`, `cuda:N`.
///
/// # Errors
/// [`TrainError::Device`] for anything else, or a CUDA device that is not there.
pub fn parse_device(s: &str) -> Result<Device, TrainError> {
    let cuda = |i: usize| {
        let n = tch::Cuda::device_count().max(0) as usize;
        if i < n {
            Ok(Device::Cuda(i))
        } else if n == 0 {
            Err(TrainError::Device(format!(
                "{s}: CUDA is not available (no GPU, or libtorch without CUDA)"
            )))
        } else {
            Err(TrainError::Device(format!("{s}: only {n} CUDA device(s)")))
        }
    };
    match s {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i),
            _ => Err(TrainError::Device(format!(
                "{s:?}: expected auto, cpu, cuda or cuda:N"
            ))),
        },
    }
}

/// Trains as `options` and `setup` say, resuming when asked, and returns the summary.
///
/// In order: the run directory is locked and checked (see the module documentation for which
/// directories are written); the data are loaded and, on resume, checked against the
/// checkpoint; the model is built and restored; a new run logs row 0 and checkpoints epoch 0;
/// then each epoch is trained, logged, checkpointed and summarised.
///
/// # Errors
/// [`TrainError`]: bad options, data, a run directory in the way or in use, a diverged loss,
/// a stop signal, I/O.
pub fn run(options: &Options, setup: &Setup) -> Result<Summary, TrainError> {
    let out = &setup.out;
    let device = parse_device(&setup.device)?;
    let Opened {
        _lock,
        config,
        resumed,
    } = open_run(options, setup)?;
    if device.is_cuda() {
        // Let cuDNN pick the fastest convolution algorithms for these fixed shapes.
        tch::Cuda::cudnn_set_benchmark(true);
    }

    let data = Dataset::load(config.dataset, &setup.data_dir, device)?;
    let n = data.train.len();
    let (batch, per_epoch) = batches(n, config.batch_size);
    let ckpt_path = crate::run_dir::checkpoint(out);
    if let Some((c, _, _)) = &resumed {
        check_progress(&ckpt_path, c, per_epoch)?;
        check_data(out, &setup.data_dir, c, &data.files)?;
    }
    if device == Device::Cpu {
        check_memory(&config, &data)?;
    }
    tch::manual_seed(config.seed as i64);
    let vs = nn::VarStore::new(device);
    let net = build_model(&vs, &config, &data)?;
    let mut opt = HdOptimizer::new(&vs, config.core())?;
    // A resumed run that met its target is complete: the log it kept says where.
    let reached = match (&resumed, config.stop_at_loss) {
        (Some((_, _, kept_log)), Some(target)) => Reached::first(&log_rows(kept_log), target),
        _ => None,
    };
    let (start, mut history) = match resumed {
        Some((c, history, kept_log)) => {
            restore(&ckpt_path, &vs, &mut opt, &c)?;
            // Every check passed: only now is the log cut back to the checkpoint.
            replace_log(&crate::run_dir::log(out), kept_log.as_bytes())?;
            (
                Progress {
                    epoch: c.epoch,
                    iteration: c.iteration,
                    elapsed: c.elapsed,
                },
                history,
            )
        }
        None => (
            Progress {
                epoch: 0,
                iteration: 0,
                elapsed: 0.0,
            },
            Vec::new(),
        ),
    };
    if batch < config.batch_size {
        note(&format!(
            "--batch-size {} exceeds the {n} training images: each epoch is one batch of {n}",
            config.batch_size
        ));
    }

    let mut summary = Summary {
        label: config.label(),
        title: config.title(),
        device: format!("{device:?}"),
        parameters: opt.num_parameters(),
        epochs_completed: start.epoch,
        iterations: start.iteration,
        finished: start.epoch >= config.epochs || reached.is_some(),
        elapsed_seconds: start.elapsed,
        images_per_second: 0.0,
        last: history.last().copied().unwrap_or(EpochStats {
            epoch: 0,
            train_loss: f64::NAN,
            test_loss: f64::NAN,
            test_accuracy: f64::NAN,
            alpha: f64::from(config.core.alpha0),
        }),
        best_test_accuracy: best(&history),
        diverged: None,
        reached,
        config: config.clone(),
    };
    let mut trainer = Trainer {
        config: &config,
        data: &data,
        net: &net,
        opt,
        log: Log::open(out, history.is_empty())?,
        clock: Clock {
            before: start.elapsed,
            started: Instant::now(),
        },
        batch,
        per_epoch,
        iteration: start.iteration,
        reached,
        progress: setup.progress,
    };
    let diverged = |summary: &mut Summary, divergence: Divergence| -> TrainError {
        summary.diverged = Some(divergence.clone());
        summary.finished = false;
        match write_summary(out, summary) {
            Ok(()) => TrainError::Diverged {
                divergence,
                kept: summary.epochs_completed,
            },
            Err(e) => e,
        }
    };

    if history.is_empty() {
        let stats = match trainer.initial_row()? {
            Ok(stats) => stats,
            Err(d) => return Err(diverged(&mut summary, d)),
        };
        history.push(stats);
        summary.last = stats;
        summary.best_test_accuracy = best(&history);
        let progress = Progress {
            epoch: 0,
            iteration: 0,
            elapsed: trainer.clock.seconds(),
        };
        save_checkpoint(out, &vs, &trainer.opt, &config, &data.files, progress)?;
        write_summary(out, &summary)?;
    }
    for epoch in start.epoch + 1..=config.epochs {
        if summary.finished {
            break;
        }
        let signal = match trainer.epoch(epoch)? {
            EpochEnd::Done(stats, train_seconds) => {
                history.push(stats);
                let progress = Progress {
                    epoch,
                    iteration: trainer.iteration,
                    elapsed: trainer.clock.seconds(),
                };
                save_checkpoint(out, &vs, &trainer.opt, &config, &data.files, progress)?;
                summary.last = stats;
                summary.best_test_accuracy = best(&history);
                summary.epochs_completed = epoch;
                summary.iterations = trainer.iteration;
                summary.reached = trainer.reached;
                summary.finished = epoch == config.epochs || trainer.reached.is_some();
                summary.elapsed_seconds = progress.elapsed;
                summary.images_per_second = n as f64 / train_seconds.max(1e-9);
                write_summary(out, &summary)?;
                // A signal after the last epoch stops nothing: the run is complete.
                stop_requested().filter(|_| !summary.finished)
            }
            EpochEnd::Diverged(d) => return Err(diverged(&mut summary, d)),
            EpochEnd::Stopped(signal) => Some(signal),
        };
        if let Some(signal) = signal {
            return Err(TrainError::Interrupted {
                signal,
                dir: out.clone(),
                kept: summary.epochs_completed,
            });
        }
    }
    summary.finished = true;
    write_summary(out, &summary)?;
    Ok(summary)
}

/// The iteration rows of a `log.csv` text (its header and any unreadable line skipped).
fn log_rows(log: &str) -> Vec<LogRow> {
    log.lines()
        .skip(1)
        .filter_map(|line| LogRow::from_fields(&line.split(',').collect::<Vec<_>>()))
        .collect()
}

/// Refuses a model whose weights and gradients (4 bytes each) exceed the memory available,
/// before libtorch tries to allocate them.
fn check_memory(config: &RunConfig, data: &Dataset) -> Result<(), TrainError> {
    let Some(parameters) = config.model.parameter_count(data.kind.spec()) else {
        return Ok(());
    };
    let needed = parameters.saturating_mul(8);
    for (available, limit) in memory_limits() {
        if needed > available {
            return Err(TrainError::TooLarge {
                parameters,
                needed,
                available,
                limit,
            });
        }
    }
    Ok(())
}

/// The memory the process can use, as far as Linux tells: `MemAvailable` and the
/// address-space limit (`ulimit -v`). Empty where neither can be read.
fn memory_limits() -> Vec<(u128, &'static str)> {
    let mut out = Vec::new();
    if let Ok(info) = fs::read_to_string("/proc/meminfo") {
        let kib = info
            .lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u128>().ok());
        if let Some(kib) = kib {
            out.push((kib * 1024, "of memory available"));
        }
    }
    if let Ok(limits) = fs::read_to_string("/proc/self/limits") {
        let soft = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max address space"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u128>().ok());
        if let Some(bytes) = soft {
            out.push((bytes, "the address-space limit allows"));
        }
    }
    out
}

/// Builds the model, turning a libtorch failure (an allocation it cannot satisfy, which tch
/// reports by panicking) into one line.
fn build_model(vs: &nn::VarStore, config: &RunConfig, data: &Dataset) -> Result<Net, TrainError> {
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        models::build(&vs.root(), &config.model, data.kind.spec())
    }));
    match built {
        Ok(net) => Ok(net?),
        Err(payload) => {
            let message = panic_message(payload.as_ref()).unwrap_or("unknown failure");
            Err(TrainError::Torch(TchError::Torch(format!(
                "building {}: {}",
                config.model,
                torch_message(message)
            ))))
        }
    }
}
