//! The runner end to end: every optimizer trains, the files are well formed, resuming (even
//! after SIGKILL) is bit-identical, bad input is one clear error, plots are drawn, and a real
//! full-size dataset trains.

mod common;

use hd_native::config::{OptimizerKind, Options};
use hd_native::data::DatasetKind;
use hd_native::models::Model;
use hd_native::train::{self, Setup, Summary, LOG_HEADER};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tch::Tensor;

/// libtorch's generator is global: in-process runs take turns.
static TORCH: Mutex<()> = Mutex::new(());

const BIN: &str = env!("CARGO_BIN_EXE_hd-native");

fn options(optimizer: OptimizerKind, dataset: DatasetKind, epochs: u32) -> Options {
    let adam = optimizer.base() == OptimizerKind::Adam;
    Options {
        model: Some(Model::Mlp { hidden: vec![32] }),
        dataset: Some(dataset),
        optimizer: Some(optimizer),
        alpha0: Some(if adam { 0.005 } else { 0.05 }),
        epochs: Some(epochs),
        batch_size: Some(32),
        seed: Some(1),
        ..Options::default()
    }
}

fn setup(data: &Path, out: &Path, resume: bool) -> Setup {
    Setup {
        data_dir: data.to_path_buf(),
        device: "cpu".into(),
        out: out.to_path_buf(),
        resume,
        progress: false,
    }
}

fn train(options: &Options, setup: &Setup) -> Summary {
    let _guard = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    train::run(options, setup).unwrap_or_else(|e| panic!("training failed: {e}"))
}

fn rows(run: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(run.join("log.csv")).expect("log.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(LOG_HEADER), "header");
    lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// Checks the log's shape: 10 fields, iterations counting up from 0, epoch columns filled
/// exactly on row 0 and each epoch's last row, α0 on the first iteration.
fn check_log(run: &Path, iterations_per_epoch: usize, epochs: usize, alpha0: f32) {
    let rows = rows(run);
    assert_eq!(rows.len(), 1 + iterations_per_epoch * epochs, "row count");
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), 10, "row {i}: {r:?}");
        assert_eq!(r[1].parse::<usize>().expect("iteration"), i, "row {i}");
        let epoch_row = i == 0 || i % iterations_per_epoch == 0;
        for col in [4, 5, 7, 9] {
            assert_eq!(!r[col].is_empty(), epoch_row, "row {i} column {col}: {r:?}");
        }
        if i > 0 {
            let epoch: usize = r[0].parse().expect("epoch");
            assert_eq!(epoch, (i - 1) / iterations_per_epoch + 1, "row {i}");
            assert!(r[3].parse::<f32>().expect("loss").is_finite());
        }
        assert!(r[2].parse::<f64>().expect("time") >= 0.0);
    }
    assert_eq!(rows[1][6].parse::<f32>().expect("alpha"), alpha0);
    let acc: f64 = rows.last().expect("rows")[9].parse().expect("accuracy");
    assert!((0.0..=1.0).contains(&acc));
}

#[test]
fn every_optimizer_lowers_the_loss_and_writes_well_formed_files() {
    let data = tempfile::tempdir().expect("tempdir");
    common::write_mnist(data.path(), 640, 200, true);
    for optimizer in OptimizerKind::ALL {
        let out = tempfile::tempdir().expect("tempdir");
        let run = out.path().join("run");
        let opts = options(optimizer, DatasetKind::Mnist, 1);
        let summary = train(&opts, &setup(data.path(), &run, false));
        let before = rows(&run)[0][5].parse::<f64>().expect("test loss before");
        assert!(
            summary.last.test_loss < 0.8 * before,
            "{optimizer}: test loss {before} -> {}",
            summary.last.test_loss
        );
        check_log(&run, 20, 1, opts.alpha0.expect("alpha0"));
        let json: Summary = serde_json::from_str(
            &std::fs::read_to_string(run.join("summary.json")).expect("summary.json"),
        )
        .expect("summary parses");
        assert!(json.finished);
        assert_eq!(json.epochs_completed, 1);
        assert_eq!(json.iterations, 20);
        assert_eq!(json.config.optimizer, optimizer);
        assert_eq!(json.parameters, 784 * 32 + 32 + 32 * 10 + 10);
        if optimizer.rule().is_some() {
            assert_ne!(
                json.last.alpha,
                f64::from(opts.alpha0.expect("alpha0")),
                "{optimizer}: α never moved"
            );
        } else {
            assert_eq!(json.last.alpha, f64::from(opts.alpha0.expect("alpha0")));
        }
    }
}

