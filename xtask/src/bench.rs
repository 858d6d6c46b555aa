//! `cargo xtask bench`: hd-core's step throughput (criterion), the table of achieved bandwidth
//! against the two baselines measured in the same run (DESIGN §7: a plain copy and an in-place
//! streaming update), then the paired run, which times each rule in alternation with them.

use crate::env::{cargo, exec, root, step};
use anyhow::{Context, Result};
use hd_core::{Family, Variant};
use std::path::Path;
use std::process::Command;

const SIZES: [usize; 3] = [10_000, 1_000_000, 10_000_000];

/// One of criterion's JSON records for a benchmark.
fn record(dir: &Path, group: &str, id: &str, file: &str) -> Result<serde_json::Value> {
    let path = dir.join(group).join(id).join("new").join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Mean time in nanoseconds, and the bytes the benchmark declared it moves.
fn measured(dir: &Path, group: &str, id: &str) -> Result<(f64, f64)> {
    let ns = record(dir, group, id, "estimates.json")?["mean"]["point_estimate"].as_f64();
    let bytes = record(dir, group, id, "benchmark.json")?["throughput"]["Bytes"].as_f64();
    ns.zip(bytes)
        .with_context(|| format!("{group}/{id}: no mean time or bytes in criterion's records"))
}

pub fn run(extra: &[String]) -> Result<()> {
    // The default target (x86-64 with SSE2), as users build it: no target-cpu flags.
    step("cargo bench -p hd-core --bench step");
    exec(hd_core_bench("step").arg("--").args(extra))?;

    let dir = root().join("target").join("criterion");
    println!("\n| params | rule | time/step | bytes/param (§7) | GB/s | fraction of copy | fraction of stream | time ratio vs base | bytes ratio vs base |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in SIZES {
        let group = format!("step-{n}");
        let [copy, stream] = baselines(&dir, &group)?;
        // A row without a base rule to compare with: the baselines, and the rules beyond the
        // nine, whose ratios to their bases are the paired run's.
        let row = |id: &str| -> Result<()> {
            let (ns, bytes) = measured(&dir, &group, id)?;
            let bw = bytes / ns;
            println!(
                "| {n:.0e} | {id} | {:.1} µs | {:.0} | {bw:.1} | {:.2} | {:.2} | | |",
                ns / 1e3,
                bytes / n as f64,
                bw / copy,
                bw / stream
            );
            Ok(())
        };
        for id in BASELINES {
            row(id)?;
        }
        for v in Variant::ALL {
            let (ns, bytes) = measured(&dir, &group, v.id())?;
            let (base_ns, base_bytes) = measured(&dir, &group, v.base().id())?;
            let bw = bytes / ns;
            println!(
                "| {n:.0e} | {} | {:.1} µs | {:.0} ({}) | {bw:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
                v.id(),
                ns / 1e3,
                bytes / n as f64,
                v.model_bytes_per_parameter(),
                bw / copy,
                bw / stream,
                ns / base_ns,
                bytes / base_bytes
            );
        }
        // The rules beyond the nine (stacked HD, the peers) are listed in the benchmark, not here.
        for id in others(&dir, &group)? {
            row(&id)?;
        }
    }
    divider_floor(&dir)?;
    // Criterion times each benchmark seconds after the last, and at 1e7 the bandwidth this
    // shared machine gives drifts between them; the paired run alternates them instead.
    step("cargo bench -p hd-core --bench paired");
    exec(&mut hd_core_bench("paired"))
}

/// The ids in `group` other than the baselines, the `div-sqrt` kernel and the nine rules, that
/// this run recorded, in the order it ran them. The group's `copy` runs first, so an older
/// record (a benchmark since renamed or removed) is one written before it.
fn others(dir: &Path, group: &str) -> Result<Vec<String>> {
    let written = |id: &str| -> Result<std::time::SystemTime> {
        let path = dir.join(group).join(id).join("new").join("estimates.json");
        std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .with_context(|| format!("reading {}", path.display()))
    };
    let start = written(BASELINES[0])?;
    let mut ids = vec![];
    for entry in std::fs::read_dir(dir.join(group))? {
        let id = entry?.file_name().to_string_lossy().into_owned();
        let known = BASELINES.contains(&id.as_str())
            || id == DIV_SQRT
            || Variant::ALL.iter().any(|v| v.id() == id);
        if known {
            continue;
        }
        // Not a benchmark (criterion's own report folder has no estimates).
        let Ok(at) = written(&id) else { continue };
        if at >= start {
            ids.push((at, id));
        }
    }
    ids.sort();
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

/// `cargo bench` of one of hd-core's benchmarks, with `std` (the hardware square root).
fn hd_core_bench(name: &str) -> Command {
    let mut c = cargo();
    c.args([
        "bench",
        "-p",
        "hd-core",
        "--features",
        "std",
        "--bench",
        name,
    ]);
    c
}

/// The bandwidth baselines' benchmark ids (see `hd-core/benches/common`): a copy and an
/// in-place streaming update.
const BASELINES: [&str; 2] = ["copy", "stream"];

/// The id of the division-and-square-root kernel that bounds Adam's rules.
const DIV_SQRT: &str = "div-sqrt";

/// The baselines' GB/s (bytes per ns) at this size, in the order of [`BASELINES`].
fn baselines(dir: &Path, group: &str) -> Result<[f64; 2]> {
    let bw = |id| measured(dir, group, id).map(|(ns, bytes)| bytes / ns);
    Ok([bw(BASELINES[0])?, bw(BASELINES[1])?])
}

/// Adam's rules against their floor: the division and square root each element needs (one
/// pair for Adam, two for Adam-HD and Adam-HDM, which recompute d_{t−1}), timed alone by the
/// bench's `div-sqrt` kernel, and the fraction of copy a rule would reach if it took only
/// that time.
fn divider_floor(dir: &Path) -> Result<()> {
    println!("\n| params | rule | div+sqrt pairs/param | floor (div-sqrt kernel) | time/step | time / floor | fraction of copy the floor allows |");
    println!("|---|---|---|---|---|---|---|");
    for n in SIZES {
        let group = format!("step-{n}");
        let [copy, _] = baselines(dir, &group)?;
        let (kernel_ns, _) = measured(dir, &group, DIV_SQRT)?;
        for v in Variant::ALL
            .into_iter()
            .filter(|v| v.family() == Family::Adam)
        {
            let pairs = if v.rule().is_some() { 2.0 } else { 1.0 };
            let (ns, bytes) = measured(dir, &group, v.id())?;
            let floor = pairs * kernel_ns;
            println!(
                "| {n:.0e} | {} | {pairs:.0} | {:.1} µs | {:.1} µs | {:.2} | {:.2} |",
                v.id(),
                floor / 1e3,
                ns / 1e3,
                ns / floor,
                (bytes / floor) / copy
            );
        }
    }
    Ok(())
}
