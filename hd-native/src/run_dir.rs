//! The run directory's format, defined here and nowhere else: its file names, `summary.json`
//! ([`Summary`], read leniently and written atomically), `log.csv`'s schema ([`LogRow`]), the
//! checkpoint's name, the lock, and the exit statuses by which `train` tells the sweep how a
//! run ended. `train` writes run directories; the sweep, `report` and `plot` read them; none of
//! them names a file of one or parses it by hand. What `train` guarantees about the directory
//! is in [`train`](crate::train)'s documentation.

use crate::files::{self, Links};
use crate::lock::{Busy, Lock, Mode, Strategy};
use std::io;
use std::path::{Path, PathBuf};

mod log;
mod summary;

pub use log::{parse_epoch_row, EpochColumns, LogRow, LOG_HEADER};
pub(crate) use summary::best;
pub use summary::{Divergence, EpochStats, Reached, Summary};

/// The checkpoint: every tensor of the model and the optimizer, and the run's progress.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// One row per iteration, and the epoch's figures on each epoch's last row.
pub const LOG: &str = "log.csv";
/// The configuration and the latest figures.
pub const SUMMARY: &str = "summary.json";
/// The lock held for the run's whole life.
pub const LOCK: &str = ".lock";

/// Every name a run directory may hold: the run's files, its lock (and the lock file used where
/// the file system refuses flock, see [`crate::lock`]) and the temporary files they are
/// replaced through.
pub const RUN_FILES: [&str; 8] = [
    LOCK,
    ".lock.excl",
    LOG,
    SUMMARY,
    CHECKPOINT,
    ".checkpoint.safetensors.tmp",
    ".summary.json.tmp",
    "log.csv.tmp",
];

/// The exit statuses of `hd-native train` (and of a sweep's Slurm task) beyond 0 and 1.
pub mod exit {
    /// A non-finite loss, parameter or α stopped the run.
    pub const DIVERGED: u8 = 3;
    /// The dataset's files are missing.
    pub const NO_DATA: u8 = 4;
    /// Stopped by SIGINT (128 + 2).
    pub const SIGINT: u8 = 130;
    /// Stopped by SIGTERM (128 + 15).
    pub const SIGTERM: u8 = 143;
}

/// The most bytes of `summary.json` read.
const SUMMARY_LIMIT: u64 = files::STATE_LIMIT;

/// The largest `log.csv` read: 256 MiB (a run logs a row of under 100 bytes an iteration:
/// 100 epochs of MNIST at batch 128 is about 4 MiB).
pub const LOG_LIMIT: u64 = 256 << 20;

/// The path of the checkpoint of run directory `dir`.
pub fn checkpoint(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT)
}

/// The path of the log of `dir`.
pub fn log(dir: &Path) -> PathBuf {
    dir.join(LOG)
}

/// The path of the summary of `dir`.
pub fn summary(dir: &Path) -> PathBuf {
    dir.join(SUMMARY)
}

/// Whether `dir` holds a checkpoint (a regular file).
pub fn has_checkpoint(dir: &Path) -> bool {
    checkpoint(dir).is_file()
}

/// Why a file of a run directory cannot be read: the file and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{}: {what}", path.display())]
pub struct ReadError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub what: String,
    /// Whether it is simply not there (a run that has not written it yet).
    pub missing: bool,
}

/// Reads `dir`'s `summary.json`: a regular file (never through a link, so a FIFO or
/// `/dev/zero` planted there is refused rather than read forever) of bounded size. Leniently:
/// fields it does not know are ignored, `null` figures read as NaN, and `diverged` and
/// `reached` may be absent, so summaries written by older versions still read.
///
/// # Errors
/// [`ReadError`]: missing, not a regular file, too large, or not a summary.
pub fn read_summary(dir: &Path) -> Result<Summary, ReadError> {
    let path = summary(dir);
    let fail = |what: String, missing: bool| ReadError {
        path: path.clone(),
        what,
        missing,
    };
    let text = files::read_text(&path, SUMMARY_LIMIT, Links::Refuse)
        .map_err(|e| fail(e.to_string(), e.kind() == io::ErrorKind::NotFound))?;
    serde_json::from_str(&text).map_err(|e| fail(e.to_string(), false))
}

