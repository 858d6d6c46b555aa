//! `hd-native report` against what it reads: a directory without runs, absurd values, links,
//! FIFOs and devices, hostile names, long names and figures that were not drawn; and every
//! optimizer's colour. (The report of sound runs: `report.rs`.)

mod common;

use common::{arg, fails_with, hd_native, succeeds, summary_json, tempdir, write_plan, Fake};
use hd_native::config::Variant;
use hd_native::report::colour;
use serde_json::json;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

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
    let mut seen: Vec<(u8, u8, u8)> = Variant::ALL
        .iter()
        .map(|&o| {
            let c = colour(o);
            (c.0, c.1, c.2)
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), Variant::ALL.len());
}

/// `hd-native report dir --out out` as a child that must end within a minute (a report that
/// reads or draws forever fails the test instead of hanging it); returns REPORT.md after
/// checking that every figure it links was written and every file name fits in 255 bytes.
fn report_in_time(dir: &Path, out: &Path) -> String {
    let mut c = hd_native(&["report", arg(dir), "--out", arg(out)]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn report");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().expect("kill");
            let _ = child.wait();
            panic!("report still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err);
    assert!(status.success(), "{err}");
    let md = std::fs::read_to_string(out.join("REPORT.md")).expect("REPORT.md");
    for link in md.split("](").skip(1) {
        let target = link.split(')').next().expect("link");
        assert!(
            out.join(target).is_file(),
            "{target} linked, not written:\n{md}"
        );
    }
    for f in std::fs::read_dir(out).expect("out") {
        let name = f.expect("entry").file_name();
        assert!(name.len() <= 255, "{name:?}");
    }
    md
}

/// A fast fake run: `optimizer`, two epochs of 20 iterations.
fn quick(optimizer: Variant, dir: &Path) {
    let mut f = Fake::new(optimizer, 2);
    f.per_epoch = 20;
    f.write(dir);
}

/// One `1.7e308` (beyond f32::MAX: infinite once read as the f32 it was) in a log's minibatch
/// loss and α, and one in an epoch's training loss, are left out of the figures, with a note:
/// the report ends, as `plot` does on the same log.
#[test]
fn absurd_values_are_left_out_with_a_note() {
    let tmp = tempdir();
    let runs = tmp.path().join("runs");
    let run = runs.join("a/sgd-hd");
    quick(Variant::SgdHd, &run);
    let log = std::fs::read_to_string(run.join("log.csv")).expect("log");
    let mut lines: Vec<String> = log.lines().map(String::from).collect();
    let mut f: Vec<String> = lines[3].split(',').map(String::from).collect();
    f[3] = "1.7e308".into();
    f[6] = "-1.7e308".into();
    lines[3] = f.join(",");
    let end = lines
        .iter()
        .rposition(|l| l.split(',').nth(4).is_some_and(|x| !x.is_empty()))
        .expect("an epoch row");
    let mut f: Vec<String> = lines[end].split(',').map(String::from).collect();
    f[4] = "1.7e308".into();
    lines[end] = f.join(",");
    std::fs::write(run.join("log.csv"), lines.join("\n") + "\n").expect("write");

    let md = report_in_time(&runs, &tmp.path().join("report"));
    assert!(md.contains("1 runs, 1 done"), "{md}");
    assert!(
        md.contains("- `a/sgd-hd`: 3 values of its log left out of the figures and numbers"),
        "{md}"
    );
}

/// An α0 study whose run ids name `a0=1.7e308` (a value no run computes with): that α0 is
/// left out of the figure on log axes, with a note, and the report ends.
#[test]
fn an_absurd_alpha0_is_left_out_of_the_study() {
    let tmp = tempdir();
    let runs = tmp.path().join("runs");
    for a in ["1e-3", "1e-2", "1.7e308"] {
        quick(Variant::Sgd, &runs.join(format!("st/sgd/a0={a}")));
    }
    let md = report_in_time(&runs, &tmp.path().join("report"));
    assert!(md.contains("3 runs, 3 done"), "{md}");
    assert!(md.contains("α0 = 1.7e308 left out of the figure"), "{md}");
    assert!(md.contains("](st-alpha0.png)"), "{md}");
}

/// Links are not followed: a directory link (`ln -s ..`, twice, which loops) is not walked
/// and is named; a `summary.json` that is a link marks its run unreadable.
#[test]
fn links_are_not_followed() {
    let tmp = tempdir();
    let runs = tmp.path().join("runs");
    quick(Variant::Sgd, &runs.join("a/sgd"));
    std::os::unix::fs::symlink("..", runs.join("a/up")).expect("link");
    std::os::unix::fs::symlink("../..", runs.join("a/sgd/up")).expect("link");
    let elsewhere = tmp.path().join("elsewhere");
    quick(Variant::Adam, &elsewhere);
    let adam = runs.join("b/adam");
    std::fs::create_dir_all(&adam).expect("dir");
    std::fs::copy(elsewhere.join("log.csv"), adam.join("log.csv")).expect("copy");
    std::os::unix::fs::symlink(elsewhere.join("summary.json"), adam.join("summary.json"))
        .expect("link");

    let md = report_in_time(&runs, &tmp.path().join("report"));
    assert!(md.contains("2 runs, 1 done, 1 unreadable"), "{md}");
    assert!(
        md.contains("2 links to a directory not followed: `a/sgd/up`, `a/up`"),
        "{md}"
    );
    assert!(
        md.contains("- `b/adam`: unreadable (1 of 1 runs) — summary.json: a symbolic link"),
        "{md}"
    );
}

/// A FIFO as `summary.json` or `log.csv`, or `log.csv` as a link to `/dev/zero`: each run is
/// unreadable, at once (nothing blocks, nothing reads forever).
#[test]
fn fifos_and_devices_are_refused_not_read() {
    let tmp = tempdir();
    let runs = tmp.path().join("runs");
    let fifo = |p: &Path| {
        nix::unistd::mkfifo(p, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    };
    let a = runs.join("c/sgd");
    quick(Variant::Sgd, &a);
    std::fs::remove_file(a.join("summary.json")).expect("rm");
    fifo(&a.join("summary.json"));
    let b = runs.join("c/sgdn");
    quick(Variant::Sgdn, &b);
    std::fs::remove_file(b.join("log.csv")).expect("rm");
    fifo(&b.join("log.csv"));
    let c = runs.join("c/adam");
    quick(Variant::Adam, &c);
    std::fs::remove_file(c.join("log.csv")).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", c.join("log.csv")).expect("link");
    quick(Variant::SgdHd, &runs.join("c/sgd-hd"));

    let md = report_in_time(&runs, &tmp.path().join("report"));
    assert!(md.contains("4 runs, 1 done, 3 unreadable"), "{md}");
    assert!(
        md.contains("- `c/sgd`: unreadable (1 of 1 runs) — summary.json: a FIFO"),
        "{md}"
    );
    assert!(
        md.contains("- `c/sgdn`: unreadable (1 of 1 runs) — log.csv: a FIFO"),
        "{md}"
    );
    assert!(
        md.contains("- `c/adam`: unreadable (1 of 1 runs) — log.csv: a symbolic link"),
        "{md}"
    );
}

/// Text from the runs' files and names is text in REPORT.md: no HTML, no table row of its
/// own, no code span broken out of.
#[test]
fn names_and_fields_are_escaped() {
    let tmp = tempdir();
    let runs = tmp.path().join("runs");
    let exp = "x<script>alert(1)</script>`|";
    let exp = exp.replace('/', "\u{2215}");
    let run = runs.join(&exp).join("sgd").join("a0=1e-3\n| fake | row |");
    quick(Variant::Sgd, &run);
    let mut s = summary_json(&run);
    s["device"] = json!("<img src=x onerror=alert(1)>\n| fake | row |");
    std::fs::write(run.join("summary.json"), s.to_string()).expect("write");
    quick(Variant::Sgd, &runs.join("b|`<b>`").join("sgd"));
    std::fs::create_dir_all(runs.join("c<i>")).expect("dir");
    std::fs::write(runs.join("c<i>").join("summary.json"), "{").expect("write");

    let md = report_in_time(&runs, &tmp.path().join("report"));
    assert!(md.contains("2 runs, 2 done"), "{md}");
    // HTML in a code span is shown, not run.
    assert!(md.contains("- `c<i>`: summary.json: EOF"), "{md}");
    let md = md.replace("`c<i>`", "");
    for bad in ["<script", "<img", "<b>", "<i>", "\n| fake", "`|"] {
        assert!(!md.contains(bad), "{bad:?} in\n{md}");
    }
    assert!(md.contains("x&#60;script&#62;alert&#40;1&#41;"), "{md}");
}

/// A 240-character experiment name (which `train` takes) gives figure names within 255
/// bytes, and two such names that differ only at their end give figures of their own.
#[test]
fn long_names_give_short_unique_figure_names() {
    let tmp = tempdir();
    let runs = tmp.path().join("runs");
    let long = "e".repeat(239);
    for end in ["a", "b"] {
        quick(
            Variant::SgdHd,
            &runs.join(format!("{long}{end}")).join("sgd-hd"),
        );
    }
    let out = tmp.path().join("report");
    let md = report_in_time(&runs, &out);
    assert!(md.contains("2 runs, 2 done"), "{md}");
    let figures = std::fs::read_dir(&out)
        .expect("out")
        .filter(|f| {
            f.as_ref()
                .is_ok_and(|f| f.file_name().to_string_lossy().ends_with("-alpha.png"))
        })
        .count();
    assert_eq!(figures, 2, "{md}");
}

/// Without an HD rule there is no α figure, and REPORT.md links none (it links only figures
/// that were written: `report_in_time` checks every link).
#[test]
fn only_figures_written_are_linked() {
    let tmp = tempdir();
    let runs = tmp.path().join("runs");
    quick(Variant::Sgd, &runs.join("plain/sgd"));
    quick(Variant::Adam, &runs.join("plain/adam"));
    let out = tmp.path().join("report");
    let md = report_in_time(&runs, &out);
    assert!(!md.contains("alpha.png"), "{md}");
    assert!(md.contains("](plain-test-loss.png)"), "{md}");
}

/// Held against a plan, a run reached through a link (the experiment's directory is a link
/// to runs elsewhere) is unreadable, not read.
#[test]
fn a_planned_run_behind_a_link_is_not_read() {
    let tmp = tempdir();
    let plan = write_plan(
        tmp.path(),
        r#"description = "linked"
[[experiment]]
name = "linked"
model = "logreg"
dataset = "mnist"
preset = "paper"
epochs = 2
optimizer = ["sgd"]
"#,
    );
    let runs = tmp.path().join("runs");
    std::fs::create_dir_all(&runs).expect("runs");
    let elsewhere = tmp.path().join("elsewhere");
    quick(Variant::Sgd, &elsewhere.join("sgd"));
    std::os::unix::fs::symlink(&elsewhere, runs.join("linked")).expect("link");
    let out = tmp.path().join("report");
    let mut c = hd_native(&[
        "report",
        arg(&runs),
        "--out",
        arg(&out),
        "--plan",
        arg(&plan),
    ]);
    c.stdout(Stdio::null());
    succeeds(c);
    let md = std::fs::read_to_string(out.join("REPORT.md")).expect("REPORT.md");
    assert!(md.contains("1 runs, 0 done, 1 unreadable"), "{md}");
    assert!(
        md.contains("- `linked/sgd`: unreadable (1 of 1 runs) — linked: a symbolic link"),
        "{md}"
    );
}
