//! The experiment runner: trains a model, logs every iteration, evaluates and checkpoints
//! every epoch, and resumes from the last checkpoint.
//!
//! A run directory holds:
//! - `log.csv`: one row per iteration, header [`LOG_HEADER`] (the reference implementation's
//!   schema plus test accuracy). Epoch columns are empty except on an epoch's last row. Row 0
//!   is the evaluation before training (its `LossEpoch` is the training-set loss).
//! - `checkpoint.safetensors`: weights, optimizer state and progress after the last complete
//!   epoch, replaced atomically (written to a temporary file, synced, renamed).
//! - `summary.json`: the configuration and the latest figures, rewritten every epoch.
//! - `.lock`: an advisory lock (`flock`) held for the run's whole life, so two processes
//!   never write one directory; the kernel releases it when the process dies, so a killed
//!   run leaves no stale lock. It holds the holder's pid and host as text.
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

use crate::config::{ConfigError, Options, RunConfig};
use crate::data::{DataError, Dataset, Split};
use crate::models::{self, ModelError, Net};
use crate::optim::{HdOptimizer, OptimError};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;
use tch::{nn, Device, Kind, TchError, Tensor};

mod rundir;

use rundir::{
    check_data, check_progress, open_run, replace_log, restore, save_checkpoint, write_summary,
    Opened, Progress, CHECKPOINT, LOG,
};

/// The header of `log.csv`.
pub const LOG_HEADER: &str =
    "Epoch,Iteration,Time,Loss,LossEpoch,ValidLossEpoch,Alpha,AlphaEpoch,Beta,ValidAccEpoch";

/// Iterations between reads of the losses and α back from the device.
pub const LOG_EVERY: usize = 50;

/// What can stop a run. Every variant says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// Bad options.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A data file is missing or malformed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The model cannot be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The optimizer failed.
    #[error(transparent)]
    Optim(#[from] OptimError),
    /// libtorch failed (its message cut to the first line, without C++ frames).
    #[error("libtorch: {}", torch_message(&.0.to_string()))]
    Torch(#[from] TchError),
    /// A file of the run directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error (shown in this error's message, so not also its source).
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the run directory's lock.
    #[error("{} is in use by another run ({holder}); wait for it to end or choose another --out", dir.display())]
    Locked {
        /// The run directory.
        dir: PathBuf,
        /// What the lock file says about its holder (pid and host).
        holder: String,
    },
    /// The run directory already holds a run and `--resume` was not given.
    #[error("{} already holds a run; pass --resume to continue it, or choose another --out", dir.display())]
    RunExists {
        /// The run directory.
        dir: PathBuf,
    },
    /// The directory holds something this program must not overwrite.
    #[error("{}: {why}; choose another --out", dir.display())]
    NotARun {
        /// The directory.
        dir: PathBuf,
        /// What is in the way.
        why: String,
    },
    /// `--resume` cannot continue the run.
    #[error("{}: cannot resume: {why}", dir.display())]
    CannotResume {
        /// The run directory.
        dir: PathBuf,
        /// Why, and what to do.
        why: String,
    },
    /// A file of the run directory is not what this program wrote.
    #[error("{}: {what}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The device asked for does not exist.
    #[error("device {0}")]
    Device(String),
    /// The model would not fit in memory.
    #[error("the model's {parameters} parameters need {} of memory, more than the {} {limit}; choose a smaller model", gib(*needed), gib(*available))]
    TooLarge {
        /// Trainable parameters.
        parameters: u128,
        /// Bytes their weights and gradients take.
        needed: u128,
        /// Bytes available.
        available: u128,
        /// Which limit (available memory or the address-space limit).
        limit: &'static str,
    },
    /// The loss (or a parameter) became NaN or infinite.
    #[error("{} at epoch {}, iteration {}; {}; try a smaller --alpha0 or --beta", .divergence.reason, .divergence.epoch, .divergence.iteration, kept_checkpoint(*.kept, .divergence.epoch))]
    Diverged {
        /// Where and why.
        divergence: Divergence,
        /// The epoch of the checkpoint kept.
        kept: u32,
    },
    /// SIGINT or SIGTERM stopped the run.
    #[error("stopped by {}; {} resumes from its checkpoint of epoch {kept} with --resume", signal_name(*signal), dir.display())]
    Interrupted {
        /// The signal number.
        signal: i32,
        /// The run directory.
        dir: PathBuf,
        /// The epoch of the checkpoint a resume continues from.
        kept: u32,
    },
}

impl TrainError {
    /// The exit status `hd-native train` ends with: 3 diverged, 4 dataset files missing,
    /// 128 + the signal number when stopped by one (130 SIGINT, 143 SIGTERM), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            TrainError::Diverged { .. } => 3,
            TrainError::Data(DataError::Missing { .. }) => 4,
            TrainError::Interrupted { signal, .. } => u8::try_from(128 + signal).unwrap_or(1),
            _ => 1,
        }
    }
}

