//! The command line of the head-to-head: `versus run` and `versus report`
//! ([`crate::versus`]).

use crate::versus::{self, knob_text, Record, RunSpec, Setup, Shard};
use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::PathBuf;

/// `hd-native versus …`.
#[derive(Debug, Subcommand)]
pub enum VersusCommand {
    /// Run the plan's runs that have no record in DIR yet (resumable: a finished run is never
    /// run again), one line per run.
    Run {
        /// The plan (TOML).
        #[arg(long)]
        plan: PathBuf,
        /// Output directory: plan.toml and runs/ID.json, one record per finished run.
        #[arg(long)]
        out: PathBuf,
        /// Where datasets are: DATA_ROOT/mnist, DATA_ROOT/fashion-mnist.
        #[arg(long, default_value = "data")]
        data_root: PathBuf,
        /// Only the runs whose index mod N is I (`--shard 0/2` and `--shard 1/2` in two
        /// processes share the plan).
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// CPU threads for libtorch's operations [default: libtorch's choice].
        #[arg(long)]
        threads: Option<i32>,
    },
    /// Write DIR/REPORT.md and one figure per task from the records in DIR.
    Report {
        /// The output directory of `versus run`.
        dir: PathBuf,
    },
}

/// The line printed when run `r` ends.
fn run_line(r: &RunSpec, rec: &Record, k: usize, n: usize) -> String {
    let what = format!(
        "[{k}/{n}] {} {} {}={} seed {}",
        r.task.name,
        r.tuned.method.id(),
        r.tuned.method.knob().key(),
        knob_text(r.value),
        r.seed
    );
    let how = match (&rec.diverged, rec.epochs.last()) {
        (Some(d), _) => format!("diverged at iteration {} ({})", d.iteration, d.reason),
        (None, Some(e)) => format!(
            "train loss {:.4}, validation loss {:.4} ({:.2}%)",
            e.train_loss,
            e.validation_loss,
            100.0 * e.validation_accuracy
        ),
        (None, None) => "no epoch".into(),
    };
    format!("{what}: {how}, {:.1} s", rec.seconds)
}

/// Runs `versus …`.
///
/// # Errors
/// A bad `--shard` or `--threads`, an invalid plan, or whatever a run fails with (one line).
pub fn versus(cmd: VersusCommand) -> Result<()> {
    match cmd {
        VersusCommand::Run {
            plan,
            out,
            data_root,
            shard,
            threads,
        } => {
            let shard = shard.as_deref().map_or(Ok(Shard::ALL), Shard::parse)?;
            if let Some(n) = threads {
                if n < 1 {
                    bail!("--threads must be at least 1");
                }
                tch::set_num_threads(super::bounded_threads(n));
            }
            let plan = versus::load(&plan)?;
            let setup = Setup {
                out: out.clone(),
                data_root,
                shard,
            };
            let tally = versus::run(&plan, &setup, |r, rec, k, n| {
                println!("{}", run_line(r, rec, k, n));
            })?;
            let of = if shard == Shard::ALL {
                String::new()
            } else {
                format!(" of shard {}/{}", shard.index, shard.count)
            };
            if tally.ran == 0 {
                println!(
                    "versus: nothing to do: all {} runs{of} are recorded in {}",
                    tally.runs,
                    out.display()
                );
            } else {
                println!(
                    "versus: ran {} runs{of} ({} diverged); {} recorded before; {} of {} done in {}",
                    tally.ran,
                    tally.diverged,
                    tally.recorded_before,
                    tally.ran + tally.recorded_before,
                    tally.runs,
                    out.display()
                );
            }
            Ok(())
        }
        VersusCommand::Report { dir } => {
            for f in versus::report(&dir)? {
                println!("{}", f.display());
            }
            Ok(())
        }
    }
}
