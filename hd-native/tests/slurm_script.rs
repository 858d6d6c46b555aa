//! The Slurm script `hd-native sweep --slurm` writes: one array task per run, each reading the
//! plan the sweep saved, refused without data unless allowed; hostile values quoted or refused,
//! so that bash and sbatch read it as meant; a local `--only` recorded so that the array's
//! tasks still find their plan. (The script on a real cluster: `cargo xtask test-slurm`.)

mod common;

use common::{
    arg, fails, fails_with, hd_native, output as run, state_of, status, succeeds,
    sweep as sweep_cmd, tempdir, text, write_plan, Dirs, RESUME_PLAN, RESUME_RUNS,
};
use std::path::Path;
use std::process::Command;

/// The Slurm script has one array task per run, each reading the plan the sweep saved; a plan
/// whose data are missing is refused unless allowed, and then its tasks fail.
#[test]
fn slurm_script_has_one_task_per_run() {
    let tmp = tempdir();
    let plan = write_plan(tmp.path(), RESUME_PLAN);
    let out = tmp.path().join("out");
    let root = tmp.path().join("no-data");
    let refused = fails_with(
        hd_native(&[
            "sweep",
            arg(&plan),
            "--out",
            arg(&out),
            "--slurm",
            "--data-root",
            arg(&root),
        ]),
        4,
    );
    assert!(
        refused.contains(&format!(
            "4 of the plan's 4 runs have no data (mlp/sgdn-hd/s=1: missing data ({}: no such directory), …); fetch MNIST and Fashion-MNIST with `cargo xtask data --dir {}`",
            root.join("mnist").display(),
            root.display()
        )) && refused.contains("--allow-missing"),
        "{refused}"
    );
    assert!(!out.join(".sweep").join("sweep.sbatch").exists());
    succeeds(hd_native(&[
        "sweep",
        arg(&plan),
        "--out",
        arg(&out),
        "--data-root",
        arg(&root),
        "--allow-missing",
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
        // The warning before the time limit, on which a task checkpoints and requeues itself.
        "#SBATCH --signal=B:USR1@120",
        // The default memory per run.
        "#SBATCH --mem=8G",
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
    let saved = out.join(".sweep").join("plan.toml");
    assert_eq!(
        std::fs::read_to_string(&saved).expect("saved plan"),
        RESUME_PLAN
    );
    assert!(
        exec.contains(&format!(" sweep {} --out ", saved.display()))
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
    assert_eq!(ids, RESUME_RUNS);
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
    // A task without its data, run as Slurm runs it, fails: Slurm must not call it COMPLETED.
    let o = run({
        let mut c = Command::new("bash");
        c.arg(&script_path).env("SLURM_ARRAY_TASK_ID", "2");
        c
    });
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.starts_with(&format!(
            "hd-native: error: task 2 (mlp/adam-hd/s=1): missing data ({}: no such directory); fetch MNIST",
            root.join("mnist").display()
        )),
        "{err}"
    );
    assert!(
        text(&o.stdout).contains("MISSING   mlp/adam-hd/s=1: missing data ("),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(state_of(&status(&out), "mlp/adam-hd/s=1"), "missing");
    assert_eq!(state_of(&status(&out), "mlp/adam-hd/s=2"), "pending");
}

/// The options of a script's `#SBATCH` block, read the way sbatch reads them: up to the first
/// line that is neither blank nor a comment, each `#SBATCH` line split like a command line
/// (quotes group, a backslash escapes, an unquoted `#` ends the line).
fn sbatch_options(script: &str) -> Vec<String> {
    let mut options = Vec::new();
    for line in script.lines().skip(1) {
        let line = line.trim_start();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            break;
        }
        let Some(rest) = line.strip_prefix("#SBATCH") else {
            continue;
        };
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none_or(|c| *c == '#') {
                break;
            }
            let (mut word, mut quote) = (String::new(), None);
            while let Some(c) = chars.next() {
                match (c, quote) {
                    ('\\', _) => word.extend(chars.next()),
                    (c, Some(q)) if c == q => quote = None,
                    (c, Some(_)) => word.push(c),
                    ('"' | '\'', None) => quote = Some(c),
                    ('#', None) => {
                        chars.by_ref().for_each(drop);
                        break;
                    }
                    (c, None) if c.is_whitespace() => break,
                    (c, None) => word.push(c),
                }
            }
            options.push(word);
        }
    }
    options
}

/// `bash -n` accepts `script`.
fn assert_bash_parses(script: &Path) {
    let o = Command::new("bash")
        .arg("-n")
        .arg(script)
        .output()
        .expect("bash");
    assert!(o.status.success(), "bash -n: {}", text(&o.stderr));
}

/// A partition and a time with a space and colons, and `--setup` lines with quotes, a space and
/// a `$`: values a cluster user writes, which the script must carry intact.
const CLUSTER_OPTIONS: [&str; 8] = [
    "--partition",
    "gpu large",
    "--time",
    "1:00:00",
    "--setup",
    "module load cuda",
    "--setup",
    "export LD_LIBRARY_PATH=\"/opt/torch lib:$LD_LIBRARY_PATH\"",
];

/// Hostile values never become lines of the Slurm script: a control character in `--out`,
/// `--partition`, `--time`, `--sbatch` or `--setup` is refused with the option named; a space or
/// `#` in `--out` and in the plan's name is quoted, so that bash parses the script and sbatch
/// reads the array, output and time options intact; `--setup` lines are written after the
/// `#SBATCH` block and shown.
#[test]
fn slurm_script_quotes_hostile_values_and_refuses_control_characters() {
    let tmp = tempdir();
    let plan = tmp.path().join("my plan#2.toml");
    std::fs::write(&plan, RESUME_PLAN).expect("plan");
    let out = tmp.path().join("my out#1 \"q\" 50%");
    let base = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "sweep",
            arg(&plan),
            "--out",
            arg(out),
            "--allow-missing",
            "--data-root",
            "no-data",
            "--slurm",
        ];
        args.extend_from_slice(extra);
        hd_native(&args)
    };
    for (option, value) in [
        ("--partition", "gpu\ntouch /tmp/hd-pwned"),
        ("--time", "1:00:00\r"),
        ("--sbatch", "--account=a\n#SBATCH --array=0"),
        ("--setup", "module load cuda\nrm -rf x"),
    ] {
        let err = fails(base(&out, &[option, value]));
        assert!(
            err.contains(&format!("{option} holds a control character")),
            "{option}: {err}"
        );
        assert!(
            !out.join(".sweep").join("sweep.sbatch").exists(),
            "{option}"
        );
    }
    let bad_out = tmp.path().join("x\ntouch y");
    let err = fails(base(&bad_out, &[]));
    assert!(err.contains("--out holds a control character"), "{err}");
    assert!(!bad_out.exists());
    {
        use std::os::unix::ffi::OsStrExt;
        let lossy = tmp.path().join(std::ffi::OsStr::from_bytes(b"out-\xff"));
        let mut c = hd_native(&["sweep", arg(&plan), "--out"]);
        c.arg(&lossy)
            .args(["--allow-missing", "--data-root", "no-data", "--slurm"]);
        let err = fails(c);
        assert!(err.contains("not UTF-8"), "{err}");
        assert!(!lossy.exists());
    }

    let o = succeeds(base(&out, &CLUSTER_OPTIONS));
    let stdout = text(&o.stdout);
    assert!(
        stdout.contains("setup: module load cuda\n")
            && stdout.contains("setup: export LD_LIBRARY_PATH="),
        "{stdout}"
    );
    let script_path = out.join(".sweep").join("sweep.sbatch");
    assert_bash_parses(&script_path);
    let script = std::fs::read_to_string(&script_path).expect("script");
    let options = sbatch_options(&script);
    let logs = out.join(".sweep").join("slurm").display().to_string();
    for want in [
        "--job-name=hd-my plan#2".to_string(),
        "--array=0-3".to_string(),
        format!("--output={}/%A_%a.out", logs.replace('%', "%%")),
        "--partition=gpu large".to_string(),
        "--time=1:00:00".to_string(),
        "--signal=B:USR1@120".to_string(),
    ] {
        assert!(
            options.contains(&want),
            "{want} missing: {options:?}\n{script}"
        );
    }
    // --gpu-type and --mem-per-run.
    let mut c = base(
        &out,
        &[
            "--gpus-per-run",
            "2",
            "--gpu-type",
            "a100",
            "--mem-per-run",
            "16G",
        ],
    );
    succeeds(c);
    let typed = std::fs::read_to_string(&script_path).expect("script");
    let typed_options = sbatch_options(&typed);
    for want in ["--gres=gpu:a100:2", "--mem=16G"] {
        assert!(typed_options.iter().any(|o| o == want), "{want}: {typed}");
    }
    c = base(&out, &["--gpu-type", "a100"]);
    assert!(fails(c).contains("--gpu-type a100 needs --gpus-per-run"));
    c = base(&out, &["--mem-per-run", "16G\n#x"]);
    assert!(fails(c).contains("--mem-per-run"));
    succeeds(base(&out, &CLUSTER_OPTIONS));
    let script = std::fs::read_to_string(&script_path).expect("script");
    let setup = script
        .find("\nmodule load cuda\nexport LD_LIBRARY_PATH=\"/opt/torch lib:$LD_LIBRARY_PATH\"\n")
        .expect("setup lines");
    assert!(
        setup > script.rfind("#SBATCH").expect("#SBATCH"),
        "{script}"
    );
    // The exec line names --out so that bash gives it back unchanged.
    let exec = script
        .lines()
        .find(|l| l.starts_with("exec "))
        .expect("exec line");
    let echo = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -- {}; printf '%s\\n' \"$5\"",
            exec.trim_start_matches("exec ")
        ))
        .output()
        .expect("bash");
    assert_eq!(
        text(&echo.stdout).trim_end(),
        std::path::absolute(&out)
            .expect("abs")
            .display()
            .to_string()
    );
}

