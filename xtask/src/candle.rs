//! hd-candle's steps of `cargo xtask test` — its MNIST example on a small synthetic IDX set,
//! and the README's example built as a crate outside the workspace, as a user would — and
//! `cargo xtask bench-candle`, one optimizer step beside candle's own optimizers.

use crate::env::{cargo, exec, output, root, step};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Result<TempDir> {
        let dir = std::env::temp_dir().join(format!("hd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn test() -> Result<()> {
    example()?;
    scratch_crate()
}

/// Training and test images in the synthetic set.
const TRAIN: usize = 256;
const TEST: usize = 64;

/// MNIST's four IDX files with `n` images each of `TRAIN` and `TEST`: image k of class
/// c = k mod 10 is noise with row band c bright, so the classes can be learned.
fn write_synthetic_mnist(dir: &Path) -> Result<()> {
    let mut seed = 12345u64;
    let mut noise = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 58) as u8
    };
    for (stem, n) in [("train", TRAIN), ("t10k", TEST)] {
        let mut images = Vec::new();
        for word in [0x0803u32, n as u32, 28, 28] {
            images.extend(word.to_be_bytes());
        }
        let mut labels = Vec::new();
        for word in [0x0801u32, n as u32] {
            labels.extend(word.to_be_bytes());
        }
        for k in 0..n {
            let class = k % 10;
            labels.push(class as u8);
            for row in 0..28 {
                let band = row / 2 == class + 2;
                images.extend((0..28).map(|_| if band { 250 } else { noise() }));
            }
        }
        let write = |name: String, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
        };
        write(format!("{stem}-images.idx3-ubyte"), &images)?;
        write(format!("{stem}-labels.idx1-ubyte"), &labels)?;
    }
    Ok(())
}

/// The example, on the synthetic set for one epoch: it must print an epoch for both models and
/// both optimizers, and SGD-HD's α must have left α0.
fn example() -> Result<()> {
    step("hd-candle's MNIST example on a small synthetic IDX set");
    let dir = TempDir::new("candle-mnist")?;
    write_synthetic_mnist(&dir.0)?;
    let out = output(
        cargo()
            .args(["run", "-q", "-p", "hd-candle", "--example", "mnist", "--"])
            .args([
                dir.0.as_os_str(),
                TRAIN.to_string().as_ref(),
                TEST.to_string().as_ref(),
                "1".as_ref(),
            ]),
    )?;
    print!("{out}");
    let epochs: Vec<&str> = out.lines().filter(|l| l.contains(" epoch 1:")).collect();
    if epochs.len() != 4 {
        bail!("the example printed {} epochs, expected 4", epochs.len());
    }
    for line in epochs.iter().filter(|l| l.contains("SGD-HD")) {
        if line.contains("α 0.001000 ") {
            bail!("SGD-HD's α did not move: {line}");
        }
    }
    Ok(())
}

/// A crate of its own (its own `[workspace]`) depending on hd-candle by path and on
/// candle-nn, whose `main` is the first Rust block of hd-candle's README: it builds against the
/// published API only, and its assertion (α moved) runs. The workspace's lock file and target
/// directory are used, so nothing is resolved or built twice.
fn scratch_crate() -> Result<()> {
    step("hd-candle's README example in a crate outside the workspace");
    let root = root();
    let readme = std::fs::read_to_string(root.join("hd-candle/README.md"))?;
    let body = first_rust_block(&readme).context("hd-candle/README.md has no Rust block")?;
    let dir = TempDir::new("candle-scratch")?;
    let candle = toml_dependency(&root, "candle-nn")?;
    let manifest = format!(
        "[package]\nname = \"scratch\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [workspace]\n\n[dependencies]\nhd-candle = {{ path = {:?} }}\ncandle-core = {candle:?}\n\
         candle-nn = {candle:?}\n",
        root.join("hd-candle").display().to_string(),
    );
    std::fs::write(dir.0.join("Cargo.toml"), manifest)?;
    std::fs::copy(root.join("Cargo.lock"), dir.0.join("Cargo.lock"))?;
    std::fs::create_dir_all(dir.0.join("src"))?;
    let main = format!(
        "fn main() -> Result<(), candle_core::Error> {{\n{body}\n    println!(\"α after the README's steps: {{}}\", opt.learning_rate());\n    Ok(())\n}}\n"
    );
    std::fs::write(dir.0.join("src/main.rs"), main)?;
    exec(
        cargo()
            .current_dir(&dir.0)
            .env("CARGO_TARGET_DIR", root.join("target"))
            .args(["run", "-q"]),
    )
}

/// The lines of the first ```rust block, doctest-hidden lines (`# …`) left out.
fn first_rust_block(markdown: &str) -> Option<String> {
    let start = markdown.find("```rust\n")? + "```rust\n".len();
    let len = markdown.get(start..)?.find("```")?;
    let block = markdown.get(start..start + len)?;
    Some(
        block
            .lines()
            .filter(|l| !l.trim_start().starts_with("# "))
            .map(|l| format!("    {l}\n"))
            .collect(),
    )
}

/// The version requirement hd-candle's manifest gives `name` (`=x.y.z`).
fn toml_dependency(root: &Path, name: &str) -> Result<String> {
    let manifest = std::fs::read_to_string(root.join("hd-candle/Cargo.toml"))?;
    manifest
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix(name)?.trim_start().strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').to_string())
        })
        .with_context(|| format!("hd-candle/Cargo.toml has no `{name} = \"…\"` line"))
}

/// `cargo xtask bench-candle`: the criterion benchmark of one optimizer step, then a table of
/// each optimizer's time per step and its ratio to candle-nn's AdamW, from criterion's records;
/// extra arguments go to criterion.
pub fn bench(extra: &[String]) -> Result<()> {
    step("cargo bench -p hd-candle-bench --bench step");
    exec(
        cargo()
            .args(["bench", "-p", "hd-candle-bench", "--bench", "step", "--"])
            .args(extra),
    )?;
    let dir = root().join("target").join("criterion");
    let mean_ns = |group: &str, id: &str| -> Result<f64> {
        let path = dir.join(group).join(id).join("new").join("estimates.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)?;
        json["mean"]["point_estimate"]
            .as_f64()
            .with_context(|| format!("{}: no mean", path.display()))
    };
    println!("\n| parameters | optimizer | time/step | ÷ candle-nn AdamW |");
    println!("|---|---|---|---|");
    for (group, label) in [("mlp", "MLP (1.8e6)"), ("1e7", "1e7")] {
        let base = mean_ns(group, "candle-nn-adamw")?;
        for id in [
            "hd-candle-adam",
            "hd-candle-adam-hd",
            "candle-nn-adamw",
            "candle-optimisers-adam",
        ] {
            let ns = mean_ns(group, id)?;
            println!("| {label} | {id} | {:.2} ms | {:.2} |", ns / 1e6, ns / base);
        }
    }
    Ok(())
}
