//! What a sweep directory records: the [`Manifest`] of the plan's runs, each run's
//! [`Outcome`], what a run directory holds ([`RunState`], read from `train`'s files), and the
//! table of `sweep status`.

use super::names::{origin, MANIFEST, PLAN_COPY, STATE_DIR, STATUS};
use crate::config::RunConfig;
use crate::files::{self, Links};
use crate::plan::{self, Plan};
use crate::run_dir;
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
    /// The experiments a local `sweep --only` kept: `runs` are those of the plan restricted to
    /// them (absent: the whole plan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
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
            only: plan.only.clone(),
        }
    }

    /// Reads `OUT/.sweep/manifest.json`.
    ///
    /// # Errors
    /// The file is missing or malformed, no regular file, a link, larger than
    /// [`files::STATE_LIMIT`], or names a run id that is no path under `out` (`..`).
    pub fn read(out: &Path) -> Result<Manifest> {
        let path = out.join(STATE_DIR).join(MANIFEST);
        let text = files::read_text(&path, files::STATE_LIMIT, Links::Refuse)
            .with_context(|| format!("{} (is it a sweep's --out?)", path.display()))?;
        let m: Manifest =
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        // Ids become paths under `out`: none may lead elsewhere.
        if let Some(bad) = m.runs.iter().find(|r| {
            r.id.split('/')
                .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
        }) {
            anyhow::bail!(
                "reading {}: the run id `{}` is not a directory under the sweep's output",
                path.display(),
                printable(&bad.id)
            );
        }
        Ok(m)
    }

    pub(super) fn write(&self, out: &Path) -> Result<()> {
        let path = out.join(STATE_DIR).join(MANIFEST);
        write_atomic(&path, serde_json::to_string_pretty(self)?.as_bytes())
    }
}

/// Writes `bytes` to `path` atomically and durably ([`files::write_atomic`]), under the
/// checked state directories and through no link.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        state_dirs(dir, true)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    files::write_atomic(path, &tmp, |tmp| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        no_follow(&mut options);
        options
            .open(tmp)
            .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
    })
    .with_context(|| format!("writing {}", path.display()))
}

/// Checks, and with `create` makes, the directories of `dir` from the sweep's state
/// directory (its last `.sweep` component) down: each must be a directory, not a symbolic
/// link, so that a link planted under `.sweep` (`runs/<experiment>` pointing elsewhere) never
/// leads a write, or a read, outside it. `O_NOFOLLOW` guards only a path's last component;
/// this guards the ones above it. Components above `.sweep` are the user's and are followed;
/// a path without `.sweep` is only created.
///
/// # Errors
/// A component is a link or not a directory, or cannot be created.
pub(super) fn state_dirs(dir: &Path, create: bool) -> Result<()> {
    let parts: Vec<_> = dir.components().collect();
    let Some(at) = parts
        .iter()
        .rposition(|c| c.as_os_str() == std::ffi::OsStr::new(STATE_DIR))
    else {
        if create {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        return Ok(());
    };
    let mut path: PathBuf = parts[..at].iter().collect();
    if create {
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    for part in &parts[at..] {
        path.push(part);
        if create {
            match std::fs::create_dir(&path) {
                Ok(()) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => anyhow::bail!(
                "{} is a symbolic link: refused, the sweep follows no link in its state",
                path.display()
            ),
            Ok(m) if !m.is_dir() => {
                anyhow::bail!("{}: not a directory, refused", path.display())
            }
            Ok(_) => {}
            // Nothing there yet: nothing to follow.
            Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| path.display().to_string()),
        }
    }
    Ok(())
}

/// Opens with `O_NOFOLLOW`: a symbolic link planted at a path the sweep owns is refused
/// (ELOOP), never followed.
pub(super) fn no_follow(options: &mut std::fs::OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
    }
    #[cfg(not(unix))]
    let _ = options;
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
    /// Stopped by a signal the sweep passed on; resumable.
    Interrupted,
    /// Not run: the run directory holds a run with other options (the first that differs).
    Stale(String),
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
    let dir = state_dir(out, id);
    state_dirs(&dir, false).ok()?;
    let text = files::read_text(&dir.join(STATUS), files::STATE_LIMIT, Links::Refuse).ok()?;
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
    /// `summary.json` is there but cannot be read: the file and why.
    Unreadable(String),
}

/// A run directory as the sweep sees it: its state, and the configuration its `summary.json`
/// records (`None` before the first summary).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// What it holds.
    pub state: RunState,
    /// The options it was run with.
    pub config: Option<RunConfig>,
}

