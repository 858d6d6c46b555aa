//! `hd-native bench`: optimizer step time against tch's own optimizers, and end-to-end
//! training throughput of each HD variant against its base, measured side by side.
//!
//! Every contender is built once; rounds then time each in turn (interleaved, so drift in the
//! machine's speed hits all alike) and the median round is reported. Output is a Markdown
//! table, ready for BENCHMARKS.md.

use crate::config::{OptimizerKind, Options};
use crate::data::{Dataset, DatasetKind};
use crate::models::{self, Model, ModelName};
use crate::optim::HdOptimizer;
use crate::train::parse_device;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hd_core::Family;
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// `hd-native bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// CPU threads for libtorch's operations [default: libtorch's choice].
    #[arg(long, global = true)]
    pub threads: Option<i32>,
    /// Which benchmark.
    #[command(subcommand)]
    pub what: BenchWhat,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Optimizer step time on a model's parameter set (random gradients), next to tch's
    /// nn::Sgd / nn::Adam.
    Step {
        /// Device: auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Model whose parameters are stepped (default sizes): resnet18 has 11.2 M.
        #[arg(long, value_enum, default_value_t = ModelName::Resnet18)]
        model: ModelName,
        /// Steps per timed round.
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Timed rounds (the median is reported).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Elements per chunk of hd's step [default: 2^18 on CPU, all at once on GPU].
        #[arg(long)]
        chunk: Option<usize>,
    },
    /// Training throughput (images/s: batch, forward, backward, step) per optimizer.
    Throughput {
        /// Device: auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Model (default sizes).
        #[arg(long, value_enum, default_value_t = ModelName::Mlp)]
        model: ModelName,
        /// Dataset shape (the data are random).
        #[arg(long, default_value = "mnist")]
        dataset: DatasetKind,
        /// Minibatch size.
        #[arg(long, default_value_t = 128)]
        batch_size: i64,
        /// Iterations per timed round.
        #[arg(long, default_value_t = 50)]
        iters: i64,
        /// Timed rounds (the median is reported).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
}

/// Runs a benchmark and prints its table.
///
/// # Errors
/// An unknown model or device, or a libtorch error.
pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(n) = args.threads {
        anyhow::ensure!(n >= 1, "--threads must be at least 1");
        tch::set_num_threads(n);
    }
    match &args.what {
        BenchWhat::Step {
            device,
            model,
            steps,
            rounds,
            chunk,
        } => step(
            parse_device(device)?,
            &model.model(),
            *steps,
            *rounds,
            *chunk,
        ),
        BenchWhat::Throughput {
            device,
            model,
            dataset,
            batch_size,
            iters,
            rounds,
        } => throughput(
            parse_device(device)?,
            &model.model(),
            *dataset,
            *batch_size,
            *iters,
            *rounds,
        ),
    }
}

