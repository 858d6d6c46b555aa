//! Experiment plans: the shipped plans expand to the runs their comments describe and are found
//! by name, a plan with an error is refused with the file, the line and the problem, and an
//! argument that names neither a file nor a shipped plan is refused with the shipped plans.

use hd_native::config::Variant;
use hd_native::data::DatasetKind;
use hd_native::models::Model;
use hd_native::plan::{self, Plan, PlanError, Source};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shipped(name: &str) -> Plan {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plans")
        .join(format!("{name}.toml"));
    plan::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

fn parse(text: &str) -> Result<Plan, PlanError> {
    plan::parse(Path::new("p.toml"), text)
}

fn refused(text: &str) -> String {
    match parse(text) {
        Ok(p) => panic!("accepted a bad plan: {} runs", p.runs.len()),
        Err(e) => e.to_string(),
    }
}

const ALL9: usize = 9;

#[test]
fn shipped_plans_expand_to_the_papers_runs() {
    // smoke: 4 optimizers on LogReg/Fashion-MNIST, 4 epochs, the paper's settings otherwise.
    let p = shipped("smoke");
    let ids: Vec<&str> = p.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "logreg-fashion/sgd",
            "logreg-fashion/sgd-hd",
            "logreg-fashion/adam",
            "logreg-fashion/adam-hd"
        ]
    );
    let r = &p.runs[1];
    assert_eq!(
        r.train_args(),
        [
            "--preset=paper",
            "--model=logreg",
            "--dataset=fashion-mnist",
            "--optimizer=sgd-hd",
            "--epochs=4"
        ]
    );
    // What train resolves for it: DESIGN §2's paper settings, 4 epochs.
    let c = &r.config;
    assert_eq!(
        (c.model.clone(), c.dataset, c.optimizer),
        (Model::Logreg, DatasetKind::FashionMnist, Variant::SgdHd)
    );
    assert_eq!(
        (
            c.core.alpha0,
            c.beta(),
            c.core.weight_decay,
            c.batch_size,
            c.epochs
        ),
        (1e-3, 1e-3, 1e-4, 128, 4)
    );
    assert_eq!(
        r.dir(Path::new("out")),
        PathBuf::from("out/logreg-fashion/sgd-hd")
    );

    // Seed Table 1: 8 pairs × 6 optimizers; the convnets get 200 epochs and Adam-HD β 1e-8.
    let t = shipped("seed-table1");
    assert_eq!(t.runs.len(), 48);
    let wrn = t
        .runs
        .iter()
        .find(|r| r.id == "wrn-cifar10/adam-hd")
        .expect("WRN Adam-HD");
    assert_eq!((wrn.config.epochs, wrn.config.beta()), (200, 1e-8));

    // Paper Fig. 3: LogReg over three seeds and the MLP, nine optimizers each; LogReg for the
    // paper's 20 epochs, the MLP for 100.
    let f = shipped("paper-logreg-mlp");
    assert_eq!(f.runs.len(), 3 * ALL9 + ALL9);
    assert_eq!(f.runs[0].id, "logreg-mnist/sgd/s=0");
    assert_eq!(f.runs[2].id, "logreg-mnist/sgd/s=2");
    assert_eq!(f.runs[0].config.epochs, 20);
    assert_eq!(f.runs[3 * ALL9].id, "mlp-mnist/sgd");
    assert_eq!(f.runs[3 * ALL9].config.epochs, 100);

    // Paper Fig. 2: 6 α0 × 6 optimizers per model; LogReg for 50 epochs, the MLP for 3.
    let a = shipped("alpha0-sensitivity");
    assert_eq!(a.runs.len(), 2 * 6 * 6);
    // The optimizer is the slowest axis within an experiment, then α0 (KEYS order).
    assert_eq!(a.runs[0].id, "alpha0-logreg/sgd/a0=0.1");
    assert_eq!(a.runs[5].id, "alpha0-logreg/sgd/a0=1e-6");
    assert_eq!(a.runs[6].id, "alpha0-logreg/sgd-hd/a0=0.1");
    // β = 1e-4 reaches the HD runs only, β′ = 0.02 the HDM runs only.
    assert_eq!(a.runs[6].config.beta(), 1e-4);
    assert_eq!(a.runs[12].config.beta(), 0.02);
    assert_eq!(a.runs[0].config.beta(), 0.0);
    assert_eq!(a.runs[0].config.epochs, 50);
    let mlp = a
        .runs
        .iter()
        .find(|r| r.id == "alpha0-mlp/adam-hd/a0=1e-3")
        .expect("MLP Adam-HD at α0 = 1e-3");
    assert_eq!(
        (mlp.config.core.alpha0, mlp.config.beta(), mlp.config.epochs),
        (1e-3, 1e-4, 3)
    );
    // Indices are positions.
    assert!(a.runs.iter().enumerate().all(|(i, r)| r.index == i));

    // Paper Fig. 4: 6 α0 × 6 β for the three HD rules, 6 α0 for the three base rules; every
    // run stops at a minibatch loss of 0.29 within 1,000 epochs.
    let g = shipped("fig4-grid");
    assert_eq!(g.runs.len(), 3 * 6 * 6 + 3 * 6);
    let cell = g
        .runs
        .iter()
        .find(|r| r.id == "fig4-hd/sgdn-hd/a0=1e-4,b=0.01")
        .expect("an SGDN-HD cell");
    assert_eq!(
        (
            cell.config.core.alpha0,
            cell.config.beta(),
            cell.config.stop_at_loss
        ),
        (1e-4, 1e-2, Some(0.29))
    );
    assert!(g.runs.iter().all(|r| r.config.epochs == 1000));
    assert!(g
        .runs
        .iter()
        .any(|r| r.id == "fig4-base/adam/a0=1e-6" && r.config.beta() == 0.0));
}

