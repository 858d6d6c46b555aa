//! Experiment plans: a suite of `hd-native train` runs as data (TOML).
//!
//! A plan is a list of experiments. Each experiment has a `name` and any of `train`'s options
//! under their command-line names (`model`, `dataset`, `optimizer`, `alpha0`, `beta`, `seed`,
//! `preset`, …). An option given one value is fixed; an option given an **array** of values is
//! an axis, and the experiment's runs are the product of its axes (the first axis in
//! [`KEYS`] order varies slowest). `hidden`, `clamp` and `transition` take an array
//! themselves, so their axes are arrays of arrays.
//!
//! ```toml
//! description = "LogReg on MNIST, four optimizers, three seeds"
//!
//! [[experiment]]
//! name = "logreg-mnist"
//! model = "logreg"
//! dataset = "mnist"
//! preset = "paper"
//! optimizer = ["sgd", "sgd-hd", "adam", "adam-hd"]
//! seed = [0, 1, 2]
//! ```
//!
//! Options that do not apply to a run's optimizer (β for SGD, μ for Adam, …) are left out of
//! that run, so one experiment can give β for its HD optimizers beside their base ones. A run's
//! id is `experiment/optimizer` followed, when the experiment has other axes, by their values
//! (`logreg-mnist/sgd-hd/a0=0.001,s=0`); the run's directory is that path under the sweep's
//! output. Experiment names are unique, so no run's directory lies inside another's. Two runs
//! with the same id are refused, as are unknown keys, empty axes and runs that `train` would
//! refuse: each error names the file, the line of the key concerned (the experiment's where a
//! key is missing) and the problem. Values reach `train` as `--key=value`, so negative numbers
//! (`clamp = [-0.1, 0.1]`) are values like any other.
//!
//! **Shipped plans.** Every `*.toml` of the crate's `plans/` directory is built into the binary
//! under its file stem ([`shipped()`]), so `hd-native sweep smoke` needs no checkout. [`find`]
//! decides what a command-line argument names: an existing file is that file; otherwise a
//! shipped plan of that name; otherwise an argument that looks like a path (it has a directory
//! or an extension, `plans/x.toml`, `x.toml`) is a file that cannot be read, and anything else is
//! an unknown name, refused with the list of shipped plans.

use crate::config::{RunConfig, Variant};
use crate::files;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

mod keys;
mod shipped;

use keys::{is_axis, typed, SWEEP_KEYS};
pub use keys::{Key, Value, KEYS};
pub use shipped::{shipped, Shipped};

/// The most runs a plan may have: a larger one is refused, with its count, before it is
/// expanded.
pub const MAX_RUNS: u64 = 100_000;

/// Where a plan comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file, as named on the command line.
    File(PathBuf),
    /// A plan built into the binary, by name (`smoke`).
    Shipped(&'static str),
}

impl Source {
    /// A short name: the file's stem or the shipped plan's name (`smoke`).
    pub fn name(&self) -> String {
        match self {
            Source::File(f) => f
                .file_stem()
                .map_or_else(|| "plan".into(), |s| s.to_string_lossy().into_owned()),
            Source::Shipped(name) => (*name).to_string(),
        }
    }
}

impl fmt::Display for Source {
    /// The file as given, or the shipped plan's name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(file) => write!(f, "{}", file.display()),
            Source::Shipped(name) => f.write_str(name),
        }
    }
}

/// What is wrong with a plan, or with the argument that should name one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The plan file cannot be read (it does not exist, is a directory, …).
    #[error("cannot read the plan {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Neither a file nor a shipped plan has this name.
    #[error("no plan file or shipped plan named `{name}` (shipped plans: {}; `hd-native plan list` describes them)", shipped_names())]
    Unknown {
        /// The argument given.
        name: String,
    },
    /// The plan is malformed or describes runs `train` would refuse.
    #[error("{plan}:{line}: {what}")]
    Invalid {
        /// The plan.
        plan: Source,
        /// The line (1-based).
        line: usize,
        /// The problem.
        what: String,
    },
    /// `--only` names no experiment of the plan.
    #[error("{plan}: no experiment `{name}` (experiments: {})", known.join(", "))]
    NoExperiment {
        /// The plan.
        plan: Source,
        /// The name given.
        name: String,
        /// The plan's experiments.
        known: Vec<String>,
    },
}

