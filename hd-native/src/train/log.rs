//! `log.csv` while training: the file open for appending (its rows are
//! [`LogRow`](crate::run_dir::LogRow)s), and the read-back of the losses and α from the device
//! [`LOG_EVERY`] iterations at a time.

use super::{io, TrainError};
use crate::run_dir::{LogRow, LOG, LOG_HEADER};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{Device, TchError, Tensor};

/// Iterations between reads of the losses and α back from the device.
pub const LOG_EVERY: usize = 50;

/// `log.csv`, open for appending.
pub(super) struct Log {
    file: File,
    path: PathBuf,
}

impl Log {
    /// Opens the log of `dir`: a new one (header written) or, resuming, the existing one.
    pub(super) fn open(dir: &Path, new: bool) -> Result<Log, TrainError> {
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

    pub(super) fn append(&mut self, rows: &[LogRow]) -> Result<(), TrainError> {
        let text: String = rows.iter().map(LogRow::to_line).collect();
        self.write(&text)
    }

    /// Makes the rows written durable (before the checkpoint that follows them).
    pub(super) fn sync(&mut self) -> Result<(), TrainError> {
        self.file.sync_data().map_err(io(&self.path))
    }
}

/// Reads the pending losses and α values back in one transfer each; returns (loss, α, time)
/// per iteration.
pub(super) fn read_back(
    pending: &[(Tensor, Tensor, f64)],
) -> Result<Vec<(f32, f32, f64)>, TchError> {
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
