//! The command line of the experiment suite: `plan list`, `plan show`, `sweep` (with `sweep
//! status`) and `report`.
//!
//! A plan argument is a file or the name of a plan shipped in the binary ([`crate::plan::find`]
//! says which). A sweep's exit status: 0 every run done or diverged; 1 a run failed or is
//! stale (or the sweep could not run); 4 runs missing their data, unless `--allow-missing`; 130/143 stopped
//! by SIGINT/SIGTERM ([`sweep::SweepError`]).

use crate::plan;
use crate::sweep::{self, Outcome, Resources, Slurm, Stop, SweepError, Tally};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `hd-native plan …`.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// List the plans shipped in the binary: name, runs, description.
    List,
    /// Print the runs a plan expands to: index, id, `train` options and run directory.
    Show {
        /// A plan file (TOML), or the name of a shipped plan (`plan list`); an existing file
        /// of that name comes first.
        plan: PathBuf,
        /// The sweep output the run directories are shown under.
        #[arg(long, default_value = "runs")]
        out: PathBuf,
        /// Only these experiments of the plan (repeatable).
        #[arg(long, value_name = "EXPERIMENT")]
        only: Vec<String>,
    },
}

/// `hd-native sweep …`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SweepCommand {
    /// `sweep status DIR`.
    #[command(subcommand)]
    pub status: Option<SweepStatus>,
    /// Running a plan.
    #[command(flatten)]
    pub args: Option<SweepArgs>,
}

/// `hd-native sweep status DIR`.
#[derive(Debug, Subcommand)]
pub enum SweepStatus {
    /// Print a table of every run of the sweep in DIR: done / partial (epoch k of n) /
    /// failed (why) / missing (missing data: the directory and what is missing) / diverged /
    /// stale (the first option that differs from the plan the sweep last ran) / pending.
    Status {
        /// The sweep's --out.
        dir: PathBuf,
    },
}

/// `hd-native sweep PLAN --out DIR …`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// A plan file (TOML), or the name of a shipped plan (`plan list`); an existing file of
    /// that name comes first.
    pub plan: PathBuf,
    /// Directory of the run directories (one per run, `DIR/<run id>`) and the sweep's state
    /// (`DIR/.sweep`).
    #[arg(long)]
    pub out: PathBuf,
    /// Runs at once (at most the machine's logical CPUs: a larger N is lowered, with a note).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Devices, comma-separated, given to the jobs in turn: `cpu`, `cuda`, `cuda:0,cuda:1`, or
    /// `auto` (each run takes a GPU if there is one).
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    pub devices: Vec<String>,
    /// CPU threads in all, split evenly over the jobs [default: the machine's logical CPUs;
    /// libtorch's choice for one job].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where datasets are: DATA_ROOT/mnist, DATA_ROOT/fashion-mnist, DATA_ROOT/cifar10,
    /// DATA_ROOT/cifar100.
    #[arg(long, default_value = "data")]
    pub data_root: PathBuf,
    /// One dataset elsewhere: `--data fashion-mnist=/path/to/dir` (repeatable).
    #[arg(long, value_name = "DATASET=DIR", value_parser = parse_data)]
    pub data: Vec<(String, PathBuf)>,
    /// Runs whose dataset files are missing are listed as missing data but do not fail the
    /// sweep (without it, they make it exit 4); with --slurm, writes the array although some
    /// runs have no data (their tasks fail).
    #[arg(long)]
    pub allow_missing: bool,
    /// Runs whose directory holds other options than the plan's (stale: the plan changed since
    /// they ran) are moved to DIR/.sweep/stale/ID-N and run again; without it, they are
    /// listed as stale and fail the sweep (exit 1). A run whose plan only asks for more epochs
    /// is not stale: it is extended.
    #[arg(long)]
    pub rerun_stale: bool,
    /// Only these experiments of the plan (repeatable; a local sweep only).
    #[arg(long, value_name = "EXPERIMENT", conflicts_with_all = ["slurm", "task"])]
    pub only: Vec<String>,
    /// Run only task I of the plan (0-based): what each Slurm array task does.
    #[arg(long, value_name = "I", conflicts_with = "slurm")]
    pub task: Option<usize>,
    /// Write a Slurm job array for the plan into DIR/.sweep/sweep.sbatch instead of running.
    #[arg(long)]
    pub slurm: bool,
    /// Slurm partition.
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// GPUs per run on Slurm (0: CPU runs).
    #[arg(long, default_value_t = 0, requires = "slurm")]
    pub gpus_per_run: u32,
    /// The GPUs' type on Slurm (`--gres=gpu:TYPE:G`, e.g. `a100`); needs --gpus-per-run.
    #[arg(long, value_name = "TYPE", requires = "slurm")]
    pub gpu_type: Option<String>,
    /// Memory per run on Slurm (`--mem`, e.g. `16G`; default 8G).
    #[arg(long, value_name = "SIZE", requires = "slurm")]
    pub mem_per_run: Option<String>,
    /// CPUs per run on Slurm.
    #[arg(long, default_value_t = 4, requires = "slurm")]
    pub cpus_per_run: u32,
    /// Time limit of each run on Slurm (`HH:MM:SS`, `D-HH:MM:SS`).
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    /// At most this many runs at once on Slurm (the array's `%` throttle).
    #[arg(long, requires = "slurm")]
    pub throttle: Option<u32>,
    /// An extra `#SBATCH` line, verbatim, e.g. `--sbatch=--account=abc` (repeatable).
    #[arg(long, requires = "slurm", allow_hyphen_values = true)]
    pub sbatch: Vec<String>,
    /// An environment line for each Slurm task, written verbatim after the `#SBATCH` block,
    /// e.g. `--setup 'module load cuda'` (repeatable; only from the command line, never
    /// from a plan).
    #[arg(
        long,
        value_name = "LINE",
        requires = "slurm",
        allow_hyphen_values = true
    )]
    pub setup: Vec<String>,
    /// Also submit the array with `sbatch` and print its job id.
    #[arg(long, requires = "slurm")]
    pub submit: bool,
}

