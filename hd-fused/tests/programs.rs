//! The recorded programs against hd-core, on the CPU: bit for bit in phase 2, to 1e-6 in α
//! and over whole trajectories; the emitted CUDA C run as C++ on the host, and (with the
//! `cuda` feature) compiled by NVRTC. No libtorch, no GPU.

use hd_core::{Optimizer, Scope};
use hd_fused::record::{Node, Place};
use hd_fused::{emit, eval_step, tiling, verify, FlatMut, Programs, Segment};

/// One tensor of an odd size, so that no tiling or lane count lines up.
const N: usize = 203;

/// `programs` run once on copies of θ and the buffers `[slots, θ.len()]`: θ, buffers and α after.
fn evaluated(
    programs: &Programs,
    (params, grads, buffers): (&[f32], &[f32], &[f32]),
    segments: &[Segment],
    alphas: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mut p, mut b, mut a) = (params.to_vec(), buffers.to_vec(), alphas.to_vec());
    let mut flat = FlatMut {
        params: &mut p,
        grads,
        buffers: &mut b,
        stride: params.len(),
    };
    eval_step(programs, &mut flat, segments, &mut a);
    (p, b, a)
}

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
            let (_, _, alpha) = evaluated(
                &programs,
                (&params, &grads, &buffers),
                &whole,
                &[state.alpha],
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
            let (p, b, _) = evaluated(
                &phase2,
                (&before.0, &grads, &before.1),
                &whole,
                &[state.alpha],
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

/// Tiles cover each segment exactly, in order, at most `TILE` elements each, grouped so that
/// a group's tiles are contiguous and delimited by the group table: worked by hand for a
/// segment of 2·TILE + 3 (three tiles) and one of 5 in another group.
#[test]
fn tiles_cover_segments_by_group() {
    use hd_fused::TILE;
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
    let (tiles, groups) = tiling(&segments, 2, TILE);
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

/// What a CUDA C kernel needs on the host, so that the emitted text runs as C++: a grid is a
/// loop over blocks, a block is HD_THREADS real threads with a barrier for `__syncthreads`,
/// `__shared__` is a static shared by the block's threads, and each `__f*_rn` intrinsic is the
/// one IEEE operation it names (compiled with `-ffp-contract=off`, so no FMA either).
const HOST_PRELUDE: &str = r#"#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <pthread.h>
#include <thread>
#include <vector>
struct HdIndex { unsigned x; };
static thread_local HdIndex threadIdx;
static HdIndex blockIdx;
static pthread_barrier_t hd_barrier;
#define __global__
#define __launch_bounds__(n)
#define __restrict__ __restrict
#define __shared__ static
static inline void __syncthreads() { pthread_barrier_wait(&hd_barrier); }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return std::sqrt(a); }
static void hd_launch(unsigned blocks, const std::function<void()>& kernel) {
    for (unsigned b = 0; b < blocks; ++b) {
        blockIdx.x = b;
        pthread_barrier_init(&hd_barrier, nullptr, 256);
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < 256; ++t) threads.emplace_back([t, &kernel] { threadIdx.x = t; kernel(); });
        for (auto& th : threads) th.join();
        pthread_barrier_destroy(&hd_barrier);
    }
}
static float hd_f(unsigned bits) { float f; std::memcpy(&f, &bits, 4); return f; }
static void hd_print(const std::vector<float>& v) {
    for (float x : v) { unsigned b; std::memcpy(&b, &x, 4); std::printf("%08x\n", b); }
}
"#;

/// One step's inputs on the host: flat θ, g, buffers `[max(slots, 1), n]`, α per group.
struct HostStep {
    programs: Programs,
    params: Vec<f32>,
    grads: Vec<f32>,
    buffers: Vec<f32>,
    alphas: Vec<f32>,
    segments: Vec<Segment>,
}

fn floats(v: &[f32]) -> String {
    let bits: Vec<String> = v
        .iter()
        .map(|x| format!("hd_f(0x{:08x}u)", x.to_bits()))
        .collect();
    format!("{{{}}}", bits.join(", "))
}

fn const_args(g: &hd_fused::record::Graph) -> String {
    g.consts
        .iter()
        .map(|k| format!(", hd_f(0x{:08x}u)", k.to_bits()))
        .collect()
}

/// C++ running `step`'s emitted kernels in namespace `ns` and printing α, θ and the buffers.
fn host_run(ns: &str, step: &HostStep, tile: usize) -> String {
    let n = step.params.len();
    let (tiles, groups) = tiling(&step.segments, step.alphas.len(), tile);
    let ntiles = tiles.len() / 3;
    let list = |v: &[i64]| {
        v.iter()
            .map(|x| format!("{x}LL"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = format!(
        "{{\n  std::vector<float> p = {}, g = {}, s = {}, alpha = {};\n  \
         std::vector<long long> tiles = {{{}}}, groups = {{{}}};\n  \
         std::vector<float> partials({} * 3 + 1);\n  long long n = {n};\n",
        floats(&step.params),
        floats(&step.grads),
        floats(&step.buffers),
        floats(&step.alphas),
        list(&tiles),
        list(&groups),
        ntiles,
    );
    let pr = &step.programs;
    if let (Some(t), Some(a)) = (&pr.terms, &pr.alpha) {
        s += &format!(
            "  hd_launch({ntiles}, [&] {{ {ns}::hd_terms(p.data(), g.data(), s.data(), n, tiles.data(), partials.data(){}); }});\n",
            const_args(t)
        );
        s += &format!(
            "  hd_launch(1, [&] {{ {ns}::hd_alpha(partials.data(), groups.data(), {}LL, alpha.data(){}); }});\n",
            step.alphas.len(),
            const_args(a)
        );
    }
    s += &format!(
        "  hd_launch({ntiles}, [&] {{ {ns}::hd_apply(p.data(), g.data(), s.data(), n, tiles.data(), alpha.data(){}); }});\n",
        const_args(&pr.apply)
    );
    s + "  hd_print(alpha); hd_print(p); hd_print(s);\n}\n"
}

/// The state before step `t` of `config` over the flat layout of `sizes`, advanced with the
/// recorded programs on the host, and the programs of step `t`.
fn host_step(config: hd_core::Config, sizes: &[usize], t: u64) -> HostStep {
    let mut run = verify::HostRun::new(config, sizes).expect("valid");
    for step in 0..t - 1 {
        run.gradients(step);
        let programs = run.record(step + 1).expect("record");
        run.step(&programs);
    }
    run.gradients(t - 1);
    HostStep {
        programs: run.record(t).expect("record"),
        params: run.params,
        grads: run.grads,
        buffers: run.buffers,
        alphas: run.alphas,
        segments: run.segments,
    }
}

/// The emitted kernels' text, compiled as C++ by the host compiler and run block by block with
/// real threads, computes what the recorded programs compute: α (from the tiled tree sums) to
/// 1e-6 of the sequential host sum, and with that α θ and every buffer bit for bit, for every
/// rule and option at step 1 and at step 4 (d_{t−1} ≠ 0), over three padded tensors cut into
/// tiles of 64 so that groups span several tiles. Runs where a C++ compiler (`c++`) is found.
#[test]
fn emitted_kernels_run_as_cpp_like_the_recorded_programs() {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("no temporary directory");
    };
    if std::process::Command::new("c++")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("no C++ compiler: the emitted kernels were not run on the host");
        return;
    }
    let sizes = [5, 37, 203];
    let tile = 64;
    for (ci, (name, config)) in verify::cases().into_iter().enumerate() {
        let steps = [host_step(config, &sizes, 1), host_step(config, &sizes, 4)];
        let mut src = HOST_PRELUDE.to_string();
        let mut main = String::from("int main() {\n");
        for (k, st) in steps.iter().enumerate() {
            let kernels = emit::source(&st.programs)
                .expect("emit")
                .replace("extern \"C\" ", "");
            src += &format!("namespace s{k} {{\n{kernels}}}\n");
            main += &host_run(&format!("s{k}"), st, tile);
        }
        src += &main;
        src += "  return 0;\n}\n";
        let cpp = dir.path().join(format!("case{ci}.cpp"));
        let exe = dir.path().join(format!("case{ci}"));
        std::fs::write(&cpp, &src).expect("write source");
        let built = std::process::Command::new("c++")
            .args(["-std=c++17", "-O1", "-ffp-contract=off", "-pthread", "-o"])
            .arg(&exe)
            .arg(&cpp)
            .output()
            .expect("run c++");
        assert!(
            built.status.success(),
            "{name}: {}\n{src}",
            String::from_utf8_lossy(&built.stderr)
        );
        let out = std::process::Command::new(&exe).output().expect("run");
        assert!(out.status.success(), "{name}: the host run failed");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut values = text
            .lines()
            .map(|l| f32::from_bits(u32::from_str_radix(l, 16).expect("hex")));
        for (k, st) in steps.iter().enumerate() {
            let mut take = |len: usize| values.by_ref().take(len).collect::<Vec<f32>>();
            let (alpha, p, b) = (
                take(st.alphas.len()),
                take(st.params.len()),
                take(st.buffers.len()),
            );
            // The recorded programs' own step, sequential sums.
            let state = (&st.params[..], &st.grads[..], &st.buffers[..]);
            let (_, _, want_a) = evaluated(&st.programs, state, &st.segments, &st.alphas);
            for (x, y) in alpha.iter().zip(&want_a) {
                assert!(
                    (x - y).abs() <= 1e-6 * y.abs(),
                    "{name}, step {}: α {x} vs {y}",
                    [1, 4][k]
                );
            }
            // Phase 2 with the kernels' α: the same bits.
            let phase2 = Programs {
                terms: None,
                alpha: None,
                apply: st.programs.apply.clone(),
            };
            let (q, c, _) = evaluated(&phase2, state, &st.segments, &alpha);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&p), bits(&q), "{name}, step {}: θ", [1, 4][k]);
            assert_eq!(bits(&b), bits(&c), "{name}, step {}: buffers", [1, 4][k]);
        }
    }
}