#[test]
fn cifar_training_with_augmentation_lowers_the_loss() {
    let data = tempfile::tempdir().expect("tempdir");
    common::write_cifar10(data.path(), 128, 200);
    let out = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        epochs: Some(2),
        ..options(OptimizerKind::AdamHd, DatasetKind::Cifar10, 2)
    };
    let summary = train(&opts, &setup(data.path(), out.path(), false));
    let before = rows(out.path())[0][5].parse::<f64>().expect("loss");
    assert!(
        summary.last.test_loss < 0.8 * before,
        "{before} -> {}",
        summary.last.test_loss
    );
    check_log(out.path(), 20, 2, 0.005);
}

/// Every tensor of two checkpoints, except the wall-clock time.
fn checkpoint(run: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(run.join("checkpoint.safetensors"))
        .expect("checkpoint")
        .into_iter()
        .filter(|(n, _)| n != "run.elapsed")
        .collect()
}

fn assert_same_run(a: &Path, b: &Path) {
    let (ca, cb) = (checkpoint(a), checkpoint(b));
    assert_eq!(
        ca.keys().collect::<std::collections::BTreeSet<_>>(),
        cb.keys().collect::<std::collections::BTreeSet<_>>()
    );
    assert!(ca.keys().any(|k| k.starts_with("optimizer.buffers")));
    for (name, ta) in &ca {
        let tb = &cb[name];
        assert_eq!(ta.size(), tb.size(), "{name}");
        // Bit-identical: compare the raw bytes.
        let n = ta.numel() * ta.kind().elt_size_in_bytes();
        let (mut ba, mut bb) = (vec![0u8; n], vec![0u8; n]);
        ta.copy_data_u8(&mut ba, ta.numel());
        tb.copy_data_u8(&mut bb, tb.numel());
        assert!(ba == bb, "{name} differs");
    }
    // The logs agree on everything but the wall-clock Time column.
    let strip = |rows: Vec<Vec<String>>| -> Vec<Vec<String>> {
        rows.into_iter()
            .map(|mut r| {
                r[2].clear();
                r
            })
            .collect()
    };
    assert_eq!(strip(rows(a)), strip(rows(b)));
}

#[test]
fn resuming_equals_an_uninterrupted_run() {
    let data = tempfile::tempdir().expect("tempdir");
    common::write_cifar10(data.path(), 64, 64);
    let out = tempfile::tempdir().expect("tempdir");
    let (whole, parts) = (out.path().join("whole"), out.path().join("parts"));
    let opts = Options {
        alpha0: Some(0.005),
        beta: Some(1e-4),
        ..options(OptimizerKind::SgdnHd, DatasetKind::Cifar10, 3)
    };
    train(&opts, &setup(data.path(), &whole, false));
    train(
        &Options {
            epochs: Some(1),
            ..opts.clone()
        },
        &setup(data.path(), &parts, false),
    );
    // Resuming needs no options but the run directory; --epochs may extend it.
    let resumed = Options {
        epochs: Some(3),
        ..Options::default()
    };
    let summary = train(&resumed, &setup(data.path(), &parts, true));
    assert_eq!(summary.epochs_completed, 3);
    assert_same_run(&whole, &parts);
}

fn hd_native(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("runs hd-native")
}

fn train_args<'a>(data: &'a str, out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--model",
        "mlp",
        "--hidden",
        "64",
        "--dataset",
        "mnist",
        "--data-dir",
        data,
        "--optimizer",
        "adam-hd",
        "--alpha0",
        "0.003",
        "--batch-size",
        "32",
        "--epochs",
        epochs,
        "--device",
        "cpu",
        "--threads",
        "1",
        "--seed",
        "5",
        "--out",
        out,
    ]
}

