//! The head-to-head's plan: tasks, methods with their grids, seeds and the shared settings,
//! as a small TOML schema of its own, and the runs it expands to.

use super::method::{Method, Stepper, Tuned};
use super::VersusError;
use crate::data::DatasetKind;
use crate::files;
use crate::models::{Model, ModelName};
use crate::plan::line_of;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A plan: what every run shares, the tasks in priority order and the methods with their
/// grids. Every run is one task × seed × method × knob value.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The plan's text, as read: what `run` keeps beside the records for `report`.
    pub text: String,
    /// One line saying what the plan is for.
    pub description: String,
    /// Minibatch size.
    pub batch: i64,
    /// Coupled L2 λ, added to every method's gradient (g + λθ).
    pub l2: f32,
    /// Seeds: each fixes the initialisation and the minibatch order, the same for every method.
    pub seeds: Vec<u64>,
    /// Training images: the first this many of the dataset's training split.
    pub training: i64,
    /// Validation images: the last this many of the dataset's training split.
    pub validation: i64,
    /// The tasks, in the order they run.
    pub tasks: Vec<Task>,
    /// The methods, in the order they run and are reported.
    pub methods: Vec<Grid>,
}

/// A model on a dataset for a number of epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Its name (letters, digits, `-`): the records' file names start with it.
    pub name: String,
    /// The model.
    pub model: Model,
    /// The dataset.
    pub dataset: DatasetKind,
    /// Epochs of every run.
    pub epochs: u32,
}

/// A method, its settings and the values its knob takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// The method with β and κ where it takes them.
    pub tuned: Tuned,
    /// The knob's values, in the plan's order.
    pub values: Vec<f32>,
}

/// Everything a run's result depends on besides its task name, method, knob value and seed:
/// a record made under other settings than the plan's is stale.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// The model.
    pub model: Model,
    /// The dataset.
    pub dataset: DatasetKind,
    /// Epochs.
    pub epochs: u32,
    /// Minibatch size.
    pub batch: i64,
    /// Coupled L2 λ.
    pub l2: f32,
    /// Training images (the first of the training split).
    pub training: i64,
    /// Validation images (the last of the training split).
    pub validation: i64,
    /// β (HD rules).
    pub beta: Option<f32>,
    /// κ (stacked rules).
    pub kappa: Option<f32>,
}

/// One run of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// Its position in the plan (what `--shard` divides).
    pub index: usize,
    /// The task.
    pub task: Task,
    /// The method with its settings.
    pub tuned: Tuned,
    /// The knob's value.
    pub value: f32,
    /// The seed.
    pub seed: u64,
    /// What else the result depends on.
    pub settings: Settings,
}

impl RunSpec {
    /// `<task>-<method>-<value>-s<seed>`, e.g. `logreg-mnist-sgd-hd-1e-3-s0`: its record's
    /// file stem.
    pub fn id(&self) -> String {
        format!(
            "{}-{}-{}-s{}",
            self.task.name,
            self.tuned.method.id(),
            knob_text(self.value),
            self.seed
        )
    }
}

/// A knob value as ids and tables write it: the shortest exponent form that reads back as
/// the same f32 (`1e-3`, `2.5e-3`, `1e0`).
pub fn knob_text(v: f32) -> String {
    format!("{v:e}")
}

/// Which runs a process takes: those whose index is `index` mod `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// I, in 0..N.
    pub index: usize,
    /// N ≥ 1.
    pub count: usize,
}

