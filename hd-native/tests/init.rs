//! Every model's initial parameters against torch's own initialisers, called as each model's
//! reference code calls them (`tests/torch_init.py`, run with the python of the torch venv that
//! `cargo xtask test` names in `HD_TORCH_PYTHON`): for each variable, its mean and standard
//! deviation, its range where the reference draws uniformly and its kurtosis where it draws a
//! normal must agree within sampling error, and a constant must be that constant.

use hd_native::data::{DatasetKind, InputSpec};
use hd_native::models::{build, Model};
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::process::{Command, Stdio};
use tch::{nn, Device, Kind, Tensor};

/// The python that runs `torch_init.py`: one with torch, as `cargo xtask test` sets it.
const PYTHON_ENV: &str = "HD_TORCH_PYTHON";

/// The reference draws each random parameter until it has this many values (a fresh module per
/// draw), so its own sampling error is small beside that of the smaller tensors under test.
const REFERENCE_SAMPLES: u64 = 1 << 14;

/// Which reference code initialises each model (the rules are spelled out in `torch_init.py`):
/// the paper's code for LogReg, the MLP and VGG, torchvision for the ResNets,
/// xternalz/WideResNet-pytorch for the WideResNet.
fn cases() -> Vec<(Model, InputSpec, &'static str)> {
    let mnist = DatasetKind::Mnist.spec();
    let cifar = DatasetKind::Cifar10.spec();
    vec![
        (Model::Logreg, mnist, "pytorch"),
        (
            Model::Mlp {
                hidden: vec![1000, 1000],
            },
            mnist,
            "pytorch",
        ),
        (Model::Vgg { batch_norm: true }, cifar, "vgg"),
        (Model::Vgg { batch_norm: false }, cifar, "vgg"),
        (Model::Resnet18, cifar, "resnet"),
        (Model::Resnet101, cifar, "resnet"),
        (
            Model::Wrn {
                depth: 28,
                width: 10,
            },
            cifar,
            "wrn",
        ),
    ]
}

/// A layer of a built model: the variables under one path, and what kind of layer they make.
struct Layer {
    path: String,
    kind: &'static str,
    vars: Vec<(String, Tensor)>,
}

/// The model's variables grouped into layers. The kind follows from the variables alone (batch
/// norm has running statistics; a 4-d weight is a convolution's, a 2-d one a linear layer's),
/// and every variable must belong to a layer of a kind the reference knows.
fn layers(vs: &nn::VarStore) -> Vec<Layer> {
    let mut by_path: BTreeMap<String, Vec<(String, Tensor)>> = BTreeMap::new();
    for (name, t) in vs.variables() {
        let (path, var) = name.rsplit_once('.').unwrap_or(("", &name));
        by_path
            .entry(path.to_string())
            .or_default()
            .push((var.to_string(), t));
    }
    by_path
        .into_iter()
        .map(|(path, mut vars)| {
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            let has = |n: &str| vars.iter().any(|(v, _)| v == n);
            let weight_dims = vars
                .iter()
                .find(|(v, _)| v == "weight")
                .map(|(_, t)| t.dim());
            let (kind, allowed): (&str, &[&str]) = if has("running_mean") {
                (
                    "batch_norm",
                    &["weight", "bias", "running_mean", "running_var"],
                )
            } else if weight_dims == Some(4) {
                ("conv", &["weight", "bias"])
            } else if weight_dims == Some(2) {
                ("linear", &["weight", "bias"])
            } else {
                panic!("{path}: a layer of no known kind ({vars:?})");
            };
            for (v, _) in &vars {
                assert!(allowed.contains(&v.as_str()), "{path}: {v} in a {kind}");
            }
            Layer { path, kind, vars }
        })
        .collect()
}

/// What the reference's layer is: its rule, kind, weight shape, whether it has a bias, and the
/// variables to draw.
fn request(rule: &str, layer: &Layer) -> serde_json::Value {
    let weight = &layer
        .vars
        .iter()
        .find(|(v, _)| v == "weight")
        .expect("every layer has a weight")
        .1;
    let names: Vec<&str> = layer.vars.iter().map(|(v, _)| v.as_str()).collect();
    serde_json::json!({
        "rule": rule,
        "kind": layer.kind,
        "weight": weight.size(),
        "bias": names.contains(&"bias"),
        "params": names,
    })
}

/// A sample's statistics: the reference's come from `torch_init.py`, ours from [`stats`].
#[derive(Debug, serde::Deserialize)]
struct Stats {
    n: f64,
    mean: f64,
    std: f64,
    /// E[(x − μ)⁴]/σ⁴; absent for a constant.
    #[serde(default)]
    kurtosis: Option<f64>,
    min: f64,
    max: f64,
    /// What the reference's initialiser draws from: `uniform`, `normal` or `constant`.
    #[serde(default)]
    dist: String,
}

