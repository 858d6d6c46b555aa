//! Shared plumbing for tasks: running commands, the cache directory, and idempotent installs.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cache for tools and environments that must survive between runs but never live in the
/// repository: `$HD_CACHE_DIR`, else `$XDG_CACHE_HOME/hd`, else `~/.cache/hd`.
pub fn cache_dir() -> Result<PathBuf> {
    let dir = if let Some(d) = std::env::var_os("HD_CACHE_DIR") {
        PathBuf::from(d)
    } else if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        PathBuf::from(d).join("hd")
    } else if let Some(h) = std::env::var_os("HOME") {
        PathBuf::from(h).join(".cache").join("hd")
    } else {
        bail!("cannot find a cache directory: set HD_CACHE_DIR or HOME");
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Prints a step heading so a long `cargo xtask test` log reads as a list of stages.
pub fn step(what: &str) {
    eprintln!("\n==> {what}");
}

/// Runs `cmd`, streaming its output, and fails with the command line if it exits non-zero.
pub fn exec(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` and returns its standard output, failing if it exits non-zero.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A `cargo` command that uses the same toolchain as this xtask.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Adds rustup targets that are not installed yet.
pub fn ensure_rust_targets(targets: &[&str]) -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    let missing: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if !missing.is_empty() {
        step(&format!("rustup target add {}", missing.join(" ")));
        exec(
            Command::new("rustup")
                .arg("target")
                .arg("add")
                .args(&missing),
        )?;
    }
    Ok(())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}

/// Makes sure Debian packages are installed: with apt-get when running as root (as CI does),
/// otherwise stops with the exact command the user must run.
pub fn ensure_apt(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!(
            "missing system packages; run: sudo apt-get update && sudo apt-get install -y {list}"
        );
    }
    step(&format!("apt-get install {list}"));
    exec(Command::new("apt-get").arg("update").arg("-q"))?;
    exec(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Installs a cargo binary at an exact version into the cache (not `~/.cargo/bin`), once,
/// and returns the path of `bin`.
pub fn ensure_cargo_tool(krate: &str, version: &str, bin: &str) -> Result<PathBuf> {
    let root = cache_dir()?
        .join("tools")
        .join(format!("{krate}-{version}"));
    let path = root.join("bin").join(bin);
    if !path.exists() {
        step(&format!("cargo install {krate} {version}"));
        exec(
            cargo()
                .args(["install", krate, "--version", version, "--root"])
                .arg(&root),
        )?;
    }
    Ok(path)
}
