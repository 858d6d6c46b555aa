//! Builds the shipped plans into the crate (`$OUT_DIR/plans.rs`: every `plans/*.toml` by
//! name), gives the binary an rpath to libtorch, so it runs without `LD_LIBRARY_PATH`, and links
//! libtorch_cuda eagerly: nothing references its symbols directly, so with `--as-needed` the
//! linker would drop it and CUDA would silently report itself unavailable.

use std::path::{Path, PathBuf};

/// Writes `$OUT_DIR/plans.rs`: a slice of `Shipped { name, text }`, one per `plans/*.toml`,
/// sorted by name, each text `include_str!`ed (so editing a plan rebuilds the crate, and adding
/// or removing one reruns this script).
fn ship_plans() {
    println!("cargo:rerun-if-changed=plans");
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("plans");
    let mut plans: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .map(|p| {
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|s| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                })
                .unwrap_or_else(|| {
                    panic!(
                        "{}: a plan's name is letters, digits, `-`, `_` and `.`",
                        p.display()
                    )
                })
                .to_string();
            (name, p)
        })
        .collect();
    plans.sort();
    let mut code = String::from("&[\n");
    for (name, path) in &plans {
        let path = path
            .to_str()
            .unwrap_or_else(|| panic!("{}: not a UTF-8 path", path.display()));
        code.push_str(&format!(
            "    Shipped {{ name: {name:?}, text: include_str!({path:?}) }},\n"
        ));
    }
    code.push_str("]\n");
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let file = Path::new(&out).join("plans.rs");
    std::fs::write(&file, code).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

fn main() {
    ship_plans();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib = Path::new(&lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