#[test]
fn restricting_keeps_the_named_experiments_and_refuses_unknown_ones() {
    let a = shipped("alpha0-sensitivity")
        .restrict_to(&["alpha0-logreg".into()])
        .expect("known");
    assert_eq!(a.runs.len(), 6 * 6);
    assert!(a.runs.iter().all(|r| r.experiment == "alpha0-logreg"));
    let e = shipped("smoke")
        .restrict_to(&["nope".into()])
        .expect_err("unknown");
    assert!(
        e.to_string()
            .ends_with("plans/smoke.toml: no experiment `nope` (experiments: logreg-fashion)"),
        "{e}"
    );
}

/// A plan's first five lines: its description and an experiment without an optimizer.
const HEAD: &str = "description = \"test\"\n[[experiment]]\nname = \"x\"\nmodel = \"logreg\"\ndataset = \"mnist\"\n";
/// The same experiment again (four lines).
const EXP: &str = "[[experiment]]\nname = \"x\"\nmodel = \"logreg\"\ndataset = \"mnist\"\n";

#[test]
fn malformed_toml_is_refused_with_its_line() {
    let e = refused(&format!("{HEAD}optimizer = [\"sgd\",\n\nseed = 1\n"));
    assert!(e.starts_with("p.toml:"), "{e}");
    let line: usize = e
        .split(':')
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("a line");
    // The array opened on line 6 is broken from line 7 on.
    assert!((6..=8).contains(&line), "{e}");
}

#[test]
fn unknown_key_is_refused_with_its_line() {
    let e = refused(&format!("{HEAD}optimizer = \"sgd\"\nlearning-rate = 0.1\n"));
    assert!(
        e.starts_with("p.toml:7: unknown key `learning-rate`"),
        "{e}"
    );
    let e = refused(&format!("{HEAD}optimizer = \"sgd\"\nout = \"x\"\n"));
    assert_eq!(e, "p.toml:7: `out` is set by the sweep, not by a plan");
    let e = refused(&format!("descriptio = \"x\"\n{EXP}"));
    assert!(
        e.starts_with("p.toml:1:") && e.contains("descriptio"),
        "{e}"
    );
}

#[test]
fn empty_axis_is_refused_with_its_line() {
    let e = refused(&format!("{HEAD}optimizer = \"sgd\"\nseed = []\n"));
    assert_eq!(e, "p.toml:7: the axis `seed` is empty");
}

