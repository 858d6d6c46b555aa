//! `cargo xtask test`: the one test command (the README's and CI's).

use crate::env::{cargo, ensure_rust_targets, exec, step};
use anyhow::Result;

/// Cross targets hd-core must build for: a Cortex-M4F microcontroller and the browser.
pub const CROSS_TARGETS: [&str; 2] = ["thumbv7em-none-eabihf", "wasm32-unknown-unknown"];

pub fn run() -> Result<()> {
    ensure_rust_targets(&CROSS_TARGETS)?;

    step("cargo fmt --check");
    exec(cargo().args(["fmt", "--all", "--check"]))?;

    crate::docs::check()?;

    step("cargo clippy (default members, all targets, -D warnings)");
    exec(cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;

    step("cargo clippy hd-core with every feature (the benchmark, the scalar loops)");
    exec(cargo().args([
        "clippy",
        "-p",
        "hd-core",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("cargo clippy hd-fused with the cuda feature (the NVRTC launcher)");
    exec(cargo().args([
        "clippy",
        "-p",
        "hd-fused",
        "--all-targets",
        "--features",
        "cuda",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("cargo test (default members)");
    exec(cargo().args(["test"]))?;

    // The one-element-at-a-time loops of bare-metal targets, through the same suite on the host.
    step("cargo test -p hd-core --features scalar-loops");
    exec(cargo().args(["test", "-p", "hd-core", "--features", "scalar-loops"]))?;

    for target in CROSS_TARGETS {
        step(&format!("hd-core builds for {target}"));
        exec(cargo().args(["build", "--release", "-p", "hd-core", "--target", target]))?;
    }

    crate::candle::test()?;
    crate::demo::test()?;
    crate::embedded::test()?;
    crate::native::test()?;

    eprintln!("\nxtask test: all checks passed");
    Ok(())
}