/// What a diverged run keeps: the checkpoint of the last finite epoch, or none when the
/// model before training already was not finite.
fn kept_checkpoint(kept: u32, diverged_at: u32) -> String {
    if diverged_at == 0 {
        "no checkpoint was written".into()
    } else {
        format!("the checkpoint of epoch {kept} is kept")
    }
}

/// Bytes as GiB with two decimals.
fn gib(bytes: u128) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
}

fn signal_name(signal: i32) -> String {
    match signal {
        signal_hook::consts::SIGINT => "SIGINT".into(),
        signal_hook::consts::SIGTERM => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

/// libtorch's messages carry C++ stack frames after the first line (and, through a Debug
/// format, with the line breaks escaped): keep what failed, drop the frames.
pub fn torch_message(message: &str) -> String {
    let mut cut = message;
    for end in ["\\n", "\n"] {
        if let Some(i) = cut.find(end) {
            cut = &cut[..i];
        }
    }
    let mut out: String = cut.trim().chars().take(400).collect();
    if out.len() < cut.trim().len() {
        out.push('…');
    }
    out
}

/// The message of a panic's payload (a `String` or a `&str`, as `panic!` makes them).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

/// Where and why a run diverged (`summary.json`'s `diverged`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Divergence {
    /// The epoch under way.
    pub epoch: u32,
    /// The iteration (counted from the start of the run).
    pub iteration: u64,
    /// What was not finite.
    pub reason: String,
}

/// The signal that asked the run to stop (0: none). Set by the handlers of
/// [`stop_on_signals`], read at every iteration.
static STOP_SIGNAL: AtomicUsize = AtomicUsize::new(0);
/// Whether a stop was asked: a second signal then ends the process at once.
static STOP_ASKED: AtomicBool = AtomicBool::new(false);

/// Makes SIGINT and SIGTERM stop [`run`] at the next iteration boundary instead of killing the
/// process: the run then returns [`TrainError::Interrupted`] with its directory consistent and
/// resumable. A second signal exits at once with status 128 + its number (the directory is
/// still resumable: every file is replaced atomically or truncated on resume).
///
/// # Errors
/// The handlers could not be installed.
pub fn stop_on_signals() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        // The order matters: the shutdown checks the flag before this signal sets it.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, &STOP_ASKED)?;
        signal_hook::flag::register_usize(signal, &STOP_SIGNAL, signal as usize)?;
        signal_hook::flag::register(signal, &STOP_ASKED)?;
    }
    Ok(())
}

fn stop_requested() -> Option<i32> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n => i32::try_from(n).ok(),
    }
}

/// A note to the user on stderr; a closed stderr is not an error.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "hd-native: note: {text}");
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
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

/// One epoch's figures, as in the epoch columns of `log.csv`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochStats {
    /// Epoch (0 is before training).
    pub epoch: u32,
    /// Mean training minibatch loss over the epoch (epoch 0: training-set loss).
    #[serde(deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    /// Test-set loss.
    #[serde(deserialize_with = "nan_if_null")]
    pub test_loss: f64,
    /// Test-set accuracy in [0, 1].
    #[serde(deserialize_with = "nan_if_null")]
    pub test_accuracy: f64,
    /// α at the end of the epoch.
    #[serde(deserialize_with = "nan_if_null")]
    pub alpha: f64,
}

