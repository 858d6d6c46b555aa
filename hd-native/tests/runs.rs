//! The run directory as a contract, through the release binary: one process per directory,
//! resume continues or refuses (never discards), divergence and signals stop cleanly with
//! their own exit status, and every failure is one line that names the file.

mod common;

use common::{
    arg, assert_same_run, checkpoint, fails_with, hd_native, log_rows, output, start, stderr,
    succeeds, summary, summary_json, tempdir, train_logreg, train_logreg_plain, wait_for_epoch,
    words, write_checkpoint, Dirs, ADAM_HD,
};
use hd_native::run_dir::LOG_HEADER;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use tch::{Kind, Tensor};

fn progress(run: &Path) -> Vec<i64> {
    Vec::<i64>::try_from(&checkpoint(run)["run.progress"]).expect("progress")
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// Item 1: a second process on a locked run directory exits 1 naming the directory and the
/// holder, and two processes started together never both write: exactly one run results.
#[test]
fn two_processes_never_share_a_run_directory() {
    let d = Dirs::mnist(4000, 100, false);

    // A second process while the first holds the directory.
    let run = d.run("held");
    let mut first = start(
        d.train(&run, &["--optimizer", "sgd", "--epochs", "1000"]),
        Stdio::null(),
    );
    wait_for_epoch(&mut first, &[&run], 1);
    let log_before = std::fs::read(run.join("log.csv")).expect("log");
    let err = fails_with(d.train(&run, &["--optimizer", "adam", "--epochs", "1"]), 1);
    assert!(
        err.contains(&format!(
            "{} is in use by another run (pid {}",
            run.display(),
            first.id()
        )),
        "{err:?}"
    );
    // The same for --resume: nothing is touched.
    let third = output(d.train(&run, &["--resume"]));
    assert!(
        stderr(&third).contains("is in use by another run"),
        "{}",
        stderr(&third)
    );
    first.kill().expect("kill");
    first.wait().expect("reap");
    assert!(
        std::fs::read(run.join("log.csv"))
            .expect("log")
            .starts_with(&log_before),
        "the second process wrote into the first one's log"
    );

    // Two processes started together, as in `a & b & wait`.
    let run = d.run("race");
    let spawn = |optimizer: &str| {
        start(
            d.train(&run, &["--optimizer", optimizer, "--epochs", "3"]),
            Stdio::piped(),
        )
    };
    let (a, b) = (spawn("sgd-hd"), spawn("adam"));
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    let winners: Vec<&str> = [(&a, "SGD-HD"), (&b, "Adam")]
        .iter()
        .filter(|(o, _)| o.status.success())
        .map(|(_, name)| *name)
        .collect();
    assert_eq!(winners.len(), 1, "a: {} b: {}", stderr(&a), stderr(&b));
    let loser = if a.status.success() { &b } else { &a };
    assert_eq!(loser.status.code(), Some(1));
    assert!(
        stderr(loser).contains(&run.display().to_string()),
        "{}",
        stderr(loser)
    );
    // One run's files, whole: 3 epochs of 4000/128 = 32 iterations each, and its optimizer.
    let rows = log_rows(&run);
    assert_eq!(rows.len(), 1 + 3 * 32);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), 10, "row {i}: {r:?}");
        assert_eq!(r[1], i.to_string(), "row {i}: {r:?}");
    }
    let s = summary(&run);
    assert!(s.finished);
    assert_eq!(s.config.optimizer.to_string(), winners[0]);
}