/// Two experiments, `a` and `b`, of two runs each.
const TWO_EXPERIMENTS: &str = r#"description = "a and b"
[[experiment]]
name = "a"
model = "logreg"
dataset = "mnist"
epochs = 1
optimizer = ["sgd", "sgd-hd"]
[[experiment]]
name = "b"
model = "logreg"
dataset = "mnist"
epochs = 1
optimizer = ["sgd", "sgd-hd"]
"#;

/// A local `sweep --only b` after `--slurm` records its `--only`: the array's tasks still find
/// their plan unchanged (task 0, of `a`, fails for its missing data, not for "plan changed"),
/// while a plan that did change is still caught.
#[test]
fn a_sweep_with_only_does_not_make_the_array_see_a_changed_plan() {
    let tmp = tempdir();
    let plan = write_plan(tmp.path(), TWO_EXPERIMENTS);
    let out = tmp.path().join("out");
    let root = tmp.path().join("no-data");
    let common = ["--data-root", arg(&root), "--allow-missing"];
    let mut slurm = hd_native(&["sweep", arg(&plan), "--out", arg(&out), "--slurm"]);
    slurm.args(common);
    succeeds(slurm);
    succeeds(sweep_cmd(
        &plan,
        &out,
        &[&common[..], &["--only", "b"]].concat(),
    ));
    let saved = out.join(".sweep").join("plan.toml");
    let task = |i: &str| {
        let mut c = hd_native(&["sweep", arg(&saved), "--out", arg(&out), "--task", i]);
        c.args(["--data-root", arg(&root), "--devices", "cpu"]);
        c
    };
    let err = fails_with(task("0"), 4);
    assert!(!err.contains("changed since"), "{err}");
    fails_with(task("3"), 4);
    // The plan itself changed (b's runs renamed): caught.
    std::fs::write(&saved, TWO_EXPERIMENTS.replace("\"b\"", "\"c\"")).expect("plan");
    let err = fails_with(task("0"), 1);
    assert!(err.contains("changed since the sweep"), "{err}");
}