#[test]
fn a_sigkilled_run_resumes_bit_identical() {
    let data = tempfile::tempdir().expect("tempdir");
    common::write_mnist(data.path(), 3000, 100, false);
    let data_dir = data.path().to_str().expect("utf-8");
    let out = tempfile::tempdir().expect("tempdir");
    let whole = out.path().join("whole");
    let killed = out.path().join("killed");
    let (whole_s, killed_s) = (
        whole.to_str().expect("utf-8"),
        killed.to_str().expect("utf-8"),
    );

    let o = hd_native(&train_args(data_dir, whole_s, "6"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let mut child = Command::new(BIN)
        .args(train_args(data_dir, killed_s, "6"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill it once epoch 2 is under way (so the checkpoint of epoch 1 exists).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let log = std::fs::read_to_string(killed.join("log.csv")).unwrap_or_default();
        if log.lines().any(|l| l.starts_with("2,")) {
            break;
        }
        assert!(Instant::now() < deadline, "epoch 2 never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        child.try_wait().expect("wait").is_none(),
        "finished before it could be killed"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let partial: Summary = serde_json::from_str(
        &std::fs::read_to_string(killed.join("summary.json")).expect("summary"),
    )
    .expect("json");
    assert!(!partial.finished && partial.epochs_completed < 6);

    let o = hd_native(&[
        "train",
        "--data-dir",
        data_dir,
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        killed_s,
        "--resume",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_run(&whole, &killed);
}

/// Runs hd-native expecting failure; returns its stderr.
fn fails(args: &[&str]) -> String {
    let o = hd_native(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{args:?} succeeded");
    err
}

#[test]
fn bad_arguments_and_files_are_one_clear_line() {
    let data = tempfile::tempdir().expect("tempdir");
    common::write_mnist(data.path(), 64, 32, false);
    let d = data.path().to_str().expect("utf-8");
    let out = tempfile::tempdir().expect("tempdir");
    let run = out.path().join("run");
    let r = run.to_str().expect("utf-8");
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "train",
            "--model",
            "logreg",
            "--dataset",
            "mnist",
            "--data-dir",
            d,
            "--out",
            r,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<&'static str>, &str)> = vec![
        (
            vec!["--optimizer", "sgd", "--beta", "0.1"],
            "--beta does not apply to SGD",
        ),
        (vec!["--optimizer", "adam-hd", "--beta=-1"], "beta"),
        (
            vec!["--optimizer", "sgd-hdm", "--scope", "per-parameter"],
            "scope",
        ),
        (
            vec!["--optimizer", "sgd", "--device", "cuda:3"],
            "device cuda:3",
        ),
        (
            vec!["--optimizer", "sgd", "--device", "tpu"],
            "expected auto, cpu, cuda or cuda:N",
        ),
        (
            vec!["--optimizer", "sgd", "--epochs", "0"],
            "--epochs must be at least 1",
        ),
        (
            vec!["--optimizer", "sgd", "--hidden", "10"],
            "--hidden applies to --model mlp only",
        ),
        (
            vec!["--optimizer", "sgd", "--batch-size", "0"],
            "--batch-size must be at least 1",
        ),
        (
            vec!["--optimizer", "sgd", "--clamp", "0.1"],
            "expected two numbers",
        ),
        (vec![], "--optimizer is required"),
    ];
    for (extra, message) in cases {
        let args = base(&extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = fails(&args);
        assert!(
            err.contains(message),
            "{extra:?}: {err:?} lacks {message:?}"
        );
        assert!(!run.join("log.csv").exists(), "{extra:?} left a log behind");
    }
    // Our own errors are exactly one line.
    let err = fails(&[
        "train",
        "--model",
        "wrn",
        "--depth",
        "27",
        "--dataset",
        "cifar10",
        "--data-dir",
        d,
        "--optimizer",
        "sgd",
        "--out",
        r,
        "--device",
        "cpu",
    ]);
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.starts_with("hd-native: error: "), "{err:?}");
    assert!(err.contains("WideResNet depth must be 6n+4"), "{err:?}");

    // A run directory in use is never overwritten without --resume.
    let ok = hd_native(
        &base(&["--optimizer", "sgd", "--epochs", "1", "--quiet"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let log_before = std::fs::read(run.join("log.csv")).expect("log");
    let err = fails(
        &base(&["--optimizer", "sgd"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        err.contains("already holds a run; pass --resume"),
        "{err:?}"
    );
    assert_eq!(std::fs::read(run.join("log.csv")).expect("log"), log_before);
    // Resuming with a different setting is refused.
    let err = fails(
        &base(&["--optimizer", "adam", "--resume"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        err.contains("the run was started with optimizer = Sgd, not Adam"),
        "{err:?}"
    );
    // A corrupt checkpoint is named.
    std::fs::write(run.join("checkpoint.safetensors"), b"not a checkpoint").expect("write");
    let err = fails(
        &base(&["--resume"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        err.contains("checkpoint.safetensors: not a readable safetensors file"),
        "{err:?}"
    );
}

#[test]
fn plot_draws_every_figure_as_png_and_svg() {
    let data = tempfile::tempdir().expect("tempdir");
    common::write_mnist(data.path(), 200, 50, false);
    let out = tempfile::tempdir().expect("tempdir");
    let mut runs: Vec<PathBuf> = Vec::new();
    for optimizer in [OptimizerKind::Sgd, OptimizerKind::SgdHd] {
        let run = out.path().join(optimizer.to_string());
        train(
            &options(optimizer, DatasetKind::Mnist, 2),
            &setup(data.path(), &run, false),
        );
        runs.push(run);
    }
    let figs = out.path().join("figs");
    let mut args: Vec<&str> = vec!["plot"];
    args.extend(runs.iter().map(|r| r.to_str().expect("utf-8")));
    args.extend(["--out", figs.to_str().expect("utf-8")]);
    let o = hd_native(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in ["test-loss", "test-accuracy", "train-loss", "alpha"] {
        let png = std::fs::read(figs.join(format!("{name}.png"))).expect("png");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{name}.png is not a PNG"
        );
        assert!(png.len() > 5_000, "{name}.png is nearly empty");
        let svg = std::fs::read_to_string(figs.join(format!("{name}.svg"))).expect("svg");
        assert!(svg.contains("<svg"), "{name}.svg");
        assert!(
            svg.contains("MLP(32) on mnist"),
            "{name}.svg lacks the title"
        );
        assert!(
            svg.contains("SGD-HD α0=0.05 β=0.001"),
            "{name}.svg lacks a legend entry"
        );
        assert!(
            svg.matches("<polyline").count() >= 2,
            "{name}.svg lacks the lines"
        );
    }
    let err = fails(&[
        "plot",
        "/nonexistent-run",
        "--out",
        figs.to_str().expect("utf-8"),
    ]);
    assert!(err.contains("/nonexistent-run/summary.json"), "{err:?}");
}

/// Logistic regression on the full, real Fashion-MNIST (60,000 training images) for one
/// epoch with SGD-HD. The data come from `$HD_FASHION_MNIST_DIR` (`cargo xtask test` points it
/// at Debian's `dataset-fashion-mnist`), else that package's install location.
#[test]
fn real_fashion_mnist_logreg_sgd_hd() {
    let dir = std::env::var_os("HD_FASHION_MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/datasets/fashion-mnist"));
    assert!(
        dir.join("train-images-idx3-ubyte.gz").exists(),
        "Fashion-MNIST not found in {}: install Debian's dataset-fashion-mnist or set HD_FASHION_MNIST_DIR",
        dir.display()
    );
    let out = tempfile::tempdir().expect("tempdir");
    let run = out.path().join("run");
    let o = hd_native(&[
        "train",
        "--model",
        "logreg",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        dir.to_str().expect("utf-8"),
        "--optimizer",
        "sgd-hd",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        run.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: Summary =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).expect("summary"))
            .expect("json");
    assert_eq!(s.iterations, 469, "60,000 images in batches of 128");
    // Ten classes: chance is 10%; a linear model reaches about 80% after one epoch.
    assert!(
        s.last.test_accuracy > 0.75,
        "test accuracy {}",
        s.last.test_accuracy
    );
    // On this convex problem consecutive gradients agree early on, so HD raises α above α0
    // (the paper's Figure 2 shows the same for LogReg on MNIST).
    assert!(s.last.alpha > 0.001, "α {}", s.last.alpha);
    check_log(&run, 469, 1, 0.001);
}
