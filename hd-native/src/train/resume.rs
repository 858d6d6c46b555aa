//! Opening a run directory for training: its lock, which directories a run may write, the
//! checkpoint's content (written atomically, read back with every problem naming the file),
//! and the checks a resumed run passes (checkpoint against log, progress against the data, the data against
//! those it was trained on). See [`train`](super)'s documentation for the contract.

use super::{io, torch_message, Setup, TrainError};
use crate::config::{ConfigError, Options, RunConfig};
use crate::data::DataFile;
use crate::lock::Lock;
use crate::run_dir::{
    EpochStats, LogRow, Summary, CHECKPOINT, LOG, LOG_HEADER, RUN_FILES, SUMMARY,
};
use hd_tch::HdOptimizer;
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use tch::{nn, Device, Kind, TchError, Tensor};

/// A run directory opened for training: locked, checked, and its configuration settled.
pub(super) struct Opened {
    /// Held until the run ends.
    pub(super) _lock: Lock,
    pub(super) config: RunConfig,
    /// The checkpoint resumed from, the log's epoch figures and its text cut back to the
    /// checkpoint.
    pub(super) resumed: Option<(Checkpoint, Vec<EpochStats>, String)>,
}

/// Locks the run directory and decides what the run is: a new one (its options resolved and
/// the directory checked) or the continuation of the one in it (checkpoint and log checked
/// against each other, the options against the saved ones).
pub(super) fn open_run(options: &Options, setup: &Setup) -> Result<Opened, TrainError> {
    let out = &setup.out;
    if !setup.resume {
        // A new run's options are checked before the directory is touched.
        let config = options.resolve()?;
        let lock = lock_run_dir(out)?;
        check_fresh(out)?;
        return Ok(Opened {
            _lock: lock,
            config,
            resumed: None,
        });
    }
    let lock = lock_run_dir(out)?;
    let (c, history, kept_log) = resume_point(out)?;
    let config = options.resume(&c.config)?;
    if config.epochs < c.epoch {
        return Err(ConfigError::BelowCompleted {
            given: config.epochs,
            completed: c.epoch,
        }
        .into());
    }
    Ok(Opened {
        _lock: lock,
        config,
        resumed: Some((c, history, kept_log)),
    })
}

/// Takes the run directory's lock (creating the directory), or says who holds it: an flock
/// on `.lock`, or where the file system refuses flock the lock file `.lock.excl`
/// ([`crate::lock`]).
fn lock_run_dir(dir: &Path) -> Result<Lock, TrainError> {
    crate::run_dir::lock(dir)
        .map_err(io(dir))?
        .map_err(|busy| TrainError::Locked {
            dir: dir.to_path_buf(),
            holder: busy.to_string(),
        })
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
        let Some(row) = LogRow::from_fields(&fields).filter(|r| r.epoch <= up_to) else {
            continue;
        };
        if let Some(stats) = row.epoch_stats() {
            epochs.push((stats, row.iteration));
        }
        // The line itself, not a rewrite of it: the kept log is byte for byte what was logged.
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

/// Replaces the log `path` by `bytes` atomically and durably.
pub(super) fn replace_log(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension("csv.tmp");
    crate::files::write_atomic(path, &tmp, |tmp| fs::write(tmp, bytes)).map_err(io(path))
}

/// A checkpoint's progress must fit the data: iteration = epoch × iterations per epoch
/// (epoch ≤ epochs is checked as it is read).
pub(super) fn check_progress(
    path: &Path,
    c: &Checkpoint,
    per_epoch: i64,
) -> Result<(), TrainError> {
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
pub(super) fn check_data(
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

/// A checkpoint as read back.
pub(super) struct Checkpoint {
    pub(super) config: RunConfig,
    pub(super) epoch: u32,
    pub(super) iteration: u64,
    pub(super) elapsed: f64,
    /// The data files the run was trained on (absent in checkpoints that predate it).
    pub(super) data: Option<Vec<DataFile>>,
    pub(super) tensors: HashMap<String, Tensor>,
}

/// Where a run stands after an epoch.
#[derive(Debug, Clone, Copy)]
pub(super) struct Progress {
    pub(super) epoch: u32,
    pub(super) iteration: u64,
    pub(super) elapsed: f64,
}

fn json_tensor<T: serde::Serialize>(path: &Path, value: &T) -> Result<Tensor, TrainError> {
    let json = serde_json::to_vec(value).map_err(|e| TrainError::Corrupt {
        path: path.to_path_buf(),
        what: e.to_string(),
    })?;
    Ok(Tensor::f_from_slice(&json)?)
}

pub(super) fn save_checkpoint(
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
    crate::files::write_atomic(&path, &tmp, |tmp| {
        Tensor::write_safetensors(&named, tmp).map_err(|e| {
            std::io::Error::other(format!("cannot write ({})", torch_message(&e.to_string())))
        })
    })
    .map_err(io(&path))
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

pub(super) fn restore(
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

pub(super) fn write_summary(out: &Path, summary: &Summary) -> Result<(), TrainError> {
    crate::run_dir::write_summary(out, summary).map_err(|e| TrainError::Corrupt {
        path: e.path,
        what: e.what,
    })
}
