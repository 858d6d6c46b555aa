//! What the report holds the runs against: the plan's runs ([`Planned`]), taken from `--plan`
//! or from the sweep's own state (`DIR/.sweep/`: the plan's text the sweep saved, else the plan
//! its manifest names, else the manifest's run ids and epochs alone).

use crate::config::{RunConfig, Variant};
use crate::files::{read_text, Links, STATE_LIMIT};
use crate::plan::{self, Plan, PlanError, Source};
use crate::sweep::{Manifest, ManifestRun, Outcome, PLAN_COPY, STATE_DIR};
use std::path::{Path, PathBuf};

/// One run the plan asks for.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) id: String,
    pub(super) experiment: String,
    /// Epochs asked for.
    pub(super) epochs: u32,
    /// Its configuration, when the plan itself could be read (the manifest alone lists ids and
    /// epochs).
    pub(super) config: Option<RunConfig>,
    /// The loss it stops at, when the plan gives one.
    pub(super) target: Option<f64>,
}

impl Planned {
    /// The optimizer its id names (`experiment/optimizer/…`).
    pub(super) fn optimizer(&self) -> Option<Variant> {
        self.id.split('/').nth(1)?.parse().ok()
    }

    fn of(r: &plan::Run) -> Planned {
        Planned {
            id: r.id.clone(),
            experiment: r.experiment.clone(),
            epochs: r.config.epochs,
            config: Some(r.config.clone()),
            target: r.config.stop_at_loss,
        }
    }
}

/// The plan as the report found it.
#[derive(Debug, Clone)]
pub(super) struct PlanInfo {
    /// Where it came from, for the report's first lines.
    pub(super) source: String,
    pub(super) runs: Vec<Planned>,
}

/// The plan for the sweep in `dir`: `given` (`--plan`: a file or a shipped plan's name) if
/// any, else the plan's text the sweep saved (`.sweep/plan.toml`), else the plan its manifest
/// names; with notes on how it was resolved. `Ok((None, _))`: no plan.
///
/// # Errors
/// [`PlanError`] only for a plan given with `--plan`. One found through the sweep's state that
/// cannot be read, or that no longer matches the runs its manifest records, is noted, and the
/// manifest's runs are used.
pub(super) fn resolve(
    dir: &Path,
    given: Option<&Path>,
) -> Result<(Option<PlanInfo>, Vec<String>), PlanError> {
    let mut notes = Vec::new();
    if let Some(arg) = given {
        let plan = plan::find(arg)?;
        return Ok((
            Some(PlanInfo {
                source: format!("plan `{}` (given with `--plan`)", shown(&plan.source)),
                runs: plan.runs.iter().map(Planned::of).collect(),
            }),
            notes,
        ));
    }
    let state = dir.join(STATE_DIR);
    let manifest = match Manifest::read(dir) {
        Ok(m) => Some(m),
        Err(_) if !state.join("manifest.json").exists() => None,
        Err(e) => {
            notes.push(format!(
                "The sweep's manifest cannot be read ({}): its runs are not known.",
                one_line(&e)
            ));
            None
        }
    };
    let copy = state.join(PLAN_COPY);
    // The manifest names a file by its absolute path, a shipped plan as `NAME (shipped with
    // hd-native VERSION)`.
    let named = manifest.as_ref().map(|m| {
        m.plan
            .split(" (shipped with ")
            .next()
            .unwrap_or_default()
            .to_string()
    });
    let (plan, source) = if copy.is_file() {
        let name = named.as_deref().map_or("plan.toml".to_string(), |n| {
            shown(&Source::File(PathBuf::from(n)))
        });
        (
            Some(plan::load(&copy).map_err(|e| e.to_string())),
            format!("plan `{name}` (as the sweep saved it)"),
        )
    } else if let Some(n) = &named {
        let plan = plan::find(Path::new(n)).map_err(|e| e.to_string());
        let name = shown(&Source::File(PathBuf::from(n)));
        (
            Some(plan),
            format!("plan `{name}` (named by the sweep's manifest)"),
        )
    } else {
        (None, String::new())
    };
    let runs = match (plan, manifest) {
        (None, _) => return Ok((None, notes)),
        (Some(Err(e)), None) => {
            notes.push(format!(
                "The sweep's saved plan cannot be read ({e}): no plan."
            ));
            return Ok((None, notes));
        }
        (Some(Ok(plan)), None) => plan.runs.iter().map(Planned::of).collect(),
        (Some(Err(e)), Some(m)) => {
            notes.push(format!(
                "The plan the sweep names cannot be read ({e}): the runs are the sweep \
                 manifest's, their settings their own."
            ));
            m.runs.iter().map(|r| from_manifest(r, None)).collect()
        }
        (Some(Ok(plan)), Some(m)) => against_manifest(&plan, &m, &mut notes),
    };
    Ok((Some(PlanInfo { source, runs }), notes))
}

