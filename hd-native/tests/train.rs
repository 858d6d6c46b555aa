//! The runner end to end: every optimizer trains, the files are well formed, resuming (even
//! after SIGKILL) is bit-identical, bad input is one clear error, plots are drawn, and a real
//! full-size dataset trains.

mod common;

use common::{
    arg, checkpoint, fails, hd_native, log_rows as rows, start, succeeds, summary, tempdir,
    train_logreg, train_logreg_plain, wait_for_epoch, words, Dirs, ADAM_HD,
};
use hd_native::config::{Options, Variant};
use hd_native::data::DatasetKind;
use hd_native::models::Model;
use hd_native::run_dir::Summary;
use hd_native::train::{self, Setup};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// libtorch's generator is global: in-process runs take turns.
static TORCH: Mutex<()> = Mutex::new(());

fn options(optimizer: Variant, dataset: DatasetKind, epochs: u32) -> Options {
    let adam = optimizer.base() == Variant::Adam;
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
    let data = tempdir();
    common::write_mnist(data.path(), 640, 200, true);
    for optimizer in Variant::ALL {
        let out = tempdir();
        let run = out.path().join("run");
        let opts = options(optimizer, DatasetKind::Mnist, 1);
        let result = train(&opts, &setup(data.path(), &run, false));
        let before = rows(&run)[0][5].parse::<f64>().expect("test loss before");
        assert!(
            result.last.test_loss < 0.8 * before,
            "{optimizer}: test loss {before} -> {}",
            result.last.test_loss
        );
        check_log(&run, 20, 1, opts.alpha0.expect("alpha0"));
        let json = summary(&run);
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
    let d = Dirs::cifar10(128, 200);
    let opts = Options {
        epochs: Some(2),
        ..options(Variant::AdamHd, DatasetKind::Cifar10, 2)
    };
    let result = train(&opts, &setup(d.data(), d.out(), false));
    let before = rows(d.out())[0][5].parse::<f64>().expect("loss");
    assert!(
        result.last.test_loss < 0.8 * before,
        "{before} -> {}",
        result.last.test_loss
    );
    check_log(d.out(), 20, 2, 0.005);
}

/// [`common::assert_same_run`] of runs whose optimizer keeps buffers, so they are compared
/// too.
fn assert_same_run(a: &Path, b: &Path) {
    assert!(checkpoint(a)
        .keys()
        .any(|k| k.starts_with("optimizer.buffers")));
    common::assert_same_run(a, b);
}

#[test]
fn resuming_equals_an_uninterrupted_run() {
    let d = Dirs::cifar10(64, 64);
    let (whole, parts) = (d.run("whole"), d.run("parts"));
    let opts = Options {
        alpha0: Some(0.005),
        beta: Some(1e-4),
        ..options(Variant::SgdnHd, DatasetKind::Cifar10, 3)
    };
    train(&opts, &setup(d.data(), &whole, false));
    train(
        &Options {
            epochs: Some(1),
            ..opts.clone()
        },
        &setup(d.data(), &parts, false),
    );
    // Resuming needs no options but the run directory; --epochs may extend it.
    let resumed = Options {
        epochs: Some(3),
        ..Options::default()
    };
    let result = train(&resumed, &setup(d.data(), &parts, true));
    assert_eq!(result.epochs_completed, 3);
    assert_same_run(&whole, &parts);
}

/// `hd-native train` of a small MLP with Adam-HD on the MNIST files in `data` into `run`.
fn train_mlp(data: &Path, run: &Path, epochs: &str) -> Command {
    let mut c = hd_native(&[
        "train",
        "--model",
        "mlp",
        "--hidden",
        "64",
        "--dataset",
        "mnist",
        "--data-dir",
        arg(data),
        "--epochs",
        epochs,
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        arg(run),
    ]);
    c.args(ADAM_HD);
    c
}

#[test]
fn a_sigkilled_run_resumes_bit_identical() {
    let d = Dirs::mnist(3000, 100, false);
    let (whole, killed) = (d.run("whole"), d.run("killed"));
    succeeds(train_mlp(d.data(), &whole, "6"));

    let mut quiet = train_mlp(d.data(), &killed, "6");
    quiet.stdout(Stdio::null());
    let mut child = start(quiet, Stdio::null());
    // Kill it once epoch 2 is under way (so the checkpoint of epoch 1 exists).
    wait_for_epoch(&mut child, &[&killed], 2);
    assert!(
        child.try_wait().expect("wait").is_none(),
        "finished before it could be killed"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let partial = summary(&killed);
    assert!(!partial.finished && partial.epochs_completed < 6);

    succeeds(hd_native(&[
        "train",
        "--data-dir",
        arg(d.data()),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        arg(&killed),
        "--resume",
    ]));
    assert_same_run(&whole, &killed);
}

#[test]
fn bad_arguments_and_files_are_one_clear_line() {
    let d = Dirs::mnist(64, 32, false);
    let run = d.run("run");
    let base = |extra: &[&str]| train_logreg_plain(d.data(), &run, extra);
    let cases = [
        ("--optimizer sgd --beta 0.1", "--beta does not apply to SGD"),
        ("--optimizer adam-hd --beta=-1", "beta"),
        ("--optimizer sgd-hdm --scope per-parameter", "scope"),
        ("--optimizer sgd --device cuda:3", "device cuda:3"),
        (
            "--optimizer sgd --device tpu",
            "expected auto, cpu, cuda or cuda:N",
        ),
        ("--optimizer sgd --epochs 0", "--epochs must be at least 1"),
        (
            "--optimizer sgd --hidden 10",
            "--hidden applies to --model mlp only",
        ),
        (
            "--optimizer sgd --batch-size 0",
            "--batch-size must be at least 1",
        ),
        ("--optimizer sgd --clamp 0.1", "expected two numbers"),
        ("", "--optimizer is required"),
    ];
    for (extra, message) in cases {
        let err = fails(base(&words(extra)));
        assert!(
            err.contains(message),
            "{extra:?}: {err:?} lacks {message:?}"
        );
        assert!(!run.join("log.csv").exists(), "{extra:?} left a log behind");
    }
    // Our own errors are exactly one line.
    let err = fails(hd_native(&[
        "train",
        "--model",
        "wrn",
        "--depth",
        "27",
        "--dataset",
        "cifar10",
        "--data-dir",
        arg(d.data()),
        "--optimizer",
        "sgd",
        "--out",
        arg(&run),
        "--device",
        "cpu",
    ]));
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.starts_with("hd-native: error: "), "{err:?}");
    assert!(err.contains("WideResNet depth must be 6n+4"), "{err:?}");

    // A run directory in use is never overwritten without --resume.
    succeeds(base(&["--optimizer", "sgd", "--epochs", "1", "--quiet"]));
    let log_before = std::fs::read(run.join("log.csv")).expect("log");
    let err = fails(base(&["--optimizer", "sgd"]));
    assert!(
        err.contains("already holds a run; pass --resume"),
        "{err:?}"
    );
    assert_eq!(std::fs::read(run.join("log.csv")).expect("log"), log_before);
    // Resuming with a different setting is refused.
    let err = fails(base(&["--optimizer", "adam", "--resume"]));
    assert!(
        err.contains("the run was started with optimizer = Sgd, not Adam"),
        "{err:?}"
    );
    // A corrupt checkpoint is named.
    std::fs::write(run.join("checkpoint.safetensors"), b"not a checkpoint").expect("write");
    let err = fails(base(&["--resume"]));
    assert!(
        err.contains("checkpoint.safetensors: not a readable safetensors file"),
        "{err:?}"
    );
}

#[test]
fn plot_draws_every_figure_as_png_and_svg() {
    let d = Dirs::mnist(200, 50, false);
    let mut runs: Vec<PathBuf> = Vec::new();
    for optimizer in [Variant::Sgd, Variant::SgdHd] {
        let run = d.run(&optimizer.to_string());
        train(
            &options(optimizer, DatasetKind::Mnist, 2),
            &setup(d.data(), &run, false),
        );
        runs.push(run);
    }
    let figs = d.run("figs");
    let mut plot = hd_native(&["plot"]);
    plot.args(&runs).args(["--out", arg(&figs)]);
    succeeds(plot);
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
    let err = fails(hd_native(&[
        "plot",
        "/nonexistent-run",
        "--out",
        arg(&figs),
    ]));
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
    let out = tempdir();
    let run = out.path().join("run");
    succeeds(hd_native(&[
        "train",
        "--model",
        "logreg",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        arg(&dir),
        "--optimizer",
        "sgd-hd",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        arg(&run),
    ]));
    let s = summary(&run);
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

/// `--stop-at-loss`: against the log of the same run without a target, the run records the
/// first iteration whose minibatch loss is at most the target, ends with that epoch on the same
/// trajectory, stays complete when resumed, and a target never met trains every epoch.
#[test]
fn stop_at_loss_records_the_first_iteration_and_ends_with_its_epoch() {
    let d = Dirs::mnist(640, 200, false);
    let opts = |target: Option<f64>| Options {
        stop_at_loss: target,
        ..options(Variant::SgdHd, DatasetKind::Mnist, 4)
    };
    let (whole, stopped, never) = (d.run("whole"), d.run("stopped"), d.run("never"));
    train(&opts(None), &setup(d.data(), &whole, false));
    let log = rows(&whole);
    // The log holds f32 losses, which the comparison widens: parsed as f32, then widened.
    let loss = |r: &Vec<String>| f64::from(r[3].parse::<f32>().expect("loss"));
    // The target: the loss of the first iteration of epoch 2 that is a new low, so that the
    // first iteration at or below it is exactly that one, found here from the plain log.
    let (mut low, mut pick) = (f64::INFINITY, None);
    for (i, r) in log.iter().enumerate().skip(1) {
        if loss(r) < low {
            low = loss(r);
            if i > 20 && pick.is_none() {
                pick = Some(i);
            }
        }
    }
    let pick = pick.expect("a new low loss after the first epoch");
    let target = loss(&log[pick]);
    let s = train(&opts(Some(target)), &setup(d.data(), &stopped, false));
    let reached = s.reached.expect("the target is reached");
    assert_eq!(reached.iteration, pick as u64);
    assert_eq!(reached.loss, target);
    let epoch = (pick as u32 - 1) / 20 + 1;
    assert_eq!((reached.epoch, s.epochs_completed), (epoch, epoch));
    assert!(s.finished && epoch < 4, "ends early, complete: {s:?}");
    assert_eq!(summary(&stopped).reached, Some(reached), "summary.json");
    let kept = rows(&stopped);
    assert_eq!(kept.len(), 1 + 20 * epoch as usize);
    for (a, b) in kept.iter().zip(&log).skip(1) {
        assert_eq!((&a[..2], &a[3..]), (&b[..2], &b[3..]), "same trajectory");
    }
    // Resumed, the run is complete: nothing more is trained.
    let again = train(&opts(Some(target)), &setup(d.data(), &stopped, true));
    assert_eq!(
        (again.reached, again.epochs_completed),
        (Some(reached), epoch)
    );
    assert_eq!(rows(&stopped).len(), kept.len());
    let s = train(&opts(Some(1e-9)), &setup(d.data(), &never, false));
    assert_eq!((s.reached, s.epochs_completed, s.finished), (None, 4, true));
    let bad = ["--optimizer", "sgd", "--stop-at-loss=0"];
    let err = fails(train_logreg(d.data(), &d.run("bad"), &bad));
    assert!(
        err.contains("--stop-at-loss must be a finite number above 0"),
        "{err}"
    );
}
