//! The release binary and its run directories as the tests drive and read them: commands,
//! their one-line failures, and the files a run writes (log.csv, summary.json, the
//! checkpoint).

use hd_native::run_dir::{Summary, LOG_HEADER};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tch::Tensor;
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_hd-native");

/// A path as a command-line argument.
pub fn arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Command-line words written as one line: `words("--optimizer sgd --epochs 2")`.
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// `hd-native args…`, to be given more arguments or run.
pub fn hd_native(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    c
}

/// A process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a process wrote on stderr.
pub fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// Runs `c` to its end.
pub fn output(mut c: Command) -> Output {
    c.output().expect("runs hd-native")
}

/// Runs `c`, expecting success.
pub fn succeeds(c: Command) -> Output {
    let o = output(c);
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// Runs `c`, expecting failure; returns its stderr.
pub fn fails(c: Command) -> String {
    let what = format!("{c:?}");
    let o = output(c);
    assert!(!o.status.success(), "{what} succeeded");
    stderr(&o)
}

/// Runs `c`, expecting exit status `code` and exactly one line on stderr, ours; returns that
/// line.
pub fn fails_with(c: Command, code: i32) -> String {
    let o = output(c);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("hd-native: error: "), "{err:?}");
    err
}

/// Starts `c`, its stderr going to `stderr`.
pub fn start(mut c: Command, stderr: Stdio) -> Child {
    c.stderr(stderr).spawn().expect("spawn")
}

/// A fresh temporary directory.
pub fn tempdir() -> TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// A test's generated data and the directory its runs go to, both removed when dropped.
pub struct Dirs {
    data: TempDir,
    out: TempDir,
}

impl Dirs {
    /// MNIST-format data (see [`write_mnist`](super::write_mnist)).
    pub fn mnist(train: usize, test: usize, gz: bool) -> Self {
        let data = tempdir();
        super::write_mnist(data.path(), train, test, gz);
        Dirs {
            data,
            out: tempdir(),
        }
    }

    /// CIFAR-10 data (see [`write_cifar10`](super::write_cifar10)).
    pub fn cifar10(per_batch: usize, test: usize) -> Self {
        let data = tempdir();
        super::write_cifar10(data.path(), per_batch, test);
        Dirs {
            data,
            out: tempdir(),
        }
    }

    /// The data directory.
    pub fn data(&self) -> &Path {
        self.data.path()
    }

    /// The output directory.
    pub fn out(&self) -> &Path {
        self.out.path()
    }

    /// `name` in the output directory.
    pub fn run(&self, name: &str) -> PathBuf {
        self.out.path().join(name)
    }

    /// [`train_logreg`] on this data.
    pub fn train(&self, run: &Path, extra: &[&str]) -> Command {
        train_logreg(self.data(), run, extra)
    }
}

/// `hd-native train` of logistic regression on the MNIST files in `data` into `run`, on one
/// CPU thread, quietly, with `extra` options.
pub fn train_logreg(data: &Path, run: &Path, extra: &[&str]) -> Command {
    let mut c = train_logreg_plain(data, run, &["--device", "cpu", "--threads", "1", "--quiet"]);
    c.args(extra);
    c
}

/// `hd-native train` of logistic regression on the MNIST files in `data` into `run`, with
/// `extra` options only.
pub fn train_logreg_plain(data: &Path, run: &Path, extra: &[&str]) -> Command {
    let mut c = hd_native(&[
        "train",
        "--model",
        "logreg",
        "--dataset",
        "mnist",
        "--data-dir",
        arg(data),
        "--out",
        arg(run),
    ]);
    c.args(extra);
    c
}

/// Options of an Adam-HD run that takes long enough to interrupt mid-epoch and keeps optimizer
/// buffers, so resuming has state to restore.
pub const ADAM_HD: [&str; 8] = [
    "--optimizer",
    "adam-hd",
    "--alpha0",
    "0.003",
    "--batch-size",
    "32",
    "--seed",
    "5",
];

/// Writes `text` as `plan.toml` in `dir`.
pub fn write_plan(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("plan.toml");
    std::fs::write(&p, text).expect("write plan");
    p
}