/// Reads a run directory's summary ([`run_dir::read_summary`]: typed, so a field renamed is a
/// compile error here, not a run read as unfinished; a regular file of bounded size, not a
/// link) and whether it has a checkpoint.
pub fn inspect(dir: &Path) -> Stored {
    let checkpoint = run_dir::has_checkpoint(dir);
    let summary = match run_dir::read_summary(dir) {
        Err(e) if e.missing => None,
        Err(e) => {
            return Stored {
                state: RunState::Unreadable(e.to_string()),
                config: None,
            }
        }
        Ok(s) => Some(s),
    };
    let Some(s) = summary else {
        let state = if checkpoint {
            RunState::Partial {
                epochs: 0,
                checkpoint,
            }
        } else {
            RunState::Empty
        };
        return Stored {
            state,
            config: None,
        };
    };
    let state = if s.finished {
        RunState::Finished
    } else if let Some(d) = &s.diverged {
        RunState::Diverged(format!(
            "epoch {}, iteration {}: {}",
            d.epoch, d.iteration, d.reason
        ))
    } else {
        RunState::Partial {
            epochs: s.epochs_completed,
            checkpoint,
        }
    };
    Stored {
        state,
        config: Some(s.config),
    }
}

/// Reads a run directory's state from `summary.json` and the checkpoint.
pub fn run_state(dir: &Path) -> RunState {
    inspect(dir).state
}

/// How a run directory's options stand against the plan's.
#[derive(Debug, Clone, PartialEq)]
pub enum Fit {
    /// The same run (or nothing recorded yet).
    Same,
    /// The same run asked for more epochs: it is extended (resumed).
    MoreEpochs {
        /// Epochs it was run for.
        from: u32,
        /// Epochs the plan asks for.
        to: u32,
    },
    /// Another run: the first setting that differs, as a note.
    Stale(String),
}

/// Compares the options a run directory records with those the plan gives the run.
pub fn fit(stored: Option<&RunConfig>, planned: &RunConfig) -> Fit {
    let Some(stored) = stored else {
        return Fit::Same;
    };
    let Some(d) = stored.first_difference(planned) else {
        return Fit::Same;
    };
    if d.field == "epochs" && planned.epochs > stored.epochs {
        let mut grown = stored.clone();
        grown.epochs = planned.epochs;
        if grown == *planned {
            return Fit::MoreEpochs {
                from: stored.epochs,
                to: planned.epochs,
            };
        }
    }
    Fit::Stale(format!(
        "run with {} = {}, the plan has {}",
        d.field, d.this, d.other
    ))
}

/// The last non-empty line of a log: what `train` said last.
pub(super) fn last_line(path: &Path) -> String {
    files::read_tail(path, 64 << 10)
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
    /// done / partial / failed / missing / diverged / stale / pending.
    pub state: &'static str,
    /// Epochs completed and asked for.
    pub epochs: (u32, u32),
    /// Why, for failed, missing, diverged and stale runs (`missing data (DIR: what is
    /// missing)`).
    pub note: String,
}

