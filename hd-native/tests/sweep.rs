//! `hd-native sweep`: a sweep killed with SIGKILL and started again ends with the files of a
//! sweep never stopped; a run without data is skipped with its path; a failing run does not
//! stop the others and is named; `sweep status` tells each run's state; the Slurm script has
//! one array task per run.

mod common;

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tch::Tensor;

const BIN: &str = env!("CARGO_BIN_EXE_hd-native");

fn write_plan(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("plan.toml");
    std::fs::write(&p, text).expect("write plan");
    p
}

fn sweep_cmd(plan: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("sweep")
        .arg(plan)
        .arg("--out")
        .arg(out)
        .args(["--devices", "cpu", "--threads", "2"])
        .args(extra);
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("runs hd-native")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A small MLP on generated MNIST-format data: four runs, four epochs each.
const RESUME_PLAN: &str = r#"
description = "kill and resume"
[[experiment]]
name = "mlp"
model = "mlp"
hidden = [64]
dataset = "mnist"
batch-size = 32
alpha0 = 0.003
epochs = 4
optimizer = ["sgdn-hd", "adam-hd"]
seed = [1, 2]
"#;

const RUNS: [&str; 4] = [
    "mlp/sgdn-hd/s=1",
    "mlp/sgdn-hd/s=2",
    "mlp/adam-hd/s=1",
    "mlp/adam-hd/s=2",
];

/// Every tensor of a run's checkpoint except the wall-clock time.
fn checkpoint(run: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(run.join("checkpoint.safetensors"))
        .expect("checkpoint")
        .into_iter()
        .filter(|(n, _)| n != "run.elapsed")
        .collect()
}

fn log_without_time(run: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(run.join("log.csv"))
        .expect("log")
        .lines()
        .map(|l| {
            let mut r: Vec<String> = l.split(',').map(String::from).collect();
            r[2].clear();
            r
        })
        .collect()
}

fn assert_same_run(a: &Path, b: &Path) {
    let (ca, cb) = (checkpoint(a), checkpoint(b));
    assert_eq!(
        ca.keys().collect::<std::collections::BTreeSet<_>>(),
        cb.keys().collect::<std::collections::BTreeSet<_>>()
    );
    for (name, ta) in &ca {
        let tb = &cb[name];
        assert_eq!(ta.size(), tb.size(), "{name}");
        let n = ta.numel() * ta.kind().elt_size_in_bytes();
        let (mut ba, mut bb) = (vec![0u8; n], vec![0u8; n]);
        ta.copy_data_u8(&mut ba, ta.numel());
        tb.copy_data_u8(&mut bb, tb.numel());
        assert!(ba == bb, "{}: {name} differs", b.display());
    }
    assert_eq!(log_without_time(a), log_without_time(b), "{}", b.display());
    let summary = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).expect("summary"))
            .expect("json")
    };
    let (sa, sb) = (summary(a), summary(b));
    for k in [
        "config",
        "epochs_completed",
        "iterations",
        "finished",
        "last",
    ] {
        assert_eq!(sa[k], sb[k], "{}: summary {k}", b.display());
    }
}

fn status(out: &Path) -> String {
    let o = run({
        let mut c = Command::new(BIN);
        c.args(["sweep", "status"]).arg(out);
        c
    });
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout)
}

/// The state column of `sweep status` for run `id`.
fn state_of(table: &str, id: &str) -> String {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("{id} not in\n{table}"))
        .to_string()
}

#[test]
fn a_sigkilled_sweep_resumes_to_the_same_files() {
    let data = tempfile::tempdir().expect("tempdir");
    common::write_mnist(data.path(), 3000, 100, false);
    let data_arg = format!("mnist={}", data.path().display());
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(tmp.path(), RESUME_PLAN);
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));
    let args = ["--jobs", "2", "--data", &data_arg];

    let o = run(sweep_cmd(&plan, &whole, &args));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("sweep: 4 done, 0 diverged, 0 skipped, 0 failed"));

    // The same sweep, killed (the sweep and its train processes at once, as a node failure
    // or `kill -9` of the process group does) once some run is in its second epoch.
    let mut child = sweep_cmd(&plan, &killed, &args)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let started = RUNS.iter().any(|id| {
            std::fs::read_to_string(killed.join(id).join("log.csv"))
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with("2,"))
        });
        if started {
            break;
        }
        assert!(Instant::now() < deadline, "no run reached epoch 2");
        std::thread::sleep(Duration::from_millis(2));
    }
    // A second sweep of the same directory is refused while the first holds it.
    let o = run(sweep_cmd(&plan, &killed, &args));
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("is being swept by another hd-native sweep"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let pgid = child.id();
    let k = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status()
        .expect("kill");
    assert!(k.success());
    child.wait().expect("reap");
    let table = status(&killed);
    let unfinished = RUNS
        .iter()
        .filter(|id| state_of(&table, id) != "done")
        .count();
    assert!(
        unfinished > 0,
        "everything finished before the kill:\n{table}"
    );
    assert!(!table.contains("failed"), "{table}");

    let o = run(sweep_cmd(&plan, &killed, &args));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("sweep: 4 done"),
        "{}",
        text(&o.stdout)
    );
    for id in RUNS {
        assert_same_run(&whole.join(id), &killed.join(id));
        assert_eq!(state_of(&status(&killed), id), "done");
    }
    // Started again, a finished sweep has nothing to do and changes nothing.
    let before = std::fs::read(killed.join(RUNS[0]).join("log.csv")).expect("log");
    let o = run(sweep_cmd(&plan, &killed, &args));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(&format!("done      {} (already, test accuracy", RUNS[0])),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(
        std::fs::read(killed.join(RUNS[0]).join("log.csv")).expect("log"),
        before
    );
}

