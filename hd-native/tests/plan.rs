//! Experiment plans: the shipped plans expand to the runs their comments describe, and a plan
//! with an error is refused with the file, the line and the problem.

use hd_native::config::OptimizerKind;
use hd_native::data::DatasetKind;
use hd_native::models::Model;
use hd_native::plan::{self, Plan, PlanError};
use std::path::{Path, PathBuf};

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
            "--preset",
            "paper",
            "--model",
            "logreg",
            "--dataset",
            "fashion-mnist",
            "--optimizer",
            "sgd-hd",
            "--epochs",
            "4"
        ]
    );
    // What train resolves for it: DESIGN §2's paper settings, 4 epochs.
    let c = &r.config;
    assert_eq!(
        (c.model.clone(), c.dataset, c.optimizer),
        (
            Model::Logreg,
            DatasetKind::FashionMnist,
            OptimizerKind::SgdHd
        )
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

    // Paper Fig. 2: 6 α0 × 6 optimizers per model; LogReg for 50 epochs, the MLP for 5.
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
        (1e-3, 1e-4, 5)
    );
    // Indices are positions.
    assert!(a.runs.iter().enumerate().all(|(i, r)| r.index == i));
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
    assert!(e.to_string().contains("no experiment `nope`"), "{e}");
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
    // Parsed by train's own command line: zero epochs is refused as train refuses it.
    let e = refused(&format!("{HEAD}optimizer = \"sgd\"\nepochs = 0\n"));
    assert_eq!(e, "p.toml:2: run x/sgd: --epochs must be at least 1");
    let e = refused(&format!("{HEAD}\n"));
    assert_eq!(e, "p.toml:2: experiment `x` has no `optimizer`");
}

#[test]
fn two_runs_sharing_a_directory_are_refused() {
    // Two experiments of the same name.
    let e = refused(&format!(
        "{HEAD}optimizer = \"sgd\"\n{}optimizer = \"sgd\"\n",
        EXP
    ));
    assert_eq!(
        e,
        "p.toml:7: runs 0 and 1 would share the directory x/sgd (give them different names or axes)"
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
            "   1  logreg-fashion/sgd-hd\n      train --preset paper --model logreg --dataset fashion-mnist --optimizer sgd-hd --epochs 4  (4 epochs)\n      -> sweeps/s/logreg-fashion/sgd-hd\n"
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
