//! What can stop a run ([`TrainError`], with the exit status each one ends with), and the
//! helpers that turn libtorch's and a panic's messages into one line.

use crate::config::ConfigError;
use crate::data::DataError;
use crate::models::ModelError;
use crate::run_dir::Divergence;
use hd_tch::OptimError;
use std::path::{Path, PathBuf};
use tch::TchError;

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
            TrainError::Diverged { .. } => crate::run_dir::exit::DIVERGED,
            TrainError::Data(DataError::Missing { .. }) => crate::run_dir::exit::NO_DATA,
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

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