#[test]
fn wrong_values_and_runs_train_refuses_are_refused() {
    let e = refused(&format!("{HEAD}optimizer = \"sgd\"\nepochs = \"ten\"\n"));
    assert_eq!(e, "p.toml:7: `epochs` takes an integer, not \"ten\"");
    let e = refused(&format!("{HEAD}optimizer = \"sgd-xx\"\n"));
    assert!(e.starts_with("p.toml:6:"), "{e}");
    // Parsed by train's own command line: zero epochs is refused as train refuses it, at the
    // key's line.
    let e = refused(&format!("{HEAD}optimizer = \"sgd\"\nepochs = 0\n"));
    assert_eq!(e, "p.toml:7: run x/sgd: --epochs must be at least 1");
    let e = refused(&format!(
        "{HEAD}optimizer = \"sgd-hd\"\nseed = [0, 1]\n\nclamp = [0.5, 0.1]\nepochs = 2\n"
    ));
    assert!(e.starts_with("p.toml:9: run x/sgd-hd/s=0: "), "{e}");
    let e = refused(&format!("{HEAD}\n"));
    assert_eq!(e, "p.toml:2: experiment `x` has no `optimizer`");
}

#[test]
fn two_runs_sharing_a_directory_are_refused() {
    // Two experiments of the same name, even with different runs (`x/sgd/s=0` would lie in
    // `x/sgd`).
    let e = refused(&format!(
        "{HEAD}optimizer = \"sgd\"\n{}optimizer = \"sgd\"\nseed = [0, 1]\n",
        EXP
    ));
    assert_eq!(
        e,
        "p.toml:8: a second experiment named `x` (the first is named on line 3); experiment names must be unique"
    );
    // A β axis means nothing to SGD: its runs would all be the same run.
    let e = refused(&format!(
        "{HEAD}optimizer = [\"sgd\", \"sgd-hd\"]\nbeta = [1e-3, 1e-4]\n"
    ));
    assert!(
        e.contains("runs 0 and 1 would share the directory x/sgd"),
        "{e}"
    );
    // The same value written twice.
    let e = refused(&format!(
        "{HEAD}optimizer = \"sgd\"\nalpha0 = [0.001, 1e-3]\n"
    ));
    assert!(e.contains("x/sgd/a0=1e-3"), "{e}");
}

/// Negative numbers, and every value train takes, reach it as values (`--clamp=-1e-1,1e-1`),
/// not as options.
#[test]
fn negative_numbers_are_values() {
    let p = parse(&format!(
        "{HEAD}optimizer = \"sgd-hd\"\nclamp = [-0.1, 0.1]\nweight-decay = -0.0\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let r = &p.runs[0];
    assert!(
        r.train_args().contains(&"--clamp=-1e-1,1e-1".to_string()),
        "{:?}",
        r.train_args()
    );
    let hyper = r.config.core.hyper.expect("HD");
    assert_eq!(hyper.clamp, Some((-0.1, 0.1)));
    // A negative value train refuses is refused as train refuses it, not as an unknown option.
    let e = refused(&format!("{HEAD}optimizer = \"sgd\"\nbatch-size = -1\n"));
    assert!(e.starts_with("p.toml:7: run x/sgd: "), "{e}");
    assert!(!e.contains("unexpected argument"), "{e}");
}

#[test]
fn axes_multiply_and_name_their_runs() {
    let p = parse(&format!(
        "{HEAD}optimizer = [\"sgd-hd\", \"adam\"]\nbeta = 0.01\nseed = [0, 1]\nhidden = [[1, 2]]\n"
    ));
    // hidden applies to the MLP only: train refuses it for LogReg.
    let e = p.expect_err("hidden on logreg");
    assert!(
        e.to_string()
            .contains("--hidden applies to --model mlp only"),
        "{e}"
    );
    let p = parse(
        "description = \"t\"\n[[experiment]]\nname = \"m\"\nmodel = \"mlp\"\ndataset = \"mnist\"\n\
         optimizer = [\"sgd-hd\", \"adam\"]\nbeta = 0.01\nseed = [0, 1]\nhidden = [[10], [20, 30]]\n",
    )
    .expect("valid");
    let ids: Vec<&str> = p.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "m/sgd-hd/hidden=10,s=0",
            "m/sgd-hd/hidden=10,s=1",
            "m/adam/hidden=10,s=0",
            "m/adam/hidden=10,s=1",
            "m/sgd-hd/hidden=20x30,s=0",
            "m/sgd-hd/hidden=20x30,s=1",
            "m/adam/hidden=20x30,s=0",
            "m/adam/hidden=20x30,s=1",
        ]
    );
    // KEYS order: hidden varies slowest, then the optimizer, then the seed.
    assert_eq!(p.runs[5].config.beta(), 0.01);
    assert_eq!(p.runs[5].config.seed, 1);
    assert_eq!(
        p.runs[5].config.model,
        Model::Mlp {
            hidden: vec![20, 30]
        }
    );
    // β does not apply to Adam: left out of its runs, not an error.
    assert_eq!(p.runs[2].config.beta(), 0.0);
    assert!(!p.runs[2].train_args().contains(&"--beta".to_string()));
}