/// Item 2: --resume never discards a log: with the checkpoint missing it refuses (and so does
/// a fresh start), and a log that disagrees with the checkpoint is refused too.
#[test]
fn resume_without_its_checkpoint_refuses_and_keeps_the_log() {
    let d = Dirs::mnist(640, 100, false);
    let run = d.run("run");
    succeeds(d.train(&run, &["--optimizer", "sgd", "--epochs", "2"]));
    let ckpt = std::fs::read(run.join("checkpoint.safetensors")).expect("ckpt");
    let log = std::fs::read(run.join("log.csv")).expect("log");

    std::fs::remove_file(run.join("checkpoint.safetensors")).expect("rm");
    let err = fails_with(d.train(&run, &["--resume", "--epochs", "3"]), 1);
    assert!(
        err.contains("cannot resume: log.csv records 2 completed epoch(s) but checkpoint.safetensors is missing"),
        "{err:?}"
    );
    assert_eq!(std::fs::read(run.join("log.csv")).expect("log"), log);
    let err = fails_with(d.train(&run, &["--optimizer", "sgd"]), 1);
    assert!(err.contains("choose another --out"), "{err:?}");
    assert_eq!(std::fs::read(run.join("log.csv")).expect("log"), log);

    // A log behind its checkpoint (cut back to epoch 0) disagrees with it.
    std::fs::write(run.join("checkpoint.safetensors"), &ckpt).expect("restore");
    let text = String::from_utf8(log.clone()).expect("utf-8");
    let short: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(run.join("log.csv"), short.join("\n") + "\n").expect("cut");
    let err = fails_with(d.train(&run, &["--resume", "--epochs", "3"]), 1);
    assert!(err.contains("they disagree"), "{err:?}");
    std::fs::write(run.join("log.csv"), &log).expect("restore");
    succeeds(d.train(&run, &["--resume", "--epochs", "3"]));
    assert_eq!(summary(&run).epochs_completed, 3);
}

/// Item 3: only a new or empty directory, or a run of ours, is written without --resume.
#[test]
fn a_directory_that_is_not_a_run_is_never_written() {
    let d = Dirs::mnist(64, 32, false);
    for (name, content) in [
        ("summary.json", "{\"mine\": true}\n"),
        ("notes.txt", "mine\n"),
    ] {
        let dir = d.run(name);
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(dir.join(name), content).expect("write");
        let err = fails_with(d.train(&dir, &["--optimizer", "sgd"]), 1);
        assert!(err.contains("choose another --out"), "{err:?}");
        assert_eq!(
            std::fs::read_to_string(dir.join(name)).expect("kept"),
            content
        );
        assert!(!dir.join("log.csv").exists());
    }
    // An empty directory, and a run of ours killed before its first checkpoint (the log
    // holds only row 0), are started.
    let empty = d.run("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    succeeds(d.train(&empty, &["--optimizer", "sgd", "--epochs", "1"]));
    let early = d.run("early");
    std::fs::create_dir(&early).expect("mkdir");
    std::fs::write(
        early.join("log.csv"),
        format!("{LOG_HEADER}\n0,0,0.1,,2.3,2.3,0.001,0.001,0,0.1\n"),
    )
    .expect("write");
    succeeds(d.train(&early, &["--optimizer", "sgd", "--epochs", "1"]));
    assert_eq!(summary(&early).epochs_completed, 1);
}

/// Items 4 and 5: a model blown up by α0 = 3e38 gives a NaN test loss: that is divergence
/// (exit 3, the epoch-0 checkpoint kept, summary.json says why), and `plot` still draws the
/// run. The absurd batch size is one batch of the whole set, with a note, not an overflow.
#[test]
fn a_non_finite_test_loss_is_divergence() {
    let d = Dirs::mnist(200, 50, false);
    let run = d.run("nan");
    let o = output(d.train(
        &run,
        &words("--optimizer sgd --alpha0 3e38 --batch-size 100000 --epochs 3"),
    ));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("exceeds the 200 training images"), "{err}");
    assert!(
        err.contains("the test loss is not finite at epoch 1, iteration 1; the checkpoint of epoch 0 is kept"),
        "{err}"
    );
    let s = summary(&run);
    assert!(!s.finished);
    assert_eq!(s.epochs_completed, 0);
    let div = s.diverged.expect("diverged is recorded");
    assert_eq!((div.epoch, div.iteration), (1, 1));
    assert!(s.last.test_loss.is_finite());
    assert_eq!(progress(&run), [0, 0], "the last finite checkpoint is kept");
    let figs = d.run("figs");
    succeeds(hd_native(&["plot", arg(&run), "--out", arg(&figs)]));
    assert!(figs.join("train-loss.svg").exists());

    // An absurd batch: one batch per epoch, no overflow, every epoch done.
    let run = d.run("batch");
    let o = succeeds(d.train(
        &run,
        &words("--optimizer sgd --batch-size 9223372036854775807 --epochs 2"),
    ));
    assert!(stderr(&o).contains("each epoch is one batch of 200"));
    let s = summary(&run);
    assert!(s.finished);
    assert_eq!((s.epochs_completed, s.iterations), (2, 2));
}