const TWO_DATASETS: &str = r#"
description = "one dataset here, one not"
[[experiment]]
name = "here"
model = "logreg"
dataset = "mnist"
batch-size = 64
epochs = 1
optimizer = ["sgd", "sgd-hd"]

[[experiment]]
name = "there"
model = "logreg"
dataset = "cifar10"
batch-size = 64
epochs = 1
optimizer = "sgd"
"#;

#[test]
fn a_run_without_data_is_skipped_with_its_path() {
    let data = tempfile::tempdir().expect("tempdir");
    common::write_mnist(data.path(), 300, 50, true);
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(tmp.path(), TWO_DATASETS);
    let out = tmp.path().join("out");
    let root = tmp.path().join("no-such-root");
    let o = run(sweep_cmd(
        &plan,
        &out,
        &[
            "--data-root",
            root.to_str().expect("utf-8"),
            "--data",
            &format!("mnist={}", data.path().display()),
        ],
    ));
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let looked = root.join("cifar10");
    let line = format!(
        "skipped   there/sgd (no cifar10 data: {} does not exist)",
        looked.display()
    );
    assert!(stdout.contains(&line), "{stdout}");
    assert!(
        stdout.contains("sweep: 2 done, 0 diverged, 1 skipped, 0 failed"),
        "{stdout}"
    );
    let table = status(&out);
    assert_eq!(state_of(&table, "there/sgd"), "skipped");
    assert!(table.contains(&looked.display().to_string()), "{table}");
    assert_eq!(state_of(&table, "here/sgd-hd"), "done");
    assert!(
        !out.join("there").exists(),
        "a skipped run leaves no directory"
    );
}

#[test]
fn a_failing_run_does_not_stop_the_others_and_is_named() {
    let data = tempfile::tempdir().expect("tempdir");
    common::write_mnist(data.path(), 300, 50, false);
    let cifar = tempfile::tempdir().expect("tempdir");
    common::write_cifar10(cifar.path(), 20, 20);
    // One CIFAR batch cut short: not a whole number of records, which train refuses.
    let batch = cifar.path().join("data_batch_3.bin");
    let bytes = std::fs::read(&batch).expect("batch");
    std::fs::write(&batch, &bytes[..bytes.len() - 7]).expect("truncate");
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(tmp.path(), TWO_DATASETS);
    let out = tmp.path().join("out");
    let o = run(sweep_cmd(
        &plan,
        &out,
        &[
            "--data",
            &format!("mnist={}", data.path().display()),
            "--data",
            &format!("cifar10={}", cifar.path().display()),
        ],
    ));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("2 done, 0 diverged, 0 skipped, 1 failed: failed there/sgd"),
        "{err}"
    );
    let stdout = text(&o.stdout);
    assert!(stdout.contains("FAILED    there/sgd (exit 1: "), "{stdout}");
    assert!(stdout.contains("data_batch_3.bin"), "{stdout}");
    let table = status(&out);
    assert_eq!(state_of(&table, "there/sgd"), "failed");
    assert!(table.contains("data_batch_3.bin"), "{table}");
    for id in ["here/sgd", "here/sgd-hd"] {
        assert_eq!(state_of(&table, id), "done");
    }
}

