//! The check that hd-tch is a library a tch user adds in one line: a scratch crate in a
//! temporary directory outside the workspace, depending on hd-tch alone (a path dependency),
//! whose `main.rs` is the first Rust block of hd-tch's README. It must be the same code as
//! `hd-tch/examples/mnist.rs`, build, train on a small synthetic MNIST set, and pull in none of
//! the experiment app's dependencies.

use crate::env::{output, root, step};
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Packages the app needs and a library user must not get.
const FORBIDDEN: [&str; 3] = ["clap", "plotters", "toml"];

/// Images of the synthetic training and test sets.
const TRAIN: u32 = 512;
const TEST: u32 = 128;

/// The first block fenced as Rust in `markdown`.
pub fn first_rust_block(markdown: &str) -> Option<String> {
    let mut lines = markdown.lines();
    lines.find(|l| {
        let l = l.trim_start();
        l.starts_with("```rust") || l.starts_with("```rs")
    })?;
    let mut code = String::new();
    for line in lines {
        if line.trim_start().starts_with("```") {
            return Some(code);
        }
        code.push_str(line);
        code.push('\n');
    }
    None
}

/// The package names in `cargo tree --prefix none` output that are in [`FORBIDDEN`].
pub fn forbidden_in(tree: &str) -> Vec<String> {
    let mut found: Vec<String> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| FORBIDDEN.contains(name))
        .map(str::to_string)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// An IDX file (MNIST's format): magic number, dimensions, then the bytes, big-endian.
fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

/// The four MNIST files, by the names `tch::vision::mnist::load_dir` reads: images whose
/// brightest row is their label, so that the classes can be learned.
fn write_synthetic_mnist(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (prefix, n) in [("train", TRAIN), ("t10k", TEST)] {
        let labels: Vec<u8> = (0..n).map(|i| (i * 7 % 10) as u8).collect();
        let mut pixels = vec![0u8; (n * 28 * 28) as usize];
        for (i, &label) in labels.iter().enumerate() {
            let row = 2 + 2 * usize::from(label);
            let start = i * 784 + row * 28;
            if let Some(r) = pixels.get_mut(start..start + 28) {
                r.fill(255);
            }
        }
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte")),
            idx(2051, &[n, 28, 28], &pixels),
        )?;
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte")),
            idx(2049, &[n], &labels),
        )?;
    }
    Ok(())
}

/// The torch wheel's `torch/lib`, where libtorch's shared libraries are (a program that depends
/// on tch finds them through `LD_LIBRARY_PATH`).
fn torch_lib(venv: &Path) -> Result<PathBuf> {
    let python = venv.join("bin").join("python");
    let lib = output(Command::new(python).args([
        "-c",
        "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
    ]))?;
    Ok(PathBuf::from(lib.trim()))
}

/// The check itself; `torch_cargo` gives a cargo command that finds libtorch.
pub fn test(venv: &Path, torch_cargo: impl Fn() -> Result<Command>) -> Result<()> {
    step("a scratch crate outside the workspace trains hd-tch's README example");
    let root = root();
    let readme = std::fs::read_to_string(root.join("hd-tch/README.md"))?;
    let code = first_rust_block(&readme).context("hd-tch/README.md has no Rust block")?;
    let example = std::fs::read_to_string(root.join("hd-tch/examples/mnist.rs"))?;
    ensure!(
        code == example,
        "hd-tch/README.md's first Rust block is not hd-tch/examples/mnist.rs"
    );
    let dir = std::env::temp_dir().join(format!("hd-tch-scratch-{}", std::process::id()));
    let result = build_and_run(&dir, &root, &code, venv, torch_cargo);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn build_and_run(
    dir: &Path,
    root: &Path,
    code: &str,
    venv: &Path,
    torch_cargo: impl Fn() -> Result<Command>,
) -> Result<()> {
    let krate = dir.join("scratch");
    std::fs::create_dir_all(krate.join("src"))?;
    let hd_tch = root.join("hd-tch");
    let hd_tch = hd_tch
        .to_str()
        .context("the repository's path is not UTF-8")?;
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"scratch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nhd-tch = {{ path = {hd_tch:?} }}\n\n\
             # Not a member of any workspace around it.\n[workspace]\n"
        ),
    )?;
    std::fs::write(krate.join("src").join("main.rs"), code)?;
    // The workspace's lock file: the same versions as the workspace, so the target directory's
    // libtorch bindings are reused (cargo drops the entries the scratch crate does not need).
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock"))?;
    let manifest = krate.join("Cargo.toml");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let tree = output(
        torch_cargo()?
            .current_dir(&krate)
            .args([
                "tree",
                "--prefix",
                "none",
                "--edges",
                "all",
                "--manifest-path",
            ])
            .arg(&manifest),
    )?;
    ensure!(
        tree.lines().any(|l| l.starts_with("hd-tch ")),
        "cargo tree lists no hd-tch:\n{tree}"
    );
    let bad = forbidden_in(&tree);
    if !bad.is_empty() {
        bail!("hd-tch pulls in {}", bad.join(", "));
    }
    let data = dir.join("mnist");
    write_synthetic_mnist(&data)?;
    let out = output(
        torch_cargo()?
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", &target)
            .env("LD_LIBRARY_PATH", torch_lib(venv)?)
            .args(["run", "--release", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .arg("--")
            .arg(&data)
            .arg("2"),
    )?;
    print!("{out}");
    ensure!(
        out.lines().filter(|l| l.starts_with("epoch ")).count() == 2,
        "the example did not report two epochs:\n{out}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_rust_block() {
        let md = "# t\n```sh\nls\n```\ntext\n```rust\nfn main() {}\n```\n```rust\nx\n```\n";
        assert_eq!(first_rust_block(md).as_deref(), Some("fn main() {}\n"));
        assert_eq!(first_rust_block("```rust\nunclosed\n"), None);
        assert_eq!(first_rust_block("no code"), None);
    }

    #[test]
    fn names_forbidden_packages_once() {
        let tree = "scratch v0.0.0\nhd-tch v0.1.0\nclap v4.6.9\nclap v4.6.9 (*)\ntomlx v1.0\n";
        assert_eq!(forbidden_in(tree), vec!["clap".to_string()]);
        assert!(forbidden_in("hd-tch v0.1.0\ntch v0.24.0\n").is_empty());
    }

    #[test]
    fn idx_is_big_endian_with_its_dimensions() {
        assert_eq!(
            idx(2049, &[3], &[1, 2, 3]),
            vec![0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]
        );
    }
}
