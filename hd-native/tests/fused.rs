//! The fused path's recorded programs against hd-core, on the CPU: bit for bit in phase 2,
//! to 1e-6 in α and over whole trajectories; and the emitted CUDA C through NVRTC.

use hd_core::{Optimizer, Scope};
use hd_native::fused::record::{Node, Place};
use hd_native::fused::{cuda, emit, eval_step, verify, FlatMut, Programs, Segment};

/// One tensor of an odd size, so that no tiling or lane count lines up.
const N: usize = 203;

/// Phase 2 of the recorded program, given hd-core's own α_t, writes exactly the bits hd-core's
/// slice step writes (θ and every buffer), at every one of 100 steps of every rule and option;
/// and the recorded phase 1 and α update give hd-core's α_t to 1e-6 relative.
#[test]
fn phase_two_is_bit_identical_and_alpha_within_tolerance() {
    for (name, config) in verify::cases() {
        let opt = Optimizer::new(config).expect("valid");
        let mut state = opt.init_state();
        let mut params = verify::initial(&[N]).remove(0);
        let mut buffers = vec![0.0f32; opt.buffer_len(N).expect("len")];
        opt.init_buffers(&mut buffers).expect("init");
        let whole = [Segment {
            offset: 0,
            len: N,
            group: 0,
        }];
        for step in 0..verify::STEPS {
            let grads = verify::gradient(0, step, &params);
            let programs = Programs::record(&opt, step + 1).expect("record");
            // The candidate's own α_t, from the state before the step.
            let mut alpha = vec![state.alpha];
            let (mut p, mut b) = (params.clone(), buffers.clone());
            eval_step(
                &programs,
                &mut FlatMut {
                    params: &mut p,
                    grads: &grads,
                    buffers: &mut b,
                    stride: N,
                },
                &whole,
                &mut alpha,
            );
            let before = (params.clone(), buffers.clone());
            opt.step(&mut state, &mut params, &grads, &mut buffers)
                .unwrap_or_else(|e| panic!("{name}: hd-core step {step}: {e}"));
            let (a, want) = (alpha[0], state.alpha);
            assert!(
                (a - want).abs() <= 1e-6 * want.abs().max(f32::MIN_POSITIVE),
                "{name}: step {}: alpha {a} vs hd-core {want}",
                step + 1
            );
            // Phase 2 alone with hd-core's α_t.
            let phase2 = Programs {
                terms: None,
                alpha: None,
                ..programs
            };
            let (mut p, mut b) = before;
            eval_step(
                &phase2,
                &mut FlatMut {
                    params: &mut p,
                    grads: &grads,
                    buffers: &mut b,
                    stride: N,
                },
                &whole,
                &mut [state.alpha],
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&p), bits(&params), "{name}: θ at step {}", step + 1);
            assert_eq!(
                bits(&b),
                bits(&buffers),
                "{name}: buffers at step {}",
                step + 1
            );
        }
    }
}

/// Whole trajectories of the recorded programs over flat, padded buffers (three tensors,
/// per-tensor α where configured) follow hd-core's `step_tensors` to 1e-6 over 100 steps.
#[test]
fn recorded_trajectories_follow_hd_core() {
    let sizes = [5, 37, 203];
    for (name, config) in verify::cases() {
        let want = verify::reference(config, &sizes, verify::STEPS).expect("reference");
        let got = verify::run_host(config, &sizes, verify::STEPS).expect("host run");
        if let Err(e) = verify::compare(&got, &want) {
            panic!("{name}: {e}");
        }
    }
}

/// The comparison can fail: a trajectory off by 10^-4 in one parameter (tolerance: 1e-6 of the tensor's largest |θ|, about 1), or with
/// one α step missing, is refused.
#[test]
fn comparison_refuses_a_drifted_trajectory() {
    let config = hd_core::Config::sgd(0.05).with_hd(1e-5);
    let want = verify::reference(config, &[5, 37], 10).expect("reference");
    let mut off = want.clone();
    off.params[1][3] += 1e-4;
    assert!(verify::compare(&off, &want).is_err());
    let mut short = want.clone();
    short.alphas.pop();
    assert!(verify::compare(&short, &want).is_err());
    assert_eq!(verify::compare(&want, &want), Ok(()));
}

