//! Running a plan: every run of the shard whose record is not there yet, one after another,
//! each trained on the CPU with tch and stepped by hd-core on one flat buffer.

use super::method::Stepper;
use super::plan::{self, Plan, RunSpec, Shard};
use super::record::{self, Diverged, Epoch, Record, Window};
use super::VersusError;
use crate::data::{Dataset, DatasetKind, Split};
use crate::models;
use crate::train::{batches, cross_entropy, evaluate};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{nn, Device, Tensor};

/// Where a plan runs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The output directory (`plan.toml`, `runs/`).
    pub out: PathBuf,
    /// Datasets are in `data_root/mnist`, `data_root/fashion-mnist`.
    pub data_root: PathBuf,
    /// The runs this process takes.
    pub shard: Shard,
}

/// What a call of [`run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// The shard's runs.
    pub runs: usize,
    /// Of them, those recorded before this call (not run again).
    pub recorded_before: usize,
    /// Those run now.
    pub ran: usize,
    /// Of those run now, the diverged ones.
    pub diverged: usize,
}

/// Runs every run of `plan` in `setup.shard` that has no record in `setup.out`, in the plan's
/// order, and writes each one's record as it ends; `done` is told of each (the run, its
/// record, its position among the runs to do and their number). The plan's text goes to
/// `out/plan.toml` first, for `report`.
///
/// # Errors
/// A record there made under other settings than the plan's ([`VersusError::Stale`], before
/// anything runs), a record that cannot be read, missing or malformed data, a dataset smaller
/// than the plan's two sets, a libtorch failure, an hd-core error other than a non-finite value
/// (which ends its run as diverged, a result), a file that cannot be written.
pub fn run(
    plan: &Plan,
    setup: &Setup,
    mut done: impl FnMut(&RunSpec, &Record, usize, usize),
) -> Result<Tally, VersusError> {
    let out = &setup.out;
    let runs_dir = record::dir(out);
    std::fs::create_dir_all(&runs_dir).map_err(|source| VersusError::Io {
        path: runs_dir.clone(),
        source,
    })?;
    let copy = plan::copy_in(out);
    let tmp = out.join(format!(".plan.toml.{}.tmp", std::process::id()));
    crate::files::write_atomic(&copy, &tmp, |t| std::fs::write(t, plan.text.as_bytes()))
        .map_err(|source| VersusError::Io { path: copy, source })?;

    let mine: Vec<RunSpec> = plan
        .runs()
        .into_iter()
        .filter(|r| setup.shard.takes(r.index))
        .collect();
    let mut todo = Vec::new();
    for r in &mine {
        let path = record::path(out, r);
        if !path.exists() {
            todo.push(r);
            continue;
        }
        let rec = record::read(&path)?;
        if !rec.is_of(r) {
            return Err(VersusError::Stale {
                what: stale_field(&rec, r),
                path,
            });
        }
    }
    let mut tally = Tally {
        runs: mine.len(),
        recorded_before: mine.len() - todo.len(),
        ran: 0,
        diverged: 0,
    };
    let mut data: Option<(DatasetKind, Data)> = None;
    for (k, r) in todo.iter().enumerate() {
        let kind = r.settings.dataset;
        if data.as_ref().is_none_or(|(d, _)| *d != kind) {
            data = Some((kind, Data::load(kind, &setup.data_root, plan)?));
        }
        let Some((_, d)) = &data else { continue };
        let rec = train(r, d)?;
        record::write(&record::path(out, r), &rec)?;
        tally.ran += 1;
        tally.diverged += usize::from(rec.diverged.is_some());
        done(r, &rec, k + 1, todo.len());
    }
    Ok(tally)
}

/// The first thing a record differs in from its run, for the stale error.
fn stale_field(rec: &Record, r: &RunSpec) -> String {
    let (a, b) = (&rec.settings, &r.settings);
    let opt = |x: Option<f32>| x.map_or_else(|| "none".to_string(), |x| x.to_string());
    let fields = [
        ("model", a.model.to_string(), b.model.to_string()),
        ("dataset", a.dataset.to_string(), b.dataset.to_string()),
        ("epochs", a.epochs.to_string(), b.epochs.to_string()),
        ("batch", a.batch.to_string(), b.batch.to_string()),
        ("l2", a.l2.to_string(), b.l2.to_string()),
        ("training", a.training.to_string(), b.training.to_string()),
        (
            "validation",
            a.validation.to_string(),
            b.validation.to_string(),
        ),
        ("beta", opt(a.beta), opt(b.beta)),
        ("kappa", opt(a.kappa), opt(b.kappa)),
        ("task", rec.task.clone(), r.task.name.clone()),
        ("method", rec.method.id().into(), r.tuned.method.id().into()),
        ("value", rec.value.to_string(), r.value.to_string()),
        ("seed", rec.seed.to_string(), r.seed.to_string()),
    ];
    fields
        .into_iter()
        .find(|(_, x, y)| x != y)
        .map_or_else(String::new, |(k, x, y)| {
            format!("{k} {x}, the plan has {y}")
        })
}