/// `hd-native sweep plan --out out` on the CPU, two threads a run, with `extra` options.
pub fn sweep(plan: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = hd_native(&["sweep", arg(plan), "--out", arg(out)]);
    c.args(["--devices", "cpu", "--threads", "2"]).args(extra);
    c
}

/// A run's summary.json.
pub fn summary(run: &Path) -> Summary {
    serde_json::from_value(summary_json(run)).expect("summary parses")
}

/// A run's summary.json as JSON, for what [`Summary`] does not hold or compare.
pub fn summary_json(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).expect("summary"))
        .expect("json")
}

/// A run's log.csv, checked to start with the header, as rows of fields.
pub fn log_rows(run: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(run.join("log.csv")).expect("log.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(LOG_HEADER), "header");
    lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// A run's checkpoint tensors, by name.
pub fn checkpoint(run: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(run.join("checkpoint.safetensors"))
        .expect("checkpoint")
        .into_iter()
        .collect()
}

/// Replaces a run's checkpoint with `tensors`.
pub fn write_checkpoint(run: &Path, tensors: HashMap<String, Tensor>) {
    let named: Vec<(String, Tensor)> = tensors.into_iter().collect();
    Tensor::write_safetensors(&named, run.join("checkpoint.safetensors")).expect("write");
}

/// A tensor's raw bytes: bit-identical tensors have equal bytes.
pub fn bytes(t: &Tensor) -> Vec<u8> {
    let mut b = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
    t.copy_data_u8(&mut b, t.numel());
    b
}

/// Runs `a` and `b` agree bit for bit: every checkpoint tensor but the wall-clock time, and
/// every log column but the wall-clock Time.
pub fn assert_same_run(a: &Path, b: &Path) {
    let strip = |run: &Path| -> HashMap<String, Tensor> {
        checkpoint(run)
            .into_iter()
            .filter(|(n, _)| n != "run.elapsed")
            .collect()
    };
    let (ca, cb) = (strip(a), strip(b));
    assert_eq!(
        ca.keys().collect::<BTreeSet<_>>(),
        cb.keys().collect::<BTreeSet<_>>(),
        "{}",
        b.display()
    );
    for (name, ta) in &ca {
        let tb = &cb[name];
        assert_eq!(ta.size(), tb.size(), "{}: {name}", b.display());
        assert!(bytes(ta) == bytes(tb), "{}: {name} differs", b.display());
    }
    let rows = |run: &Path| -> Vec<Vec<String>> {
        log_rows(run)
            .into_iter()
            .map(|mut r| {
                r[2].clear();
                r
            })
            .collect()
    };
    assert_eq!(rows(a), rows(b), "{}", b.display());
}

/// Waits until the log of one of `runs` has a row of `epoch` (that run is then under way in
/// it), while `child` runs.
pub fn wait_for_epoch<P: AsRef<Path>>(child: &mut Child, runs: &[P], epoch: u32) {
    let prefix = format!("{epoch},");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let started = runs.iter().any(|run| {
            std::fs::read_to_string(run.as_ref().join("log.csv"))
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with(&prefix))
        });
        if started {
            return;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "ended before epoch {epoch}"
        );
        assert!(Instant::now() < deadline, "epoch {epoch} never started");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A small MLP on generated MNIST-format data: four runs, four epochs each.
pub const RESUME_PLAN: &str = include_str!("../plans/kill-and-resume.toml");

/// The ids of [`RESUME_PLAN`]'s runs.
pub const RESUME_RUNS: [&str; 4] = [
    "mlp/sgdn-hd/s=1",
    "mlp/sgdn-hd/s=2",
    "mlp/adam-hd/s=1",
    "mlp/adam-hd/s=2",
];

/// `hd-native sweep status OUT`, which must succeed.
pub fn status(out: &Path) -> String {
    text(&succeeds(hd_native(&["sweep", "status", arg(out)])).stdout)
}

/// The state column of `sweep status` for run `id`.
pub fn state_of(table: &str, id: &str) -> String {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("{id} not in\n{table}"))
        .to_string()
}