/// The shipped plans' names, comma-separated.
fn shipped_names() -> String {
    shipped()
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One run of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Position in the expanded plan (a Slurm array task's index).
    pub index: usize,
    /// `experiment/optimizer[/axis=value,…]`: unique in the plan, and the run's directory
    /// under the sweep's output.
    pub id: String,
    /// The experiment it belongs to.
    pub experiment: String,
    /// Its options, in [`KEYS`] order.
    pub options: Vec<(&'static str, Value)>,
    /// The configuration `train` will run (defaults and preset filled in).
    pub config: RunConfig,
}

impl Run {
    /// `train`'s options for this run (without `--data-dir`, `--out` and the sweep's own),
    /// each value joined to its option (`--clamp=-1e-1,1e-1`), so that a value starting with
    /// `-` is never read as an option.
    pub fn train_args(&self) -> Vec<String> {
        self.options
            .iter()
            .filter_map(|(key, value)| match value {
                Value::Bool(false) => None,
                Value::Bool(true) => Some(format!("--{key}")),
                v => Some(format!("--{key}={}", v.arg())),
            })
            .collect()
    }

    /// The run's directory under a sweep's output `dir`.
    pub fn dir(&self, dir: &Path) -> PathBuf {
        self.id.split('/').fold(dir.to_path_buf(), |p, c| p.join(c))
    }
}

/// An expanded plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where it was read from.
    pub source: Source,
    /// Its text, as read: what a sweep keeps, so that its Slurm tasks run this very plan.
    pub text: String,
    /// Its `description`.
    pub description: String,
    /// Every run, in order.
    pub runs: Vec<Run>,
    /// The experiments [`Plan::restrict_to`] kept (empty: the whole plan).
    pub only: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    description: Spanned<String>,
    #[serde(default)]
    experiment: Vec<Spanned<BTreeMap<Spanned<String>, Spanned<toml::Value>>>>,
}

/// The 1-based line of byte offset `at` in `text`.
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Reads and expands the plan in `file`.
///
/// # Errors
/// [`PlanError::Read`] naming the file and the cause when it cannot be read (it is no regular
/// file, or larger than [`files::PLAN_LIMIT`]); otherwise
/// [`PlanError::Invalid`] naming the file, the line and the problem: TOML syntax, an unknown or
/// sweep-set key, a value of the wrong type, an empty axis, a run `train` would refuse, two
/// runs with the same id, or more than [`MAX_RUNS`] runs.
pub fn load(file: &Path) -> Result<Plan, PlanError> {
    // The copy a sweep keeps in its `.sweep` (what Slurm tasks read) is never read through a
    // link planted there; a plan file the user names may be one.
    let in_sweep_state = file
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == std::ffi::OsStr::new(".sweep"));
    let links = if in_sweep_state {
        files::Links::Refuse
    } else {
        files::Links::Follow
    };
    let text =
        files::read_text(file, files::PLAN_LIMIT, links).map_err(|source| PlanError::Read {
            file: file.to_path_buf(),
            source,
        })?;
    expand(Source::File(file.to_path_buf()), text)
}

/// Expands plan `text` (read from `file`, named in errors).
///
/// # Errors
/// [`PlanError::Invalid`], as [`load`].
pub fn parse(file: &Path, text: &str) -> Result<Plan, PlanError> {
    expand(Source::File(file.to_path_buf()), text.to_string())
}

/// The plan a command-line argument names: an existing file is that file; otherwise the
/// shipped plan of that name; otherwise an argument with a directory or an extension is a file
/// that cannot be read, and anything else an unknown name.
///
/// # Errors
/// As [`load`] for a file; [`PlanError::Unknown`] (which lists the shipped plans) for a name
/// that is neither a file nor a shipped plan.
pub fn find(arg: &Path) -> Result<Plan, PlanError> {
    if arg.is_file() {
        return load(arg);
    }
    if let Some(plan) = arg
        .to_str()
        .and_then(|name| shipped().iter().find(|p| p.name == name))
    {
        return expand(Source::Shipped(plan.name), plan.text.to_string());
    }
    let path_like = arg.components().count() > 1 || arg.extension().is_some() || arg.exists();
    if path_like {
        return load(arg);
    }
    Err(PlanError::Unknown {
        name: arg.display().to_string(),
    })
}