/// JSON has no NaN: serde_json writes a non-finite figure as `null`, and this reads `null`
/// back as NaN, so every `summary.json` written reads back.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// `summary.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// The run's configuration.
    pub config: RunConfig,
    /// Plot legend.
    pub label: String,
    /// Plot title.
    pub title: String,
    /// The device it ran on last.
    pub device: String,
    /// Trainable parameters.
    pub parameters: i64,
    /// Epochs completed.
    pub epochs_completed: u32,
    /// Iterations completed.
    pub iterations: u64,
    /// Whether every epoch asked for is done.
    pub finished: bool,
    /// Wall-clock seconds, over every session of the run.
    #[serde(deserialize_with = "nan_if_null")]
    pub elapsed_seconds: f64,
    /// Training images per second in the last epoch (training only, not evaluation).
    #[serde(deserialize_with = "nan_if_null")]
    pub images_per_second: f64,
    /// The last epoch's figures.
    pub last: EpochStats,
    /// The best test accuracy of any epoch.
    #[serde(deserialize_with = "nan_if_null")]
    pub best_test_accuracy: f64,
    /// Where and why the run diverged; `null` while it has not.
    #[serde(default)]
    pub diverged: Option<Divergence>,
}

/// The seed of one epoch's shuffling and augmentation: a SplitMix64 finaliser of
/// `(seed, epoch)`, so neighbouring epochs and seeds get unrelated streams.
fn epoch_seed(seed: u64, epoch: u32) -> i64 {
    let mut z = seed ^ (u64::from(epoch).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as i64 & i64::MAX
}

/// Mean loss and accuracy of `net` on a split, evaluated in inference mode.
fn evaluate(net: &Net, data: &Dataset, split: &Split) -> Result<(f64, f64), TchError> {
    let n = split.len();
    let device = split.labels.device();
    tch::no_grad(|| {
        let mut loss = Tensor::f_zeros([], (Kind::Double, device))?;
        let mut correct = Tensor::f_zeros([], (Kind::Int64, device))?;
        let mut start = 0;
        while start < n {
            let len = 500.min(n - start);
            let index = Tensor::f_arange_start(start, start + len, (Kind::Int64, device))?;
            let (x, y) = data.batch(split, &index, false)?;
            let logits = net.forward_t(&x, false);
            let l = logits.f_log_softmax(-1, Kind::Float)?.f_nll_loss(
                &y,
                None::<Tensor>,
                tch::Reduction::Sum,
                -100,
            )?;
            loss = loss.f_add(&l.f_to_kind(Kind::Double)?)?;
            let hits = logits
                .f_argmax(-1, false)?
                .f_eq_tensor(&y)?
                .f_sum(Kind::Int64)?;
            correct = correct.f_add(&hits)?;
            start += len;
        }
        let loss = loss.f_double_value(&[])? / n.max(1) as f64;
        let acc = correct.f_int64_value(&[])? as f64 / n.max(1) as f64;
        Ok((loss, acc))
    })
}

/// Mean cross-entropy of `logits` `[b, classes]` against class indices `labels` `[b]`.
///
/// # Errors
/// A libtorch error (shapes that do not match, a label out of range).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor, TchError> {
    logits.f_log_softmax(-1, Kind::Float)?.f_nll_loss(
        labels,
        None::<Tensor>,
        tch::Reduction::Mean,
        -100,
    )
}

/// An f32 written so that it reads back to the same bits.
fn num(x: f32) -> String {
    format!("{x}")
}

/// The epoch columns of a log row: on row 0 (the model before training) and on each epoch's
/// last row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochColumns {
    /// `LossEpoch`: the mean training minibatch loss (row 0: the training-set loss).
    pub train_loss: f64,
    /// `ValidLossEpoch`: the test-set loss.
    pub test_loss: f64,
    /// `ValidAccEpoch`: the test-set accuracy in [0, 1].
    pub test_accuracy: f64,
}

/// One row of `log.csv`: the one place its columns ([`LOG_HEADER`]) are written and read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRow {
    /// `Epoch` (0: before training).
    pub epoch: u32,
    /// `Iteration`, counted from the start of the run.
    pub iteration: u64,
    /// `Time`: wall-clock seconds since the run started, over every session.
    pub time: f64,
    /// `Loss`: the minibatch loss (none on row 0).
    pub loss: Option<f32>,
    /// `Alpha` (and `AlphaEpoch` on an epoch row): α after this iteration.
    pub alpha: f32,
    /// `Beta`: the hypergradient rate in use.
    pub beta: f32,
    /// The epoch columns, on row 0 and each epoch's last row.
    pub epoch_columns: Option<EpochColumns>,
}

