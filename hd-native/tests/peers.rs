//! hd-core's learning-rate-free peers against the reference packages themselves:
//! `prodigyopt`'s `Prodigy`, `schedulefree`'s `SGDScheduleFree` and `AdamWScheduleFree`, run by
//! `tests/peers_reference.py` with the python of the torch venv that `cargo xtask test` names in
//! `HD_TORCH_PYTHON` (xtask installs the two packages there, at the versions below).
//!
//! Both sides get the same gradient sequence (a fixed formula, sent as f32 bit patterns) on a
//! model of three tensors, so that Prodigy's global sums span tensors, and must agree after
//! every step within f32 rounding (see [`TOLERANCE`]).

use hd_core::{
    Prodigy, ProdigyConfig, ScheduleFree, ScheduleFreeBase, ScheduleFreeConfig, TensorMut,
};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::io::Write;
use std::process::{Command, Stdio};

/// The python that runs `peers_reference.py`: one with torch, prodigyopt and schedulefree.
const PYTHON_ENV: &str = "HD_TORCH_PYTHON";
/// The versions hd-core follows (its doc comments name them), as xtask pins them.
const PRODIGYOPT: &str = "1.1.2";
const SCHEDULEFREE: &str = "1.4.1";

/// The model's tensors (29 parameters, no tensor a multiple of the 8 lanes but one).
const SHAPES: [&[usize]; 3] = [&[5], &[4, 4], &[8]];
const N: usize = 29;
/// Steps per case.
const STEPS: usize = 100;

/// Relative tolerance on the parameters (against the model's scale, see [`worst`]) and on
/// Prodigy's d, after every step. The element-wise operations are the packages' in the same
/// order (the first Prodigy steps agree bit for bit); what differs is the scalars: the
/// packages' d, its numerator, dlr, c_t and the step factors are f64 where hd-core's are f32,
/// and the sums behind d are added in another order. d enters every step's length, and its
/// relative error (a rounding or two of u = 2^−24 ≈ 6e−8 per step) can add up over the steps:
/// 100 steps × u ≈ 6e−6 at worst. Measured: 1.5e−6 (Prodigy), 5e−7 (Schedule-Free). Errors
/// in the equations (a factor, the order of updates, a step taken with the wrong d) are
/// percent-sized.
const TOLERANCE: f64 = 1e-5;

/// `$HD_TORCH_PYTHON`, or a failure that says how to run the test.
fn python() -> OsString {
    std::env::var_os(PYTHON_ENV).unwrap_or_else(|| {
        panic!(
            "{PYTHON_ENV} is not set: run this test through `cargo xtask test`, which sets it to \
             the python of its torch venv with prodigyopt {PRODIGYOPT} and schedulefree \
             {SCHEDULEFREE} (or set it to such a python)"
        )
    })
}

/// The gradient of element i at step t: a decaying common direction (so that x drifts and
/// Prodigy's d grows from d_0, then settles) plus an oscillation that differs per element,
/// with scales over a decade.
fn gradient(t: usize, i: usize) -> f32 {
    let (t, i) = (t as f64, i as f64);
    let g = (1.0 + i / 4.0) * (0.5 * (0.37 * t + 0.9 * i).cos() + (-t / 5.0).exp());
    g as f32
}

fn params0() -> Vec<f32> {
    (0..N)
        .map(|i| 0.5 - 0.125 * (i % 9) as f32 + 0.01 * i as f32)
        .collect()
}

fn to_bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn from_bits(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("an array of bit patterns")
        .iter()
        .map(|b| f32::from_bits(b.as_u64().expect("a u32") as u32))
        .collect()
}

/// One case: what the reference runs, and hd-core's rule.
enum Rule {
    Prodigy(ProdigyConfig),
    ScheduleFree(ScheduleFreeConfig),
}

/// The package's name and keyword arguments for `rule`: every hyperparameter passed
/// explicitly, as the f64 value of hd-core's f32, so that both run the same numbers.
fn request(rule: &Rule) -> (&'static str, Value) {
    let f = |x: f32| f64::from(x);
    match rule {
        Rule::Prodigy(c) => (
            "prodigy",
            json!({
                "lr": f(c.lr), "betas": [f(c.beta1), f(c.beta2)], "beta3": c.beta3.map(f),
                "eps": f(c.eps), "weight_decay": f(c.weight_decay), "decouple": c.decouple,
                "use_bias_correction": c.use_bias_correction,
                "safeguard_warmup": c.safeguard_warmup, "d0": f(c.d0), "d_coef": f(c.d_coef),
                // JSON has no ∞: None stands for the package's default, float('inf').
                "growth_rate": c.growth_rate.is_finite().then(|| f(c.growth_rate)),
            }),
        ),
        Rule::ScheduleFree(c) => {
            let common = json!({
                "lr": f(c.lr), "weight_decay": f(c.weight_decay),
                "warmup_steps": c.warmup_steps, "r": f(c.r),
                "weight_lr_power": f(c.weight_lr_power),
            });
            let mut kwargs = common.as_object().expect("an object").clone();
            match c.base {
                ScheduleFreeBase::Sgd => {
                    kwargs.insert("momentum".into(), json!(f(c.beta)));
                    ("sgd_schedulefree", Value::Object(kwargs))
                }
                ScheduleFreeBase::AdamW { beta2, eps } => {
                    kwargs.insert("betas".into(), json!([f(c.beta), f(beta2)]));
                    kwargs.insert("eps".into(), json!(f(eps)));
                    ("adamw_schedulefree", Value::Object(kwargs))
                }
            }
        }
    }
}

