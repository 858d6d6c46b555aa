//! `hd-native bench`: optimizer step time against tch's own optimizers, and end-to-end
//! training throughput of each HD variant against its base, measured side by side.
//!
//! Every contender is built once; rounds then time each in turn (interleaved, so drift in the
//! machine's speed hits all alike) and the median round is reported. Output is a Markdown
//! table, ready for BENCHMARKS.md.

use crate::config::{Options, Variant};
use crate::data::{Dataset, DatasetKind};
use crate::models::{self, Model, ModelName};
use crate::train::parse_device;
use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use hd_core::Family;
use hd_fused::verify;
use hd_tch::{Backend, HdOptimizer};
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
        /// hd's backend on a GPU: its default (fused where available), one, or both side by
        /// side.
        #[arg(long, value_enum, default_value_t = Backends::Auto)]
        backend: Backends,
    },
    /// Device copy bandwidth (one tensor copied into another; bytes read + written per second),
    /// the ceiling a step over flat buffers can approach.
    Copy {
        /// Device: auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Elements copied (f32).
        #[arg(long, default_value_t = 1 << 26)]
        elements: i64,
        /// Copies per timed round.
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Timed rounds (the median is reported).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Diagnostic: the fused GPU step against hd-core on slices, every rule and option, 100
    /// steps, to 1e-6; one line per case, and a non-zero exit on any failure.
    #[command(hide = true)]
    VerifyFused {
        /// Device: cuda or cuda:N.
        #[arg(long, default_value = "cuda")]
        device: String,
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
        /// hd's backend on a GPU.
        #[arg(long, value_enum, default_value_t = Backends::Auto)]
        backend: Backends,
    },
}

/// Which of hd's backends a benchmark runs on a GPU (on the CPU there is only libtorch's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backends {
    /// The optimizer's own choice: fused where available.
    Auto,
    /// The libtorch path.
    Libtorch,
    /// The fused kernels (an error where they are not available).
    Fused,
    /// Both, side by side (fused rows only where available).
    Both,
}

impl Backends {
    fn list(self) -> Vec<Option<Backend>> {
        match self {
            Backends::Auto => vec![None],
            Backends::Libtorch => vec![Some(Backend::Libtorch)],
            Backends::Fused => vec![Some(Backend::FusedCuda)],
            Backends::Both => vec![Some(Backend::FusedCuda), Some(Backend::Libtorch)],
        }
    }
}

