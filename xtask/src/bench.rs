//! `cargo xtask bench`: hd-core's step throughput (criterion), then the table of achieved
//! bandwidth against a plain copy measured in the same run (DESIGN §7).

use crate::env::{cargo, exec, root, step};
use anyhow::{Context, Result};
use std::path::Path;

/// (rule, bytes per parameter actually moved, bytes in DESIGN §7's model, its base rule).
const RULES: [(&str, f64, f64, &str); 9] = [
    ("sgd", 16.0, 12.0, "sgd"),
    ("sgd-hd", 24.0, 24.0, "sgd"),
    ("sgd-hdm", 24.0, 24.0, "sgd"),
    ("sgdn", 24.0, 20.0, "sgdn"),
    ("sgdn-hd", 32.0, 32.0, "sgdn"),
    ("sgdn-hdm", 32.0, 32.0, "sgdn"),
    ("adam", 32.0, 28.0, "adam"),
    ("adam-hd", 40.0, 40.0, "adam"),
    ("adam-hdm", 40.0, 40.0, "adam"),
];
const SIZES: [usize; 3] = [10_000, 1_000_000, 10_000_000];

/// Mean time in nanoseconds from criterion's estimates file.
fn mean_ns(dir: &Path, group: &str, id: &str) -> Result<f64> {
    let path = dir.join(group).join(id).join("new").join("estimates.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    json["mean"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("{}: no mean.point_estimate", path.display()))
}

pub fn run(extra: &[String]) -> Result<()> {
    // The default target (x86-64 with SSE2), as users build it: no target-cpu flags.
    let target = root().join("target");
    step("cargo bench -p hd-core");
    exec(
        cargo()
            .args([
                "bench",
                "-p",
                "hd-core",
                "--features",
                "std",
                "--bench",
                "step",
                "--",
            ])
            .args(extra)
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTFLAGS", "-C target-cpu=native"),
    )?;

    let dir = target.join("criterion");
    println!("\n| params | rule | time/step | bytes/param (§7) | GB/s | fraction of copy | time ratio vs base | bytes ratio vs base |");
    println!("|---|---|---|---|---|---|---|---|");
    for n in SIZES {
        let group = format!("step-{n}");
        let copy_ns = mean_ns(&dir, &group, "copy")?;
        let copy_bw = 8.0 * n as f64 / copy_ns; // bytes per ns = GB/s
        println!(
            "| {n:.0e} | copy | {:.1} µs | 8 | {copy_bw:.1} | 1.00 | | |",
            copy_ns / 1e3
        );
        for (rule, bytes, model, base) in RULES {
            let ns = mean_ns(&dir, &group, rule)?;
            let bw = bytes * n as f64 / ns;
            let base_ns = mean_ns(&dir, &group, base)?;
            let base_bytes = RULES.iter().find(|r| r.0 == base).map_or(bytes, |r| r.1);
            println!(
                "| {n:.0e} | {rule} | {:.1} µs | {bytes:.0} ({model:.0}) | {bw:.1} | {:.2} | {:.2} | {:.2} |",
                ns / 1e3,
                bw / copy_bw,
                ns / base_ns,
                bytes / base_bytes
            );
        }
    }
    Ok(())
}