fn cases() -> Vec<(&'static str, Rule)> {
    let p = ProdigyConfig::DEFAULT;
    let sgd = ScheduleFreeConfig::sgd(0.05);
    let adamw = ScheduleFreeConfig::adamw(0.01);
    vec![
        ("prodigy", Rule::Prodigy(p)),
        (
            "prodigy-options",
            Rule::Prodigy(ProdigyConfig {
                beta2: 0.99,
                beta3: Some(0.98),
                weight_decay: 0.01,
                use_bias_correction: true,
                d_coef: 2.0,
                d0: 1e-4,
                growth_rate: 1.5,
                ..p
            }),
        ),
        (
            "prodigy-coupled-decay-safeguard",
            Rule::Prodigy(ProdigyConfig {
                weight_decay: 0.05,
                decouple: false,
                safeguard_warmup: true,
                lr: 2.0,
                ..p
            }),
        ),
        ("sgd-schedulefree", Rule::ScheduleFree(sgd)),
        (
            "sgd-schedulefree-options",
            Rule::ScheduleFree(ScheduleFreeConfig {
                weight_decay: 0.01,
                warmup_steps: 10,
                r: 0.5,
                weight_lr_power: 1.0,
                beta: 0.8,
                ..sgd
            }),
        ),
        ("adamw-schedulefree", Rule::ScheduleFree(adamw)),
        (
            "adamw-schedulefree-options",
            Rule::ScheduleFree(ScheduleFreeConfig {
                weight_decay: 0.01,
                warmup_steps: 10,
                r: 0.5,
                weight_lr_power: 1.0,
                ..adamw
            }),
        ),
    ]
}

/// The reference's results for every case, from one run of `peers_reference.py`.
fn reference(rules: &[(&str, Rule)]) -> Value {
    let grads: Vec<Vec<u32>> = (1..=STEPS)
        .map(|t| to_bits(&(0..N).map(|i| gradient(t, i)).collect::<Vec<_>>()))
        .collect();
    let requests: Vec<Value> = rules
        .iter()
        .map(|(_, rule)| {
            let (optimizer, kwargs) = request(rule);
            json!({
                "optimizer": optimizer, "kwargs": kwargs, "shapes": SHAPES,
                "params": to_bits(&params0()), "grads": grads,
            })
        })
        .collect();
    let python = python();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers_reference.py");
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{PYTHON_ENV}={}: {e}", python.to_string_lossy()));
    let body = serde_json::to_vec(&requests).expect("the request serialises");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(&body)
        .expect("writing the request");
    let out = child.wait_with_output().expect("waiting for python");
    assert!(out.status.success(), "peers_reference.py failed");
    serde_json::from_slice(&out.stdout).expect("peers_reference.py prints one JSON object")
}

/// hd-core's run of `rule` over the three tensors: the parameters after every step, d after
/// every step (Prodigy), and z and x at the end (Schedule-Free).
struct Ours {
    params: Vec<Vec<f32>>,
    d: Vec<f32>,
    z: Vec<f32>,
    x: Vec<f32>,
}

