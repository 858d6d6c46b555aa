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
use crate::data::{DataError, DataFile, Dataset, Split};
use crate::models::{self, ModelError, Net};
use crate::optim::{HdOptimizer, OptimError};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;
use tch::{nn, Device, Kind, TchError, Tensor};

/// The header of `log.csv`.
pub const LOG_HEADER: &str =
    "Epoch,Iteration,Time,Loss,LossEpoch,ValidLossEpoch,Alpha,AlphaEpoch,Beta,ValidAccEpoch";

/// Iterations between reads of the losses and α back from the device.
pub const LOG_EVERY: usize = 50;

const CHECKPOINT: &str = "checkpoint.safetensors";
const LOG: &str = "log.csv";
const SUMMARY: &str = "summary.json";
const LOCK: &str = ".lock";
/// Every name a run directory may hold: the run's files, its lock and the temporary files
/// they are replaced through.
const RUN_FILES: [&str; 7] = [
    LOCK,
    LOG,
    SUMMARY,
    CHECKPOINT,
    ".checkpoint.safetensors.tmp",
    ".summary.json.tmp",
    "log.csv.tmp",
];

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
    #[error("{} at epoch {}, iteration {}; the checkpoint of epoch {kept} is kept; try a smaller --alpha0 or --beta", .divergence.reason, .divergence.epoch, .divergence.iteration)]
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