/// Links planted under `.sweep` are refused, never followed: the lock (a dangling link would
/// create its target outside `--out`), the plan's copy the tasks read, and a run's train.log
/// (train's output would be appended to the file outside).
#[test]
fn links_planted_under_the_sweep_state_are_refused() {
    let d = Dirs::mnist(200, 50, false);
    let data_arg = format!("mnist={}", d.data().display());
    let plan = write_plan(d.out(), TWO_EXPERIMENTS);
    let outside = d.out().join("outside");
    std::fs::create_dir_all(&outside).expect("dir");

    // The lock: a dangling link.
    let out = d.run("lock");
    std::fs::create_dir_all(out.join(".sweep")).expect("dir");
    std::os::unix::fs::symlink(outside.join("lock"), out.join(".sweep/lock")).expect("link");
    for mut c in [
        sweep_cmd(&plan, &out, &[]),
        hd_native(&["sweep", arg(&plan), "--out", arg(&out), "--slurm"]),
    ] {
        c.args(["--data", &data_arg]);
        let err = fails(c);
        assert!(err.contains("symbolic link"), "{err}");
        assert!(!outside.join("lock").exists(), "{err}");
    }

    // The plan's copy that the tasks read.
    let out = d.run("plan");
    succeeds(hd_native(&[
        "sweep",
        arg(&plan),
        "--out",
        arg(&out),
        "--slurm",
        "--data",
        &data_arg,
    ]));
    let saved = out.join(".sweep/plan.toml");
    std::fs::remove_file(&saved).expect("rm");
    std::os::unix::fs::symlink(&plan, &saved).expect("link");
    let err = fails(hd_native(&[
        "sweep",
        arg(&saved),
        "--out",
        arg(&out),
        "--task",
        "0",
        "--data",
        &data_arg,
    ]));
    assert!(err.contains("symbolic link"), "{err}");

    // A run's train.log.
    let out = d.run("log");
    let notes = out.join(".sweep/runs/a/sgd");
    std::fs::create_dir_all(&notes).expect("dir");
    let victim = outside.join("victim.txt");
    std::fs::write(&victim, "mine\n").expect("victim");
    std::os::unix::fs::symlink(&victim, notes.join("train.log")).expect("link");
    let o = run(sweep_cmd(
        &plan,
        &out,
        &["--data", &data_arg, "--only", "a"],
    ));
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "mine\n");
}