fn ours(rule: &Rule) -> Ours {
    let mut x = params0();
    let slots = match rule {
        Rule::Prodigy(_) => 4,
        Rule::ScheduleFree(c) => ScheduleFree::new(*c).expect("valid").slots(),
    };
    // Per-tensor buffers, each its own slots one after another.
    let sizes: Vec<usize> = SHAPES.iter().map(|s| s.iter().product()).collect();
    let mut buffers: Vec<Vec<f32>> = sizes.iter().map(|n| vec![0.0; slots * n]).collect();
    let mut out = Ours {
        params: Vec::new(),
        d: Vec::new(),
        z: Vec::new(),
        x: Vec::new(),
    };
    let tensors = |x: &mut [f32]| -> Vec<Vec<f32>> {
        let mut at = 0;
        sizes
            .iter()
            .map(|n| {
                at += n;
                x[at - n..at].to_vec()
            })
            .collect()
    };
    let mut parts = tensors(&mut x);
    match rule {
        Rule::Prodigy(c) => {
            let opt = Prodigy::new(*c).expect("valid");
            let mut state = opt.init_state();
            for (p, b) in parts.iter().zip(buffers.iter_mut()) {
                opt.init_buffers(p, b).expect("lengths");
            }
            for t in 1..=STEPS {
                let g: Vec<f32> = (0..N).map(|i| gradient(t, i)).collect();
                let mut gs = g.clone();
                let gparts = tensors(&mut gs);
                let mut list = tensor_list(&mut parts, &gparts, &mut buffers);
                opt.step_tensors(&mut state, &mut list).expect("a step");
                out.params.push(parts.concat());
                out.d.push(state.d);
            }
        }
        Rule::ScheduleFree(c) => {
            let opt = ScheduleFree::new(*c).expect("valid");
            let mut state = opt.init_state();
            for (p, b) in parts.iter().zip(buffers.iter_mut()) {
                opt.init_buffers(p, b).expect("lengths");
            }
            for t in 1..=STEPS {
                let mut g: Vec<f32> = (0..N).map(|i| gradient(t, i)).collect();
                let gparts = tensors(&mut g);
                let mut list = tensor_list(&mut parts, &gparts, &mut buffers);
                opt.step_tensors(&mut state, &mut list).expect("a step");
                out.params.push(parts.concat());
            }
            for (p, b) in parts.iter().zip(&buffers) {
                let n = p.len();
                out.z.extend_from_slice(&b[..n]);
                let mut x = vec![0.0; n];
                opt.eval_point(p, b, &mut x).expect("lengths");
                out.x.extend(x);
            }
        }
    }
    out
}

fn tensor_list<'a>(
    params: &'a mut [Vec<f32>],
    grads: &'a [Vec<f32>],
    buffers: &'a mut [Vec<f32>],
) -> Vec<TensorMut<'a>> {
    params
        .iter_mut()
        .zip(grads)
        .zip(buffers.iter_mut())
        .map(|((params, grads), buffers)| TensorMut {
            params,
            grads,
            buffers,
        })
        .collect()
}

/// The largest error of `ours` against `theirs`, relative to the model's scale
/// max(‖theirs‖_∞, `floor`): an element that passes near 0 on steps of size d carries the
/// rounding of those steps, not of its own value.
fn worst(ours: &[f32], theirs: &[f32], floor: f64) -> f64 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs
        .iter()
        .map(|b| f64::from(b.abs()))
        .fold(floor, f64::max);
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs() / scale)
        .fold(0.0, f64::max)
}

#[test]
fn the_peers_match_their_reference_packages() {
    let rules = cases();
    let reference = reference(&rules);
    let versions = &reference["versions"];
    assert_eq!(versions["prodigyopt"], PRODIGYOPT, "prodigyopt version");
    assert_eq!(
        versions["schedulefree"], SCHEDULEFREE,
        "schedulefree version"
    );
    let results = reference["cases"].as_array().expect("one result per case");
    assert_eq!(results.len(), rules.len());
    for ((name, rule), theirs) in rules.iter().zip(results) {
        let ours = ours(rule);
        let their_params: Vec<Vec<f32>> = theirs["params"]
            .as_array()
            .expect("a trajectory")
            .iter()
            .map(from_bits)
            .collect();
        assert_eq!(their_params.len(), STEPS, "{name}");
        let mut largest = 0.0f64;
        for (t, (a, b)) in ours.params.iter().zip(&their_params).enumerate() {
            let err = worst(a, b, 0.1);
            largest = largest.max(err);
            assert!(
                err <= TOLERANCE,
                "{name} step {}: θ off by {err:.2e}",
                t + 1
            );
        }
        // Not vacuous: the parameters moved far beyond the tolerance.
        let moved = worst(&their_params[STEPS - 1], &params0(), 0.1);
        assert!(
            moved > 100.0 * TOLERANCE,
            "{name}: θ moved by only {moved:.2e}"
        );
        match rule {
            Rule::Prodigy(c) => {
                let their_d: Vec<f64> = theirs["d"]
                    .as_array()
                    .expect("d per step")
                    .iter()
                    .map(|d| d.as_f64().expect("a number"))
                    .collect();
                for (t, (a, b)) in ours.d.iter().zip(&their_d).enumerate() {
                    let err = ((f64::from(*a) - b) / b).abs();
                    largest = largest.max(err);
                    assert!(err <= TOLERANCE, "{name} step {}: d {a} vs {b}", t + 1);
                }
                let grown = their_d[STEPS - 1] / f64::from(c.d0);
                assert!(grown > 10.0, "{name}: d grew only {grown:.1}×");
            }
            Rule::ScheduleFree(_) => {
                for (what, a) in [("z", &ours.z), ("x", &ours.x)] {
                    let err = worst(a, &from_bits(&theirs[what]), 0.1);
                    largest = largest.max(err);
                    assert!(err <= TOLERANCE, "{name}: {what} off by {err:.2e}");
                }
            }
        }
        println!("{name}: largest relative difference {largest:.2e}");
    }
}