/// Trains as `options` and `setup` say, resuming when asked, and returns the summary.
///
/// The run directory is locked first and checked before anything in it changes: see the
/// module documentation for which directories are written.
///
/// # Errors
/// [`TrainError`]: bad options, data, a run directory in the way or in use, a diverged loss,
/// a stop signal, I/O.
pub fn run(options: &Options, setup: &Setup) -> Result<Summary, TrainError> {
    let out = &setup.out;
    let device = parse_device(&setup.device)?;
    // A new run's options are checked before the directory is touched.
    let fresh = if setup.resume {
        None
    } else {
        Some(options.resolve()?)
    };
    let _lock = lock_run_dir(out)?;
    let ckpt_path = out.join(CHECKPOINT);
    let log_path = out.join(LOG);
    let resumed = if setup.resume {
        Some(resume_point(out)?)
    } else {
        check_fresh(out)?;
        None
    };
    let config = match (&resumed, fresh) {
        (Some((c, _, _)), _) => {
            let config = options.resume(&c.config)?;
            if config.epochs < c.epoch {
                return Err(ConfigError::BelowCompleted {
                    given: config.epochs,
                    completed: c.epoch,
                }
                .into());
            }
            config
        }
        (None, Some(config)) => config,
        (None, None) => unreachable_config()?,
    };
    if device.is_cuda() {
        // Let cuDNN pick the fastest convolution algorithms for these fixed shapes.
        tch::Cuda::cudnn_set_benchmark(true);
    }

    let data = Dataset::load(config.dataset, &setup.data_dir, device)?;
    let n = data.train.len();
    let (batch, per_epoch) = batches(n, config.batch_size);
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

    let (start_epoch, mut iteration, elapsed_before, mut history) = match resumed {
        Some((c, history, kept_log)) => {
            restore(&ckpt_path, &vs, &mut opt, &c)?;
            // Every check passed: only now is the log cut back to the checkpoint.
            replace_log(out, &log_path, kept_log.as_bytes())?;
            (c.epoch, c.iteration, c.elapsed, history)
        }
        None => (0, 0, 0.0, Vec::new()),
    };
    if batch < config.batch_size {
        note(&format!(
            "--batch-size {} exceeds the {n} training images: each epoch is one batch of {n}",
            config.batch_size
        ));
    }
    let started = Instant::now();
    let elapsed = |started: &Instant| elapsed_before + started.elapsed().as_secs_f64();
    // A fresh run starts a new log; a resumed one appends to its (already truncated) log.
    let new_log = history.is_empty();
    let mut log = OpenOptions::new()
        .create(true)
        .append(!new_log)
        .write(true)
        .truncate(new_log)
        .open(&log_path)
        .map_err(io(&log_path))?;
    let mut summary = Summary {
        label: config.label(),
        title: config.title(),
        device: format!("{device:?}"),
        parameters: opt.num_parameters(),
        epochs_completed: start_epoch,
        iterations: iteration,
        finished: start_epoch >= config.epochs,
        elapsed_seconds: elapsed_before,
        images_per_second: 0.0,
        last: history.last().copied().unwrap_or(EpochStats {
            epoch: 0,
            train_loss: f64::NAN,
            test_loss: f64::NAN,
            test_accuracy: f64::NAN,
            alpha: f64::from(config.alpha0),
        }),
        best_test_accuracy: best(&history),
        diverged: None,
        config: config.clone(),
    };
    let diverged = |summary: &mut Summary,
                    epoch: u32,
                    iteration: u64,
                    reason: &str|
     -> Result<Summary, TrainError> {
        let divergence = Divergence {
            epoch,
            iteration,
            reason: reason.to_string(),
        };
        summary.diverged = Some(divergence.clone());
        summary.finished = false;
        write_summary(out, summary)?;
        Err(TrainError::Diverged {
            divergence,
            kept: summary.epochs_completed,
        })
    };
    let interrupted = |signal, kept| TrainError::Interrupted {
        signal,
        dir: out.clone(),
        kept,
    };

    if history.is_empty() {
        // Row 0: the model before training.
        let (train_loss, _) = evaluate(&net, &data, &data.train)?;
        let (test_loss, test_acc) = evaluate(&net, &data, &data.test)?;
        let alpha = opt.alpha_value()?;
        let row = format!(
            "{LOG_HEADER}\n0,0,{},,{train_loss},{test_loss},{a},{a},{b},{test_acc}\n",
            elapsed(&started),
            a = num(alpha),
            b = num(config.beta),
        );
        log.write_all(row.as_bytes()).map_err(io(&log_path))?;
        log.sync_data().map_err(io(&log_path))?;
        if !train_loss.is_finite() || !test_loss.is_finite() {
            return diverged(
                &mut summary,
                0,
                0,
                "the loss of the initial model is not finite",
            );
        }
        let stats = EpochStats {
            epoch: 0,
            train_loss,
            test_loss,
            test_accuracy: test_acc,
            alpha: f64::from(alpha),
        };
        history.push(stats);
        summary.last = stats;
        summary.best_test_accuracy = best(&history);
        let progress = Progress {
            epoch: 0,
            iteration: 0,
            elapsed: elapsed(&started),
        };
        save_checkpoint(out, &vs, &opt, &config, &data.files, progress)?;
        write_summary(out, &summary)?;
    }
    if let Some(signal) = stop_requested() {
        return Err(interrupted(signal, summary.epochs_completed));
    }

    for epoch in start_epoch + 1..=config.epochs {
        let bar = progress_bar(setup.progress, per_epoch as u64, epoch, config.epochs);
        tch::manual_seed(epoch_seed(config.seed, epoch));
        let perm = Tensor::f_randperm(n, (Kind::Int64, device))?;
        let epoch_start = Instant::now();
        let mut pending: Vec<(Tensor, Tensor)> = Vec::with_capacity(LOG_EVERY);
        let mut times: Vec<f64> = Vec::with_capacity(LOG_EVERY);
        let mut loss_sum = 0.0f64;
        let mut rows = String::new();
        for i in 0..per_epoch {
            // i · batch < n: only a batch smaller than the set makes more than one.
            let start = i * batch;
            let index = perm.f_narrow(0, start, batch.min(n - start))?;
            let (x, y) = data.batch(&data.train, &index, true)?;
            let loss = cross_entropy(&net.forward_t(&x, true), &y)?;
            opt.backward_step(&loss)?;
            pending.push((loss.f_detach()?, opt.alpha()?));
            times.push(elapsed(&started));
            if let Some(signal) = stop_requested() {
                // The rows of this epoch are ahead of the checkpoint: a resume drops them.
                return Err(interrupted(signal, summary.epochs_completed));
            }
            let last = i + 1 == per_epoch;
            if pending.len() == LOG_EVERY || last {
                let (losses, alphas) = read_back(&pending)?;
                for (k, (&l, &a)) in losses.iter().zip(&alphas).enumerate() {
                    iteration += 1;
                    if !l.is_finite() {
                        log.write_all(rows.as_bytes()).map_err(io(&log_path))?;
                        return diverged(
                            &mut summary,
                            epoch,
                            iteration,
                            "the training loss is not finite",
                        );
                    }
                    loss_sum += f64::from(l);
                    let t = times.get(k).copied().unwrap_or(0.0);
                    if last && k + 1 == losses.len() {
                        break;
                    }
                    rows.push_str(&format!(
                        "{epoch},{iteration},{t},{},,,{},,{},\n",
                        num(l),
                        num(a),
                        num(config.beta)
                    ));
                }
                if let (Some(&l), Some(&a)) = (losses.last(), alphas.last()) {
                    bar.set_message(format!("loss {l:.4}  α {a:.3e}"));
                }
                bar.inc(pending.len() as u64);
                log.write_all(rows.as_bytes()).map_err(io(&log_path))?;
                rows.clear();
                if last {
                    let train_seconds = epoch_start.elapsed().as_secs_f64();
                    let (test_loss, test_acc) = evaluate(&net, &data, &data.test)?;
                    let l = losses.last().copied().unwrap_or(f32::NAN);
                    let a = opt.alpha_value()?;
                    let train_loss = loss_sum / per_epoch as f64;
                    let row = format!(
                        "{epoch},{iteration},{},{},{train_loss},{test_loss},{a},{a},{b},{test_acc}\n",
                        times.last().copied().unwrap_or(0.0),
                        num(l),
                        a = num(a),
                        b = num(config.beta),
                    );
                    log.write_all(row.as_bytes()).map_err(io(&log_path))?;
                    log.sync_data().map_err(io(&log_path))?;
                    // A blown-up model can still give finite minibatch losses until the test
                    // set shows it: its checkpoint must not replace the last finite one.
                    let reason = if !test_loss.is_finite() {
                        Some("the test loss is not finite")
                    } else if !train_loss.is_finite() {
                        Some("the training loss is not finite")
                    } else if opt.check_finite().is_err() {
                        Some("a parameter or α is not finite")
                    } else {
                        None
                    };
                    if let Some(reason) = reason {
                        return diverged(&mut summary, epoch, iteration, reason);
                    }
                    let stats = EpochStats {
                        epoch,
                        train_loss,
                        test_loss,
                        test_accuracy: test_acc,
                        alpha: f64::from(a),
                    };
                    history.push(stats);
                    let progress = Progress {
                        epoch,
                        iteration,
                        elapsed: elapsed(&started),
                    };
                    save_checkpoint(out, &vs, &opt, &config, &data.files, progress)?;
                    summary.last = stats;
                    summary.best_test_accuracy = best(&history);
                    summary.epochs_completed = epoch;
                    summary.iterations = iteration;
                    summary.finished = epoch == config.epochs;
                    summary.elapsed_seconds = elapsed(&started);
                    summary.images_per_second = n as f64 / train_seconds.max(1e-9);
                    write_summary(out, &summary)?;
                    bar.finish_with_message(format!(
                        "loss {train_loss:.4}  test loss {test_loss:.4}  test acc {:.2}%  α {a:.3e}",
                        100.0 * test_acc
                    ));
                }
                pending.clear();
                times.clear();
            }
        }
    }
    summary.finished = true;
    write_summary(out, &summary)?;
    Ok(summary)
}