/// A manifest's run, with its configuration where the plan still has it.
fn from_manifest(r: &ManifestRun, config: Option<RunConfig>) -> Planned {
    Planned {
        id: r.id.clone(),
        experiment: r.id.split('/').next().unwrap_or_default().to_string(),
        epochs: r.epochs,
        target: config.as_ref().and_then(|c| c.stop_at_loss),
        config,
    }
}

/// The plan's runs when every run the manifest records is in it as recorded (noting those a
/// restricted sweep left out); else the manifest's own runs, with what the plan says of them.
fn against_manifest(plan: &Plan, m: &Manifest, notes: &mut Vec<String>) -> Vec<Planned> {
    let same = |r: &ManifestRun| {
        plan.runs
            .iter()
            .find(|p| p.id == r.id && p.config.epochs == r.epochs)
    };
    let differs: Vec<&str> = m
        .runs
        .iter()
        .filter(|r| same(r).is_none())
        .map(|r| r.id.as_str())
        .collect();
    if let Some(first) = differs.first() {
        notes.push(format!(
            "The plan differs from the runs the sweep's manifest records ({} of them, e.g. \
             `{first}`): the runs are the manifest's, their settings their own.",
            differs.len()
        ));
        return m
            .runs
            .iter()
            .map(|r| from_manifest(r, same(r).map(|p| p.config.clone())))
            .collect();
    }
    if plan.runs.len() > m.runs.len() {
        notes.push(format!(
            "The sweep's manifest records {} of the plan's {} runs (a sweep with `--only`); the \
             report holds every run of the plan, so those it did not run are \"not run\" unless \
             their directories say otherwise.",
            m.runs.len(),
            plan.runs.len()
        ));
    }
    plan.runs.iter().map(Planned::of).collect()
}

/// A plan's name for the report: a file's name (its directory is the machine's, not the
/// result's), or a shipped plan's.
fn shown(source: &Source) -> String {
    match source {
        Source::File(f) => f
            .file_name()
            .map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into()),
        Source::Shipped(name) => (*name).to_string(),
    }
}

/// An error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// What the sweep recorded about a run it did not run: skipped (its data are missing) or
/// failed, with why.
pub(super) fn sweep_note(dir: &Path, id: &str) -> Option<String> {
    let path: PathBuf = id
        .split('/')
        .fold(dir.join(STATE_DIR).join("runs"), |p, c| p.join(c))
        .join("status.json");
    // A regular file only, never through a link, up to a limit: a FIFO there would block.
    let text = read_text(&path, STATE_LIMIT, Links::Refuse).ok()?;
    let outcome: Outcome = serde_json::from_str(&text).ok()?;
    match outcome {
        Outcome::MissingData(why) => Some(format!("the sweep found its data missing: {why}")),
        Outcome::Failed(why) => Some(format!("the sweep recorded a failure: {why}")),
        _ => None,
    }
}