/// The state of every run of the sweep in `out`. A run whose directory holds other options
/// than the plan the sweep saved (`OUT/.sweep/plan.toml`) gives it is `stale`, naming the first
/// that differs; one whose plan asks for more epochs is `partial`.
///
/// # Errors
/// `out` holds no sweep manifest.
pub fn status(out: &Path) -> Result<Vec<StatusRow>> {
    let manifest = Manifest::read(out)?;
    // The options the sweep gives each run, when its saved plan still reads (a plan saved by
    // another version of hd-native may not: its runs are then not checked for staleness).
    let copy = out.join(STATE_DIR).join(PLAN_COPY);
    let planned: Option<Plan> = files::read_text(&copy, files::PLAN_LIMIT, Links::Refuse)
        .ok()
        .and_then(|text| plan::parse(&copy, &text).ok());
    Ok(manifest
        .runs
        .iter()
        .map(|r| {
            let dir = r.id.split('/').fold(out.to_path_buf(), |p, c| p.join(c));
            let Stored { state, config } = inspect(&dir);
            let wanted = planned
                .as_ref()
                .and_then(|p| p.runs.iter().find(|run| run.id == r.id))
                .map(|run| &run.config);
            let fits = wanted.map_or(Fit::Same, |w| fit(config.as_ref(), w));
            let note = recorded(out, &r.id);
            let partial = |epochs| ("partial", epochs, String::new());
            let (state, done, note) = match (state, fits, note) {
                (RunState::Empty, _, Some(Outcome::MissingData(why))) => {
                    ("missing", 0, format!("missing data ({why})"))
                }
                (RunState::Empty, _, Some(Outcome::Failed(why))) => ("failed", 0, why),
                (RunState::Empty, ..) => ("pending", 0, String::new()),
                (RunState::Unreadable(why), ..) => ("failed", 0, why),
                (_, Fit::Stale(why), _) => (
                    "stale",
                    0,
                    format!("{why}; `sweep --rerun-stale` runs it again"),
                ),
                (RunState::Finished, Fit::MoreEpochs { from, .. }, _) => partial(from),
                (RunState::Finished, ..) => ("done", r.epochs, String::new()),
                (RunState::Diverged(why), ..) => ("diverged", 0, why),
                (RunState::Partial { epochs, .. }, _, Some(Outcome::Failed(why))) => {
                    ("failed", epochs, why)
                }
                (RunState::Partial { epochs, .. }, _, Some(Outcome::MissingData(why))) => {
                    ("missing", epochs, format!("missing data ({why})"))
                }
                (RunState::Partial { epochs, .. }, ..) => partial(epochs),
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

/// `s` with its control characters escaped (`\u{1b}`, `\n`): text read from a file, made
/// safe to print on a terminal.
pub(super) fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `sweep status` as a table; ids and notes read from files have their control characters
/// escaped.
pub fn status_table(rows: &[StatusRow]) -> String {
    let ids: Vec<String> = rows.iter().map(|r| printable(&r.id)).collect();
    let w = ids
        .iter()
        .map(|id| id.chars().count())
        .max()
        .unwrap_or(2)
        .max(3);
    let mut s = format!("{:<w$}  {:<8}  {:>7}  note\n", "run", "state", "epochs");
    for (r, id) in rows.iter().zip(&ids) {
        s.push_str(&format!(
            "{:<w$}  {:<8}  {:>7}  {}\n",
            id,
            r.state,
            format!("{}/{}", r.epochs.0, r.epochs.1),
            printable(&r.note)
        ));
    }
    s.trim_end().to_string()
}

/// Prepares `out` for `plan`: creates it, records the manifest and the plan's text.
pub(super) fn prepare(plan: &Plan, out: &Path) -> Result<()> {
    let state = out.join(STATE_DIR);
    std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    write_atomic(&out.join(STATE_DIR).join(PLAN_COPY), plan.text.as_bytes())?;
    Manifest::of(plan).write(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_dir::{Divergence, Summary};

    /// A LogReg SGD run on MNIST with `epochs` epochs.
    fn config(epochs: u32) -> RunConfig {
        crate::config::Options {
            model: Some(crate::models::Model::Logreg),
            dataset: Some(crate::data::DatasetKind::Mnist),
            optimizer: Some(crate::config::Variant::Sgd),
            epochs: Some(epochs),
            ..Default::default()
        }
        .resolve()
        .expect("a valid run")
    }

    /// A `summary.json` as `train` writes it.
    fn summary(finished: bool, completed: u32, diverged: Option<Divergence>) -> String {
        let config = config(4);
        let stats = crate::run_dir::EpochStats {
            epoch: completed,
            train_loss: 0.5,
            test_loss: 0.5,
            test_accuracy: 0.9,
            alpha: 0.001,
        };
        serde_json::to_string(&Summary {
            label: config.label(),
            title: config.title(),
            config,
            device: "Cpu".into(),
            parameters: 7850,
            epochs_completed: completed,
            iterations: 10,
            finished,
            elapsed_seconds: 1.0,
            images_per_second: 1.0,
            last: stats,
            best_test_accuracy: 0.9,
            diverged,
            reached: None,
        })
        .expect("json")
    }

    #[test]
    fn a_run_directory_tells_its_state() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        assert_eq!(run_state(d), RunState::Empty);
        std::fs::write(d.join("checkpoint.safetensors"), b"x").expect("write");
        let write = |text: String| std::fs::write(d.join("summary.json"), text).expect("write");
        write(summary(false, 2, None));
        assert_eq!(
            run_state(d),
            RunState::Partial {
                epochs: 2,
                checkpoint: true
            }
        );
        assert_eq!(inspect(d).config, Some(config(4)));
        let nan = Divergence {
            epoch: 3,
            iteration: 250,
            reason: "loss is NaN".into(),
        };
        write(summary(false, 2, Some(nan)));
        assert_eq!(
            run_state(d),
            RunState::Diverged("epoch 3, iteration 250: loss is NaN".into())
        );
        write(summary(true, 4, None));
        assert_eq!(run_state(d), RunState::Finished);
        // A summary that is not train's is no finished run: it says why it cannot be read.
        write(r#"{"finished": true}"#.into());
        assert!(
            matches!(run_state(d), RunState::Unreadable(why) if why.contains("missing field")),
            "{:?}",
            run_state(d)
        );
    }

    /// A run is the same run, the same run with more epochs (extended), or stale, naming the
    /// first setting that differs.
    #[test]
    fn a_run_with_other_options_is_stale_unless_only_its_epochs_grew() {
        assert_eq!(fit(None, &config(3)), Fit::Same);
        assert_eq!(fit(Some(&config(3)), &config(3)), Fit::Same);
        assert_eq!(
            fit(Some(&config(1)), &config(3)),
            Fit::MoreEpochs { from: 1, to: 3 }
        );
        assert_eq!(
            fit(Some(&config(3)), &config(1)),
            Fit::Stale("run with epochs = 3, the plan has 1".into())
        );
        let mut other = config(3);
        other.core.alpha0 = 0.01;
        other.seed = 7;
        assert_eq!(
            fit(Some(&config(1)), &other),
            Fit::Stale("run with core.alpha0 = 0.001, the plan has 0.01".into())
        );
    }

    /// The sweep reads its manifest and a run's `summary.json` only as regular files, not
    /// through links: a `summary.json` linked to `/dev/zero` fails the run with why, at once.
    #[test]
    fn state_files_are_read_only_as_regular_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path();
        std::fs::create_dir_all(out.join(STATE_DIR)).expect("mkdir");
        let manifest = Manifest {
            plan: "p".into(),
            description: "d".into(),
            runs: vec![ManifestRun {
                id: "x/sgd".into(),
                epochs: 4,
            }],
            only: Vec::new(),
        };
        manifest.write(out).expect("manifest");
        std::fs::create_dir_all(out.join("x/sgd")).expect("mkdir");
        std::os::unix::fs::symlink("/dev/zero", out.join("x/sgd/summary.json")).expect("link");
        let rows = status(out).expect("status");
        assert_eq!(rows[0].state, "failed");
        assert!(
            rows[0]
                .note
                .ends_with("summary.json: a symbolic link, which the sweep does not follow"),
            "{}",
            rows[0].note
        );
        let path = out.join(STATE_DIR).join(MANIFEST);
        std::fs::remove_file(&path).expect("rm");
        std::os::unix::fs::symlink("/dev/zero", &path).expect("link");
        let e = format!("{:#}", Manifest::read(out).expect_err("a link"));
        assert!(
            e.ends_with("a symbolic link, which the sweep does not follow"),
            "{e}"
        );
    }

    /// A directory link planted under `.sweep/runs` is not followed: the sweep writes no note
    /// through it (nothing lands outside), reads none through it, and says why.
    #[test]
    fn a_directory_link_under_the_state_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("out");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir_all(elsewhere.join("sgd")).expect("mkdir");
        std::fs::write(
            elsewhere.join("sgd").join(STATUS),
            r#"{"state":"failed","reason":"planted"}"#,
        )
        .expect("write");
        std::fs::create_dir_all(out.join(STATE_DIR).join("runs")).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, out.join(STATE_DIR).join("runs").join("x"))
            .expect("link");
        assert_eq!(recorded(&out, "x/sgd"), None);
        let e = format!(
            "{:#}",
            record(&out, "x/sgd", &Outcome::Failed("boom".into())).expect_err("a link")
        );
        assert!(
            e.ends_with(
                "runs/x is a symbolic link: refused, the sweep follows no link in its state"
            ),
            "{e}"
        );
        let planted = std::fs::read_to_string(elsewhere.join("sgd").join(STATUS)).expect("read");
        assert!(planted.contains("planted"), "{planted}");
        assert_eq!(
            std::fs::read_dir(elsewhere.join("sgd"))
                .expect("dir")
                .count(),
            1
        );
        // A link at `.sweep/runs` itself, and a file where a directory belongs, alike.
        let runs = out.join(STATE_DIR).join("runs");
        std::fs::remove_file(runs.join("x")).expect("rm");
        std::fs::remove_dir(&runs).expect("rmdir");
        std::os::unix::fs::symlink(&elsewhere, &runs).expect("link");
        assert!(record(&out, "sgd", &Outcome::Interrupted).is_err());
        std::fs::remove_file(&runs).expect("rm");
        std::fs::write(&runs, "").expect("file");
        let e = format!(
            "{:#}",
            record(&out, "y/sgd", &Outcome::Interrupted).expect_err("file")
        );
        assert!(e.ends_with("runs: not a directory, refused"), "{e}");
        // Without links, notes are written and read back.
        std::fs::remove_file(&runs).expect("rm");
        record(&out, "y/sgd", &Outcome::Interrupted).expect("record");
        assert_eq!(recorded(&out, "y/sgd"), Some(Outcome::Interrupted));
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
