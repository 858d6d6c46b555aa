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
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
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
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] TchError),
    /// A file of the run directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The run directory already holds a run and `--resume` was not given.
    #[error("{} already holds a run; pass --resume to continue it, or choose another --out", dir.display())]
    RunExists {
        /// The run directory.
        dir: PathBuf,
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
    /// The loss became NaN or infinite.
    #[error("the loss is not finite at epoch {epoch}, iteration {iteration}; try a smaller --alpha0 or --beta (the last checkpoint is intact)")]
    Diverged {
        /// Epoch.
        epoch: u32,
        /// Iteration (counted from the start of the run).
        iteration: u64,
    },
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
    pub train_loss: f64,
    /// Test-set loss.
    pub test_loss: f64,
    /// Test-set accuracy in [0, 1].
    pub test_accuracy: f64,
    /// α at the end of the epoch.
    pub alpha: f64,
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
    pub elapsed_seconds: f64,
    /// Training images per second in the last epoch (training only, not evaluation).
    pub images_per_second: f64,
    /// The last epoch's figures.
    pub last: EpochStats,
    /// The best test accuracy of any epoch.
    pub best_test_accuracy: f64,
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
/// # Errors
/// [`TrainError`]: bad options, data, a run directory in the way, a diverged loss, I/O.
pub fn run(options: &Options, setup: &Setup) -> Result<Summary, TrainError> {
    let out = &setup.out;
    let ckpt_path = out.join(CHECKPOINT);
    let log_path = out.join(LOG);
    let checkpoint = if setup.resume && ckpt_path.exists() {
        Some(read_checkpoint(&ckpt_path)?)
    } else {
        None
    };
    let config = match &checkpoint {
        Some(c) => options.resume(&c.config)?,
        None => options.resolve()?,
    };
    if !setup.resume && (ckpt_path.exists() || log_path.exists()) {
        return Err(TrainError::RunExists { dir: out.clone() });
    }
    let device = parse_device(&setup.device)?;
    if device.is_cuda() {
        // Let cuDNN pick the fastest convolution algorithms for these fixed shapes.
        tch::Cuda::cudnn_set_benchmark(true);
    }
    fs::create_dir_all(out).map_err(io(out))?;

    let data = Dataset::load(config.dataset, &setup.data_dir, device)?;
    tch::manual_seed(config.seed as i64);
    let vs = nn::VarStore::new(device);
    let net = models::build(&vs.root(), &config.model, config.dataset.spec())?;
    let mut opt = HdOptimizer::new(&vs, config.core())?;

    let mut history: Vec<EpochStats> = Vec::new();
    let (start_epoch, mut iteration, elapsed_before) = match &checkpoint {
        Some(c) => {
            restore(&vs, &mut opt, c)?;
            history = truncate_log(&log_path, c.epoch)?;
            (c.epoch, c.iteration, c.elapsed)
        }
        None => (0, 0, 0.0),
    };
    let started = Instant::now();
    let elapsed = |started: &Instant| elapsed_before + started.elapsed().as_secs_f64();
    // A fresh run (also one resumed before its first checkpoint) starts a new log.
    let mut log = OpenOptions::new()
        .create(true)
        .append(checkpoint.is_some())
        .write(true)
        .truncate(checkpoint.is_none())
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
        config: config.clone(),
    };

    if checkpoint.is_none() {
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
        save_checkpoint(out, &vs, &opt, &config, 0, 0, elapsed(&started))?;
        write_summary(out, &summary)?;
    }

    let n = data.train.len();
    let batch = config.batch_size;
    let per_epoch = (n + batch - 1) / batch;
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
            let index = perm.f_narrow(0, i * batch, batch.min(n - i * batch))?;
            let (x, y) = data.batch(&data.train, &index, true)?;
            let loss = cross_entropy(&net.forward_t(&x, true), &y)?;
            opt.backward_step(&loss)?;
            pending.push((loss.f_detach()?, opt.alpha()?));
            times.push(elapsed(&started));
            let last = i + 1 == per_epoch;
            if pending.len() == LOG_EVERY || last {
                let (losses, alphas) = read_back(&pending)?;
                for (k, (&l, &a)) in losses.iter().zip(&alphas).enumerate() {
                    iteration += 1;
                    if !l.is_finite() {
                        log.write_all(rows.as_bytes()).map_err(io(&log_path))?;
                        return Err(TrainError::Diverged { epoch, iteration });
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
                    let stats = EpochStats {
                        epoch,
                        train_loss,
                        test_loss,
                        test_accuracy: test_acc,
                        alpha: f64::from(a),
                    };
                    history.push(stats);
                    save_checkpoint(out, &vs, &opt, &config, epoch, iteration, elapsed(&started))?;
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
    tensors: HashMap<String, Tensor>,
}

fn save_checkpoint(
    out: &Path,
    vs: &nn::VarStore,
    opt: &HdOptimizer,
    config: &RunConfig,
    epoch: u32,
    iteration: u64,
    elapsed: f64,
) -> Result<(), TrainError> {
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
    let json = serde_json::to_vec(config).map_err(|e| TrainError::Corrupt {
        path: out.join(CHECKPOINT),
        what: e.to_string(),
    })?;
    named.push(("run.config".into(), Tensor::f_from_slice(&json)?));
    named.push((
        "run.progress".into(),
        Tensor::f_from_slice(&[i64::from(epoch), iteration as i64])?,
    ));
    named.push(("run.elapsed".into(), Tensor::f_from_slice(&[elapsed])?));
    let tmp = out.join(format!(".{CHECKPOINT}.tmp"));
    Tensor::write_safetensors(&named, &tmp)?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    let path = out.join(CHECKPOINT);
    fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(out)
}

fn sync_dir(dir: &Path) -> Result<(), TrainError> {
    // The rename is durable once the directory entry is on disk.
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn read_checkpoint(path: &Path) -> Result<Checkpoint, TrainError> {
    let corrupt = |what: String| TrainError::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| corrupt(format!("not a readable safetensors file ({e})")))?
        .into_iter()
        .collect();
    let get = |name: &str| {
        tensors
            .get(name)
            .ok_or_else(|| corrupt(format!("no '{name}' tensor")))
    };
    let json = get("run.config")?;
    let mut bytes = vec![0u8; json.numel()];
    json.f_copy_data_u8(&mut bytes, json.numel())?;
    let config: RunConfig = serde_json::from_slice(&bytes)
        .map_err(|e| corrupt(format!("bad run configuration ({e})")))?;
    let progress = Vec::<i64>::try_from(get("run.progress")?)?;
    let elapsed = Vec::<f64>::try_from(get("run.elapsed")?)?;
    match (progress.as_slice(), elapsed.as_slice()) {
        ([epoch, iteration], [elapsed]) if *epoch >= 0 && *iteration >= 0 => Ok(Checkpoint {
            config,
            epoch: u32::try_from(*epoch).map_err(|e| corrupt(e.to_string()))?,
            iteration: *iteration as u64,
            elapsed: *elapsed,
            tensors,
        }),
        _ => Err(corrupt("bad run.progress or run.elapsed".into())),
    }
}

fn restore(vs: &nn::VarStore, opt: &mut HdOptimizer, c: &Checkpoint) -> Result<(), TrainError> {
    let mismatch = |what: String| TrainError::Corrupt {
        path: PathBuf::from(CHECKPOINT),
        what,
    };
    tch::no_grad(|| -> Result<(), TrainError> {
        for (name, var) in vs.variables() {
            let src = c
                .tensors
                .get(&format!("model.{name}"))
                .ok_or_else(|| mismatch(format!("no weights for {name}")))?;
            if src.size() != var.size() {
                return Err(mismatch(format!(
                    "{name} is {:?}, the model has {:?}",
                    src.size(),
                    var.size()
                )));
            }
            var.shallow_clone().f_copy_(src)?;
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
    opt.load_state(&state)?;
    Ok(())
}

/// Keeps the header and the rows of epochs up to `epoch` (a killed run may have logged part of
/// the next epoch, or half a line) and returns the epoch rows' figures.
fn truncate_log(path: &Path, epoch: u32) -> Result<Vec<EpochStats>, TrainError> {
    let file = File::open(path).map_err(io(path))?;
    let mut kept = String::new();
    let mut history = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(path))?;
        if i == 0 {
            if line != LOG_HEADER {
                return Err(TrainError::Corrupt {
                    path: path.to_path_buf(),
                    what: "first line is not the log header".into(),
                });
            }
        } else {
            let fields: Vec<&str> = line.split(',').collect();
            let row_epoch = fields.first().and_then(|e| e.parse::<u32>().ok());
            if fields.len() != 10 || row_epoch.is_none_or(|e| e > epoch) {
                continue;
            }
            if let Some(s) = parse_epoch_row(&fields) {
                history.push(s);
            }
        }
        kept.push_str(&line);
        kept.push('\n');
    }
    let tmp = path.with_extension("csv.tmp");
    fs::write(&tmp, kept).map_err(io(&tmp))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    Ok(history)
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