/// Expands plan `text` from `source`.
fn expand(source: Source, text: String) -> Result<Plan, PlanError> {
    let err = |at: usize, what: String| PlanError::Invalid {
        plan: source.clone(),
        line: line_of(&text, at),
        what,
    };
    let raw: RawPlan = toml::from_str(&text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        err(at, e.message().trim().to_string())
    })?;
    if raw.experiment.is_empty() {
        return Err(err(0, "the plan has no [[experiment]]".into()));
    }
    count_runs(&raw, &err)?;
    let mut runs: Vec<Run> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    // Each experiment's name and where it is named: names are unique, so no run id is nested in
    // another's directory (ids are `name/optimizer[/axes]`, and one experiment's runs of one
    // optimizer all have the same axes).
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for exp in &raw.experiment {
        let exp_at = exp.span().start;
        let table = exp.get_ref();
        let mut name = None;
        // Per key (in KEYS order): its values, whether it is an axis, and where the key is.
        let mut axes: Vec<(Key, Vec<Value>, bool, usize)> = Vec::new();
        for (key, value) in table {
            let at = key.span().start;
            let k = key.get_ref().as_str();
            if k == "name" {
                match value.get_ref() {
                    toml::Value::String(s)
                        if !s.is_empty()
                            && s.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                            && !s.starts_with('.') =>
                    {
                        if let Some(&first) = names.get(s) {
                            return Err(err(
                                at,
                                format!(
                                    "a second experiment named `{s}` (the first is named on line {}); experiment names must be unique",
                                    line_of(&text, first)
                                ),
                            ));
                        }
                        names.insert(s.clone(), at);
                        name = Some(s.clone());
                    }
                    _ => {
                        return Err(err(
                            at,
                            "`name` must be a non-empty name of letters, digits, `-`, `_` and `.`"
                                .into(),
                        ))
                    }
                }
                continue;
            }
            if k == "description" {
                continue;
            }
            let Some(&key) = KEYS.iter().find(|known| known.name == k) else {
                let what = if SWEEP_KEYS.contains(&k) {
                    format!("`{k}` is set by the sweep, not by a plan")
                } else {
                    format!(
                        "unknown key `{k}` (plan keys: name, description, {})",
                        KEYS.map(|k| k.name).join(", ")
                    )
                };
                return Err(err(at, what));
            };
            let v = value.get_ref();
            let v_at = value.span().start;
            let (values, axis) = if is_axis(key, v) {
                let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
                if items.is_empty() {
                    return Err(err(v_at, format!("the axis `{}` is empty", key.name)));
                }
                let vals = items
                    .iter()
                    .map(|x| typed(key, x))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|w| err(v_at, w))?;
                (vals, true)
            } else {
                (vec![typed(key, v).map_err(|w| err(v_at, w))?], false)
            };
            axes.push((key, values, axis, at));
        }
        let name = name.ok_or_else(|| err(exp_at, "an [[experiment]] has no `name`".into()))?;
        axes.sort_by_key(|(k, ..)| KEYS.iter().position(|known| known == k));
        // The product of the axes, first axis slowest.
        let mut combos: Vec<Vec<usize>> = vec![Vec::new()];
        for (_, values, ..) in &axes {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    (0..values.len()).map(move |i| {
                        let mut c = c.clone();
                        c.push(i);
                        c
                    })
                })
                .collect();
        }
        for combo in combos {
            let optimizer = axes
                .iter()
                .zip(&combo)
                .find_map(|((k, values, ..), &i)| match &values[i] {
                    Value::Str(s) if k.name == "optimizer" => Some(s.clone()),
                    _ => None,
                });
            let Some(optimizer) = optimizer else {
                return Err(err(
                    exp_at,
                    format!("experiment `{name}` has no `optimizer`"),
                ));
            };
            let opt_at = axes
                .iter()
                .find(|(k, ..)| k.name == "optimizer")
                .map_or(exp_at, |a| a.3);
            let kind: Variant = optimizer.parse().map_err(|e| err(opt_at, format!("{e}")))?;
            // The keys that apply to this run, with the values of this combination.
            let applying = axes
                .iter()
                .zip(&combo)
                .filter(|((k, ..), _)| k.applies.to(kind));
            let options: Vec<(&'static str, Value)> = applying
                .clone()
                .map(|((k, values, ..), &i)| (k.name, values[i].clone()))
                .collect();
            let mut id = format!("{name}/{optimizer}");
            let varying: Vec<String> = applying
                .filter(|((k, _, axis, _), _)| *axis && k.name != "optimizer")
                .map(|((k, values, ..), &i)| format!("{}={}", k.short, values[i]))
                .collect();
            if !varying.is_empty() {
                id.push('/');
                id.push_str(&varying.join(","));
            }
            // The key the run is refused for: the first without which train accepts it (none
            // when a key is missing: then the experiment).
            let config = resolve(&options).map_err(|w| {
                let at = culprit(&options)
                    .and_then(|k| axes.iter().find(|a| a.0.name == k))
                    .map_or(exp_at, |a| a.3);
                err(at, format!("run {id}: {w}"))
            })?;
            let run = Run {
                index: runs.len(),
                id,
                experiment: name.clone(),
                options,
                config,
            };
            if let Some(&other) = seen.get(&run.id) {
                return Err(err(
                    exp_at,
                    format!(
                        "runs {} and {} would share the directory {} (give them different names or axes)",
                        other, run.index, run.id
                    ),
                ));
            }
            seen.insert(run.id.clone(), run.index);
            runs.push(run);
        }
    }
    // Never reached while names are unique; kept so that no id can become another's directory.
    let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| {
        w[1].strip_prefix(w[0])
            .is_some_and(|rest| rest.starts_with('/'))
    }) {
        return Err(err(
            0,
            format!("run {} would lie inside run {}'s directory", w[1], w[0]),
        ));
    }
    Ok(Plan {
        source,
        text,
        description: raw.description.into_inner(),
        runs,
        only: Vec::new(),
    })
}