#[test]
fn plan_show_prints_the_runs_and_refuses_a_bad_plan_in_one_line() {
    let bin = env!("CARGO_BIN_EXE_hd-native");
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/smoke.toml");
    let o = std::process::Command::new(bin)
        .args(["plan", "show"])
        .arg(&smoke)
        .args(["--out", "sweeps/s"])
        .output()
        .expect("runs");
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("(4 runs)"), "{out}");
    assert!(
        out.contains(
            "   1  logreg-fashion/sgd-hd\n      train --preset=paper --model=logreg --dataset=fashion-mnist --optimizer=sgd-hd --epochs=4  (4 epochs)\n      -> sweeps/s/logreg-fashion/sgd-hd\n"
        ),
        "{out}"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, format!("{HEAD}optimizer = \"sgd\"\nseed = []\n")).expect("write");
    let o = std::process::Command::new(bin)
        .args(["plan", "show"])
        .arg(&bad)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim(),
        format!(
            "hd-native: error: {}:7: the axis `seed` is empty",
            bad.display()
        )
    );
}

/// `plan.toml` files of the crate's plans/ directory, by stem, sorted.
fn plan_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("plans/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_plan_file_is_shipped_under_its_name_with_the_same_runs() {
    let names: Vec<&str> = plan::shipped().iter().map(|p| p.name).collect();
    assert_eq!(names, plan_files());
    for name in [
        "smoke",
        "paper-logreg-mlp",
        "alpha0-sensitivity",
        "seed-table1",
    ] {
        assert!(names.contains(&name), "{name} is not shipped: {names:?}");
    }
    for p in plan::shipped() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(format!("{}.toml", p.name));
        assert_eq!(p.text, std::fs::read_to_string(&file).expect("plan file"));
        let by_name = plan::find(Path::new(p.name)).unwrap_or_else(|e| panic!("{e}"));
        let from_file = plan::load(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(by_name.source, Source::Shipped(p.name));
        assert_eq!(by_name.text, from_file.text);
        assert_eq!(by_name.description, from_file.description);
        assert_eq!(by_name.runs, from_file.runs, "{}", p.name);
    }
}

/// `hd-native plan ARGS…` run in `dir`.
fn plan_cmd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hd-native"))
        .current_dir(dir)
        .arg("plan")
        .args(args)
        .output()
        .expect("runs")
}

/// What `plan show` printed after its first line (the plan's name and description).
fn runs_shown(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    out.split_once('\n').expect("a header").1.to_string()
}

/// Its one line of error, checked to be one line and exit 1.
fn one_error(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    err.trim_end().to_string()
}