/// `resolve` runs before this for a new run and `resume_point` for a resumed one; this
/// branch only exists to keep the match total without a panic.
fn unreachable_config() -> Result<RunConfig, TrainError> {
    Err(ConfigError::Missing("model").into())
}

/// The batch size in use and the iterations per epoch for `n` training images: a batch
/// larger than the set is the whole set (ceil(n / batch) computed without overflow).
fn batches(n: i64, batch: i64) -> (i64, i64) {
    let batch = batch.clamp(1, n.max(1));
    let per_epoch = if n <= 0 { 0 } else { (n - 1) / batch + 1 };
    (batch, per_epoch)
}

/// Takes the run directory's lock (creating the directory), or says who holds it.
fn lock_run_dir(dir: &Path) -> Result<File, TrainError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(TrainError::Locked {
                dir: dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "holder unknown".into()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(&path)(e)),
    }
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "an unknown host".into());
    file.set_len(0)
        .and_then(|()| writeln!(file, "pid {} on {host}", std::process::id()))
        .map_err(io(&path))?;
    Ok(file)
}

/// The epoch rows of a log (its header checked), and the rows kept: those of epochs up to
/// `up_to` (a killed run may have logged part of the next epoch, or half a line).
fn read_log(path: &Path, up_to: u32) -> Result<(String, Vec<(EpochStats, u64)>), TrainError> {
    let text = fs::read(path).map_err(io(path))?;
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines();
    if lines.next() != Some(LOG_HEADER) {
        return Err(TrainError::Corrupt {
            path: path.to_path_buf(),
            what: "first line is not the log header".into(),
        });
    }
    let mut kept = format!("{LOG_HEADER}\n");
    let mut epochs = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let row_epoch = fields.first().and_then(|e| e.parse::<u32>().ok());
        if fields.len() != 10 || row_epoch.is_none_or(|e| e > up_to) {
            continue;
        }
        if let (Some(s), Some(i)) = (
            parse_epoch_row(&fields),
            fields.get(1).and_then(|i| i.parse::<u64>().ok()),
        ) {
            epochs.push((s, i));
        }
        kept.push_str(line);
        kept.push('\n');
    }
    Ok((kept, epochs))
}