impl Shard {
    /// Every run.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N` with 0 ≤ I < N.
    ///
    /// # Errors
    /// [`VersusError::Shard`] for anything else.
    pub fn parse(s: &str) -> Result<Shard, VersusError> {
        let bad = || VersusError::Shard(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether run number `index` is this shard's.
    pub fn takes(self, index: usize) -> bool {
        index % self.count == self.index
    }
}

impl Plan {
    /// Every run: task by task (the plan's priority), within a task seed by seed, then method
    /// by method and knob value by knob value, so an unfinished plan has whole comparisons
    /// of its first tasks and seeds.
    pub fn runs(&self) -> Vec<RunSpec> {
        let mut runs = Vec::new();
        for task in &self.tasks {
            for &seed in &self.seeds {
                for grid in &self.methods {
                    for &value in &grid.values {
                        runs.push(RunSpec {
                            index: runs.len(),
                            task: task.clone(),
                            tuned: grid.tuned,
                            value,
                            seed,
                            settings: Settings {
                                model: task.model.clone(),
                                dataset: task.dataset,
                                epochs: task.epochs,
                                batch: self.batch,
                                l2: self.l2,
                                training: self.training,
                                validation: self.validation,
                                beta: grid.tuned.beta,
                                kappa: grid.tuned.kappa,
                            },
                        });
                    }
                }
            }
        }
        runs
    }
}

/// The models a task names: the paper's LogReg and its MLP (784-1000-1000-10).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum TaskModel {
    Logreg,
    Mlp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    description: String,
    batch: Spanned<i64>,
    l2: Spanned<f32>,
    seeds: Spanned<Vec<u64>>,
    training: Spanned<i64>,
    validation: Spanned<i64>,
    #[serde(default)]
    task: Vec<Spanned<RawTask>>,
    #[serde(default)]
    method: Vec<Spanned<RawMethod>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    name: Spanned<String>,
    model: TaskModel,
    dataset: DatasetKind,
    epochs: Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMethod {
    name: Spanned<Method>,
    alpha0: Option<Spanned<Vec<f32>>>,
    d0: Option<Spanned<Vec<f32>>>,
    lr: Option<Spanned<Vec<f32>>>,
    beta: Option<Spanned<f32>>,
    kappa: Option<Spanned<f32>>,
}

/// Reads the plan in `file`.
///
/// # Errors
/// [`VersusError::ReadPlan`] when it cannot be read; [`VersusError::Plan`] as [`parse`].
pub fn load(file: &Path) -> Result<Plan, VersusError> {
    let text =
        files::read_text(file, files::PLAN_LIMIT, files::Links::Follow).map_err(|source| {
            VersusError::ReadPlan {
                file: file.to_path_buf(),
                source,
            }
        })?;
    parse(file, &text)
}

/// Parses plan `text` (from `file`, named in errors).
///
/// # Errors
/// [`VersusError::Plan`] naming the file, the line and the problem: TOML syntax, an unknown
/// key, a key the method does not take (β for SGD, `lr` for Prodigy) or a missing one, a value
/// out of its domain (hd-core's check of every knob value), an empty or repeated list, two
/// tasks or methods of the same name.
pub fn parse(file: &Path, text: &str) -> Result<Plan, VersusError> {
    let err = |at: usize, what: String| VersusError::Plan {
        file: file.to_path_buf(),
        line: line_of(text, at),
        what,
    };
    let raw: RawPlan = toml::from_str(text).map_err(|e| {
        err(
            e.span().map_or(0, |s| s.start),
            e.message().trim().to_string(),
        )
    })?;
    let positive = |v: &Spanned<i64>, key: &str| match *v.get_ref() {
        n if n >= 1 => Ok(n),
        _ => Err(err(v.span().start, format!("`{key}` must be at least 1"))),
    };
    let batch = positive(&raw.batch, "batch")?;
    let training = positive(&raw.training, "training")?;
    let validation = positive(&raw.validation, "validation")?;
    let l2 = *raw.l2.get_ref();
    if !(l2.is_finite() && l2 >= 0.0) {
        return Err(err(
            raw.l2.span().start,
            "`l2` must be finite and >= 0".into(),
        ));
    }
    let seeds = raw.seeds.get_ref().clone();
    distinct(&seeds, |s| s.to_string())
        .map_err(|what| err(raw.seeds.span().start, format!("`seeds` {what}")))?;
    if raw.task.is_empty() {
        return Err(err(0, "the plan has no [[task]]".into()));
    }
    if raw.method.is_empty() {
        return Err(err(0, "the plan has no [[method]]".into()));
    }
    let mut tasks: Vec<Task> = Vec::new();
    for t in &raw.task {
        let t = t.get_ref();
        let name = t.name.get_ref();
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !plain {
            return Err(err(
                t.name.span().start,
                "a task's `name` is lower-case letters, digits and `-`".into(),
            ));
        }
        if tasks.iter().any(|k| &k.name == name) {
            return Err(err(t.name.span().start, format!("a second task `{name}`")));
        }
        if *t.epochs.get_ref() == 0 {
            return Err(err(
                t.epochs.span().start,
                "`epochs` must be at least 1".into(),
            ));
        }
        tasks.push(Task {
            name: name.clone(),
            model: match t.model {
                TaskModel::Logreg => ModelName::Logreg.model(),
                TaskModel::Mlp => ModelName::Mlp.model(),
            },
            dataset: t.dataset,
            epochs: *t.epochs.get_ref(),
        });
    }
    let mut methods: Vec<Grid> = Vec::new();
    for m in &raw.method {
        let at = m.span().start;
        let m = m.get_ref();
        let method = *m.name.get_ref();
        if methods.iter().any(|g| g.tuned.method == method) {
            return Err(err(
                m.name.span().start,
                format!("a second [[method]] `{}`", method.id()),
            ));
        }
        let knob = method.knob().key();
        let mut values = None;
        for (key, grid) in [("alpha0", &m.alpha0), ("d0", &m.d0), ("lr", &m.lr)] {
            match grid {
                Some(g) if key == knob => values = Some(g),
                Some(g) => {
                    return Err(err(
                        g.span().start,
                        format!(
                            "`{key}` is not {}'s knob (its knob is `{knob}`)",
                            method.id()
                        ),
                    ))
                }
                None => {}
            }
        }
        let values =
            values.ok_or_else(|| err(at, format!("{} needs its grid `{knob}`", method.id())))?;
        let setting = |v: &Option<Spanned<f32>>, key: &str, takes: bool| match (v, takes) {
            (Some(v), true) if v.get_ref().is_finite() && *v.get_ref() >= 0.0 => {
                Ok(Some(*v.get_ref()))
            }
            (Some(v), true) => Err(err(
                v.span().start,
                format!("`{key}` must be finite and >= 0"),
            )),
            (Some(v), false) => Err(err(
                v.span().start,
                format!("{} takes no `{key}`", method.id()),
            )),
            (None, true) => Err(err(at, format!("{} needs `{key}`", method.id()))),
            (None, false) => Ok(None),
        };
        let tuned = Tuned {
            method,
            beta: setting(&m.beta, "beta", method.takes_beta())?,
            kappa: setting(&m.kappa, "kappa", method.takes_kappa())?,
        };
        let grid = values.get_ref().clone();
        distinct(&grid, |v| v.to_string())
            .map_err(|what| err(values.span().start, format!("`{knob}` {what}")))?;
        for &v in &grid {
            Stepper::check(tuned, v)
                .map_err(|e| err(values.span().start, format!("`{knob}` = {v}: {e}")))?;
        }
        methods.push(Grid {
            tuned,
            values: grid,
        });
    }
    Ok(Plan {
        text: text.to_string(),
        description: raw.description,
        batch,
        l2,
        seeds,
        training,
        validation,
        tasks,
        methods,
    })
}

/// `Ok` when `xs` is not empty and holds no value twice (as `key` writes them).
fn distinct<T>(xs: &[T], key: impl Fn(&T) -> String) -> Result<(), String> {
    if xs.is_empty() {
        return Err("is empty".into());
    }
    let mut seen: Vec<String> = Vec::new();
    for x in xs {
        let k = key(x);
        if seen.contains(&k) {
            return Err(format!("holds {k} twice"));
        }
        seen.push(k);
    }
    Ok(())
}

/// The file `run` keeps the plan in, in its output directory: what `report` reads.
pub fn copy_in(out: &Path) -> PathBuf {
    out.join("plan.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"description = "two methods"
batch = 32
l2 = 1e-4
seeds = [0, 1]
training = 200
validation = 100

[[task]]
name = "logreg-mnist"
model = "logreg"
dataset = "mnist"
epochs = 2

[[method]]
name = "sgd-hd-stacked"
alpha0 = [1e-1, 1e-2]
beta = 1e-4
kappa = 0.0

[[method]]
name = "prodigy"
d0 = [1e-6]
"#;

    fn refused(text: &str) -> String {
        parse(Path::new("p.toml"), text)
            .expect_err("refused")
            .to_string()
    }

    /// Runs go task, seed, method, knob value; ids name all four.
    #[test]
    fn a_plan_expands_seed_by_seed() {
        let p = parse(Path::new("p.toml"), PLAN).expect("parses");
        let ids: Vec<String> = p.runs().iter().map(RunSpec::id).collect();
        assert_eq!(
            ids,
            [
                "logreg-mnist-sgd-hd-stacked-1e-1-s0",
                "logreg-mnist-sgd-hd-stacked-1e-2-s0",
                "logreg-mnist-prodigy-1e-6-s0",
                "logreg-mnist-sgd-hd-stacked-1e-1-s1",
                "logreg-mnist-sgd-hd-stacked-1e-2-s1",
                "logreg-mnist-prodigy-1e-6-s1",
            ]
        );
        let r = &p.runs()[0];
        assert_eq!((r.settings.beta, r.settings.kappa), (Some(1e-4), Some(0.0)));
        assert_eq!(p.runs()[2].settings.beta, None);
    }

    /// Each refusal names the line and the key.
    #[test]
    fn bad_plans_are_refused_with_the_line_and_the_key() {
        let e = refused(&PLAN.replace("epochs = 2", "epochs = 2\nlayers = 3"));
        assert!(e.starts_with("p.toml:13: unknown field `layers`"), "{e}");
        let e = refused(&PLAN.replace("d0 = [1e-6]", "d0 = [1e-6]\nbeta = 1e-4"));
        assert_eq!(e, "p.toml:23: prodigy takes no `beta`");
        let e = refused(&PLAN.replace("d0 = [1e-6]", "lr = [1e-6]"));
        assert_eq!(
            e,
            "p.toml:22: `lr` is not prodigy's knob (its knob is `d0`)"
        );
        let e = refused(&PLAN.replace("kappa = 0.0\n", ""));
        assert_eq!(e, "p.toml:14: sgd-hd-stacked needs `kappa`");
        let e = refused(&PLAN.replace("d0 = [1e-6]", "d0 = [1e-6, -1.0]"));
        assert!(e.starts_with("p.toml:22: `d0` = -1: "), "{e}");
        let e = refused(&PLAN.replace("seeds = [0, 1]", "seeds = [1, 1]"));
        assert_eq!(e, "p.toml:4: `seeds` holds 1 twice");
        let e = refused(&PLAN.replace("name = \"prodigy\"", "name = \"nadam\""));
        assert!(e.starts_with("p.toml:21: unknown variant `nadam`"), "{e}");
    }

    /// `I/N` with I < N, nothing else.
    #[test]
    fn a_shard_is_i_of_n() {
        assert_eq!(
            Shard::parse("1/2").expect("parses"),
            Shard { index: 1, count: 2 }
        );
        for bad in ["2/2", "0/0", "1", "a/2", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let s = Shard { index: 1, count: 3 };
        assert_eq!((0..7).filter(|&i| s.takes(i)).collect::<Vec<_>>(), [1, 4]);
    }
}