#[test]
fn slurm_script_has_one_task_per_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(tmp.path(), RESUME_PLAN);
    let out = tmp.path().join("out");
    let o = run({
        let mut c = Command::new(BIN);
        c.arg("sweep").arg(&plan).arg("--out").arg(&out).args([
            "--slurm",
            "--partition",
            "gpu",
            "--gpus-per-run",
            "1",
            "--cpus-per-run",
            "8",
            "--time",
            "1:00:00",
            "--throttle",
            "3",
            "--sbatch=--account=abc",
        ]);
        c
    });
    assert!(o.status.success(), "{}", text(&o.stderr));
    let script_path = out.join(".sweep").join("sweep.sbatch");
    let script = std::fs::read_to_string(&script_path).expect("script");
    for line in [
        "#SBATCH --array=0-3%3",
        "#SBATCH --requeue",
        "#SBATCH --partition=gpu",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --time=1:00:00",
        "#SBATCH --account=abc",
        "#SBATCH --open-mode=append",
    ] {
        assert!(
            script.lines().any(|l| l == line),
            "{line} missing:\n{script}"
        );
    }
    let output = format!(
        "#SBATCH --output={}",
        out.join(".sweep").join("slurm").join("%A_%a.out").display()
    );
    assert!(script.contains(&output), "{script}");
    let exec = script
        .lines()
        .find(|l| l.starts_with("exec "))
        .expect("exec line");
    assert!(
        exec.contains(" sweep ")
            && exec.contains("--task \"$SLURM_ARRAY_TASK_ID\"")
            && exec.contains("--threads 8")
            && exec.contains("--devices cuda"),
        "{exec}"
    );
    // The manifest lists the runs in task order.
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(".sweep").join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    let ids: Vec<&str> = m["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, RUNS);
    // A task outside the plan is one clear error.
    let o = run({
        let mut c = Command::new(BIN);
        c.arg("sweep")
            .arg(&plan)
            .arg("--out")
            .arg(&out)
            .args(["--task", "4"]);
        c
    });
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("task 4 is outside the plan (runs 0 to 3)"),
        "{}",
        text(&o.stderr)
    );
}

/// One run that learns, one that blows up (α0 = 1e37: the first step makes the loss non-finite)
/// and one whose data directory exists but lacks its files.
const GOOD_DIVERGED_MISSING: &str = r#"
description = "a result, a divergence and missing files"
[[experiment]]
name = "fine"
model = "logreg"
dataset = "mnist"
batch-size = 64
epochs = 2
optimizer = "sgd-hd"

[[experiment]]
name = "blowup"
model = "logreg"
dataset = "mnist"
batch-size = 64
epochs = 2
alpha0 = 1e37
optimizer = "sgd"

[[experiment]]
name = "nofiles"
model = "logreg"
dataset = "cifar10"
batch-size = 64
epochs = 1
optimizer = "sgd"
"#;

/// `train`'s own exit statuses reach the sweep: a divergence (3) is a result, not a failure,
/// and a data directory without its files (4) is a skip naming the file looked for; the report
/// then draws the diverged run up to where it diverged.
#[test]
fn divergence_is_a_result_and_missing_files_a_skip() {
    let data = tempfile::tempdir().expect("tempdir");
    common::write_mnist(data.path(), 300, 50, false);
    let empty = tempfile::tempdir().expect("tempdir");
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(tmp.path(), GOOD_DIVERGED_MISSING);
    let out = tmp.path().join("out");
    let o = run(sweep_cmd(
        &plan,
        &out,
        &[
            "--data",
            &format!("mnist={}", data.path().display()),
            "--data",
            &format!("cifar10={}", empty.path().display()),
        ],
    ));
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    assert!(
        stdout.contains("sweep: 1 done, 1 diverged, 1 skipped, 0 failed"),
        "{stdout}"
    );
    let skipped = stdout
        .lines()
        .find(|l| l.starts_with("skipped") && l.contains("nofiles/sgd"))
        .unwrap_or_else(|| panic!("no skip line: {stdout}"));
    assert!(
        skipped.contains(&empty.path().display().to_string()),
        "{skipped}"
    );
    let table = status(&out);
    assert_eq!(state_of(&table, "fine/sgd-hd"), "done");
    assert_eq!(state_of(&table, "blowup/sgd"), "diverged");
    assert_eq!(state_of(&table, "nofiles/sgd"), "skipped");

    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("blowup/sgd/summary.json")).expect("summary"),
    )
    .expect("json");
    assert_eq!(summary["finished"], false);
    assert!(summary["diverged"].is_object(), "{summary}");

    // A second sweep leaves the diverged run alone rather than retrying it.
    let log = std::fs::read(out.join("blowup/sgd/log.csv")).expect("log");
    let again = run(sweep_cmd(
        &plan,
        &out,
        &["--data", &format!("mnist={}", data.path().display())],
    ));
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(
        std::fs::read(out.join("blowup/sgd/log.csv")).expect("log"),
        log
    );

    let report = tmp.path().join("report");
    let r = run({
        let mut c = Command::new(BIN);
        c.arg("report").arg(&out).arg("--out").arg(&report);
        c
    });
    assert!(r.status.success(), "{}", text(&r.stderr));
    let md = std::fs::read_to_string(report.join("REPORT.md")).expect("REPORT.md");
    // The diverged run is in its experiment's table, its final training loss marked NaN
    // (the report's sign for a divergence), not the last finite epoch's.
    let blowup = md
        .split("\n## ")
        .find(|s| s.starts_with("blowup"))
        .unwrap_or_else(|| panic!("no blowup section: {md}"));
    let row = blowup
        .lines()
        .find(|l| l.starts_with("| SGD |"))
        .unwrap_or_else(|| panic!("no SGD row: {blowup}"));
    assert!(row.contains("NaN"), "{row}");
    let fine = md
        .split("\n## ")
        .find(|s| s.starts_with("fine"))
        .unwrap_or_else(|| panic!("no fine section: {md}"));
    assert!(!fine.contains("NaN"), "{fine}");
}
