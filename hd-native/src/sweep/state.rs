//! What a sweep directory records: the [`Manifest`] of the plan's runs, each run's
//! [`Outcome`], what a run directory holds ([`RunState`], read from `train`'s files), and the
//! table of `sweep status`.

use super::{origin, MANIFEST, STATE_DIR, STATUS};
use crate::plan::Plan;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The plan's runs as a sweep directory records them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The plan: its file's absolute path, or the name of a shipped plan.
    pub plan: String,
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
    pub(super) fn of(plan: &Plan) -> Manifest {
        Manifest {
            plan: origin(&plan.source),
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

    pub(super) fn write(&self, out: &Path) -> Result<()> {
        let path = out.join(STATE_DIR).join(MANIFEST);
        write_atomic(&path, serde_json::to_string_pretty(self)?.as_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees
/// half a file.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
    /// Not run: its dataset's files are missing (`DIR: what is missing`). Recorded as
    /// `missing-data`; `skipped`, its name before it was an error, is still read.
    #[serde(alias = "skipped")]
    MissingData(String),
    /// `train` failed.
    Failed(String),
    /// Stopped by a signal; resumable.
    Interrupted,
}

/// `OUT/.sweep/runs/<id>/`: the sweep's notes about one run.
pub(super) fn state_dir(out: &Path, id: &str) -> PathBuf {
    id.split('/')
        .fold(out.join(STATE_DIR).join("runs"), |p, c| p.join(c))
}

pub(super) fn record(out: &Path, id: &str, outcome: &Outcome) -> Result<()> {
    let path = state_dir(out, id).join(STATUS);
    write_atomic(&path, serde_json::to_string_pretty(outcome)?.as_bytes())
}

pub(super) fn recorded(out: &Path, id: &str) -> Option<Outcome> {
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
pub(super) fn last_line(path: &Path) -> String {
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

/// One row of `sweep status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRow {
    /// The run's id.
    pub id: String,
    /// done / partial / failed / missing / diverged / pending.
    pub state: &'static str,
    /// Epochs completed and asked for.
    pub epochs: (u32, u32),
    /// Why, for failed, missing and diverged runs (`missing data (DIR: what is missing)`).
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
                (_, Some(Outcome::MissingData(why))) => {
                    ("missing", 0, format!("missing data ({why})"))
                }
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A run's status as recorded, and as a sweep from before missing data was an error
    /// recorded it (`skipped`).
    #[test]
    fn missing_data_is_recorded_and_an_old_skip_still_read() {
        let json =
            serde_json::to_string(&Outcome::MissingData("/d/mnist: x".into())).expect("json");
        assert_eq!(json, r#"{"state":"missing-data","reason":"/d/mnist: x"}"#);
        let old: Outcome =
            serde_json::from_str(r#"{"state":"skipped","reason":"no data"}"#).expect("parses");
        assert_eq!(old, Outcome::MissingData("no data".into()));
    }
}
