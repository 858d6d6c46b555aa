//! The emitted CUDA C through NVRTC (the `cuda` feature): no GPU needed, only the library.

#![cfg(feature = "cuda")]

use hd_core::Optimizer;
use hd_fused::{cuda, emit, verify, Programs};

/// Every rule and option's emitted source, for step 1 and for later steps, compiles with
/// NVRTC to PTX without a single fused multiply–add. Runs when NVRTC loads: `HD_NVRTC` set
/// (as `cargo xtask test` does, to the torch wheel's libnvrtc) makes NVRTC required, so a
/// missing library or a source it refuses fails the test; unset and absent, the test says so.
#[test]
fn emitted_sources_compile_with_nvrtc() {
    let required = std::env::var_os(cuda::NVRTC_ENV).is_some();
    if let Err(e) = cuda::load_nvrtc() {
        assert!(!required, "{} is set but: {e}", cuda::NVRTC_ENV);
        println!("NVRTC was not checked: {e}");
        return;
    }
    for (name, config) in verify::cases() {
        let opt = Optimizer::new(config).expect("valid");
        for step in [1, 2] {
            let programs = Programs::record(&opt, step).expect("record");
            let src = emit::source(&programs).expect("emit");
            let ptx = cuda::compile(&src, Some("compute_90"))
                .unwrap_or_else(|e| panic!("{name}, step {step}: {e}\n{src}"))
                .to_src();
            assert!(ptx.contains(".entry hd_apply"), "{name}: {ptx}");
            assert_eq!(
                ptx.contains(".entry hd_terms"),
                programs.terms.is_some(),
                "{name}"
            );
            assert!(
                !ptx.contains("fma."),
                "{name}, step {step}: an FMA in\n{ptx}"
            );
        }
    }
}

/// NVRTC refuses a broken source with its log (so the test above can fail).
#[test]
fn nvrtc_reports_a_broken_source() {
    if cuda::load_nvrtc().is_err() {
        assert!(std::env::var_os(cuda::NVRTC_ENV).is_none());
        println!("NVRTC was not checked");
        return;
    }
    let e = cuda::compile("extern \"C\" __global__ void k() { undefined_name; }", None);
    assert!(matches!(e, Err(cuda::CudaError::Compile(_))), "{e:?}");
}