/// Item 4: a non-finite training loss mid-epoch is divergence too, with its iteration.
#[test]
fn a_non_finite_training_loss_is_divergence() {
    let d = Dirs::mnist(200, 50, false);
    let run = d.run("nan");
    let err = fails_with(
        d.train(
            &run,
            &words("--optimizer sgd --alpha0 1e37 --batch-size 20"),
        ),
        3,
    );
    assert!(
        err.contains("the training loss is not finite at epoch 1"),
        "{err}"
    );
    let s = summary(&run);
    let div = s.diverged.expect("diverged is recorded");
    assert_eq!(div.epoch, 1);
    assert!(div.iteration > 1 && div.iteration <= 10, "{div:?}");
    assert_eq!(progress(&run), [0, 0]);
}

/// Items 6 and 8: a checkpoint's progress and configuration are checked like the command
/// line; a resumed run cannot shrink below what it completed.
#[test]
fn inconsistent_checkpoints_are_refused() {
    let d = Dirs::mnist(64, 32, false);
    let run = d.run("run");
    succeeds(d.train(&run, &["--optimizer", "sgd", "--epochs", "2"]));
    let original = checkpoint(&run);
    let ckpt = run.join("checkpoint.safetensors");

    let err = fails_with(d.train(&run, &["--resume", "--epochs", "1"]), 1);
    assert!(
        err.contains("--epochs 1 is fewer than the 2 epochs the run has completed"),
        "{err}"
    );

    let mut t = checkpoint(&run);
    t.insert("run.progress".into(), Tensor::from_slice(&[99i64, 99]));
    write_checkpoint(&run, t);
    let err = fails_with(d.train(&run, &["--resume"]), 1);
    assert!(
        err.contains(&format!("{}: its progress (epoch 99", ckpt.display())),
        "{err}"
    );

    let mut t = checkpoint(&run);
    t.insert("run.progress".into(), Tensor::from_slice(&[2i64, 2]));
    let config = &original["run.config"];
    let mut json = vec![0u8; config.numel()];
    config.copy_data_u8(&mut json, config.numel());
    let json = String::from_utf8(json)
        .expect("utf-8")
        .replace("\"batch_size\":128", "\"batch_size\":0");
    assert!(json.contains("\"batch_size\":0"), "{json}");
    t.insert("run.config".into(), Tensor::from_slice(json.as_bytes()));
    write_checkpoint(&run, t);
    let err = fails_with(d.train(&run, &["--resume"]), 1);
    assert!(
        err.contains(&format!(
            "{}: bad run configuration (--batch-size must be at least 1)",
            ckpt.display()
        )),
        "{err}"
    );

    // Item 14: a tensor of the wrong type is named with the file, not as a bare libtorch
    // error.
    let mut t = original.shallow_clone_map();
    t.insert("run.progress".into(), Tensor::from_slice(&[2.0f32, 2.0]));
    write_checkpoint(&run, t);
    let err = fails_with(d.train(&run, &["--resume"]), 1);
    assert!(
        err.contains(&format!("{}: 'run.progress' is Float", ckpt.display())),
        "{err}"
    );
    write_checkpoint(&run, original.shallow_clone_map());
    succeeds(d.train(&run, &["--resume", "--epochs", "3"]));
}

trait ShallowClone {
    fn shallow_clone_map(&self) -> HashMap<String, Tensor>;
}

impl ShallowClone for HashMap<String, Tensor> {
    fn shallow_clone_map(&self) -> HashMap<String, Tensor> {
        self.iter()
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect()
    }
}