/// Reads `dir`'s `log.csv` as text, a regular file of at most [`LOG_LIMIT`] bytes, never
/// through a link (its rows are parsed by [`LogRow::from_fields`]).
///
/// # Errors
/// As [`read_summary`].
pub fn read_log(dir: &Path) -> Result<String, ReadError> {
    let path = log(dir);
    files::read_text(&path, LOG_LIMIT, Links::Refuse).map_err(|e| ReadError {
        what: e.to_string(),
        missing: e.kind() == io::ErrorKind::NotFound,
        path,
    })
}

/// Writes `dir`'s `summary.json` atomically and durably ([`files::write_atomic`]).
///
/// # Errors
/// The file that could not be written and why.
pub fn write_summary(dir: &Path, summary: &Summary) -> Result<(), ReadError> {
    let path = self::summary(dir);
    let fail = |path: &Path, what: String| ReadError {
        path: path.to_path_buf(),
        what,
        missing: false,
    };
    let json = serde_json::to_string_pretty(summary).map_err(|e| fail(&path, e.to_string()))?;
    let tmp = dir.join(format!(".{SUMMARY}.tmp"));
    files::write_atomic(&path, &tmp, |tmp| std::fs::write(tmp, json + "\n"))
        .map_err(|e| fail(&path, e.to_string()))
}

/// Locks run directory `dir` (made if missing) for this process's whole use of it: `Ok(Err)`
/// when another process holds it (who, in [`Busy`]).
///
/// # Errors
/// The lock file cannot be made or locked.
pub fn lock(dir: &Path) -> io::Result<Result<Lock, Busy>> {
    std::fs::create_dir_all(dir)?;
    crate::lock::try_lock(&dir.join(LOCK), Mode::Exclusive, Strategy::from_env())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Summary {
        let config = crate::config::Options {
            model: Some(crate::models::Model::Logreg),
            dataset: Some(crate::data::DatasetKind::Mnist),
            optimizer: Some(crate::config::Variant::SgdHd),
            ..Default::default()
        }
        .resolve()
        .expect("a LogReg SGD-HD run");
        let last = EpochStats {
            epoch: 2,
            train_loss: 0.5,
            test_loss: f64::NAN,
            test_accuracy: 0.875,
            alpha: 0.0625,
        };
        Summary {
            config,
            label: "SGD-HD".into(),
            title: "LogReg".into(),
            device: "cpu".into(),
            parameters: 7850,
            epochs_completed: 2,
            iterations: 938,
            finished: false,
            elapsed_seconds: 1.5,
            images_per_second: 1e5,
            last,
            best_test_accuracy: 0.875,
            diverged: None,
            reached: None,
        }
    }

    /// What is written reads back (a NaN figure as NaN); a summary with a field it does not
    /// know and without `diverged` and `reached` still reads; a missing one says so; one behind
    /// a link is refused.
    #[test]
    fn a_summary_reads_back_leniently_and_never_through_a_link() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let e = read_summary(dir).expect_err("none yet");
        assert!(e.missing, "{e}");
        write_summary(dir, &sample()).expect("written");
        let back = read_summary(dir).expect("read");
        assert_eq!(back.config, sample().config);
        assert!(back.last.test_loss.is_nan());
        assert_eq!(back.last.alpha, 0.0625);
        assert!(!dir.join(format!(".{SUMMARY}.tmp")).exists());

        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(super::summary(dir)).expect("text"))
                .expect("json");
        let fields = json.as_object_mut().expect("an object");
        fields.remove("diverged");
        fields.remove("reached");
        fields.insert("written_by".into(), "a later version".into());
        std::fs::write(super::summary(dir), json.to_string()).expect("write");
        assert_eq!(read_summary(dir).expect("lenient").epochs_completed, 2);

        let other = tmp.path().join("other");
        std::fs::create_dir(&other).expect("dir");
        std::os::unix::fs::symlink(super::summary(dir), super::summary(&other)).expect("link");
        let e = read_summary(&other).expect_err("a link");
        assert!(!e.missing && e.to_string().contains("symbolic link"), "{e}");
    }
}
