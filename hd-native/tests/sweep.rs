//! `hd-native sweep`: a sweep killed with SIGKILL and started again ends with the files of a
//! sweep never stopped; a run without data is skipped with its path; a failing run does not
//! stop the others and is named; `sweep status` tells each run's state; the Slurm script has
//! one array task per run.

mod common;

use common::{
    arg, hd_native, output as run, succeeds, summary_json, sweep as sweep_cmd, tempdir, text,
    wait_for_epoch, write_plan, Dirs,
};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A small MLP on generated MNIST-format data: four runs, four epochs each.
const RESUME_PLAN: &str = include_str!("plans/kill-and-resume.toml");

const RUNS: [&str; 4] = [
    "mlp/sgdn-hd/s=1",
    "mlp/sgdn-hd/s=2",
    "mlp/adam-hd/s=1",
    "mlp/adam-hd/s=2",
];

/// [`common::assert_same_run`], and their summaries agree on everything but timings.
fn assert_same_run(a: &Path, b: &Path) {
    common::assert_same_run(a, b);
    let (sa, sb) = (summary_json(a), summary_json(b));
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

/// `sweep` of `plan` into `out` with MNIST from `mnist` and CIFAR-10 from `cifar10`.
fn sweep_with(plan: &Path, out: &Path, mnist: &Path, cifar10: &Path) -> Output {
    let mnist = format!("mnist={}", mnist.display());
    let cifar10 = format!("cifar10={}", cifar10.display());
    run(sweep_cmd(
        plan,
        out,
        &["--data", &mnist, "--data", &cifar10],
    ))
}

fn status(out: &Path) -> String {
    text(&succeeds(hd_native(&["sweep", "status", arg(out)])).stdout)
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
    let d = Dirs::mnist(3000, 100, false);
    let data_arg = format!("mnist={}", d.data().display());
    let plan = write_plan(d.out(), RESUME_PLAN);
    let (whole, killed) = (d.run("whole"), d.run("killed"));
    let args = ["--jobs", "2", "--data", &data_arg];

    let o = succeeds(sweep_cmd(&plan, &whole, &args));
    assert!(text(&o.stdout).contains("sweep: 4 done, 0 diverged, 0 skipped, 0 failed"));

    // The same sweep, killed (the sweep and its train processes at once, as a node failure
    // or `kill -9` of the process group does) once some run is in its second epoch.
    let mut child = sweep_cmd(&plan, &killed, &args)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let runs: Vec<PathBuf> = RUNS.iter().map(|id| killed.join(id)).collect();
    wait_for_epoch(&mut child, &runs, 2);
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

    let o = succeeds(sweep_cmd(&plan, &killed, &args));
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
    let o = succeeds(sweep_cmd(&plan, &killed, &args));
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

/// Logistic regression on MNIST (two runs) and on CIFAR-10 (one run).
const TWO_DATASETS: &str = include_str!("plans/two-datasets.toml");

#[test]
fn a_run_without_data_is_skipped_with_its_path() {
    let d = Dirs::mnist(300, 50, true);
    let plan = write_plan(d.out(), TWO_DATASETS);
    let out = d.run("out");
    let root = d.run("no-such-root");
    let o = run(sweep_cmd(
        &plan,
        &out,
        &[
            "--data-root",
            root.to_str().expect("utf-8"),
            "--data",
            &format!("mnist={}", d.data().display()),
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
    let d = Dirs::mnist(300, 50, false);
    let cifar = tempdir();
    common::write_cifar10(cifar.path(), 20, 20);
    // One CIFAR batch cut short: not a whole number of records, which train refuses.
    let batch = cifar.path().join("data_batch_3.bin");
    let bytes = std::fs::read(&batch).expect("batch");
    std::fs::write(&batch, &bytes[..bytes.len() - 7]).expect("truncate");
    let plan = write_plan(d.out(), TWO_DATASETS);
    let out = d.run("out");
    let o = sweep_with(&plan, &out, d.data(), cifar.path());
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
    let tmp = tempdir();
    let plan = write_plan(tmp.path(), RESUME_PLAN);
    let out = tmp.path().join("out");
    succeeds(hd_native(&[
        "sweep",
        arg(&plan),
        "--out",
        arg(&out),
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
    ]));
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
    let o = run(hd_native(&[
        "sweep",
        arg(&plan),
        "--out",
        arg(&out),
        "--task",
        "4",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("task 4 is outside the plan (runs 0 to 3)"),
        "{}",
        text(&o.stderr)
    );
}

/// One run that learns, one that blows up (α0 = 1e37: the first step makes the loss non-finite)
/// and one whose data directory exists but lacks its files.
const GOOD_DIVERGED_MISSING: &str = include_str!("plans/good-diverged-missing.toml");

/// `train`'s own exit statuses reach the sweep: a divergence (3) is a result, not a failure,
/// and a data directory without its files (4) is a skip naming the file looked for; the report
/// then draws the diverged run up to where it diverged.
#[test]
fn divergence_is_a_result_and_missing_files_a_skip() {
    let d = Dirs::mnist(300, 50, false);
    let empty = tempdir();
    let plan = write_plan(d.out(), GOOD_DIVERGED_MISSING);
    let out = d.run("out");
    let o = sweep_with(&plan, &out, d.data(), empty.path());
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

    let summary = summary_json(&out.join("blowup/sgd"));
    assert_eq!(summary["finished"], false);
    assert!(summary["diverged"].is_object(), "{summary}");

    // A second sweep leaves the diverged run alone rather than retrying it.
    let log = std::fs::read(out.join("blowup/sgd/log.csv")).expect("log");
    succeeds(sweep_cmd(
        &plan,
        &out,
        &["--data", &format!("mnist={}", d.data().display())],
    ));
    assert_eq!(
        std::fs::read(out.join("blowup/sgd/log.csv")).expect("log"),
        log
    );

    let report = d.run("report");
    succeeds(hd_native(&["report", arg(&out), "--out", arg(&report)]));
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