fn parse_data(s: &str) -> Result<(String, PathBuf), String> {
    let (d, p) = s
        .split_once('=')
        .ok_or_else(|| format!("expected DATASET=DIR, got {s:?}"))?;
    let known = ["mnist", "fashion-mnist", "cifar10", "cifar100"];
    if !known.contains(&d) {
        return Err(format!(
            "unknown dataset {d:?} (one of {})",
            known.join(", ")
        ));
    }
    Ok((d.to_string(), PathBuf::from(p)))
}

/// `hd-native report DIR --out REPORT_DIR [--plan PLAN]`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A sweep's --out (every run directory under it is read).
    pub dir: PathBuf,
    /// Where the figures (PNG and SVG) and REPORT.md go.
    #[arg(long)]
    pub out: PathBuf,
    /// The plan to hold the runs against, a file or a shipped plan's name: a run it asks for
    /// that is missing is "not run" [default: the plan the sweep saved in DIR/.sweep, if any].
    #[arg(long)]
    pub plan: Option<PathBuf>,
}

/// Runs `plan …`.
///
/// # Errors
/// The plan cannot be found or is invalid (one line naming the file or name, the line and the
/// problem).
pub fn plan(cmd: PlanCommand) -> Result<()> {
    match cmd {
        PlanCommand::List => {
            let w = plan::shipped()
                .iter()
                .map(|p| p.name.len())
                .max()
                .unwrap_or(0);
            for p in plan::shipped() {
                let what = match plan::find(std::path::Path::new(p.name)) {
                    Ok(plan) => format!("{:>4} runs  {}", plan.runs.len(), plan.description),
                    Err(e) => format!("invalid: {e}"),
                };
                println!("{:<w$}  {what}", p.name);
            }
            Ok(())
        }
        PlanCommand::Show { plan, out, only } => {
            print!("{}", sweep::load(&plan)?.restrict_to(&only)?.show(&out));
            Ok(())
        }
    }
}