fn scalar(t: Tensor) -> f64 {
    f64::try_from(t).expect("a scalar")
}

/// The float tensor's statistics, accumulated in double (ATen's CPU reductions of float do).
fn stats(t: &Tensor) -> Stats {
    let x = t.detach();
    let n = x.numel();
    let mean = scalar(x.mean(Kind::Double));
    let squares = (&x - mean).square();
    let m2 = scalar(squares.mean(Kind::Double));
    let m4 = scalar(squares.square().mean(Kind::Double));
    Stats {
        n: n as f64,
        mean,
        std: if n > 1 { scalar(x.std(true)) } else { 0.0 },
        kurtosis: (m2 > 0.0).then(|| m4 / (m2 * m2)),
        min: scalar(x.min()),
        max: scalar(x.max()),
        dist: String::new(),
    }
}

/// `$HD_TORCH_PYTHON`, or a failure that says how to run the test.
fn python() -> OsString {
    std::env::var_os(PYTHON_ENV).unwrap_or_else(|| {
        panic!(
            "{PYTHON_ENV} is not set: run this test through `cargo xtask test`, which sets it to \
             the python of its torch venv (or set it to a python that imports torch)"
        )
    })
}

/// The reference statistics for each request, from one run of `torch_init.py`.
fn torch_reference(python: &OsStr, requests: &[serde_json::Value]) -> Vec<HashMap<String, Stats>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/torch_init.py");
    let input = serde_json::json!({
        "seed": 2,
        "min_samples": REFERENCE_SAMPLES,
        "layers": requests,
    });
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{PYTHON_ENV}={}: {e}", python.to_string_lossy()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("writing to torch_init.py");
    let out = child.wait_with_output().expect("torch_init.py");
    assert!(out.status.success(), "torch_init.py failed: {}", out.status);
    #[derive(serde::Deserialize)]
    struct Reply {
        torch: String,
        layers: Vec<HashMap<String, Stats>>,
    }
    let reply: Reply = serde_json::from_slice(&out.stdout).expect("torch_init.py's JSON");
    println!("reference: torch {}", reply.torch);
    assert_eq!(reply.layers.len(), requests.len());
    reply.layers
}

/// How far, in standard errors, a statistic may stray. At 6 a normal statistic strays that far
/// with probability 2·10⁻⁹, so a few thousand comparisons fail by chance about once in 10⁵
/// runs. Below 1000 values the sampling distributions of σ̂ and κ̂ are skewed and their normal
/// approximations optimistic, so the band widens to 8; for the smallest tensors under test (the
/// ten biases of a classifier) that makes the σ̂ test vacuous, and what can still fail them is
/// the mean and the range.
fn band(n: f64) -> f64 {
    if n >= 1000.0 {
        6.0
    } else {
        8.0
    }
}

/// −ln of the probability with which a range check may fail by chance (e^−21 ≈ 7.6·10⁻¹⁰).
const RANGE_LOG_ODDS: f64 = 21.0;

