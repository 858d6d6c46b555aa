//! Link set-up for the firmware, here rather than in `rustflags` so a `RUSTFLAGS` in the
//! environment cannot silently drop it.

use std::{env, fs, path::PathBuf};

fn main() {
    // cortex-m-rt's `link.x` includes `memory.x`: put it where the linker looks.
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("writing memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    // Keep relocations in the ELF so `cargo xtask footprint` can follow calls between functions.
    println!("cargo:rustc-link-arg-bins=--emit-relocs");
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
}