/// Runs `sweep …`.
///
/// # Errors
/// An invalid plan or a sweep that cannot run (exit 1); otherwise a [`SweepError`] with the
/// sweep's exit status: runs that failed (1, named), runs missing their data without
/// `--allow-missing` (4), or a stop by SIGINT/SIGTERM (130/143, once the runs stopped cleanly).
pub fn sweep(cmd: SweepCommand) -> Result<()> {
    if let Some(SweepStatus::Status { dir }) = cmd.status {
        println!("{}", sweep::status_table(&sweep::status(&dir)?));
        return Ok(());
    }
    let Some(a) = cmd.args else {
        bail!("give a plan and --out, or `sweep status DIR`");
    };
    if a.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let jobs = bounded_jobs(a.jobs);
    let plan = sweep::load(&a.plan)?.restrict_to(&a.only)?;
    let res = Resources {
        data_root: a.data_root.clone(),
        data: a.data.clone(),
        devices: a.devices.clone(),
        jobs,
        threads: a.threads,
    };
    if a.slurm {
        let missing = sweep::missing_runs(&plan, &res);
        if let Some((first, why)) = missing.first() {
            let datasets: Vec<_> = missing.iter().map(|(r, _)| r.config.dataset).collect();
            let line = format!(
                "{} of the plan's {} runs have no data ({}: missing data ({why}), …); {}",
                missing.len(),
                plan.runs.len(),
                first.id,
                sweep::fetch_hint(&datasets, &res)
            );
            if !a.allow_missing {
                return Err(SweepError::MissingData(format!(
                    "{line} (--allow-missing writes the array anyway; those tasks will fail)"
                ))
                .into());
            }
            eprintln!("hd-native: note: {line}; their tasks will fail");
        }
        let slurm = Slurm {
            partition: a.partition.clone(),
            gpus_per_run: a.gpus_per_run,
            gpu_type: a.gpu_type.clone(),
            mem: a.mem_per_run.clone(),
            cpus_per_run: a.cpus_per_run,
            time: a.time.clone(),
            throttle: a.throttle,
            extra: a.sbatch.clone(),
            setup: a.setup.clone(),
        };
        if a.submit {
            // Before anything is written: an array no node can hold would pend forever.
            sweep::check_nodes(&slurm, slurm.mem())?;
        }
        let script = sweep::write_slurm(&plan, &a.out, &res, &slurm)?;
        println!("{}", script.display());
        for line in &a.setup {
            println!("setup: {line}");
        }
        if a.submit {
            println!("submitted job {}", sweep::submit(&script)?);
        } else {
            println!("submit with: sbatch {}", script.display());
        }
        return Ok(());
    }
    let stop = Stop::install()?;
    let signal = || stop.requested().then(|| stop.exit_code());
    if let Some(i) = a.task {
        let outcome = sweep::task(&plan, &a.out, i, &res, &stop, a.rerun_stale)?;
        let id = plan.run(i).map_or("", |r| r.id.as_str());
        return match outcome {
            Outcome::Done | Outcome::Diverged(_) => Ok(()),
            Outcome::Failed(why) => {
                Err(SweepError::Failed(format!("task {i} ({id}) failed: {why}")).into())
            }
            Outcome::Stale(why) => Err(SweepError::Stale(format!(
                "task {i} ({id}) is stale ({why}); --rerun-stale moves it aside and runs it again"
            ))
            .into()),
            Outcome::MissingData(_) if a.allow_missing => Ok(()),
            Outcome::MissingData(why) => {
                let hint = plan
                    .run(i)
                    .map(|r| sweep::fetch_hint(&[r.config.dataset], &res))
                    .unwrap_or_default();
                Err(SweepError::MissingData(format!(
                    "task {i} ({id}): missing data ({why}); {hint}"
                ))
                .into())
            }
            Outcome::Interrupted if stop.time_limit() => {
                // The warning before the time limit: the run checkpointed; the task comes
                // back by itself and resumes it.
                let line = match sweep::requeue() {
                    Ok(job) => format!(
                        "task {i} ({id}) stopped before its time limit and requeued itself (job {job}); it resumes from its checkpoint"
                    ),
                    Err(e) => format!(
                        "task {i} ({id}) stopped before its time limit; requeueing it failed ({e:#}); requeue it to continue"
                    ),
                };
                Err(SweepError::stopped(line, stop.exit_code()).into())
            }
            Outcome::Interrupted => Err(SweepError::stopped(
                format!("task {i} ({id}) stopped; requeue it to continue"),
                stop.exit_code(),
            )
            .into()),
        };
    }
    let report: Tally = sweep::sweep(&plan, &a.out, &res, &stop, a.rerun_stale)?;
    let line = report.finish(&res, a.allow_missing, signal())?;
    println!("sweep: {line}");
    Ok(())
}

/// `--jobs n`, at most the machine's logical CPUs (each run needs one; more only adds
/// contention), with a note when it is lowered.
fn bounded_jobs(n: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if n > cpus {
        eprintln!("hd-native: note: --jobs {n} exceeds the {cpus} logical CPUs; using {cpus}");
        cpus
    } else {
        n
    }
}

/// Runs `report …`.
///
/// # Errors
/// The runs cannot be read or the report written.
pub fn report(args: &ReportArgs) -> Result<()> {
    for f in crate::report::report(&args.dir, &args.out, args.plan.as_deref())? {
        println!("{}", f.display());
    }
    Ok(())
}