/// `opt` on `want` (its own choice for `None`): `Ok(false)` when `want` is the fused path
/// and it is not available but `skip` allows that.
fn select(opt: &mut HdOptimizer, want: Option<Backend>, skip: bool) -> Result<bool> {
    let Some(want) = want else {
        return Ok(true);
    };
    let got = opt.set_backend(want);
    if got == want {
        return Ok(true);
    }
    let why = opt
        .fused_unavailable()
        .unwrap_or("not a CUDA device")
        .to_string();
    anyhow::ensure!(skip, "the fused backend is not available: {why}");
    eprintln!("note: fused rows skipped: {why}");
    Ok(false)
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
            backend,
        } => step(
            parse_device(device)?,
            &model.model(),
            (*steps, *rounds),
            *chunk,
            *backend,
        ),
        BenchWhat::Copy {
            device,
            elements,
            steps,
            rounds,
        } => copy(parse_device(device)?, *elements, *steps, *rounds),
        BenchWhat::VerifyFused { device } => verify_fused(parse_device(device)?),
        BenchWhat::Throughput {
            device,
            model,
            dataset,
            batch_size,
            iters,
            rounds,
            backend,
        } => throughput(
            parse_device(device)?,
            &model.model(),
            *dataset,
            (*batch_size, *iters, *rounds),
            *backend,
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
fn core_config(kind: Variant, model: &Model) -> Result<hd_core::Config> {
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
    (steps, rounds): (usize, usize),
    chunk: Option<usize>,
    backends: Backends,
) -> Result<()> {
    let spec = spec_for(model).spec();
    let alpha0 = 1e-3;
    let mut contenders: Vec<(String, Option<Variant>, Stepper, nn::VarStore)> = Vec::new();
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
    for want in backends.list() {
        for kind in Variant::ALL {
            let vs = nn::VarStore::new(device);
            let _net = models::build(&vs.root(), model, spec)?;
            let mut opt = HdOptimizer::new(&vs, core_config(kind, model)?)?;
            if let Some(c) = chunk {
                opt.set_chunk_len(c);
            }
            if !select(&mut opt, want, backends == Backends::Both)? {
                break;
            }
            random_grads(&vs)?;
            n_params = opt.num_parameters();
            let name = if device.is_cuda() {
                format!("hd {kind} ({})", opt.backend())
            } else {
                format!("hd {kind}")
            };
            contenders.push((name, Some(kind), Stepper::Hd(opt), vs));
        }
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
    let tch_time = |kind: Variant| {
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

/// Device copy bandwidth: `dst.copy_(src)` of `elements` f32, counted as read + write.
fn copy(device: Device, elements: i64, steps: usize, rounds: usize) -> Result<()> {
    let src = Tensor::f_randn([elements], (Kind::Float, device))?;
    let mut dst = src.f_zeros_like()?;
    let mut times = Vec::new();
    for round in 0..=rounds {
        sync(device);
        let t0 = Instant::now();
        for _ in 0..steps {
            dst.f_copy_(&src)?;
        }
        sync(device);
        if round > 0 {
            times.push(t0.elapsed().as_secs_f64() / steps as f64);
        }
    }
    let t = median(times);
    let bytes = 2.0 * 4.0 * elements as f64;
    println!(
        "Device copy, {elements} f32 ({:.0} MiB), {device:?}, median of {rounds} rounds of {steps} copies\n",
        4.0 * elements as f64 / (1 << 20) as f64
    );
    println!("| copy | ms | GB/s (read + write) |");
    println!("|---|---:|---:|");
    println!("| tensor copy_ | {:.3} | {:.1} |", t * 1e3, bytes / t / 1e9);
    Ok(())
}

/// `bench verify-fused`: every case of [`verify::cases`] on the fused backend against hd-core.
fn verify_fused(device: Device) -> Result<()> {
    anyhow::ensure!(device.is_cuda(), "verify-fused needs a CUDA device");
    let sizes = verify::DEVICE_SIZES;
    let mut failed = 0;
    println!(
        "Fused GPU step against hd-core on slices, {} steps, tolerance {:e}, sizes {sizes:?}\n",
        verify::STEPS,
        verify::TOL
    );
    println!("| rule | result |");
    println!("|---|---|");
    for (name, config) in verify::cases() {
        let want = verify::reference(config, &sizes, verify::STEPS)?;
        let (got, used, why) = hd_tch::verify::run_optimizer(
            config,
            &sizes,
            verify::STEPS,
            device,
            Backend::FusedCuda,
        )?;
        let verdict = if used != Backend::FusedCuda {
            Err(format!(
                "ran on {used}, not the fused kernels: {}",
                why.as_deref().unwrap_or("no reason given")
            ))
        } else {
            verify::compare(&got, &want)
        };
        match verdict {
            Ok(()) => println!("| {name} | pass |"),
            Err(e) => {
                failed += 1;
                println!("| {name} | FAIL: {e} |");
            }
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} cases failed",
        verify::cases().len()
    );
    Ok(())
}

/// Training throughput for every optimizer on random data of a dataset's shape.
fn throughput(
    device: Device,
    model: &Model,
    dataset: DatasetKind,
    (batch, iters, rounds): (i64, i64, usize),
    backends: Backends,
) -> Result<()> {
    cudnn_autotune(device);
    let data = Dataset::synthetic(dataset, batch * iters, batch, device)?;
    struct Contender {
        kind: Variant,
        net: models::Net,
        opt: HdOptimizer,
        _vs: nn::VarStore,
    }
    let mut contenders = Vec::new();
    for want in backends.list() {
        for kind in Variant::ALL {
            tch::manual_seed(0);
            let vs = nn::VarStore::new(device);
            let net = models::build(&vs.root(), model, dataset.spec())?;
            let mut opt = HdOptimizer::new(&vs, core_config(kind, model)?)?;
            if !select(&mut opt, want, backends == Backends::Both)? {
                break;
            }
            contenders.push(Contender {
                kind,
                net,
                opt,
                _vs: vs,
            });
        }
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
            .find(|(b, _)| b.kind == c.kind.base() && b.opt.backend() == c.opt.backend())
            .map_or(f64::NAN, |(_, r)| *r);
        let name = if device.is_cuda() {
            format!("{} ({})", c.kind, c.opt.backend())
        } else {
            c.kind.to_string()
        };
        println!("| {name} | {r:.0} | {:.3} |", r / base);
    }
    Ok(())
}