/// Item 7: on resume, --preset paper, other data, and tensors of another type are refused,
/// not silently applied or converted; a copy of the same data elsewhere is the same data.
#[test]
fn resume_refuses_other_settings_data_and_types() {
    let d = Dirs::mnist(64, 32, false);
    let run = d.run("run");
    succeeds(d.train(&run, &["--optimizer", "sgd", "--epochs", "1"]));

    // The paper's preset puts L2 1e-4 on LogReg: not the run's setting.
    let err = fails_with(
        d.train(&run, &["--resume", "--preset", "paper", "--epochs", "2"]),
        1,
    );
    assert!(
        err.contains(
            "--preset paper sets weight-decay = 0.0001, but the run was started with 0.0; drop --preset"
        ),
        "{err}"
    );

    // Other data with the same number of images: other bytes.
    let other = tempdir();
    common::write_mnist(other.path(), 64, 32, false);
    let (px, lb) = common::images(64, 1, 28, 10, 99);
    hd_native::data::write::idx_images(&other.path().join("train-images-idx3-ubyte"), 28, 28, &px)
        .expect("write");
    hd_native::data::write::idx_labels(&other.path().join("train-labels-idx1-ubyte"), &lb)
        .expect("write");
    let err = fails_with(
        train_logreg(other.path(), &run, &["--resume", "--epochs", "2"]),
        1,
    );
    assert!(err.contains("pass the run's --data-dir"), "{err}");
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");

    // A model tensor stored as f64.
    let mut t = checkpoint(&run);
    let original = t.shallow_clone_map();
    let name = t
        .keys()
        .find(|k| k.starts_with("model."))
        .expect("a model tensor")
        .clone();
    let converted = t[&name].to_kind(Kind::Double);
    t.insert(name.clone(), converted);
    write_checkpoint(&run, t);
    let err = fails_with(d.train(&run, &["--resume", "--epochs", "2"]), 1);
    assert!(err.contains("checkpoint.safetensors"), "{err}");
    assert!(err.contains("Double"), "{err}");
    write_checkpoint(&run, original);

    // A copy of the run's data in another directory is the same data.
    let copy = tempdir();
    for e in std::fs::read_dir(d.data()).expect("ls") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, copy.path().join(p.file_name().expect("name"))).expect("copy");
    }
    succeeds(train_logreg(
        copy.path(),
        &run,
        &["--resume", "--epochs", "2"],
    ));
    assert_eq!(summary(&run).epochs_completed, 2);
}

/// A run written before configurations held hd-core's `Config` (its checkpoint and summary.json
/// in the flattened layout of tests/fixtures/config-before-core.json) is still plotted,
/// reported and resumed, and the resumed run writes the current layout.
#[test]
fn a_run_in_the_layout_before_core_is_plotted_reported_and_resumed() {
    let d = Dirs::mnist(64, 32, false);
    let run = d.run("run");
    let options = "--optimizer sgdn-hdm --scope per-tensor --clamp 0,0.1 --transition 2,0.01";
    succeeds(d.train(&run, &words(&format!("{options} --epochs 1"))));
    let old = include_str!("fixtures/config-before-core.json");
    let mut t = checkpoint(&run);
    let compact =
        serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(old).expect("json"))
            .expect("json");
    t.insert("run.config".into(), Tensor::from_slice(&compact));
    write_checkpoint(&run, t);
    let mut s = summary_json(&run);
    s["config"] = serde_json::from_str(old).expect("json");
    std::fs::write(run.join("summary.json"), s.to_string()).expect("write");
    assert!(summary_json(&run)["config"].get("core").is_none());

    let figs = tempdir();
    succeeds(hd_native(&["plot", arg(&run), "--out", arg(figs.path())]));
    succeeds(hd_native(&[
        "report",
        arg(d.out()),
        "--out",
        arg(figs.path()),
    ]));
    let md = std::fs::read_to_string(figs.path().join("REPORT.md")).expect("REPORT.md");
    assert!(md.contains("| SGDN-HDM | 1 | "), "{md}");
    succeeds(d.train(&run, &["--resume", "--epochs", "2"]));
    let s = summary_json(&run);
    assert_eq!(s["epochs_completed"], 2);
    assert_eq!(s["config"]["optimizer"], "sgdn-hdm");
    assert_eq!(s["config"]["core"]["hyper"]["rule"], "multiplicative");
}