/// A dataset with the plan's two sets: the first `training` images of its training split and
/// the last `validation`.
struct Data {
    set: Dataset,
    fit: Split,
    valid: Split,
}

impl Data {
    fn load(kind: DatasetKind, root: &Path, plan: &Plan) -> Result<Data, VersusError> {
        let dir = root.join(kind.to_string());
        let set = Dataset::load(kind, &dir, Device::Cpu)?;
        let n = set.train.len();
        if plan.training + plan.validation > n {
            return Err(VersusError::TooFewImages {
                dir,
                have: n,
                training: plan.training,
                validation: plan.validation,
            });
        }
        let part = |start: i64, len: i64| -> Result<Split, tch::TchError> {
            Ok(Split {
                images: set.train.images.f_narrow(0, start, len)?,
                labels: set.train.labels.f_narrow(0, start, len)?,
            })
        };
        let fit = part(0, plan.training)?;
        let valid = part(n - plan.validation, plan.validation)?;
        Ok(Data { set, fit, valid })
    }
}

/// The model's variables as one flat buffer, in a fixed order (sorted by name).
struct Flat {
    vars: Vec<Tensor>,
    sizes: Vec<usize>,
}

impl Flat {
    fn of(vs: &nn::VarStore) -> Flat {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let vars: Vec<Tensor> = named.into_iter().map(|(_, t)| t).collect();
        let sizes = vars.iter().map(Tensor::numel).collect();
        Flat { vars, sizes }
    }

