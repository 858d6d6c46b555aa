//! `hd-native report`: the figures of every kind of experiment, and REPORT.md's numbers
//! recomputed here from the runs' own files.

mod common;

use common::{
    arg, fails_with, hd_native, succeeds, summary_json as summary, sweep, tempdir, write_plan, Dirs,
};
use hd_native::config::OptimizerKind;
use hd_native::report::colour;
use std::path::Path;

/// Logistic regression on MNIST: learning curves over two seeds, an α0 study and an α0 × β
/// grid.
const PLAN: &str = include_str!("plans/report.toml");

/// The largest α in a run's log (column 6, every iteration).
fn alpha_peak(run: &Path) -> f64 {
    std::fs::read_to_string(run.join("log.csv"))
        .expect("log")
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(6)?.parse::<f64>().ok())
        .fold(f64::NEG_INFINITY, f64::max)
}

fn mean(a: f64, b: f64) -> f64 {
    (a + b) / 2.0
}

#[test]
fn report_draws_every_figure_and_tabulates_the_runs() {
    let d = Dirs::mnist(300, 60, false);
    let plan = write_plan(d.out(), PLAN);
    let runs = d.run("runs");
    let data = format!("mnist={}", d.data().display());
    succeeds(sweep(&plan, &runs, &["--jobs", "2", "--data", &data]));

    let out = d.run("report");
    succeeds(hd_native(&["report", arg(&runs), "--out", arg(&out)]));
    for stem in [
        "curves-test-loss",
        "curves-test-accuracy",
        "curves-train-loss",
        "curves-alpha",
        "study-alpha0",
        "grid-sgd-hd-heatmap",
    ] {
        let png = std::fs::read(out.join(format!("{stem}.png"))).expect(stem);
        assert_eq!(&png[..4], b"\x89PNG", "{stem}");
        let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).expect(stem);
        assert!(svg.starts_with("<svg"), "{stem}");
    }
    // No heat map where β does not vary; no α0 figure for the grid (its heat map shows it).
    assert!(!out.join("study-sgd-hd-heatmap.png").exists());
    assert!(!out.join("grid-alpha0.png").exists());
    let md = std::fs::read_to_string(out.join("REPORT.md")).expect("REPORT.md");

    // The SGD-HD row: two seeds, their mean final test loss.
    let (s0, s1) = (
        summary(&runs.join("curves/sgd-hd/s=0")),
        summary(&runs.join("curves/sgd-hd/s=1")),
    );
    let tl = mean(
        s0["last"]["test_loss"].as_f64().expect("loss"),
        s1["last"]["test_loss"].as_f64().expect("loss"),
    );
    let row = md
        .lines()
        .find(|l| l.starts_with("| SGD-HD | 2 | "))
        .unwrap_or_else(|| panic!("no SGD-HD row in\n{md}"));
    assert!(
        row.starts_with(&format!("| SGD-HD | 2 | {tl:.4} | ")),
        "{row}"
    );

    // Beside the paper: SGD-HD's α peak (mean of the seeds' peaks, read from log.csv here)
    // against 0.05 with a factor-of-two band.
    let peak = mean(
        alpha_peak(&runs.join("curves/sgd-hd/s=0")),
        alpha_peak(&runs.join("curves/sgd-hd/s=1")),
    );
    let tick = if (0.025..=0.1).contains(&peak) {
        "✓"
    } else {
        "✗"
    };
    let line = format!("| α peak, SGD-HD | 0.05 | 0.025000 – 0.100000 | {peak:.6} | {tick} |");
    assert!(md.contains(&line), "{line} not in\n{md}");
    // And the ordering: SGD-HD's final training loss below SGD's, either way it came out.
    let train = |id: &str| {
        mean(
            summary(&runs.join(format!("curves/{id}/s=0")))["last"]["train_loss"]
                .as_f64()
                .expect("loss"),
            summary(&runs.join(format!("curves/{id}/s=1")))["last"]["train_loss"]
                .as_f64()
                .expect("loss"),
        )
    };
    let (hd, base) = (train("sgd-hd"), train("sgd"));
    let tick = if hd < base { "✓" } else { "✗" };
    let line = format!(
        "| final training loss, SGD-HD below SGD | SGD-HD < SGD | lower | {hd:.4} vs {base:.4} | {tick} |"
    );
    assert!(md.contains(&line), "{line} not in\n{md}");
    // Adam-HD's paper value is LogReg's 0.001174.
    assert!(md.contains("| α peak, Adam-HD | 0.001174 |"), "{md}");

    // The α0 study: α0 in increasing order, one row per optimizer.
    assert!(
        md.contains("| series | α0=1e-3 | α0=0.01 | α0=0.1 |"),
        "{md}"
    );
    let study_loss = |id: &str| {
        summary(&runs.join(id))["last"]["train_loss"]
            .as_f64()
            .expect("loss")
    };
    let row = format!(
        "| SGD-HD | {:.4} | {:.4} | {:.4} |",
        study_loss("study/sgd-hd/a0=1e-3"),
        study_loss("study/sgd-hd/a0=0.01"),
        study_loss("study/sgd-hd/a0=0.1")
    );
    assert!(md.contains(&row), "{row} not in\n{md}");
    // Sensitivity to α0: the largest final loss over α0 over the smallest, SGD-HD against SGD.
    let spread = |opt: &str| {
        let v: Vec<f64> = ["1e-3", "0.01", "0.1"]
            .iter()
            .map(|a| study_loss(&format!("study/{opt}/a0={a}")))
            .collect();
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            / v.iter().copied().fold(f64::INFINITY, f64::min)
    };
    let (hd, base) = (spread("sgd-hd"), spread("sgd"));
    let tick = if hd < base { "✓" } else { "✗" };
    let line = format!(
        "| SGD-HD less sensitive to α0 than SGD | SGD-HD < SGD | lower | {hd:.2} vs {base:.2} | {tick} |"
    );
    assert!(md.contains(&line), "{line} not in\n{md}");
    assert!(
        md.contains("![SGD-HD heat map](grid-sgd-hd-heatmap.png)"),
        "{md}"
    );
}

#[test]
fn report_of_a_directory_without_runs_is_one_error() {
    let tmp = tempdir();
    let err = fails_with(
        hd_native(&[
            "report",
            arg(tmp.path()),
            "--out",
            arg(&tmp.path().join("r")),
        ]),
        1,
    );
    assert!(err.contains("no run"), "{err}");
}

#[test]
fn every_optimizer_has_its_own_colour() {
    let mut seen: Vec<(u8, u8, u8)> = OptimizerKind::ALL
        .iter()
        .map(|&o| {
            let c = colour(o);
            (c.0, c.1, c.2)
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), OptimizerKind::ALL.len());
}
