//! Gives this crate's own tests, doc tests and examples an rpath to libtorch, so they run without
//! `LD_LIBRARY_PATH`, and links libtorch_cuda eagerly: nothing references its symbols directly,
//! so with `--as-needed` the linker would drop it and CUDA would silently report itself
//! unavailable. (Link arguments of a library's build script reach only its own targets; a
//! program that depends on hd-tch sets these up itself, as for any tch program.)

use std::path::Path;

fn main() {
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
