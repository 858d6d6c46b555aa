//! `hd-native sweep`: a sweep killed with SIGKILL and started again ends with the files of a
//! sweep never stopped; a run without data is missing data, named with its directory, and fails
//! the sweep (exit 4) unless allowed; a failing run does not stop the others and is named;
//! `sweep status` tells each run's state; a shipped plan sweeps by name and its Slurm tasks
//! read the plan the sweep saved (the script itself: `slurm_script.rs`).

mod common;

use common::{
    arg, fails_with, hd_native, output as run, state_of, status, succeeds, summary_json,
    sweep as sweep_cmd, tempdir, text, wait_for_epoch, write_plan, Dirs, RESUME_PLAN, RESUME_RUNS,
};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

#[test]
fn a_sigkilled_sweep_resumes_to_the_same_files() {
    let d = Dirs::mnist(3000, 100, false);
    let data_arg = format!("mnist={}", d.data().display());
    let plan = write_plan(d.out(), RESUME_PLAN);
    let (whole, killed) = (d.run("whole"), d.run("killed"));
    let args = ["--jobs", "2", "--data", &data_arg];

    let o = succeeds(sweep_cmd(&plan, &whole, &args));
    assert!(text(&o.stdout).contains("sweep: 4 done, 0 diverged, 0 missing data, 0 failed"));

    // The same sweep, killed (the sweep and its train processes at once, as a node failure
    // or `kill -9` of the process group does) once some run is in its second epoch.
    let mut child = sweep_cmd(&plan, &killed, &args)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let runs: Vec<PathBuf> = RESUME_RUNS.iter().map(|id| killed.join(id)).collect();
    wait_for_epoch(&mut child, &runs, 2);
    // Frozen (SIGSTOP to the group) while the lock is tried: a stopped sweep still holds it,
    // and these small runs would otherwise all finish during the checks on an idle machine.
    let group = |signal: &str| {
        let pgid = child.id();
        let k = Command::new("kill")
            .args([signal, "--", &format!("-{pgid}")])
            .status()
            .expect("kill");
        assert!(k.success(), "kill {signal}");
    };
    group("-STOP");
    // A second sweep of the same directory is refused while the first holds it.
    let o = run(sweep_cmd(&plan, &killed, &args));
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("is being swept by another hd-native sweep"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // So is writing a Slurm array there, for another plan: the manifest stays the sweep's.
    let manifest = killed.join(".sweep").join("manifest.json");
    let before = std::fs::read(&manifest).expect("manifest");
    let other = d.out().join("other.toml");
    std::fs::write(
        &other,
        RESUME_PLAN.replace("\"mlp\"\nmodel", "\"other\"\nmodel"),
    )
    .expect("plan");
    let err = fails_with(
        hd_native(&[
            "sweep",
            arg(&other),
            "--out",
            arg(&killed),
            "--slurm",
            "--data",
            &data_arg,
        ]),
        1,
    );
    assert!(
        err.contains("is being swept by another hd-native sweep"),
        "{err}"
    );
    assert_eq!(std::fs::read(&manifest).expect("manifest"), before);
    assert!(!killed.join(".sweep").join("sweep.sbatch").exists());

    group("-KILL");
    child.wait().expect("reap");
    let table = status(&killed);
    let unfinished = RESUME_RUNS
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
    for id in RESUME_RUNS {
        assert_same_run(&whole.join(id), &killed.join(id));
        assert_eq!(state_of(&status(&killed), id), "done");
    }
    // Started again, a finished sweep has nothing to do and changes nothing.
    let before = std::fs::read(killed.join(RESUME_RUNS[0]).join("log.csv")).expect("log");
    let o = succeeds(sweep_cmd(&plan, &killed, &args));
    assert!(
        text(&o.stdout).contains(&format!(
            "done      {} (already, test accuracy",
            RESUME_RUNS[0]
        )),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(
        std::fs::read(killed.join(RESUME_RUNS[0]).join("log.csv")).expect("log"),
        before
    );
}

/// Logistic regression on MNIST (two runs) and on CIFAR-10 (one run).
const TWO_DATASETS: &str = include_str!("plans/two-datasets.toml");

/// A run whose data directory does not exist is missing data, with the directory; the sweep
/// runs the others and exits 4, saying how many runs miss their data and what fetches it, unless
/// `--allow-missing`.
#[test]
fn a_run_without_data_fails_the_sweep_unless_allowed() {
    let d = Dirs::mnist(300, 50, true);
    let plan = write_plan(d.out(), TWO_DATASETS);
    let out = d.run("out");
    let root = d.run("no-such-root");
    let mnist = format!("mnist={}", d.data().display());
    let args = ["--data-root", arg(&root), "--data", &mnist];
    let o = run(sweep_cmd(&plan, &out, &args));
    let stdout = text(&o.stdout);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{stdout}{err}");
    let looked = root.join("cifar10");
    let missing = format!("missing data ({}: no such directory)", looked.display());
    assert!(
        stdout.contains(&format!("MISSING   there/sgd: {missing}\n")),
        "{stdout}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("hd-native: error: 2 done, 0 diverged, 1 missing data, 0 failed; "),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "place CIFAR-10 in {} by hand (the files of cifar-10-binary.tar.gz)",
            looked.display()
        )),
        "{err}"
    );
    assert!(err.contains("--allow-missing"), "{err}");
    let table = status(&out);
    assert_eq!(state_of(&table, "there/sgd"), "missing");
    assert!(table.contains(&missing), "{table}");
    assert_eq!(state_of(&table, "here/sgd-hd"), "done");
    assert!(
        !out.join("there").exists(),
        "a run without data leaves no directory"
    );

    // Allowed, the same sweep passes, the run still listed as missing its data.
    let o = succeeds(sweep_cmd(
        &plan,
        &out,
        &[&args[..], &["--allow-missing"]].concat(),
    ));
    let stdout = text(&o.stdout);
    assert!(
        stdout.contains("sweep: 2 done, 0 diverged, 1 missing data, 0 failed; place CIFAR-10 in "),
        "{stdout}"
    );
    assert_eq!(state_of(&status(&out), "there/sgd"), "missing");

    // MNIST missing too: the summary gives the exact command that fetches it.
    let o = run(sweep_cmd(
        &plan,
        &d.run("none"),
        &["--data-root", arg(&root)],
    ));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("0 done, 0 diverged, 3 missing data, 0 failed"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "fetch MNIST and Fashion-MNIST with `cargo xtask data --dir {}`",
            root.display()
        )),
        "{err}"
    );
}

