//! What the report holds the runs against: the plan's runs ([`Planned`]), taken from `--plan`
//! or from the sweep's own state (`DIR/.sweep/manifest.json`: the plan's text when the sweep
//! stored it, else the plan file it names, else the manifest's run ids and epochs alone).

use crate::config::{OptimizerKind, RunConfig};
use crate::plan::{self, Plan, PlanError};
use crate::sweep::{Manifest, Outcome, STATE_DIR};
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
    pub(super) fn optimizer(&self) -> Option<OptimizerKind> {
        self.id.split('/').nth(1)?.parse().ok()
    }

    fn of(r: &plan::Run) -> Planned {
        Planned {
            id: r.id.clone(),
            experiment: r.experiment.clone(),
            epochs: r.config.epochs,
            config: Some(r.config.clone()),
            target: None,
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

/// The manifest's key for the plan's text, if a sweep stores it there.
const PLAN_TEXT: &str = "plan_text";

/// The plan for the sweep in `dir`: `given` (`--plan`) if any, else the one the sweep's state
/// names; with notes on how it was resolved. `Ok((None, _))`: no plan.
///
/// # Errors
/// [`PlanError`] only for a plan given with `--plan`: one found through the sweep's state that
/// cannot be read is noted, and the manifest's runs are used.
pub(super) fn resolve(
    dir: &Path,
    given: Option<&Path>,
) -> Result<(Option<PlanInfo>, Vec<String>), PlanError> {
    let mut notes = Vec::new();
    if let Some(file) = given {
        let plan = plan::load(file)?;
        return Ok((
            Some(PlanInfo {
                source: format!("plan `{}` (given with `--plan`)", name(file)),
                runs: plan.runs.iter().map(Planned::of).collect(),
            }),
            notes,
        ));
    }
    let path = dir.join(STATE_DIR).join("manifest.json");
    if !path.is_file() {
        return Ok((None, notes));
    }
    let value: serde_json::Value = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            notes.push(format!(
                "The sweep's manifest (`.sweep/manifest.json`) cannot be read ({e}): no plan."
            ));
            return Ok((None, notes));
        }
    };
    let manifest: Manifest = match serde_json::from_value(value.clone()) {
        Ok(m) => m,
        Err(e) => {
            notes.push(format!(
                "The sweep's manifest (`.sweep/manifest.json`) is not a manifest ({e}): no plan."
            ));
            return Ok((None, notes));
        }
    };
    let plan: Result<Plan, String> = match value.get(PLAN_TEXT).and_then(|t| t.as_str()) {
        Some(text) => plan::parse(&manifest.plan, text).map_err(|e| e.to_string()),
        None => plan::load(&manifest.plan).map_err(|e| e.to_string()),
    };
    let from_manifest = |r: &crate::sweep::ManifestRun, config: Option<RunConfig>| Planned {
        id: r.id.clone(),
        experiment: r.id.split('/').next().unwrap_or_default().to_string(),
        epochs: r.epochs,
        config,
        target: None,
    };
    let source = format!(
        "plan `{}` (named by the sweep's manifest)",
        name(&manifest.plan)
    );
    let runs = match plan {
        Ok(plan) => {
            let differs: Vec<&str> = manifest
                .runs
                .iter()
                .filter(|m| {
                    !plan
                        .runs
                        .iter()
                        .any(|r| r.id == m.id && r.config.epochs == m.epochs)
                })
                .map(|m| m.id.as_str())
                .collect();
            if differs.is_empty() {
                if plan.runs.len() > manifest.runs.len() {
                    notes.push(format!(
                        "The sweep ran {} of the plan's {} runs (`--only`); the others are \
                         reported as not run.",
                        manifest.runs.len(),
                        plan.runs.len()
                    ));
                }
                plan.runs.iter().map(Planned::of).collect()
            } else {
                notes.push(format!(
                    "The plan file has changed since the sweep ({} of its runs are not in it as \
                     the sweep recorded them, e.g. `{}`): the runs are the sweep manifest's, \
                     their settings their own.",
                    differs.len(),
                    differs[0]
                ));
                manifest
                    .runs
                    .iter()
                    .map(|m| {
                        let config = plan
                            .runs
                            .iter()
                            .find(|r| r.id == m.id && r.config.epochs == m.epochs)
                            .map(|r| r.config.clone());
                        from_manifest(m, config)
                    })
                    .collect()
            }
        }
        Err(e) => {
            notes.push(format!(
                "The plan the sweep names cannot be read ({e}): the runs are the sweep \
                 manifest's, their settings their own."
            ));
            manifest
                .runs
                .iter()
                .map(|m| from_manifest(m, None))
                .collect()
        }
    };
    Ok((Some(PlanInfo { source, runs }), notes))
}

/// A plan file's name, for the report (its directory is the machine's, not the result's).
fn name(file: &Path) -> String {
    file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// What the sweep recorded about a run it did not run: skipped (its data are missing) or
/// failed, with why.
pub(super) fn sweep_note(dir: &Path, id: &str) -> Option<String> {
    let path: PathBuf = id
        .split('/')
        .fold(dir.join(STATE_DIR).join("runs"), |p, c| p.join(c))
        .join("status.json");
    let outcome: Outcome = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    match outcome {
        Outcome::Skipped(why) => Some(format!("the sweep skipped it: {why}")),
        Outcome::Failed(why) => Some(format!("the sweep recorded a failure: {why}")),
        _ => None,
    }
}