/// Refuses a plan of more than [`MAX_RUNS`] runs, counting them as the product of each
/// experiment's axis lengths, before anything is expanded.
fn count_runs(raw: &RawPlan, err: &dyn Fn(usize, String) -> PlanError) -> Result<(), PlanError> {
    let mut total: u64 = 0;
    let mut first_over = None;
    for exp in &raw.experiment {
        let runs = exp
            .get_ref()
            .iter()
            .filter_map(|(k, v)| {
                let key = KEYS.iter().find(|known| known.name == k.get_ref())?;
                let v = v.get_ref();
                is_axis(*key, v).then(|| v.as_array().map_or(1, Vec::len) as u64)
            })
            .fold(1u64, u64::saturating_mul);
        total = total.saturating_add(runs);
        if total > MAX_RUNS && first_over.is_none() {
            first_over = Some(exp.span().start);
        }
    }
    match first_over {
        Some(at) => Err(err(
            at,
            format!(
                "the plan has {total} runs, more than the {MAX_RUNS} a plan may have; split it"
            ),
        )),
        None => Ok(()),
    }
}

/// The first option of a refused run (in [`KEYS`] order) without which `train` accepts it.
fn culprit(options: &[(&'static str, Value)]) -> Option<&'static str> {
    options.iter().enumerate().find_map(|(i, (key, _))| {
        let mut without = options.to_vec();
        without.remove(i);
        resolve(&without).is_ok().then_some(*key)
    })
}

/// What `train` would run for these plan values: the options they give, resolved as `train`
/// resolves its own ([`crate::config::Options::resolve`]).
fn resolve(options: &[(&'static str, Value)]) -> Result<RunConfig, String> {
    keys::options(options)?.resolve().map_err(|e| e.to_string())
}

impl Plan {
    /// The run at `index` of the expanded plan.
    pub fn run(&self, index: usize) -> Option<&Run> {
        self.runs.iter().find(|r| r.index == index)
    }

    /// The plan restricted to the experiments named (all of it when `names` is empty).
    ///
    /// # Errors
    /// A name that is not an experiment of the plan.
    pub fn restrict_to(mut self, names: &[String]) -> Result<Plan, PlanError> {
        if names.is_empty() {
            return Ok(self);
        }
        for n in names {
            if !self.runs.iter().any(|r| &r.experiment == n) {
                let mut known: Vec<&str> =
                    self.runs.iter().map(|r| r.experiment.as_str()).collect();
                known.dedup();
                return Err(PlanError::NoExperiment {
                    plan: self.source.clone(),
                    name: n.clone(),
                    known: known.into_iter().map(String::from).collect(),
                });
            }
        }
        self.runs.retain(|r| names.contains(&r.experiment));
        self.only = names.to_vec();
        Ok(self)
    }

    /// The expanded plan as a table: index, id, options, run directory under `out`.
    pub fn show(&self, out: &Path) -> String {
        let mut s = format!(
            "{}: {} ({} run{})\n",
            self.source,
            self.description,
            self.runs.len(),
            if self.runs.len() == 1 { "" } else { "s" }
        );
        for r in &self.runs {
            s.push_str(&format!(
                "{:>4}  {}\n      train {}  ({} epochs)\n      -> {}\n",
                r.index,
                r.id,
                r.train_args().join(" "),
                r.config.epochs,
                r.dir(out).display()
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests;