/// A shipped plan found by name sweeps the runs of its file; its Slurm tasks, run as Slurm runs
/// them, read the plan the sweep saved and find the same run.
#[test]
fn a_shipped_plan_sweeps_by_name_and_its_slurm_tasks_read_its_saved_text() {
    // MNIST-format files are Fashion-MNIST's format too.
    let d = Dirs::mnist(300, 50, false);
    let fashion = format!("fashion-mnist={}", d.data().display());
    let local = d.run("local");
    let cpu = ["--devices", "cpu", "--threads", "2", "--data", &fashion];
    let mut c = hd_native(&["sweep", "smoke", "--out", arg(&local)]);
    c.args(cpu);
    let o = succeeds(c);
    assert!(
        text(&o.stdout).contains("sweep: 4 done, 0 diverged, 0 missing data, 0 failed"),
        "{}",
        text(&o.stdout)
    );
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/smoke.toml");
    let smoke = hd_native::plan::load(&file).expect("the smoke plan");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(local.join(".sweep/manifest.json")).expect("manifest"),
    )
    .expect("json");
    let ids: Vec<&str> = manifest["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    let file_ids: Vec<&str> = smoke.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, file_ids);
    assert_eq!(
        std::fs::read_to_string(local.join(".sweep/plan.toml")).expect("saved plan"),
        smoke.text
    );
    let table = status(&local);
    for id in &file_ids {
        assert_eq!(state_of(&table, id), "done");
    }

    // The same plan as a Slurm array; task 1 run as an array task runs.
    let slurm = d.run("slurm");
    succeeds(hd_native(&[
        "sweep",
        "smoke",
        "--out",
        arg(&slurm),
        "--slurm",
        "--cpus-per-run",
        "2",
        "--data",
        &fashion,
    ]));
    let script = slurm.join(".sweep/sweep.sbatch");
    let text_of = std::fs::read_to_string(&script).expect("script");
    assert!(
        text_of.contains("#SBATCH --job-name=hd-smoke\n"),
        "{text_of}"
    );
    let saved = slurm.join(".sweep/plan.toml");
    assert!(
        text_of.contains(&format!(" sweep {} --out ", saved.display())),
        "{text_of}"
    );
    let o = succeeds({
        let mut c = Command::new("bash");
        c.arg(&script).env("SLURM_ARRAY_TASK_ID", "1");
        c
    });
    assert!(
        text(&o.stdout).contains("done      logreg-fashion/sgd-hd ("),
        "{}",
        text(&o.stdout)
    );
    assert_same_run(
        &local.join("logreg-fashion/sgd-hd"),
        &slurm.join("logreg-fashion/sgd-hd"),
    );

    // A name that is neither a file nor a shipped plan, and a file that is not there.
    let err = fails_with(hd_native(&["sweep", "smok", "--out", arg(&slurm)]), 1);
    assert!(
        err.contains("no plan file or shipped plan named `smok` (shipped plans: ")
            && err.contains("smoke"),
        "{err}"
    );
    let err = fails_with(
        hd_native(&["sweep", "nowhere.toml", "--out", arg(&slurm)]),
        1,
    );
    assert_eq!(
        err.trim_end(),
        "hd-native: error: cannot read the plan nowhere.toml: No such file or directory (os error 2)"
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
        err.contains("2 done, 0 diverged, 0 missing data, 1 failed: failed there/sgd"),
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

/// One run that learns, one that blows up (α0 = 1e37: the first step makes the loss non-finite)
/// and one whose data directory exists but lacks its files.
const GOOD_DIVERGED_MISSING: &str = include_str!("plans/good-diverged-missing.toml");

/// `train`'s own exit statuses reach the sweep: a divergence (3) is a result, not a failure;
/// a data directory without its files is missing data naming the file looked for, which fails
/// the sweep (4) unless allowed; the report then draws the diverged run up to where it diverged.
#[test]
fn divergence_is_a_result_and_missing_files_are_missing_data() {
    let d = Dirs::mnist(300, 50, false);
    let empty = tempdir();
    let plan = write_plan(d.out(), GOOD_DIVERGED_MISSING);
    let out = d.run("out");
    let o = sweep_with(&plan, &out, d.data(), empty.path());
    let stdout = text(&o.stdout);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{stdout}\n{err}");
    assert!(
        err.contains("1 done, 1 diverged, 1 missing data, 0 failed; place CIFAR-10 in "),
        "{err}"
    );
    assert!(
        stdout.contains(&format!(
            "MISSING   nofiles/sgd: missing data ({}: no training batches (looked for data_batch_1.bin))\n",
            empty.path().display()
        )),
        "{stdout}"
    );
    let table = status(&out);
    assert_eq!(state_of(&table, "fine/sgd-hd"), "done");
    assert_eq!(state_of(&table, "blowup/sgd"), "diverged");
    assert_eq!(state_of(&table, "nofiles/sgd"), "missing");

    let summary = summary_json(&out.join("blowup/sgd"));
    assert_eq!(summary["finished"], false);
    assert!(summary["diverged"].is_object(), "{summary}");

    // A second sweep, allowed to miss data, leaves the diverged run alone rather than
    // retrying it.
    let log = std::fs::read(out.join("blowup/sgd/log.csv")).expect("log");
    let o = succeeds(sweep_cmd(
        &plan,
        &out,
        &[
            "--data",
            &format!("mnist={}", d.data().display()),
            "--allow-missing",
        ],
    ));
    assert!(
        text(&o.stdout).contains("sweep: 1 done, 1 diverged, 1 missing data, 0 failed; "),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(
        std::fs::read(out.join("blowup/sgd/log.csv")).expect("log"),
        log
    );

    let report = d.run("report");
    succeeds(hd_native(&["report", arg(&out), "--out", arg(&report)]));
    let md = std::fs::read_to_string(report.join("REPORT.md")).expect("REPORT.md");
    // The diverged run is in its experiment's table, marked diverged, with no final training
    // loss (not the last finite epoch's), and drawn up to where it diverged; the run without
    // its files is not run, with what the sweep recorded.
    let blowup = md
        .split("\n## ")
        .find(|s| s.starts_with("blowup"))
        .unwrap_or_else(|| panic!("no blowup section: {md}"));
    let row = blowup
        .lines()
        .find(|l| l.starts_with("| SGD |"))
        .unwrap_or_else(|| panic!("no SGD row: {blowup}"));
    assert!(
        row.starts_with("| SGD | 1 | diverged (1 of 1 seeds) | – | – | – | – |"),
        "{row}"
    );
    let svg = std::fs::read_to_string(report.join("blowup-train-loss.svg")).expect("svg");
    assert!(svg.contains("SGD — diverged (1 of 1 seeds)"), "legend");
    assert!(
        md.contains("- `nofiles/sgd`: not run — the sweep found its data missing: "),
        "{md}"
    );
    let fine = md
        .split("\n## ")
        .find(|s| s.starts_with("fine"))
        .unwrap_or_else(|| panic!("no fine section: {md}"));
    assert!(
        !fine.contains("NaN") && !fine.contains("diverged"),
        "{fine}"
    );
}

/// LogReg on MNIST, one SGD run of `epochs` epochs at `alpha0`.
fn one_run(epochs: u32, alpha0: &str) -> String {
    format!(
        "description = \"one run\"\n[[experiment]]\nname = \"x\"\nmodel = \"logreg\"\n\
         dataset = \"mnist\"\nbatch-size = 64\noptimizer = \"sgd\"\nepochs = {epochs}\nalpha0 = {alpha0}\n"
    )
}

/// A run's identity is its options: a plan that asks for more epochs extends the finished run;
/// one that changes anything else makes it stale (named in the sweep's line and `sweep status`,
/// exit 1, the run untouched) until `--rerun-stale` moves it aside and runs it again.
#[test]
fn a_changed_plan_extends_or_reports_stale_runs_never_done() {
    let d = Dirs::mnist(300, 50, false);
    let data = format!("mnist={}", d.data().display());
    let out = d.run("out");
    let args = ["--data", &data];
    let plan = write_plan(d.out(), &one_run(1, "0.001"));
    succeeds(sweep_cmd(&plan, &out, &args));
    assert_eq!(summary_json(&out.join("x/sgd"))["epochs_completed"], 1);

    // More epochs: extended, not "done (already)".
    write_plan(d.out(), &one_run(2, "0.001"));
    let o = succeeds(sweep_cmd(&plan, &out, &args));
    let stdout = text(&o.stdout);
    assert!(
        stdout.contains("done      x/sgd (") && !stdout.contains("already"),
        "{stdout}"
    );
    let s = summary_json(&out.join("x/sgd"));
    assert_eq!(
        (s["epochs_completed"].as_u64(), s["finished"].as_bool()),
        (Some(2), Some(true))
    );

    // Another α0: stale, the run left as it was, the sweep failing.
    write_plan(d.out(), &one_run(2, "0.01"));
    let log = std::fs::read(out.join("x/sgd/log.csv")).expect("log");
    let o = run(sweep_cmd(&plan, &out, &args));
    let (stdout, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{stdout}{err}");
    assert!(
        stdout.contains(
            "STALE     x/sgd (run with core.alpha0 = 0.001, the plan has 0.01; --rerun-stale"
        ),
        "{stdout}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("0 done, 0 diverged, 0 missing data, 0 failed, 1 stale: stale x/sgd (x/sgd: run with core.alpha0 = 0.001"), "{err}");
    assert_eq!(std::fs::read(out.join("x/sgd/log.csv")).expect("log"), log);
    let table = status(&out);
    assert_eq!(state_of(&table, "x/sgd"), "stale", "{table}");
    assert!(table.contains("core.alpha0"), "{table}");

    // --rerun-stale: the old run kept under .sweep/stale, the new one done.
    let o = succeeds(sweep_cmd(
        &plan,
        &out,
        &[&args[..], &["--rerun-stale"]].concat(),
    ));
    assert!(
        text(&o.stdout).contains("sweep: 1 done"),
        "{}",
        text(&o.stdout)
    );
    let kept = out.join(".sweep/stale/x/sgd-1");
    assert_eq!(std::fs::read(kept.join("log.csv")).expect("kept log"), log);
    assert!(kept.join("train.log").is_file());
    let s = summary_json(&out.join("x/sgd"));
    assert_eq!(
        s["config"]["core"]["alpha0"]
            .as_f64()
            .map(|a| (a * 1e6).round()),
        Some(1e4)
    );
    assert_eq!(state_of(&status(&out), "x/sgd"), "done");
}

/// A `train` killed by a signal the sweep did not send (the OOM killer's SIGKILL) fails the
/// sweep, and `sweep status` says so; the next sweep resumes it.
#[test]
fn a_train_killed_behind_the_sweeps_back_fails_it_and_resumes_later() {
    let d = Dirs::mnist(3000, 100, false);
    let data = format!("mnist={}", d.data().display());
    let plan = write_plan(
        d.out(),
        &one_run(4, "0.001").replace("batch-size = 64", "batch-size = 16"),
    );
    let out = d.run("out");
    let args = ["--data", &data];
    let mut sweep = sweep_cmd(&plan, &out, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let run_dir = out.join("x/sgd");
    wait_for_epoch(&mut sweep, &[&run_dir], 1);
    // The `train` process, as its run lock names it: `pid N on HOST`.
    let holder = std::fs::read_to_string(run_dir.join(".lock")).expect("lock");
    let pid = holder.split_whitespace().nth(1).expect("a pid");
    let k = Command::new("kill")
        .args(["-KILL", pid])
        .status()
        .expect("kill");
    assert!(k.success());
    let o = sweep.wait_with_output().expect("wait");
    let (stdout, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{stdout}{err}");
    assert!(
        stdout.contains("FAILED    x/sgd (killed by signal 9 (resumable))"),
        "{stdout}"
    );
    assert!(err.contains("1 failed: failed x/sgd"), "{err}");
    let table = status(&out);
    assert_eq!(state_of(&table, "x/sgd"), "failed", "{table}");
    assert!(table.contains("killed by signal 9 (resumable)"), "{table}");

    let o = succeeds(sweep_cmd(&plan, &out, &args));
    assert!(
        text(&o.stdout).contains("sweep: 1 done"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(state_of(&status(&out), "x/sgd"), "done");
}

/// `--jobs` is capped at the logical CPUs, with a note, as `--threads` is: a huge count
/// spawns no more workers than that.
#[test]
fn jobs_are_capped_at_the_logical_cpus() {
    let tmp = tempdir();
    let plan = write_plan(tmp.path(), TWO_DATASETS);
    let out = tmp.path().join("out");
    let root = tmp.path().join("no-data");
    let o = run(sweep_cmd(
        &plan,
        &out,
        &["--jobs", "18446744073709551615", "--data-root", arg(&root)],
    ));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        err.starts_with(&format!(
            "hd-native: note: --jobs 18446744073709551615 exceeds the {cpus} logical CPUs; using {cpus}\n"
        )),
        "{err}"
    );
}

/// Errors say what failed and why, in one line (`a: b: c`): `.sweep` being a file, a corrupt
/// manifest, a read-only --out; `sweep status` escapes control characters from the manifest.
#[test]
fn errors_give_their_cause_and_status_escapes_control_characters() {
    let tmp = tempdir();
    let plan = write_plan(tmp.path(), TWO_DATASETS);
    let root = tmp.path().join("no-data");
    let data = ["--data-root", arg(&root), "--allow-missing"];

    // `.sweep` is a file.
    let out = tmp.path().join("file-state");
    std::fs::create_dir(&out).expect("mkdir");
    std::fs::write(out.join(".sweep"), "").expect("write");
    let err = fails_with(sweep_cmd(&plan, &out, &data), 1);
    assert!(
        err.contains(&format!(
            "creating {}: File exists (os error 17)",
            out.join(".sweep").display()
        )),
        "{err}"
    );

    // A corrupt manifest.
    let out = tmp.path().join("corrupt");
    succeeds(sweep_cmd(&plan, &out, &data));
    let manifest = out.join(".sweep/manifest.json");
    std::fs::write(&manifest, "{\"plan\": ").expect("write");
    let err = fails_with(hd_native(&["sweep", "status", arg(&out)]), 1);
    assert!(
        err.contains(&format!(
            "reading {}: EOF while parsing",
            manifest.display()
        )),
        "{err}"
    );

    // Control characters in the manifest's ids are escaped, not sent to the terminal.
    std::fs::write(
        &manifest,
        r#"{"plan": "p", "description": "d", "runs": [{"id": "a\u001b[2J/sgd", "epochs": 1}]}"#,
    )
    .expect("write");
    let table = status(&out);
    assert!(!table.contains('\u{1b}'), "{table:?}");
    assert!(table.contains("a\\u{1b}[2J/sgd"), "{table}");

    // A read-only --out (not for root, whom permissions do not stop).
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| text(&o.stdout).trim() == "0");
    if !root_user {
        use std::os::unix::fs::PermissionsExt;
        let ro = tmp.path().join("ro");
        std::fs::create_dir(&ro).expect("mkdir");
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        let err = fails_with(sweep_cmd(&plan, &ro, &data), 1);
        assert!(err.contains("Permission denied (os error 13)"), "{err}");
    }
}