fn cudnn_autotune(device: Device) {
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// hd's configuration for a benchmark contender: the runner's defaults.
fn core_config(kind: OptimizerKind, model: &Model) -> Result<hd_core::Config> {
    let options = Options {
        model: Some(model.clone()),
        dataset: Some(DatasetKind::Cifar10),
        optimizer: Some(kind),
        ..Options::default()
    };
    Ok(options.resolve()?.core())
}

fn spec_for(model: &Model) -> DatasetKind {
    match model {
        Model::Logreg | Model::Mlp { .. } => DatasetKind::Mnist,
        _ => DatasetKind::Cifar10,
    }
}

/// Gives every trainable variable a gradient of small random values.
fn random_grads(vs: &nn::VarStore) -> Result<()> {
    let vars = vs.trainable_variables();
    let mut s = Tensor::f_zeros([], (Kind::Float, vs.device()))?;
    for v in &vars {
        s = s.f_add(&v.f_sum(Kind::Float)?.f_mul_scalar(0.0)?)?;
    }
    s.f_backward()?;
    tch::no_grad(|| -> Result<()> {
        for v in &vars {
            let g = v.f_grad()?;
            g.shallow_clone()
                .f_copy_(&g.f_randn_like()?.f_mul_scalar(1e-3)?)?;
        }
        Ok(())
    })
}

enum Stepper {
    Tch(nn::Optimizer),
    Hd(HdOptimizer),
}

impl Stepper {
    fn step(&mut self) -> Result<()> {
        match self {
            Stepper::Tch(o) => o.step(),
            Stepper::Hd(o) => o.step()?,
        }
        Ok(())
    }
}

/// Optimizer step time for `model`'s parameters.
fn step(
    device: Device,
    model: &Model,
    steps: usize,
    rounds: usize,
    chunk: Option<usize>,
) -> Result<()> {
    let spec = spec_for(model).spec();
    let alpha0 = 1e-3;
    let mut contenders: Vec<(String, Option<OptimizerKind>, Stepper, nn::VarStore)> = Vec::new();
    let mut n_params = 0i64;
    for family in Family::ALL {
        let vs = nn::VarStore::new(device);
        let _net = models::build(&vs.root(), model, spec)?;
        random_grads(&vs)?;
        let (name, opt) = match family {
            Family::Sgd => ("tch nn::Sgd", nn::Sgd::default().build(&vs, alpha0)?),
            Family::Sgdn => (
                "tch nn::Sgd (Nesterov 0.9)",
                nn::Sgd {
                    momentum: 0.9,
                    nesterov: true,
                    ..Default::default()
                }
                .build(&vs, alpha0)?,
            ),
            Family::Adam => ("tch nn::Adam", nn::Adam::default().build(&vs, alpha0)?),
        };
        contenders.push((name.to_string(), Some(family.base()), Stepper::Tch(opt), vs));
    }
    for kind in OptimizerKind::ALL {
        let vs = nn::VarStore::new(device);
        let _net = models::build(&vs.root(), model, spec)?;
        let mut opt = HdOptimizer::new(&vs, core_config(kind, model)?)?;
        if let Some(c) = chunk {
            opt.set_chunk_len(c);
        }
        random_grads(&vs)?;
        n_params = opt.num_parameters();
        contenders.push((format!("hd {kind}"), Some(kind), Stepper::Hd(opt), vs));
    }
    let mut times = vec![Vec::new(); contenders.len()];
    // Contenders take turns step by step, so a change in the machine's load hits all alike.
    for round in 0..=rounds {
        let mut total = vec![0.0f64; contenders.len()];
        for _ in 0..steps {
            for ((_, _, stepper, _), t) in contenders.iter_mut().zip(total.iter_mut()) {
                sync(device);
                let t0 = Instant::now();
                stepper.step()?;
                sync(device);
                *t += t0.elapsed().as_secs_f64();
            }
        }
        // Round 0 warms caches and allocators and is not counted.
        if round > 0 {
            for (t, all) in total.iter().zip(times.iter_mut()) {
                all.push(t / steps as f64);
            }
        }
    }
    let med: Vec<f64> = times.into_iter().map(median).collect();
    let tch_time = |kind: OptimizerKind| {
        contenders
            .iter()
            .zip(&med)
            .find(|((n, k, _, _), _)| n.starts_with("tch") && *k == Some(kind.base()))
            .map(|(_, t)| *t)
    };
    println!(
        "Optimizer step, {model} parameter set ({n_params} parameters), {device:?}, \
         median of {rounds} rounds of {steps} steps\n"
    );
    println!("| optimizer | ms/step | vs tch base | bytes/param (§7) | GB/s |");
    println!("|---|---:|---:|---:|---:|");
    for ((name, kind, _, _), t) in contenders.iter().zip(&med) {
        let kind = kind.context("contender without a kind")?;
        let ratio = tch_time(kind).map_or(f64::NAN, |b| t / b);
        // DESIGN §7's bytes per parameter (hd-core's cost model); a tch row is its base rule.
        let rule = if name.starts_with("tch") {
            kind.base()
        } else {
            kind
        };
        let bytes = rule.model_bytes_per_parameter() as f64;
        let gbs = bytes * n_params as f64 / t / 1e9;
        println!(
            "| {name} | {:.3} | {ratio:.2}× | {bytes:.0} | {gbs:.1} |",
            t * 1e3
        );
    }
    Ok(())
}

/// Training throughput for every optimizer on random data of a dataset's shape.
fn throughput(
    device: Device,
    model: &Model,
    dataset: DatasetKind,
    batch: i64,
    iters: i64,
    rounds: usize,
) -> Result<()> {
    cudnn_autotune(device);
    let data = Dataset::synthetic(dataset, batch * iters, batch, device)?;
    struct Contender {
        kind: OptimizerKind,
        net: models::Net,
        opt: HdOptimizer,
        _vs: nn::VarStore,
    }
    let mut contenders = Vec::new();
    for kind in OptimizerKind::ALL {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(device);
        let net = models::build(&vs.root(), model, dataset.spec())?;
        let opt = HdOptimizer::new(&vs, core_config(kind, model)?)?;
        contenders.push(Contender {
            kind,
            net,
            opt,
            _vs: vs,
        });
    }
    let mut rates = vec![Vec::new(); contenders.len()];
    // Contenders take turns iteration by iteration, so a change in the machine's load hits all
    // alike; each sees the same batches.
    for round in 0..=rounds {
        tch::manual_seed(round as i64);
        let perm = Tensor::f_randperm(batch * iters, (Kind::Int64, device))?;
        let mut total = vec![0.0f64; contenders.len()];
        for i in 0..iters {
            let index = perm.f_narrow(0, i * batch, batch)?;
            for (c, t) in contenders.iter_mut().zip(total.iter_mut()) {
                sync(device);
                let t0 = Instant::now();
                let (x, y) = data.batch(&data.train, &index, true)?;
                let loss = crate::train::cross_entropy(&c.net.forward_t(&x, true), &y)?;
                c.opt.backward_step(&loss)?;
                // What the runner keeps per step for its log.
                let kept = (loss.f_detach()?, c.opt.alpha()?);
                sync(device);
                *t += t0.elapsed().as_secs_f64();
                drop(kept);
            }
        }
        if round > 0 {
            for (t, rate) in total.iter().zip(rates.iter_mut()) {
                rate.push((batch * iters) as f64 / t);
            }
        }
    }
    let med: Vec<f64> = rates.into_iter().map(median).collect();
    println!(
        "Training throughput, {model} on {dataset}-shaped data, batch {batch}, {device:?}, \
         median of {rounds} rounds of {iters} iterations\n"
    );
    println!("| optimizer | images/s | vs its base |");
    println!("|---|---:|---:|");
    for (c, r) in contenders.iter().zip(&med) {
        let base = contenders
            .iter()
            .zip(&med)
            .find(|(b, _)| b.kind == c.kind.base())
            .map_or(f64::NAN, |(_, r)| *r);
        println!("| {} | {r:.0} | {:.3} |", c.kind, r / base);
    }
    Ok(())
}