#[test]
fn a_plan_argument_is_a_file_first_then_a_shipped_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let smoke_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/smoke.toml");

    // By name, where no file of that name exists: the shipped plan, the same runs as its file.
    let by_name = plan_cmd(dir, &["show", "smoke", "--out", "o"]);
    let header = String::from_utf8_lossy(&by_name.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(header.starts_with("smoke: Smoke test"), "{header}");
    assert!(header.ends_with("(4 runs)"), "{header}");
    let by_file = plan_cmd(
        dir,
        &["show", smoke_file.to_str().expect("utf-8"), "--out", "o"],
    );
    assert_eq!(runs_shown(&by_name), runs_shown(&by_file));
    assert!(runs_shown(&by_name).contains("-> o/logreg-fashion/adam-hd\n"));

    // A file of that name is that file.
    std::fs::write(dir.join("smoke"), format!("{HEAD}optimizer = \"sgd\"\n")).expect("write");
    let o = plan_cmd(dir, &["show", "smoke"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("smoke: test (1 run)\n"), "{out}");

    // Neither a file nor a shipped plan: refused with the shipped plans.
    let names: Vec<&str> = plan::shipped().iter().map(|p| p.name).collect();
    assert_eq!(
        one_error(&plan_cmd(dir, &["show", "smok"])),
        format!(
            "hd-native: error: no plan file or shipped plan named `smok` (shipped plans: {}; `hd-native plan list` describes them)",
            names.join(", ")
        )
    );
    // Something path-like that is no file: the file and the cause, no line.
    for missing in ["nowhere/plan.toml", "smoke.toml"] {
        assert_eq!(
            one_error(&plan_cmd(dir, &["show", missing])),
            format!(
                "hd-native: error: cannot read the plan {missing}: No such file or directory (os error 2)"
            )
        );
    }
    // A directory is no plan, not even when named like one.
    std::fs::create_dir(dir.join("d.toml")).expect("mkdir");
    let e = one_error(&plan_cmd(dir, &["show", "d.toml"]));
    assert!(
        e.starts_with("hd-native: error: cannot read the plan d.toml: "),
        "{e}"
    );
}

#[test]
fn plan_list_names_every_shipped_plan_with_its_runs_and_description() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = plan_cmd(tmp.path(), &["list"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let names = plan_files();
    assert_eq!(out.lines().count(), names.len(), "{out}");
    for (line, name) in out.lines().zip(&names) {
        let p = shipped(name);
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            words[..3],
            [name.as_str(), &p.runs.len().to_string(), "runs"],
            "{line}"
        );
        assert!(line.ends_with(&p.description), "{line}");
    }
}

/// A plan's run count is known before it is expanded: three 1000-value axes (10⁹ runs) are
/// refused at once with the count, not materialised.
#[test]
fn a_plan_over_the_run_limit_is_refused_before_it_is_expanded() {
    let values = |f: &dyn Fn(usize) -> String| (0..1000).map(f).collect::<Vec<_>>().join(", ");
    let text = format!(
        "{HEAD}optimizer = \"sgd\"\nseed = [{}]\nalpha0 = [{}]\nbatch-size = [{}]\n",
        values(&|i| i.to_string()),
        values(&|i| format!("{}e-6", i + 1)),
        values(&|i| (i + 1).to_string()),
    );
    let started = std::time::Instant::now();
    let e = refused(&text);
    assert_eq!(
        e,
        "p.toml:2: the plan has 1000000000 runs, more than the 100000 a plan may have; split it"
    );
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}

/// Only a regular file of at most 1 MiB is read as a plan: not a device that never ends, not a
/// FIFO that blocks, not a huge file.
#[test]
fn a_plan_is_a_regular_file_of_bounded_size() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    assert_eq!(
        one_error(&plan_cmd(dir, &["show", "/dev/zero"])),
        "hd-native: error: cannot read the plan /dev/zero: a character device, not a regular file"
    );
    let fifo = dir.join("fifo.toml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hd-native"))
        .current_dir(dir)
        .args(["plan", "show", "fifo.toml"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("plan show of a FIFO blocked");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = child.wait_with_output().expect("output");
    assert_eq!(
        one_error(&o),
        "hd-native: error: cannot read the plan fifo.toml: a FIFO, not a regular file"
    );
    let big = format!(
        "{HEAD}optimizer = \"sgd\"\n{}",
        "# padding\n".repeat(110_000)
    );
    std::fs::write(dir.join("big.toml"), big).expect("write");
    assert_eq!(
        one_error(&plan_cmd(dir, &["show", "big.toml"])),
        "hd-native: error: cannot read the plan big.toml: larger than the 1 MiB limit"
    );
}