/// Refuses a directory a new run must not write: anything but a new or empty directory, or a
/// run of ours that completed no epoch.
fn check_fresh(dir: &Path) -> Result<(), TrainError> {
    let not_a_run = |why: String| TrainError::NotARun {
        dir: dir.to_path_buf(),
        why,
    };
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let name = entry.map_err(io(dir))?.file_name();
        let name = name.to_string_lossy();
        if !RUN_FILES.contains(&name.as_ref()) {
            return Err(not_a_run(format!(
                "it holds {name}, which is not a file of an hd-native run"
            )));
        }
    }
    if dir.join(CHECKPOINT).exists() {
        return Err(TrainError::RunExists {
            dir: dir.to_path_buf(),
        });
    }
    if dir.join(SUMMARY).exists() {
        return Err(not_a_run(format!(
            "it holds {SUMMARY} but no {CHECKPOINT} (a run whose checkpoint is lost, or not a run of ours)"
        )));
    }
    let log = dir.join(LOG);
    if log.exists() {
        let (_, epochs) = read_log(&log, u32::MAX)
            .map_err(|_| not_a_run(format!("its {LOG} is not the log of an hd-native run")))?;
        if let Some(last) = epochs.iter().map(|(s, _)| s.epoch).max().filter(|&e| e > 0) {
            return Err(not_a_run(format!(
                "its {LOG} records {last} completed epoch(s) but there is no {CHECKPOINT}"
            )));
        }
    }
    Ok(())
}