impl LogRow {
    /// The row as a line of `log.csv` (with its newline). Numbers are written so that they
    /// read back to the same value; absent values are empty fields.
    pub fn to_line(&self) -> String {
        let e = self.epoch_columns;
        let field = |x: Option<String>| x.unwrap_or_default();
        format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            self.epoch,
            self.iteration,
            self.time,
            field(self.loss.map(num)),
            field(e.map(|e| e.train_loss.to_string())),
            field(e.map(|e| e.test_loss.to_string())),
            num(self.alpha),
            field(e.map(|_| num(self.alpha))),
            num(self.beta),
            field(e.map(|e| e.test_accuracy.to_string())),
        )
    }

    /// Parses the fields of a line (split at commas); `None` for anything but a whole row.
    pub fn from_fields(fields: &[&str]) -> Option<LogRow> {
        let [epoch, iteration, time, loss, train_loss, test_loss, alpha, _, beta, test_accuracy] =
            fields
        else {
            return None;
        };
        let optional = |f: &str| -> Option<Option<f64>> {
            if f.is_empty() {
                Some(None)
            } else {
                f.parse().ok().map(Some)
            }
        };
        let epoch_columns = match (
            optional(train_loss)?,
            optional(test_loss)?,
            optional(test_accuracy)?,
        ) {
            (Some(train_loss), Some(test_loss), Some(test_accuracy)) => Some(EpochColumns {
                train_loss,
                test_loss,
                test_accuracy,
            }),
            (None, None, None) => None,
            _ => return None,
        };
        Some(LogRow {
            epoch: epoch.parse().ok()?,
            iteration: iteration.parse().ok()?,
            time: time.parse().ok()?,
            loss: if loss.is_empty() {
                None
            } else {
                Some(loss.parse().ok()?)
            },
            alpha: alpha.parse().ok()?,
            beta: beta.parse().ok()?,
            epoch_columns,
        })
    }

    /// The figures of an epoch row (`None` for other rows).
    pub fn epoch_stats(&self) -> Option<EpochStats> {
        self.epoch_columns.map(|e| EpochStats {
            epoch: self.epoch,
            train_loss: e.train_loss,
            test_loss: e.test_loss,
            test_accuracy: e.test_accuracy,
            alpha: f64::from(self.alpha),
        })
    }
}

/// `log.csv`, open for appending.
struct Log {
    file: File,
    path: PathBuf,
}

impl Log {
    /// Opens the log of `dir`: a new one (header written) or, resuming, the existing one.
    fn open(dir: &Path, new: bool) -> Result<Log, TrainError> {
        let path = dir.join(LOG);
        let file = OpenOptions::new()
            .create(true)
            .append(!new)
            .write(true)
            .truncate(new)
            .open(&path)
            .map_err(io(&path))?;
        let mut log = Log { file, path };
        if new {
            log.write(&format!("{LOG_HEADER}\n"))?;
        }
        Ok(log)
    }

    fn write(&mut self, text: &str) -> Result<(), TrainError> {
        self.file.write_all(text.as_bytes()).map_err(io(&self.path))
    }

    fn append(&mut self, rows: &[LogRow]) -> Result<(), TrainError> {
        let text: String = rows.iter().map(LogRow::to_line).collect();
        self.write(&text)
    }