/// Item 9: a model too large for memory is refused before allocating, in one line.
#[test]
fn a_model_larger_than_memory_is_one_line() {
    let d = Dirs::mnist(64, 32, false);
    let c = hd_native(&[
        "train",
        "--model",
        "mlp",
        "--hidden",
        "4000000000",
        "--dataset",
        "mnist",
        "--data-dir",
        arg(d.data()),
        "--optimizer",
        "sgd",
        "--device",
        "cpu",
        "--out",
        arg(&d.run("run")),
    ]);
    let err = fails_with(c, 1);
    // (784 + 1)·4e9 + (4e9 + 1)·10 parameters, by hand.
    assert!(
        err.contains("the model's 3180000000010 parameters need"),
        "{err}"
    );
    assert!(err.len() < 300, "{err}");
}

/// Item 10: a log value of 1.7e308 is left out of the axes (with a note); plot ends.
#[test]
fn plot_leaves_absurd_values_out_of_the_axes() {
    let d = Dirs::mnist(64, 32, false);
    let run = d.run("run");
    succeeds(d.train(&run, &["--optimizer", "sgd", "--epochs", "1"]));
    let mut log = std::fs::read_to_string(run.join("log.csv")).expect("log");
    log.push_str("1,63,0,1,1,1.7e308,1,1,0,0.5\n");
    std::fs::write(run.join("log.csv"), log).expect("write");
    let figs = d.run("figs");
    let o = succeeds(hd_native(&["plot", arg(&run), "--out", arg(&figs)]));
    assert!(
        stderr(&o).contains("1 value(s) beyond ±3.4028234663852886e38 left out"),
        "{}",
        stderr(&o)
    );
    assert!(figs.join("test-loss.png").exists());
}

/// Item 11: a reader that went away (`| true`) ends the program quietly, exit 0.
#[test]
fn closed_pipes_end_quietly() {
    let d = Dirs::mnist(64, 32, false);
    let run = d.run("run");
    ends_quietly_without_readers(d.train(&run, &["--optimizer", "sgd", "--epochs", "1"]));
    assert!(summary(&run).finished);
    ends_quietly_without_readers(hd_native(&[
        "plot",
        arg(&run),
        "--out",
        arg(&d.run("figs")),
    ]));
}