/// The checkpoint to resume from, the epoch figures of the log, which must agree with it, and
/// the log's text cut back to the checkpoint's epoch (written once every check has passed).
fn resume_point(dir: &Path) -> Result<(Checkpoint, Vec<EpochStats>, String), TrainError> {
    let cannot = |why: String| TrainError::CannotResume {
        dir: dir.to_path_buf(),
        why,
    };
    let ckpt_path = dir.join(CHECKPOINT);
    let log_path = dir.join(LOG);
    if !ckpt_path.exists() {
        let logged = if log_path.exists() {
            read_log(&log_path, u32::MAX)
                .ok()
                .and_then(|(_, e)| e.iter().map(|(s, _)| s.epoch).max())
                .filter(|&e| e > 0)
        } else {
            None
        };
        return Err(cannot(match logged {
            Some(e) => format!(
                "{LOG} records {e} completed epoch(s) but {CHECKPOINT} is missing; restore it, or start a new run with another --out"
            ),
            None => format!(
                "it holds no {CHECKPOINT} (no epoch was completed); run without --resume to start it"
            ),
        }));
    }
    let c = read_checkpoint(&ckpt_path)?;
    if !log_path.exists() {
        return Err(cannot(format!(
            "{CHECKPOINT} is at epoch {} but {LOG} is missing; restore it, or start a new run with another --out",
            c.epoch
        )));
    }
    let (kept, epochs) = read_log(&log_path, c.epoch)?;
    let numbered: Vec<u32> = epochs.iter().map(|(s, _)| s.epoch).collect();
    let expected: Vec<u32> = (0..=c.epoch).collect();
    let last_iteration = epochs.last().map(|&(_, i)| i);
    if numbered != expected || last_iteration != Some(c.iteration) {
        return Err(cannot(format!(
            "{LOG} records epochs {} but {CHECKPOINT} is at epoch {}, iteration {}: they disagree; restore the run's files, or start a new run with another --out",
            match (numbered.first(), numbered.last()) {
                (Some(a), Some(b)) => format!("{a} to {b}"),
                _ => "none".into(),
            },
            c.epoch,
            c.iteration
        )));
    }
    Ok((c, epochs.into_iter().map(|(s, _)| s).collect(), kept))
}

/// Replaces the log `path` (in `dir`) by `bytes` atomically: a temporary file, synced, renamed.
fn replace_log(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension("csv.tmp");
    fs::write(&tmp, bytes).map_err(io(&tmp))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir)
}

/// A checkpoint's progress must fit the data: iteration = epoch × iterations per epoch
/// (epoch ≤ epochs is checked as it is read).
fn check_progress(path: &Path, c: &Checkpoint, per_epoch: i64) -> Result<(), TrainError> {
    let expected = u64::try_from(per_epoch)
        .ok()
        .and_then(|p| p.checked_mul(u64::from(c.epoch)));
    if expected != Some(c.iteration) {
        return Err(TrainError::Corrupt {
            path: path.to_path_buf(),
            what: format!(
                "its progress (epoch {}, iteration {}) does not fit epochs of {per_epoch} iteration(s)",
                c.epoch, c.iteration
            ),
        });
    }
    Ok(())
}

