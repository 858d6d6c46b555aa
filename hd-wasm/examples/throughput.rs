//! Native half of the demo's throughput benchmark: times the same training loop the browser
//! runs (`hd_wasm::trainer::throughput_workload`) and prints samples per second as JSON.
//!
//! `cargo run --release -p hd-wasm --example throughput -- www/pkg/mnist-10k.bin [seconds]`
//! (`cargo xtask demo --bench` runs it next to the browser measurement.)

use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hd_wasm::data::Dataset;
use hd_wasm::trainer::throughput_workload;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("throughput: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: throughput DIGITS.bin [SECONDS]")?;
    let seconds: f64 = match args.next() {
        Some(s) => s
            .parse()
            .map_err(|_| format!("not a number of seconds: {s:?}"))?,
        None => 3.0,
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let mut trainer = throughput_workload(Rc::new(Dataset::from_bytes(&bytes)?))?;
    // One warm-up epoch, then time whole chunks of 16 minibatches for at least `seconds`.
    trainer.step(trainer.iterations_per_epoch() as u32)?;
    let budget = Duration::from_secs_f64(seconds);
    let start_samples = trainer.samples_done();
    let start = Instant::now();
    while start.elapsed() < budget {
        trainer.step(16)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let samples = trainer.samples_done() - start_samples;
    println!(
        "{{\"samples\": {samples}, \"seconds\": {elapsed:.4}, \"samples_per_s\": {:.1}}}",
        samples as f64 / elapsed
    );
    Ok(())
}
