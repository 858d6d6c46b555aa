//! What a sweep runs on ([`Resources`]): where each dataset is, whether its files are there,
//! what fetches them, and how runs share the machine.

use crate::data::{DataError, DatasetKind};
use crate::plan::{Plan, Run};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How a sweep finds datasets and spreads runs over the machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// `ROOT/<dataset>` (`mnist`, `fashion-mnist`, `cifar10`, `cifar100`) unless overridden.
    pub data_root: PathBuf,
    /// Per-dataset directories that override the root.
    pub data: Vec<(String, PathBuf)>,
    /// Devices, one per concurrent job in turn (`cpu`, `cuda:0`, …; `auto` lets `train` pick).
    pub devices: Vec<String>,
    /// Runs at once.
    pub jobs: usize,
    /// CPU threads in all, split evenly over the jobs (`None`: the machine's logical CPUs, or
    /// libtorch's choice for a single job).
    pub threads: Option<usize>,
}

impl Resources {
    /// Where `dataset`'s files are.
    pub fn data_dir(&self, dataset: DatasetKind) -> PathBuf {
        let name = dataset.to_string();
        self.data
            .iter()
            .find(|(d, _)| *d == name)
            .map_or_else(|| self.data_root.join(&name), |(_, p)| p.clone())
    }

    /// Threads for each run: the total (by default the machine's logical CPUs) split evenly
    /// over the jobs; `None` (libtorch's choice) for a single job given no total.
    pub(super) fn threads_per_job(&self) -> Option<usize> {
        let jobs = self.jobs.max(1);
        let total = self.threads.or_else(|| {
            (jobs > 1).then(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        })?;
        Some((total / jobs).max(1))
    }
}

/// Why `dataset`'s files cannot be read where `res` says they are, as `DIR: what is missing`;
/// `None` when every file [`crate::data::Dataset::load`] needs is there.
pub fn missing_data(res: &Resources, dataset: DatasetKind) -> Option<String> {
    let dir = res.data_dir(dataset);
    if !dir.exists() {
        return Some(format!("{}: no such directory", dir.display()));
    }
    if !dir.is_dir() {
        return Some(format!("{}: not a directory", dir.display()));
    }
    match crate::data::locate(dataset, &dir) {
        Ok(_) => None,
        Err(DataError::Missing { wanted, tried, .. }) => Some(format!(
            "{}: no {wanted} (looked for {tried})",
            dir.display()
        )),
        Err(e) => Some(format!("{}: {e}", dir.display())),
    }
}

/// The runs of `plan` whose data are missing, each with [`missing_data`]'s reason.
pub fn missing_runs<'p>(plan: &'p Plan, res: &Resources) -> Vec<(&'p Run, String)> {
    plan.runs
        .iter()
        .filter_map(|r| missing_data(res, r.config.dataset).map(|why| (r, why)))
        .collect()
}

/// What fetches or places the missing `datasets`: the exact `cargo xtask data` command for
/// MNIST and Fashion-MNIST (which it fills as `DIR/mnist` and `DIR/fashion-mnist`), where to
/// put CIFAR by hand.
pub fn fetch_hint(datasets: &[DatasetKind], res: &Resources) -> String {
    let mut roots: Vec<String> = Vec::new();
    let mut elsewhere = false;
    let mut by_hand: Vec<String> = Vec::new();
    for &d in datasets {
        let dir = res.data_dir(d);
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        match d {
            DatasetKind::Mnist | DatasetKind::FashionMnist => {
                match dir.parent().filter(|_| dir.ends_with(d.to_string())) {
                    Some(root) => {
                        roots.push(format!("`cargo xtask data --dir {}`", root.display()))
                    }
                    None => elsewhere = true,
                }
            }
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => {
                let (name, archive) = if d == DatasetKind::Cifar10 {
                    ("CIFAR-10", "cifar-10-binary.tar.gz")
                } else {
                    ("CIFAR-100", "cifar-100-binary.tar.gz")
                };
                by_hand.push(format!(
                    "place {name} in {} by hand (the files of {archive})",
                    dir.display()
                ));
            }
        }
    }
    roots.sort();
    roots.dedup();
    by_hand.sort();
    by_hand.dedup();
    let mut hints = Vec::new();
    if !roots.is_empty() {
        hints.push(format!(
            "fetch MNIST and Fashion-MNIST with {}",
            roots.join(" and ")
        ));
    }
    if elsewhere {
        hints.push(
            "`cargo xtask data --dir DIR` fetches MNIST and Fashion-MNIST into DIR/mnist and DIR/fashion-mnist"
                .into(),
        );
    }
    hints.extend(by_hand);
    hints.join("; ")
}