/// A run continues on the data it started on: the files' names, sizes and header hashes
/// must match those recorded (checkpoints written before they were recorded are not checked).
fn check_data(
    dir: &Path,
    data_dir: &Path,
    c: &Checkpoint,
    files: &[DataFile],
) -> Result<(), TrainError> {
    let Some(saved) = &c.data else {
        return Ok(());
    };
    if saved.as_slice() == files {
        return Ok(());
    }
    let differs = saved
        .iter()
        .zip(files)
        .find(|(a, b)| a != b)
        .map(|(a, b)| {
            format!(
                "{} holds {b}, the run was trained on {a}",
                data_dir.display()
            )
        })
        .unwrap_or_else(|| format!("{} holds other data files", data_dir.display()));
    Err(TrainError::CannotResume {
        dir: dir.to_path_buf(),
        why: format!("{differs}; pass the run's --data-dir"),
    })
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
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown failure");
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

/// Reads the pending losses and α values back in one transfer each.
fn read_back(pending: &[(Tensor, Tensor)]) -> Result<(Vec<f32>, Vec<f32>), TchError> {
    let losses: Vec<&Tensor> = pending.iter().map(|(l, _)| l).collect();
    let alphas: Vec<&Tensor> = pending.iter().map(|(_, a)| a).collect();
    let l = Tensor::f_stack(&losses, 0)?.f_to(Device::Cpu)?;
    let a = Tensor::f_stack(&alphas, 0)?.f_to(Device::Cpu)?;
    Ok((Vec::<f32>::try_from(&l)?, Vec::<f32>::try_from(&a)?))
}

/// A checkpoint as read back.
struct Checkpoint {
    config: RunConfig,
    epoch: u32,
    iteration: u64,
    elapsed: f64,
    /// The data files the run was trained on (absent in checkpoints that predate it).
    data: Option<Vec<DataFile>>,
    tensors: HashMap<String, Tensor>,
}

/// Where a run stands after an epoch.
#[derive(Debug, Clone, Copy)]
struct Progress {
    epoch: u32,
    iteration: u64,
    elapsed: f64,
}

fn json_tensor<T: serde::Serialize>(path: &Path, value: &T) -> Result<Tensor, TrainError> {
    let json = serde_json::to_vec(value).map_err(|e| TrainError::Corrupt {
        path: path.to_path_buf(),
        what: e.to_string(),
    })?;
    Ok(Tensor::f_from_slice(&json)?)
}

fn save_checkpoint(
    out: &Path,
    vs: &nn::VarStore,
    opt: &HdOptimizer,
    config: &RunConfig,
    data: &[DataFile],
    progress: Progress,
) -> Result<(), TrainError> {
    let path = out.join(CHECKPOINT);
    let mut named: Vec<(String, Tensor)> = Vec::new();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in vars {
        named.push((
            format!("model.{name}"),
            t.f_to(Device::Cpu)?.f_contiguous()?,
        ));
    }
    for (name, t) in opt.state_tensors()? {
        named.push((format!("optimizer.{name}"), t));
    }
    named.push(("run.config".into(), json_tensor(&path, config)?));
    named.push(("run.data".into(), json_tensor(&path, &data)?));
    let iteration = i64::try_from(progress.iteration).map_err(|_| TrainError::Corrupt {
        path: path.clone(),
        what: format!("iteration {} does not fit a checkpoint", progress.iteration),
    })?;
    named.push((
        "run.progress".into(),
        Tensor::f_from_slice(&[i64::from(progress.epoch), iteration])?,
    ));
    named.push((
        "run.elapsed".into(),
        Tensor::f_from_slice(&[progress.elapsed])?,
    ));
    let tmp = out.join(format!(".{CHECKPOINT}.tmp"));
    Tensor::write_safetensors(&named, &tmp).map_err(|e| TrainError::Corrupt {
        path: tmp.clone(),
        what: format!("cannot write ({})", torch_message(&e.to_string())),
    })?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(out)
}

fn sync_dir(dir: &Path) -> Result<(), TrainError> {
    // The rename is durable once the directory entry is on disk.
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Reads and checks a checkpoint: every problem names the file.
fn read_checkpoint(path: &Path) -> Result<Checkpoint, TrainError> {
    let corrupt = |what: String| TrainError::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    let torch = |e: TchError| corrupt(torch_message(&e.to_string()));
    let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| {
            corrupt(format!(
                "not a readable safetensors file ({})",
                torch_message(&e.to_string())
            ))
        })?
        .into_iter()
        .collect();
    let get = |name: &str, kind: Kind| {
        let t = tensors
            .get(name)
            .ok_or_else(|| corrupt(format!("no '{name}' tensor")))?;
        if t.kind() != kind || t.dim() != 1 {
            return Err(corrupt(format!(
                "'{name}' is {:?} {:?}, expected a vector of {kind:?}",
                t.kind(),
                t.size()
            )));
        }
        Ok(t)
    };
    let bytes = |name: &str| -> Result<Vec<u8>, TrainError> {
        let t = get(name, Kind::Uint8)?;
        let mut bytes = vec![0u8; t.numel()];
        t.f_copy_data_u8(&mut bytes, t.numel()).map_err(torch)?;
        Ok(bytes)
    };
    let config: RunConfig = serde_json::from_slice(&bytes("run.config")?)
        .map_err(|e| corrupt(format!("bad run configuration ({e})")))?;
    config
        .validate()
        .map_err(|e| corrupt(format!("bad run configuration ({e})")))?;
    let data = if tensors.contains_key("run.data") {
        Some(
            serde_json::from_slice(&bytes("run.data")?)
                .map_err(|e| corrupt(format!("bad data record ({e})")))?,
        )
    } else {
        None
    };
    let progress = Vec::<i64>::try_from(get("run.progress", Kind::Int64)?).map_err(torch)?;
    let elapsed = Vec::<f64>::try_from(get("run.elapsed", Kind::Double)?).map_err(torch)?;
    let (epoch, iteration, elapsed) = match (progress.as_slice(), elapsed.as_slice()) {
        ([epoch, iteration], [elapsed]) if *iteration >= 0 && elapsed.is_finite() => (
            u32::try_from(*epoch)
                .map_err(|_| corrupt(format!("bad epoch {epoch} in run.progress")))?,
            *iteration as u64,
            *elapsed,
        ),
        _ => return Err(corrupt("bad run.progress or run.elapsed".into())),
    };
    if epoch > config.epochs {
        return Err(corrupt(format!(
            "its progress (epoch {epoch}, iteration {iteration}) is beyond its configuration's {} epoch(s)",
            config.epochs
        )));
    }
    Ok(Checkpoint {
        config,
        epoch,
        iteration,
        elapsed,
        data,
        tensors,
    })
}

fn restore(
    path: &Path,
    vs: &nn::VarStore,
    opt: &mut HdOptimizer,
    c: &Checkpoint,
) -> Result<(), TrainError> {
    let mismatch = |what: String| TrainError::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    tch::no_grad(|| -> Result<(), TrainError> {
        for (name, var) in vs.variables() {
            let src = c
                .tensors
                .get(&format!("model.{name}"))
                .ok_or_else(|| mismatch(format!("no weights for {name}")))?;
            if src.size() != var.size() || src.kind() != var.kind() {
                return Err(mismatch(format!(
                    "{name} is {:?} {:?}, the model has {:?} {:?}",
                    src.size(),
                    src.kind(),
                    var.size(),
                    var.kind()
                )));
            }
            var.shallow_clone()
                .f_copy_(src)
                .map_err(|e| mismatch(torch_message(&e.to_string())))?;
        }
        Ok(())
    })?;
    let prefix = "optimizer.";
    let state: HashMap<String, Tensor> = c
        .tensors
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(prefix)
                .map(|s| (s.to_string(), v.shallow_clone()))
        })
        .collect();
    opt.load_state(&state)
        .map_err(|e| mismatch(e.to_string()))?;
    Ok(())
}

/// The figures of an epoch's last row (`None` for other rows).
pub fn parse_epoch_row(fields: &[&str]) -> Option<EpochStats> {
    let f = |i: usize| fields.get(i).and_then(|s| s.parse::<f64>().ok());
    Some(EpochStats {
        epoch: fields.first()?.parse().ok()?,
        train_loss: f(4)?,
        test_loss: f(5)?,
        alpha: f(7)?,
        test_accuracy: f(9)?,
    })
}

fn write_summary(out: &Path, summary: &Summary) -> Result<(), TrainError> {
    let path = out.join(SUMMARY);
    let json = serde_json::to_string_pretty(summary).map_err(|e| TrainError::Corrupt {
        path: path.clone(),
        what: e.to_string(),
    })?;
    let tmp = out.join(format!(".{SUMMARY}.tmp"));
    fs::write(&tmp, json + "\n").map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))
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