    /// Makes the rows written durable (before the checkpoint that follows them).
    fn sync(&mut self) -> Result<(), TrainError> {
        self.file.sync_data().map_err(io(&self.path))
    }
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

/// How an epoch ended.
enum EpochEnd {
    /// Every iteration done and the model finite: its figures and training seconds.
    Done(EpochStats, f64),
    /// A loss, parameter or α became non-finite.
    Diverged(Divergence),
    /// A stop signal arrived (its number).
    Stopped(i32),
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
    progress: bool,
}

impl Trainer<'_> {
    /// Evaluates the model before training and logs it as row 0.
    fn initial_row(&mut self) -> Result<Result<EpochStats, Divergence>, TrainError> {
        let (train_loss, _) = evaluate(self.net, self.data, &self.data.train)?;
        let (test_loss, test_accuracy) = evaluate(self.net, self.data, &self.data.test)?;
        let row = LogRow {
            epoch: 0,
            iteration: 0,
            time: self.clock.seconds(),
            loss: None,
            alpha: self.opt.alpha_value()?,
            beta: self.config.beta(),
            epoch_columns: Some(EpochColumns {
                train_loss,
                test_loss,
                test_accuracy,
            }),
        };
        self.log.append(&[row])?;
        self.log.sync()?;
        if !train_loss.is_finite() || !test_loss.is_finite() {
            return Ok(Err(Divergence {
                epoch: 0,
                iteration: 0,
                reason: "the loss of the initial model is not finite".into(),
            }));
        }
        Ok(row.epoch_stats().ok_or(Divergence {
            epoch: 0,
            iteration: 0,
            reason: "row 0 has no figures".into(),
        }))
    }

