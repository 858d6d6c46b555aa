//! `cargo xtask native`, `cargo xtask bench-native` and the native part of `cargo xtask test`:
//! libtorch set-up for hd-native, so a new user needs no environment variables.
//!
//! libtorch comes from pip's `torch` wheel in a virtual environment under the cache directory
//! (outside the repository); tch's build script finds it through `LIBTORCH_USE_PYTORCH=1` and the
//! venv's `python`. hd-native's build script then bakes an rpath to it into the binary.

use crate::env::{cache_dir, cargo, ensure_apt, exec, output, root, step};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The PyTorch release tch 0.24 is written against (tch checks it at build time).
pub const TORCH_VERSION: &str = "2.11.0";

/// Debian packages the native tests use: a real, full-size Fashion-MNIST and a font for the
/// PNG figures.
const APT_PACKAGES: [&str; 2] = ["dataset-fashion-mnist", "fonts-dejavu-core"];

/// The reference packages of hd-core's learning-rate-free peers, which hd-native's
/// `tests/peers.rs` runs beside them: the versions hd-core's doc comments follow.
const PEER_PACKAGES: [(&str, &str); 2] = [("prodigyopt", "1.1.2"), ("schedulefree", "1.4.1")];

/// The virtual environment holding the torch wheel: created and filled once, then reused.
pub fn ensure_torch() -> Result<PathBuf> {
    let venv = cache_dir()?.join(format!("torch-{TORCH_VERSION}"));
    let python = python(&venv);
    if installed_torch(&python).as_deref() == Some(TORCH_VERSION) {
        return Ok(venv);
    }
    if !python.exists() {
        step(&format!("python3 -m venv {}", venv.display()));
        if exec(Command::new("python3").arg("-m").arg("venv").arg(&venv)).is_err() {
            // Debian's python3 ships venv separately.
            ensure_apt(&["python3-venv"])?;
            exec(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        }
    }
    step(&format!(
        "pip install torch=={TORCH_VERSION} (about 4.7 GB, once)"
    ));
    pip_install(&python, &[format!("torch=={TORCH_VERSION}")])?;
    match installed_torch(&python) {
        Some(v) if v == TORCH_VERSION => Ok(venv),
        other => bail!(
            "torch {TORCH_VERSION} expected in {} after pip install, found {other:?}",
            venv.display()
        ),
    }
}

/// `python -m pip install` of `specs` (`name==version`), quietly.
fn pip_install(python: &Path, specs: &[String]) -> Result<()> {
    exec(
        Command::new(python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(specs),
    )
}

/// Installs [`PEER_PACKAGES`] into the torch venv, unless they are there at those versions.
fn ensure_peer_packages(venv: &Path) -> Result<()> {
    let python = python(venv);
    let installed = |name: &str| {
        let code = format!("from importlib.metadata import version; print(version('{name}'))");
        output(Command::new(&python).args(["-c", &code]))
            .ok()
            .map(|v| v.trim().to_string())
    };
    let missing: Vec<String> = PEER_PACKAGES
        .iter()
        .filter(|(name, v)| installed(name).as_deref() != Some(*v))
        .map(|(name, v)| format!("{name}=={v}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!("pip install {}", missing.join(" ")));
    pip_install(&python, &missing)?;
    for (name, v) in PEER_PACKAGES {
        let found = installed(name);
        if found.as_deref() != Some(v) {
            bail!(
                "{name} {v} expected in {} after pip install, found {found:?}",
                venv.display()
            );
        }
    }
    Ok(())
}

/// The venv's python, which imports the torch wheel.
fn python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// The torch version importable from `python`, without any local-build suffix (`2.11.0+cu130`).
fn installed_torch(python: &Path) -> Option<String> {
    if !python.exists() {
        return None;
    }
    let out =
        output(Command::new(python).args(["-c", "import torch; print(torch.__version__)"])).ok()?;
    Some(out.trim().split('+').next()?.to_string())
}

/// A cargo command with the environment tch's build script needs to find the venv's libtorch.
pub fn torch_cargo(venv: &Path) -> Result<Command> {
    let mut c = cargo();
    let bin = venv.join("bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(&path));
    c.env("PATH", std::env::join_paths(paths).context("joining PATH")?)
        .env("VIRTUAL_ENV", venv)
        .env("LIBTORCH_USE_PYTORCH", "1");
    Ok(c)
}

/// Builds the release binary and returns its path.
pub fn build_release() -> Result<PathBuf> {
    let venv = ensure_torch()?;
    step("cargo build --release -p hd-native");
    exec(torch_cargo(&venv)?.args(["build", "--release", "-p", "hd-native"]))?;
    Ok(target_dir().join("release").join("hd-native"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// `cargo xtask native -- <args>`: builds the release binary and runs it with `args`.
pub fn run(args: &[String]) -> Result<()> {
    let bin = build_release()?;
    // Runs without LD_LIBRARY_PATH: the rpath from hd-native's build script finds libtorch.
    exec(Command::new(bin).args(args))
}

/// Where Debian's `dataset-fashion-mnist` put its files, asked of dpkg rather than assumed.
pub fn fashion_mnist_dir() -> Result<PathBuf> {
    let files = output(Command::new("dpkg").args(["-L", "dataset-fashion-mnist"]))?;
    files
        .lines()
        .map(Path::new)
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n == "train-images-idx3-ubyte.gz")
        })
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .context("dataset-fashion-mnist lists no train-images-idx3-ubyte.gz")
}

/// The native part of `cargo xtask test`: clippy and every test of hd-tch and hd-native on
/// CPU, hd-fused's kernels through the wheel's NVRTC, and hd-tch used from outside the
/// workspace.
pub fn test() -> Result<()> {
    let venv = ensure_torch()?;
    ensure_peer_packages(&venv)?;
    ensure_apt(&APT_PACKAGES)?;
    let fashion = fashion_mnist_dir()?;

    // The emitted kernels must compile with the wheel's NVRTC (no GPU needed).
    step("cargo test -p hd-fused --features cuda (NVRTC required)");
    exec(
        cargo()
            .args([
                "test",
                "-p",
                "hd-fused",
                "--features",
                "cuda",
                "--test",
                "nvrtc",
            ])
            .env("HD_NVRTC", nvrtc(&venv)?),
    )?;

    step("cargo clippy -p hd-tch -p hd-native (all targets, -D warnings)");
    exec(torch_cargo(&venv)?.args([
        "clippy",
        "--release",
        "-p",
        "hd-tch",
        "-p",
        "hd-native",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    // The libraries' docs as docs.rs builds them (and the app's), every link resolved.
    step("cargo doc: hd-core, hd-fused, hd-tch, hd-candle, hd-native (-D warnings)");
    exec(
        torch_cargo(&venv)?
            .args(["doc", "--no-deps", "--features", "hd-fused/cuda"])
            .args([
                "-p",
                "hd-core",
                "-p",
                "hd-fused",
                "-p",
                "hd-tch",
                "-p",
                "hd-candle",
            ])
            .args(["-p", "hd-native"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;

    step("cargo test -p hd-tch -p hd-native (release: the tests train small models)");
    exec(
        torch_cargo(&venv)?
            .args(["test", "--release", "-p", "hd-tch", "-p", "hd-native"])
            // The real-data test trains on the full Fashion-MNIST from here.
            .env("HD_FASHION_MNIST_DIR", &fashion)
            // The models' initialisation is compared with torch's own initialisers, and
            // hd-core's peers with their reference packages, by this python.
            .env("HD_TORCH_PYTHON", python(&venv)),
    )?;
    crate::scratch::test(&venv, || torch_cargo(&venv))?;
    // The suite on a real single-node Slurm cluster: its tasks run the release binary.
    crate::slurm::test(&build_release()?, &fashion)
}

/// The torch wheel's NVRTC (`nvidia/cu13/lib/libnvrtc.so.13` in its site-packages), asked of the
/// venv's python rather than assumed.
pub fn nvrtc(venv: &Path) -> Result<PathBuf> {
    let lib = output(Command::new(python(venv)).args([
        "-c",
        "import os, nvidia.cu13 as m; print(os.path.join(list(m.__path__)[0], 'lib', 'libnvrtc.so.13'))",
    ]))?;
    let lib = PathBuf::from(lib.trim());
    if !lib.exists() {
        bail!("the torch wheel's NVRTC is not at {}", lib.display());
    }
    Ok(lib)
}

/// `cargo xtask gpu-bundle DIR`: the release binary, hd-native's scripts and the launcher
/// (`hd-native.sh`, which finds the GPU machine's torch with its python) in `DIR`, to copy to
/// a CUDA machine and run `bash DIR/gpu-bench.sh` there.
pub fn gpu_bundle(dir: &Path) -> Result<()> {
    let bin = build_release()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = vec![bin];
    let scripts = root().join("hd-native").join("scripts");
    for entry in
        std::fs::read_dir(&scripts).with_context(|| format!("reading {}", scripts.display()))?
    {
        files.push(entry?.path());
    }
    for f in files {
        let name = f.file_name().context("a file without a name")?;
        std::fs::copy(&f, dir.join(name)).with_context(|| format!("copying {}", f.display()))?;
    }
    println!(
        "{}: run `bash gpu-bench.sh [cuda:N]` there, or `./hd-native.sh …`",
        dir.display()
    );
    Ok(())
}

/// `cargo xtask bench-native`: the CPU benchmarks behind BENCHMARKS.md's native section, on one
/// thread (a shared two-core machine gives steadier figures that way); any arguments replace the
/// default set and go to `hd-native bench` as they are.
pub fn bench(args: &[String]) -> Result<()> {
    let bin = build_release()?;
    if !args.is_empty() {
        return exec(Command::new(&bin).arg("bench").args(args));
    }
    let runs: [&[&str]; 3] = [
        &["step", "--model", "resnet18"],
        &[
            "throughput",
            "--model",
            "mlp",
            "--dataset",
            "mnist",
            "--iters",
            "30",
        ],
        &[
            "throughput",
            "--model",
            "resnet18",
            "--dataset",
            "cifar10",
            "--batch-size",
            "32",
            "--iters",
            "6",
            "--rounds",
            "3",
        ],
    ];
    for run in runs {
        step(&format!("hd-native bench --threads 1 {}", run.join(" ")));
        exec(
            Command::new(&bin)
                .args(["bench", "--threads", "1"])
                .args(run),
        )?;
    }
    Ok(())
}