/// One compiled kernel serves every step after the first: from t = 2 on, the programs have
/// the same shape and differ only in the constants' values (Adam's bias corrections, δ(t)).
/// t = 1 differs where d_0 = 0 replaces the recomputed d_{t−1} (Adam) or α_0 the α buffer.
#[test]
fn constants_are_arguments_so_shapes_repeat() {
    for (name, config) in verify::cases() {
        let opt = Optimizer::new(config).expect("valid");
        let (p2, p3, p99) = (
            Programs::record(&opt, 2).expect("record"),
            Programs::record(&opt, 3).expect("record"),
            Programs::record(&opt, 99).expect("record"),
        );
        assert_eq!(p2.shape(), p3.shape(), "{name}");
        assert_eq!(p2.shape(), p99.shape(), "{name}");
    }
    // Adam-HD: β1's bias correction 1/(1−0.9^t) is an argument whose value changes with t.
    let opt = Optimizer::new(hd_core::Config::adam(0.01).with_hd(1e-4)).expect("valid");
    let (a, b) = (
        Programs::record(&opt, 2).expect("record"),
        Programs::record(&opt, 3).expect("record"),
    );
    assert_ne!(a.apply.consts, b.apply.consts);
    // 1/(1−β1^t) in f64 for β1 = 0.9 as an f32; hd-core's is within 3·2^−24 relative.
    let near = |k: f32, t: i32| {
        let x = 1.0 / (1.0 - f64::from(0.9f32).powi(t));
        (f64::from(k) - x).abs() <= 2e-7 * x
    };
    assert!(
        a.apply.consts.iter().any(|&k| near(k, 2)),
        "{:?}",
        a.apply.consts
    );
    assert!(b.apply.consts.iter().any(|&k| near(k, 3)));
}

/// Which kernels a rule needs: none of phase 1 for a base rule or per-parameter α (whose α
/// lives in a buffer, updated in phase 2), one sum for HD, three for HDM; and HDM's α
/// program has hd-core's clamp of cos to [−1, 1] as a two-comparison node.
#[test]
fn phase_one_only_where_alpha_needs_it() {
    let record = |c: hd_core::Config| {
        Programs::record(&Optimizer::new(c).expect("valid"), 2).expect("record")
    };
    assert!(record(hd_core::Config::adam(0.01)).terms.is_none());
    let per_parameter = {
        let mut c = hd_core::Config::sgd(0.05).with_hd(1e-4);
        if let Some(h) = c.hyper.as_mut() {
            h.scope = Scope::PerParameter;
        }
        c
    };
    let pp = record(per_parameter);
    assert!(pp.terms.is_none() && pp.alpha.is_none());
    assert!(
        pp.apply.stores.iter().any(|(p, _)| *p == Place::Slot(1)),
        "α slot stored"
    );
    let hd = record(hd_core::Config::sgd(0.05).with_hd(1e-4));
    assert_eq!(hd.terms.as_ref().map(|t| t.sums.len()), Some(1));
    let hdm = record(hd_core::Config::adam(0.01).with_hdm(0.02));
    assert_eq!(hdm.terms.as_ref().map(|t| t.sums.len()), Some(3));
    let alpha = hdm.alpha.expect("alpha program");
    let clamps: Vec<(f32, f32)> = alpha
        .nodes
        .iter()
        .filter_map(|n| match n {
            Node::Clamp(_, lo, hi) => Some((alpha.consts[*lo], alpha.consts[*hi])),
            _ => None,
        })
        .collect();
    assert_eq!(clamps, vec![(-1.0, 1.0)]);
}

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

/// On the CPU the optimizer keeps the libtorch path whatever is asked, and says so; its step
/// is unchanged (the same trajectory as hd-core, checked by tests/optim.rs).
#[test]
fn cpu_optimizers_stay_on_libtorch() {
    use hd_native::optim::{Backend, HdOptimizer};
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _w = vs.root().zeros("w", &[3]);
    let mut opt = HdOptimizer::new(&vs, hd_core::Config::sgd(0.1).with_hd(0.01)).expect("opt");
    assert_eq!(opt.backend(), Backend::Libtorch);
    assert_eq!(opt.set_backend(Backend::FusedCuda), Backend::Libtorch);
    assert_eq!(opt.fused_unavailable(), None);
    assert_eq!(Backend::FusedCuda.to_string(), "fused");
}

/// Tiles cover each segment exactly, in order, at most `TILE` elements each, grouped so that
/// a group's tiles are contiguous and delimited by the group table: worked by hand for a
/// segment of 2·TILE + 3 (three tiles) and one of 5 in another group.
#[test]
fn tiles_cover_segments_by_group() {
    use hd_native::fused::TILE;
    let t = TILE as i64;
    let segments = [
        Segment {
            offset: 2 * TILE + 64,
            len: 5,
            group: 1,
        },
        Segment {
            offset: 0,
            len: 2 * TILE + 3,
            group: 0,
        },
    ];
    let (tiles, groups) = cuda::tiling(&segments, 2);
    assert_eq!(
        tiles,
        vec![
            0,
            t,
            0,
            t,
            2 * t,
            0,
            2 * t,
            2 * t + 3,
            0,
            2 * t + 64,
            2 * t + 69,
            1
        ]
    );
    assert_eq!(groups, vec![0, 3, 4]);
}