/// Compares one variable (`ours`, n values) with the reference (N values) and says what differs.
///
/// - A constant must be that constant exactly.
/// - The mean: se(x̄) = σ·√(1/n + 1/N) (two independent samples).
/// - The standard deviation: for n values of a distribution with kurtosis κ,
///   se(σ̂) ≈ σ·√((κ − 1)/(4n)) (the delta method on var(s²) = σ⁴(κ − 1)/n; κ = 3 for a normal,
///   1.8 for a uniform), so for two samples σ·√((κ − 1)/4 · (1/n + 1/N)), κ from the reference's
///   large sample.
/// - A uniform on [a, b] (w = b − a): our values must lie inside the reference's and reach near
///   its ends. The gap between the largest of m values and b exceeds t·w with probability
///   (1 − t)^m ≤ e^(−tm), so with t = 21/m: the reference's [min, max] widened by 21·w/N must
///   hold all of ours, and our max must be within 21·w/n of the reference's (likewise the min).
/// - A normal: the kurtosis too, which tells it from a uniform of the same σ (Kaiming-uniform
///   over the inputs has the same σ as the normal over the outputs wherever in = out). For a
///   normal, se(κ̂) ≈ √(24/n), so for two samples √(24 · (1/n + 1/N)).
fn compare(ours: &Stats, reference: &Stats) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |what: &str, ok: bool, detail: String| {
        if !ok {
            bad.push(format!("{what}: {detail}"));
        }
    };
    if reference.dist == "constant" {
        check(
            "constant",
            ours.min == reference.min && ours.max == reference.max,
            format!(
                "ours in [{}, {}], torch's all {}",
                ours.min, ours.max, reference.min
            ),
        );
        return bad;
    }
    let (n, big_n, sigma) = (ours.n, reference.n, reference.std);
    let k = band(n);
    let se_mean = sigma * (1.0 / n + 1.0 / big_n).sqrt();
    check(
        "mean",
        (ours.mean - reference.mean).abs() <= k * se_mean,
        format!(
            "ours {:.6e}, torch's {:.6e}, band ±{:.2e} ({k} se)",
            ours.mean,
            reference.mean,
            k * se_mean
        ),
    );
    let kurtosis = reference
        .kurtosis
        .expect("a random reference has a kurtosis");
    let se_std = sigma * ((kurtosis - 1.0) / 4.0 * (1.0 / n + 1.0 / big_n)).sqrt();
    check(
        "std",
        (ours.std - sigma).abs() <= k * se_std,
        format!(
            "ours {:.6e}, torch's {:.6e} (ratio {:.4}), band ±{:.2e} ({k} se, kurtosis {kurtosis:.2})",
            ours.std,
            sigma,
            ours.std / sigma,
            k * se_std
        ),
    );
    if reference.dist == "normal" {
        let theirs = kurtosis;
        let ours = ours.kurtosis.unwrap_or(f64::NAN);
        let se = (24.0 * (1.0 / n + 1.0 / big_n)).sqrt();
        check(
            "kurtosis",
            (ours - theirs).abs() <= k * se,
            format!(
                "ours {ours:.3}, torch's {theirs:.3}, band ±{:.3} ({k} se)",
                k * se
            ),
        );
    }
    if reference.dist == "uniform" {
        let width = reference.max - reference.min;
        let outer = RANGE_LOG_ODDS * width / big_n;
        let inner = RANGE_LOG_ODDS * width / n;
        check(
            "range",
            ours.min >= reference.min - outer && ours.max <= reference.max + outer,
            format!(
                "ours [{:.6e}, {:.6e}] outside torch's [{:.6e}, {:.6e}]",
                ours.min, ours.max, reference.min, reference.max
            ),
        );
        check(
            "range reached",
            ours.min <= reference.min + inner && ours.max >= reference.max - inner,
            format!(
                "ours [{:.6e}, {:.6e}] short of torch's [{:.6e}, {:.6e}] by more than {inner:.2e}",
                ours.min, ours.max, reference.min, reference.max
            ),
        );
    }
    bad
}

/// Every variable of every model, as built, against torch's initialisers as the model's
/// reference code calls them (see `cases` and `torch_init.py`): LogReg and the paper's MLP on
/// MNIST shapes, VGG with and without batch norm, ResNet-18, ResNet-101 and WRN-28-10 on
/// CIFAR-10 shapes.
#[test]
fn every_layer_starts_as_its_reference_code_initialises_it() {
    let python = python();
    tch::manual_seed(1);
    let start = std::time::Instant::now();
    // Each model is built, measured and dropped (ResNet-101 alone is 170 MB); a torch layer
    // is drawn once for all the layers that ask for the same one.
    let mut measured: Vec<(String, Measured)> = Vec::new();
    let mut requests: Vec<serde_json::Value> = Vec::new();
    let mut request_of: HashMap<String, usize> = HashMap::new();
    for (model, spec, rule) in cases() {
        let vs = nn::VarStore::new(Device::Cpu);
        build(&vs.root(), &model, spec).expect("builds");
        for layer in layers(&vs) {
            let r = request(rule, &layer);
            let next = requests.len();
            let request = *request_of.entry(r.to_string()).or_insert(next);
            if request == next {
                requests.push(r);
            }
            measured.push((
                model.to_string(),
                Measured {
                    path: layer.path,
                    kind: layer.kind,
                    vars: layer
                        .vars
                        .iter()
                        .map(|(v, t)| (v.clone(), stats(t)))
                        .collect(),
                    request,
                },
            ));
        }
    }
    let ours_took = start.elapsed();
    let reference = torch_reference(&python, &requests);
    println!(
        "ours measured in {:.1} s, torch's in {:.1} s",
        ours_took.as_secs_f64(),
        (start.elapsed() - ours_took).as_secs_f64()
    );

    let mut failures = Vec::new();
    let mut per_model: BTreeMap<&str, usize> = BTreeMap::new();
    for (model, layer) in &measured {
        for (var, ours) in &layer.vars {
            let r = reference[layer.request]
                .get(var)
                .unwrap_or_else(|| panic!("torch_init.py gave no {var} for {}", layer.path));
            for problem in compare(ours, r) {
                failures.push(format!(
                    "{model} {}.{var} ({} {}, {} values): {problem}",
                    layer.path, layer.kind, r.dist, ours.n
                ));
            }
            *per_model.entry(model).or_default() += 1;
        }
    }
    let compared: usize = per_model.values().sum();
    println!(
        "variables compared: {per_model:?}; {} distinct torch layers",
        requests.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} variables differ from torch's initialisers:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A layer's statistics, with the torch layer (an index into the requests) to compare it to.
struct Measured {
    path: String,
    kind: &'static str,
    vars: Vec<(String, Stats)>,
    request: usize,
}