    /// Trains one epoch: a fresh shuffle from (seed, epoch), one step per minibatch, the
    /// losses and α read back [`LOG_EVERY`] iterations at a time and logged, then the test
    /// set evaluated and the epoch row logged and synced.
    fn epoch(&mut self, epoch: u32) -> Result<EpochEnd, TrainError> {
        let (n, batch, per_epoch) = (self.data.train.len(), self.batch, self.per_epoch);
        let device = self.data.train.labels.device();
        let bar = progress_bar(self.progress, per_epoch as u64, epoch, self.config.epochs);
        tch::manual_seed(epoch_seed(self.config.seed, epoch));
        let perm = Tensor::f_randperm(n, (Kind::Int64, device))?;
        let epoch_start = Instant::now();
        let mut pending: Vec<(Tensor, Tensor, f64)> = Vec::with_capacity(LOG_EVERY);
        let mut loss_sum = 0.0f64;
        let mut last_row = None;
        for i in 0..per_epoch {
            // i · batch < n: only a batch smaller than the set makes more than one.
            let start = i * batch;
            let index = perm.f_narrow(0, start, batch.min(n - start))?;
            let (x, y) = self.data.batch(&self.data.train, &index, true)?;
            let loss = cross_entropy(&self.net.forward_t(&x, true), &y)?;
            self.opt.backward_step(&loss)?;
            pending.push((loss.f_detach()?, self.opt.alpha()?, self.clock.seconds()));
            if let Some(signal) = stop_requested() {
                // The rows of this epoch are ahead of the checkpoint: a resume drops them.
                return Ok(EpochEnd::Stopped(signal));
            }
            if pending.len() < LOG_EVERY && i + 1 < per_epoch {
                continue;
            }
            let mut rows = read_back(&pending)?
                .into_iter()
                .map(|(loss, alpha, time)| {
                    self.iteration += 1;
                    LogRow {
                        epoch,
                        iteration: self.iteration,
                        time,
                        loss: Some(loss),
                        alpha,
                        beta: self.config.beta(),
                        epoch_columns: None,
                    }
                })
                .collect::<Vec<_>>();
            if let Some(bad) = rows
                .iter()
                .position(|r| r.loss.is_some_and(|l| !l.is_finite()))
            {
                self.log.append(&rows[..bad])?;
                return Ok(EpochEnd::Diverged(Divergence {
                    epoch,
                    iteration: rows[bad].iteration,
                    reason: "the training loss is not finite".into(),
                }));
            }
            loss_sum += rows
                .iter()
                .filter_map(|r| r.loss)
                .map(f64::from)
                .sum::<f64>();
            if let Some(r) = rows.last() {
                bar.set_message(format!(
                    "loss {:.4}  α {:.3e}",
                    r.loss.unwrap_or(f32::NAN),
                    r.alpha
                ));
            }
            bar.inc(pending.len() as u64);
            pending.clear();
            // The epoch's last row gets the epoch columns once the test set is evaluated.
            if i + 1 == per_epoch {
                last_row = rows.pop();
            }
            self.log.append(&rows)?;
        }
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        let (test_loss, test_accuracy) = evaluate(self.net, self.data, &self.data.test)?;
        let train_loss = loss_sum / per_epoch as f64;
        let alpha = self.opt.alpha_value()?;
        let row = LogRow {
            alpha,
            epoch_columns: Some(EpochColumns {
                train_loss,
                test_loss,
                test_accuracy,
            }),
            ..last_row.unwrap_or(LogRow {
                epoch,
                iteration: self.iteration,
                time: self.clock.seconds(),
                loss: None,
                alpha,
                beta: self.config.beta(),
                epoch_columns: None,
            })
        };
        self.log.append(&[row])?;
        self.log.sync()?;
        bar.finish_with_message(format!(
            "loss {train_loss:.4}  test loss {test_loss:.4}  test acc {:.2}%  α {alpha:.3e}",
            100.0 * test_accuracy
        ));
        // A blown-up model can still give finite minibatch losses until the test set shows
        // it: its checkpoint must not replace the last finite one.
        let reason = if !test_loss.is_finite() {
            Some("the test loss is not finite")
        } else if !train_loss.is_finite() {
            Some("the training loss is not finite")
        } else if self.opt.check_finite().is_err() {
            Some("a parameter or α is not finite")
        } else {
            None
        };
        Ok(match (reason, row.epoch_stats()) {
            (None, Some(stats)) => EpochEnd::Done(stats, train_seconds),
            (reason, _) => EpochEnd::Diverged(Divergence {
                epoch,
                iteration: self.iteration,
                reason: reason.unwrap_or("the epoch row has no figures").into(),
            }),
        })
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
    let ckpt_path = out.join(CHECKPOINT);
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
    let (start, mut history) = match resumed {
        Some((c, history, kept_log)) => {
            restore(&ckpt_path, &vs, &mut opt, &c)?;
            // Every check passed: only now is the log cut back to the checkpoint.
            replace_log(out, &out.join(LOG), kept_log.as_bytes())?;
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
        finished: start.epoch >= config.epochs,
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
                summary.finished = epoch == config.epochs;
                summary.elapsed_seconds = progress.elapsed;
                summary.images_per_second = n as f64 / train_seconds.max(1e-9);
                write_summary(out, &summary)?;
                // A signal after the last epoch stops nothing: the run is complete.
                stop_requested().filter(|_| epoch < config.epochs)
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

/// The batch size in use and the iterations per epoch for `n` training images: a batch
/// larger than the set is the whole set (ceil(n / batch) computed without overflow).
fn batches(n: i64, batch: i64) -> (i64, i64) {
    let batch = batch.clamp(1, n.max(1));
    let per_epoch = if n <= 0 { 0 } else { (n - 1) / batch + 1 };
    (batch, per_epoch)
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

fn best(history: &[EpochStats]) -> f64 {
    history
        .iter()
        .map(|s| s.test_accuracy)
        .fold(f64::NAN, f64::max)
}

fn progress_bar(show: bool, len: u64, epoch: u32, epochs: u32) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len} {rate} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key(
        "rate",
        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0} it/s", state.per_sec());
        },
    )
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// Reads the pending losses and α values back in one transfer each; returns (loss, α, time)
/// per iteration.
fn read_back(pending: &[(Tensor, Tensor, f64)]) -> Result<Vec<(f32, f32, f64)>, TchError> {
    let losses: Vec<&Tensor> = pending.iter().map(|(l, _, _)| l).collect();
    let alphas: Vec<&Tensor> = pending.iter().map(|(_, a, _)| a).collect();
    let l = Tensor::f_stack(&losses, 0)?.f_to(Device::Cpu)?;
    let a = Tensor::f_stack(&alphas, 0)?.f_to(Device::Cpu)?;
    let (l, a) = (Vec::<f32>::try_from(&l)?, Vec::<f32>::try_from(&a)?);
    Ok(l.into_iter()
        .zip(a)
        .zip(pending)
        .map(|((l, a), (_, _, t))| (l, a, *t))
        .collect())
}

/// The figures of an epoch's last row (`None` for other rows).
pub fn parse_epoch_row(fields: &[&str]) -> Option<EpochStats> {
    LogRow::from_fields(fields)?.epoch_stats()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ceil(n / batch) by hand, and a batch beyond the set (up to i64::MAX, which overflowed
    /// `n + batch - 1`) is the whole set.
    #[test]
    fn batches_never_overflow() {
        assert_eq!(batches(640, 32), (32, 20));
        assert_eq!(batches(641, 32), (32, 21));
        assert_eq!(batches(200, 100_000), (200, 1));
        assert_eq!(batches(200, i64::MAX), (200, 1));
        assert_eq!(batches(1, 1), (1, 1));
    }

    /// A libtorch message keeps its first line, whether its line breaks are real or escaped
    /// by a Debug format (as in tch's panics).
    #[test]
    fn torch_messages_lose_their_stack_frames() {
        let escaped = "Torch(\"DefaultCPUAllocator: not enough memory: you tried to allocate 12 bytes.\\nException raised from malloc at alloc.cpp:1\\nframe #0: c10::Error\")";
        assert_eq!(
            torch_message(escaped),
            "Torch(\"DefaultCPUAllocator: not enough memory: you tried to allocate 12 bytes."
        );
        assert_eq!(torch_message("invalid shape\nframe #0"), "invalid shape");
        let long = "x".repeat(1000);
        assert_eq!(torch_message(&long).chars().count(), 401);
    }

    /// The three kinds of row, written by hand in LOG_HEADER's column order, and read back.
    #[test]
    fn log_rows_own_the_schema() {
        let epoch_columns = Some(EpochColumns {
            train_loss: 2.5,
            test_loss: 2.25,
            test_accuracy: 0.125,
        });
        let first = LogRow {
            epoch: 0,
            iteration: 0,
            time: 0.5,
            loss: None,
            alpha: 0.001,
            beta: 0.0,
            epoch_columns,
        };
        assert_eq!(first.to_line(), "0,0,0.5,,2.5,2.25,0.001,0.001,0,0.125\n");
        let step = LogRow {
            epoch: 1,
            iteration: 7,
            time: 1.5,
            loss: Some(0.75),
            alpha: 0.002,
            beta: 1e-7,
            epoch_columns: None,
        };
        assert_eq!(step.to_line(), "1,7,1.5,0.75,,,0.002,,0.0000001,\n");
        let last = LogRow {
            epoch_columns,
            ..step
        };
        assert_eq!(
            last.to_line(),
            "1,7,1.5,0.75,2.5,2.25,0.002,0.002,0.0000001,0.125\n"
        );
        for row in [first, step, last] {
            let line = row.to_line();
            let fields: Vec<&str> = line.trim_end().split(',').collect();
            assert_eq!(fields.len(), LOG_HEADER.split(',').count());
            assert_eq!(LogRow::from_fields(&fields), Some(row));
        }
        assert_eq!(
            parse_epoch_row(&[
                "1", "7", "1.5", "0.75", "2.5", "2.25", "0.002", "0.002", "0", "0.125"
            ]),
            Some(EpochStats {
                epoch: 1,
                train_loss: 2.5,
                test_loss: 2.25,
                test_accuracy: 0.125,
                alpha: f64::from(0.002f32),
            })
        );
        // Half a line (a killed run) or epoch columns half filled are not rows.
        assert_eq!(LogRow::from_fields(&["1", "7", "1.5"]), None);
        assert_eq!(
            LogRow::from_fields(&["1", "7", "1.5", "0.75", "2.5", "", "0.002", "", "0", ""]),
            None
        );
    }

    #[test]
    fn exit_statuses_follow_the_contract() {
        let diverged = TrainError::Diverged {
            divergence: Divergence {
                epoch: 1,
                iteration: 2,
                reason: "r".into(),
            },
            kept: 0,
        };
        assert_eq!(diverged.exit_code(), 3);
        assert!(diverged
            .to_string()
            .starts_with("r at epoch 1, iteration 2; the checkpoint of epoch 0 is kept"));
        let at_start = TrainError::Diverged {
            divergence: Divergence {
                epoch: 0,
                iteration: 0,
                reason: "r".into(),
            },
            kept: 0,
        };
        assert!(at_start
            .to_string()
            .contains("; no checkpoint was written;"));
        let stopped = |signal| TrainError::Interrupted {
            signal,
            dir: PathBuf::from("d"),
            kept: 0,
        };
        assert_eq!(stopped(signal_hook::consts::SIGINT).exit_code(), 130);
        assert_eq!(stopped(signal_hook::consts::SIGTERM).exit_code(), 143);
        assert_eq!(TrainError::Device("x".into()).exit_code(), 1);
    }
}