/// Runs `c` with its stdout and stderr read ends closed before it writes anything: it exits 0.
fn ends_quietly_without_readers(mut c: Command) {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// Item 13: --threads is bounded by the machine's logical CPUs, with a note.
#[test]
fn threads_are_bounded_by_the_cpus() {
    let d = Dirs::mnist(64, 32, false);
    let run = d.run("run");
    let o = succeeds(train_logreg_plain(
        d.data(),
        &run,
        &words("--optimizer sgd --epochs 1 --device cpu --threads 100000"),
    ));
    let cpus = std::thread::available_parallelism().expect("cpus").get();
    assert!(
        stderr(&o).contains(&format!(
            "--threads 100000 exceeds the {cpus} logical CPUs; using {cpus}"
        )),
        "{}",
        stderr(&o)
    );
}

/// Item 14 and the exit statuses: an I/O error gives its cause once; missing data files
/// exit 4 naming what was looked for; a bad command line exits 2.
#[test]
fn errors_are_one_line_with_their_cause_once_and_their_own_status() {
    let d = Dirs::mnist(64, 32, false);
    let file = d.run("a-file");
    std::fs::write(&file, "x").expect("write");
    let err = fails_with(d.train(&file.join("run"), &["--optimizer", "sgd"]), 1);
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    assert!(
        err.contains(&file.join("run").display().to_string()),
        "{err}"
    );

    let empty = tempdir();
    let err = fails_with(
        train_logreg(empty.path(), &d.run("run"), &["--optimizer", "sgd"]),
        4,
    );
    assert!(
        err.contains(&format!(
            "mnist: cannot find training images in {} (looked for train-images-idx3-ubyte.gz",
            empty.path().display()
        )),
        "{err}"
    );
    let o = output(d.train(&d.run("run"), &["--optimizer", "nope"]));
    assert_eq!(o.status.code(), Some(2));
}

/// Items 2 and the signals: a run SIGKILLed, resumed, SIGKILLed again mid-resume, resumed,
/// stopped by SIGTERM (exit 143) and resumed once more ends bit-identical to a run that never
/// stopped (every tensor of the checkpoint but the wall-clock time, every log column but Time).
#[test]
fn killed_and_terminated_runs_resume_bit_identical() {
    let d = Dirs::mnist(3000, 100, false);
    let whole = d.run("whole");
    let broken = d.run("broken");
    let args: Vec<&str> = ADAM_HD.iter().chain(&["--epochs", "8"]).copied().collect();
    succeeds(d.train(&whole, &args));

    // Runs `args` in `broken` until it is under way in `epoch`, then SIGKILLs it.
    let kill_in = |args: &[&str], epoch: u32| {
        let mut child = start(d.train(&broken, args), Stdio::null());
        wait_for_epoch(&mut child, &[&broken], epoch);
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    };
    kill_in(&args, 2);
    // Resume, and kill the resumed run in the middle of its second epoch.
    kill_in(&["--resume"], progress(&broken)[0] as u32 + 2);

    // Resume, and stop it with SIGTERM: exit 143, consistent and resumable.
    let mut child = start(d.train(&broken, &["--resume"]), Stdio::piped());
    let resumed_from = progress(&broken)[0] as u32;
    assert!(resumed_from < 6, "too fast to interrupt");
    // The killed run's log may still show epoch resumed_from + 1 until this one cuts it back:
    // epoch resumed_from + 2 is this run's own (and its signal handlers are installed).
    wait_for_epoch(&mut child, &[&broken], resumed_from + 2);
    signal(&child, "TERM");
    let o = child.wait_with_output().expect("wait");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(143), "{err}");
    assert!(err.contains("stopped by SIGTERM"), "{err}");
    assert!(err.contains("with --resume"), "{err}");
    let s = summary(&broken);
    assert!(!s.finished && s.diverged.is_none());

    succeeds(d.train(&broken, &["--resume"]));
    assert_same_run(&whole, &broken);
}

/// Item 12 with a memory cap: the smallest address-space limit (in 256 MiB steps) under which
/// the binary trains a tiny run, plus 512 MiB, is enough to reject a gzip file that inflates
/// to 1 GiB: reading stops at the first byte past the header's size. (Inflating it whole, as
/// the old reader did, needs more than 1 GiB and dies under this cap.)
#[test]
fn a_gzip_bomb_is_refused_under_a_memory_cap() {
    use std::io::Write;
    let d = Dirs::mnist(30, 10, false);
    // prlimit (util-linux) runs the binary under the cap.
    let capped = |limit: u64, data: &Path, run: &str| -> Command {
        let train = train_logreg(data, &d.run(run), &["--optimizer", "sgd", "--epochs", "1"]);
        let mut c = Command::new("prlimit");
        c.arg(format!("--as={limit}"))
            .arg(train.get_program())
            .args(train.get_args());
        c
    };
    const MIB: u64 = 1 << 20;
    let mut limit = 512 * MIB;
    loop {
        assert!(
            limit <= 64 << 30,
            "hd-native never ran under an address-space limit"
        );
        if output(capped(limit, d.data(), &format!("probe-{limit}")))
            .status
            .success()
        {
            break;
        }
        limit += 256 * MIB;
    }

    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let (px, _) = common::images(30, 1, 28, 10, 1);
    for v in [0x0000_0803u32, 30, 28, 28] {
        enc.write_all(&v.to_be_bytes()).expect("compress");
    }
    enc.write_all(&px).expect("compress");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        enc.write_all(&zeros).expect("compress");
    }
    let bomb = enc.finish().expect("compress");
    std::fs::remove_file(d.data().join("train-images-idx3-ubyte")).expect("rm");
    let path = d.data().join("train-images-idx3-ubyte.gz");
    std::fs::write(&path, bomb).expect("write");
    let err = fails_with(capped(limit + 512 * MIB, d.data(), "bomb"), 1);
    assert!(
        err.contains(&format!(
            "{}: holds more than the 23536 bytes its header declares",
            path.display()
        )),
        "{err}"
    );
}