    fn len(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// Copies `tensors` (the variables or their gradients, in order) into `out`.
    fn gather(&self, tensors: &[Tensor], out: &mut [f32]) -> Result<(), tch::TchError> {
        let mut at = 0;
        for (t, &n) in tensors.iter().zip(&self.sizes) {
            t.f_contiguous()?.f_copy_data(&mut out[at..at + n], n)?;
            at += n;
        }
        Ok(())
    }

    /// Copies `from` into the variables.
    fn scatter(&mut self, from: &[f32]) -> Result<(), tch::TchError> {
        let mut at = 0;
        tch::no_grad(|| {
            for (t, &n) in self.vars.iter_mut().zip(&self.sizes) {
                let src = Tensor::f_from_slice(&from[at..at + n])?.f_view(t.size().as_slice())?;
                t.f_copy_(&src)?;
                at += n;
            }
            Ok(())
        })
    }
}

/// The minibatch order of one epoch: 0..n shuffled by Fisher–Yates from a SplitMix64 stream
/// seeded by (seed, epoch). The same for every method, and independent of libtorch's
/// generator, which the initialisation draws from.
pub(super) fn order(n: usize, seed: u64, epoch: u32) -> Vec<i64> {
    let mut state = seed ^ u64::from(epoch).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut v: Vec<i64> = (0..n as i64).collect();
    for i in (1..n).rev() {
        // A uniform j in 0..=i by Lemire's multiply-shift (bias below 2^−40 here).
        let j = ((u128::from(next()) * (i as u128 + 1)) >> 64) as usize;
        v.swap(i, j);
    }
    v
}

/// The end of window `k` (from 1) of `count` in an epoch of `per_epoch` iterations, as an
/// iteration within the epoch: the windows split the epoch as evenly as whole iterations allow.
pub(super) fn window_end(k: u64, count: u64, per_epoch: u64) -> u64 {
    k * per_epoch / count
}

/// Trains run `r` on `data` and returns its record (diverged or not).
fn train(r: &RunSpec, data: &Data) -> Result<Record, VersusError> {
    let started = Instant::now();
    let s = &r.settings;
    tch::manual_seed(r.seed as i64);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = models::build(&vs.root(), &s.model, data.set.kind.spec())?;
    let mut flat = Flat::of(&vs);
    let mut theta = vec![0.0f32; flat.len()];
    flat.gather(&flat.vars, &mut theta)?;
    let opt_err = |source| VersusError::Optimizer {
        run: r.id(),
        source,
    };
    let mut stepper = Stepper::new(r.tuned, r.value, &theta).map_err(opt_err)?;
    let mut grads = vec![0.0f32; theta.len()];
    let mut scratch = Vec::new();
    let n = data.fit.len();
    let (batch, per_epoch) = batches(n, s.batch);
    let per_epoch = per_epoch as u64;
    let count = per_epoch.min(10);
    let mut rec = Record {
        task: r.task.name.clone(),
        method: r.tuned.method,
        knob: r.tuned.method.knob(),
        value: r.value,
        seed: r.seed,
        settings: s.clone(),
        iterations_per_epoch: per_epoch,
        windows: Vec::new(),
        epochs: Vec::new(),
        final_train_loss: None,
        final_validation_loss: None,
        seconds: 0.0,
        diverged: None,
    };
    let mut iteration = 0u64;
    let diverge = |rec: &mut Record, iteration, reason: &str| {
        rec.diverged = Some(Diverged {
            iteration,
            reason: reason.into(),
        });
        rec.seconds = started.elapsed().as_secs_f64();
    };
    for epoch in 1..=s.epochs {
        let order = order(n as usize, r.seed, epoch);
        let (mut epoch_sum, mut window_sum, mut window_len, mut k) = (0.0, 0.0, 0u64, 1);
        for (i, index) in order.chunks(batch as usize).enumerate() {
            let (x, y) = data
                .set
                .batch(&data.fit, &Tensor::f_from_slice(index)?, false)?;
            let loss = cross_entropy(&net.forward_t(&x, true), &y)?;
            let l = loss.f_double_value(&[])?;
            iteration += 1;
            if !l.is_finite() {
                diverge(&mut rec, iteration, "the training loss is not finite");
                return Ok(rec);
            }
            let g = Tensor::f_run_backward(&[&loss], &flat.vars, false, false)?;
            flat.gather(&g, &mut grads)?;
            for (g, t) in grads.iter_mut().zip(&theta) {
                *g += s.l2 * *t;
            }
            match stepper.step(&mut theta, &grads) {
                Ok(()) => {}
                Err(hd_core::Error::NonFinite) => {
                    let why = "hd-core found a non-finite gradient or step size";
                    diverge(&mut rec, iteration, why);
                    return Ok(rec);
                }
                Err(e) => return Err(opt_err(e)),
            }
            flat.scatter(&theta)?;
            (epoch_sum, window_sum, window_len) = (epoch_sum + l, window_sum + l, window_len + 1);
            if i as u64 + 1 == window_end(k, count, per_epoch) {
                rec.windows.push(Window {
                    iteration,
                    loss: window_sum / window_len as f64,
                });
                (window_sum, window_len, k) = (0.0, 0, k + 1);
            }
        }
        let moved = stepper.eval_point(&theta, &mut scratch).map_err(opt_err)?;
        if let Some(x) = moved {
            flat.scatter(x)?;
        }
        let (validation_loss, validation_accuracy) = evaluate(&net, &data.set, &data.valid)?;
        if moved.is_some() {
            flat.scatter(&theta)?;
        }
        if !validation_loss.is_finite() {
            diverge(&mut rec, iteration, "the validation loss is not finite");
            return Ok(rec);
        }
        rec.epochs.push(Epoch {
            epoch,
            train_loss: epoch_sum / per_epoch as f64,
            validation_loss,
            validation_accuracy,
        });
    }
    rec.final_train_loss = rec.epochs.last().map(|e| e.train_loss);
    rec.final_validation_loss = rec.epochs.last().map(|e| e.validation_loss);
    rec.seconds = started.elapsed().as_secs_f64();
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A permutation, the same for the same (seed, epoch), another for another epoch.
    #[test]
    fn an_epochs_order_is_a_permutation_fixed_by_seed_and_epoch() {
        let a = order(1000, 7, 1);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<i64>>());
        assert_eq!(a, order(1000, 7, 1));
        assert_ne!(a, order(1000, 7, 2));
        assert_ne!(a, order(1000, 8, 1));
    }

    /// Ten windows over 391 iterations end at ⌊391k/10⌋: 39, 78, …, 351, 391; fewer
    /// iterations than ten make one window each.
    #[test]
    fn windows_split_an_epoch_evenly() {
        let ends: Vec<u64> = (1..=10).map(|k| window_end(k, 10, 391)).collect();
        assert_eq!(ends, [39, 78, 117, 156, 195, 234, 273, 312, 351, 391]);
        let ends: Vec<u64> = (1..=4).map(|k| window_end(k, 4, 4)).collect();
        assert_eq!(ends, [1, 2, 3, 4]);
    }
}
