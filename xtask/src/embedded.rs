//! `cargo xtask embedded` and `cargo xtask footprint`: hd-core training on an emulated Cortex-M4F.
//!
//! The firmware lives in `embedded/`, a crate outside the workspace (it builds only for
//! `thumbv7em-none-eabihf`). It runs under QEMU's `mps2-an386` machine with semihosting, which
//! carries its output and its exit status back here.

use crate::elf::{Function, Image};
use crate::env::{cargo, ensure_apt, ensure_rust_targets, exec, root, step};
use anyhow::{bail, ensure, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The microcontroller target: Cortex-M4F (Thumb-2, single-precision FPU).
pub const TARGET: &str = "thumbv7em-none-eabihf";

/// The whole firmware run takes a few seconds under QEMU; a hang (a fault loop, a lost exit)
/// must not stall CI.
const QEMU_TIMEOUT: Duration = Duration::from_secs(300);

/// The markers around the generated footprint table in a README.
const README_START: &str = "<!-- embedded-footprint:start -->";
const README_END: &str = "<!-- embedded-footprint:end -->";

/// Each rule's step-function budget on the microcontroller, in bytes of `.text`.
const STEP_BUDGET: u64 = 1024;

fn crate_dir() -> PathBuf {
    root().join("embedded")
}

/// Installs QEMU and the Rust target, both idempotently.
fn ensure_tools() -> Result<()> {
    ensure_rust_targets(&[TARGET])?;
    ensure_apt(&["qemu-system-arm"])
}

/// Builds the release firmware and returns the ELF's path.
fn build() -> Result<PathBuf> {
    step("build the firmware (embedded/, release, thumbv7em-none-eabihf)");
    // `embedded/.cargo/config.toml` (target, runner) applies because cargo runs in embedded/.
    // Its own target directory, named, so that a CARGO_TARGET_DIR meant for the workspace
    // neither receives the firmware nor hides it from the path below.
    let target = crate_dir().join("target");
    exec(
        cargo()
            .current_dir(crate_dir())
            .args(["build", "--release", "--target-dir"])
            .arg(&target),
    )?;
    Ok(target.join(TARGET).join("release").join("hd-embedded"))
}

/// Runs the firmware under QEMU, echoing its output when `echo` is set, and returns the output.
/// Fails if the firmware reports failure, faults, or runs past [`QEMU_TIMEOUT`].
fn run_qemu(elf: &Path, echo: bool) -> Result<String> {
    step("run the firmware on QEMU mps2-an386 (Cortex-M4F), semihosting");
    let mut child = Command::new("qemu-system-arm")
        .args(["-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic"])
        .args(["-monitor", "none", "-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start qemu-system-arm")?;
    let stdout = child.stdout.take().context("qemu's stdout")?;
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if echo {
                println!("{line}");
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > QEMU_TIMEOUT {
            child.kill().ok();
            child.wait().ok();
            bail!(
                "the firmware did not exit within {} s",
                QEMU_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reading qemu's output failed"))?;
    if !status.success() {
        if !echo {
            eprintln!("{log}");
        }
        bail!("the firmware reported failure ({status})");
    }
    Ok(log)
}

/// `cargo xtask embedded`: build the firmware and train on the emulated microcontroller.
pub fn run() -> Result<()> {
    ensure_tools()?;
    let elf = build()?;
    run_qemu(&elf, true)?;
    Ok(())
}

/// The embedded part of `cargo xtask test`: the firmware's own formatting and lints (it is
/// outside the workspace, so the workspace-wide checks skip it), then a run that must pass.
pub fn test() -> Result<()> {
    ensure_tools()?;
    let manifest = crate_dir().join("Cargo.toml");
    step("cargo fmt --check (embedded/)");
    exec(
        cargo()
            .args(["fmt", "--check", "--manifest-path"])
            .arg(&manifest),
    )?;
    step("cargo clippy (embedded/, -D warnings)");
    exec(cargo().current_dir(crate_dir()).args([
        "clippy",
        "--release",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    run()
}

/// `cargo xtask footprint`: code size per rule, flash, RAM, stack and heap of the firmware.
/// With `write_readme`, also rewrites the table between the footprint markers in README.md and
/// embedded/README.md (each file that has them).
pub fn footprint(write_readme: bool) -> Result<()> {
    ensure_tools()?;
    let elf = build()?;
    let log = run_qemu(&elf, false)?;
    let data = std::fs::read(&elf).with_context(|| format!("reading {}", elf.display()))?;
    let image = Image::parse(&data)?;
    let table = report(&image, &log)?;
    println!("\n{table}");
    if write_readme {
        let mut written = 0;
        for path in [root().join("README.md"), crate_dir().join("README.md")] {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Some(new) = replace_between_markers(&text, &table) else {
                continue;
            };
            std::fs::write(&path, new).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("updated the footprint table in {}", path.display());
            written += 1;
        }
        ensure!(
            written > 0,
            "no README has the markers {README_START} … {README_END}"
        );
    }
    Ok(())
}

/// `text` with everything between the footprint markers replaced by `table`, or `None` if it
/// lacks them.
fn replace_between_markers(text: &str, table: &str) -> Option<String> {
    let start = text.find(README_START)? + README_START.len();
    let end = start + text.get(start..)?.find(README_END)?;
    Some(format!("{}\n{table}{}", &text[..start], &text[end..]))
}

/// A stack figure the firmware printed: `stack: <what> <bytes>`.
fn stack_lines(log: &str) -> Vec<(String, u64)> {
    log.lines()
        .filter_map(|l| l.strip_prefix("stack: "))
        .filter_map(|l| {
            let (what, bytes) = l.rsplit_once(' ')?;
            Some((what.trim().to_owned(), bytes.trim().parse().ok()?))
        })
        .collect()
}

/// A short name for the report: the last two path components, generics dropped.
fn short(name: &str) -> String {
    let mut plain = String::new();
    let mut depth = 0usize;
    for ch in name.chars() {
        match ch {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(ch),
            _ => {}
        }
    }
    let parts: Vec<&str> = plain.split("::").filter(|p| !p.is_empty()).collect();
    parts[parts.len().saturating_sub(2)..].join("::")
}

/// Whether `callees` include the panic machinery, and through which `core` panic entry points
/// (v0 symbols demangle to their last identifier, so these are matched by that).
fn panic_path(callees: &[&Function]) -> String {
    let linked = callees.iter().any(|c| {
        c.name == "rust_begin_unwind"
            || c.name.starts_with("panic")
            || c.name.starts_with("core::panicking::")
    });
    let entries: Vec<String> = callees
        .iter()
        .map(|c| short(&c.name))
        .filter(|n| {
            let last = n.rsplit("::").next().unwrap_or(n);
            last.starts_with("panic_") && last != "panic_fmt"
        })
        .map(|n| format!("`{n}`"))
        .collect();
    match (linked, entries.is_empty()) {
        (false, _) => "no".to_owned(),
        (true, true) => "yes".to_owned(),
        (true, false) => format!("yes: {}", entries.join(", ")),
    }
}

/// The Markdown tables for the README.
fn report(image: &Image, log: &str) -> Result<String> {
    use std::fmt::Write;
    let stacks = stack_lines(log);
    let stack_of = |what: &str| {
        stacks
            .iter()
            .find(|(w, _)| w == what)
            .map_or("–".to_owned(), |(_, b)| format!("{b} B"))
    };
    let mut out = String::new();
    writeln!(
        out,
        "Measured by `cargo xtask footprint` on `{TARGET}` (release, `opt-level = \"s\"`, fat LTO).\n\
         *Own*: the `.text` of the firmware's `hd_step_<rule>` function; *with callees*: plus\n\
         every function it reaches, which is what a firmware using only that rule carries\n\
         (budget {STEP_BUDGET} B). *Panic path*: whether that code links the panic handler\n\
         (hd-core returns errors, but a check the compiler cannot prove away still links it).\n\
         Stack: the deepest one step went on the device.\n"
    )?;
    writeln!(
        out,
        "| rule | own `.text` | with callees | largest callees | panic path linked | peak stack of a step |"
    )?;
    writeln!(out, "|---|---:|---:|---|---|---:|")?;
    // Rows in the order the firmware measured them (its rule table's order).
    let mut steps: Vec<(u64, &Function, &str)> = image
        .functions
        .iter()
        .filter_map(|(&a, f)| Some((a, f, f.name.strip_prefix("hd_step_")?)))
        .collect();
    steps.sort_by_key(|(_, _, rule)| {
        let label = format!("{} step", rule.replace('_', "-"));
        stacks.iter().position(|(w, _)| *w == label)
    });
    ensure!(
        !steps.is_empty(),
        "no `hd_step_*` functions in the firmware"
    );
    for (address, f, rule) in steps {
        let reach = image.reachable(address);
        let total: u64 = reach
            .iter()
            .filter_map(|a| image.functions.get(a))
            .map(|f| f.size)
            .sum();
        let mut callees: Vec<&Function> = reach
            .iter()
            .filter(|&&a| a != address)
            .filter_map(|a| image.functions.get(a))
            .collect();
        callees.sort_by(|a, b| b.size.cmp(&a.size).then(a.name.cmp(&b.name)));
        let largest: Vec<String> = callees
            .iter()
            .take(3)
            .map(|f| format!("`{}` {}", short(&f.name), f.size))
            .collect();
        // hd-core returns errors instead of panicking, but a bounds or division check the
        // compiler cannot prove away still links the panic machinery into the step.
        let panic = panic_path(&callees);
        let label = rule.replace('_', "-");
        let mark = if total <= STEP_BUDGET {
            ""
        } else {
            " (over budget)"
        };
        writeln!(
            out,
            "| {label} | {} B | {total} B{mark} | {} | {panic} | {} |",
            f.size,
            if largest.is_empty() {
                "–".to_owned()
            } else {
                largest.join(", ")
            },
            stack_of(&format!("{label} step"))
        )?;
    }

    let flash = [".vector_table", ".text", ".rodata", ".data"]
        .iter()
        .map(|s| image.section(s))
        .sum::<u64>();
    let ram = [".data", ".bss", ".uninit"]
        .iter()
        .map(|s| image.section(s))
        .sum::<u64>();
    let allocator = ["__rust_alloc", "__rg_alloc", "__rdl_alloc", "malloc"]
        .iter()
        .any(|s| image.symbols.contains(*s));
    ensure!(!allocator, "the firmware links an allocator");
    writeln!(out, "\n| whole firmware | |")?;
    writeln!(out, "|---|---:|")?;
    writeln!(
        out,
        "| flash (`.vector_table` + `.text` + `.rodata` + `.data`) | {flash} B |"
    )?;
    writeln!(out, "| … code (`.text`) | {} B |", image.section(".text"))?;
    writeln!(
        out,
        "| … read-only data (`.rodata`: the 900 digits are 58,500 B) | {} B |",
        image.section(".rodata")
    )?;
    writeln!(
        out,
        "| static RAM (`.data` + `.bss` + `.uninit`: model, optimizer buffers, checkpoint, reference copy) | {ram} B |"
    )?;
    for (what, _) in stacks.iter().filter(|(w, _)| w.contains("training step")) {
        writeln!(
            out,
            "| peak stack, one {what} (minibatch gradient + update) | {} |",
            stack_of(what)
        )?;
    }
    writeln!(
        out,
        "| peak stack of the whole run (incl. formatting output) | {} |",
        stack_of("whole run")
    )?;
    writeln!(out, "| heap | 0 B (no allocator linked) |")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::demangle;
    use std::collections::BTreeSet;

    #[test]
    fn demangles_the_names_in_the_report() {
        assert_eq!(
            demangle("_ZN7hd_core9optimizer9Optimizer4step17h7a088ff2cac0aecdE"),
            "hd_core::optimizer::Optimizer::step"
        );
        assert_eq!(
            demangle("_RNvNtNtCs7NhdfSRABLd_17compiler_builtins5float3div8___divdf3"),
            "__divdf3"
        );
        assert_eq!(demangle("hd_step_sgd_hd"), "hd_step_sgd_hd");
        assert_eq!(
            short("hd_core::optimizer::Optimizer::step"),
            "Optimizer::step"
        );
        assert_eq!(short("core::option::Option<T>::map"), "Option::map");
    }

    #[test]
    fn tells_whether_a_step_links_a_panic() {
        let f = |name: &str| Function {
            name: name.to_owned(),
            size: 4,
            callees: BTreeSet::new(),
        };
        let (add, unwind, fmt, div) = (
            f("hd_core::optimizer::Accumulator::add"),
            f("rust_begin_unwind"),
            f("panic_fmt"),
            f("panic_const_div_by_zero"),
        );
        assert_eq!(panic_path(&[&add]), "no");
        assert_eq!(
            panic_path(&[&add, &div, &fmt, &unwind]),
            "yes: `panic_const_div_by_zero`"
        );
        assert_eq!(panic_path(&[&unwind]), "yes");
    }

    #[test]
    fn reads_the_firmware_stack_lines() {
        let log = "hello\nstack: sgd-hd step 584\nstack: whole run 2792\nstack: bad x\n";
        assert_eq!(
            stack_lines(log),
            vec![
                ("sgd-hd step".to_owned(), 584),
                ("whole run".to_owned(), 2792)
            ]
        );
    }

    #[test]
    fn replaces_only_between_the_markers() {
        let text = format!("# Title\n{README_START}\nold table\n{README_END}\nafter\n");
        assert_eq!(
            replace_between_markers(&text, "| new |\n").as_deref(),
            Some(format!("# Title\n{README_START}\n| new |\n{README_END}\nafter\n").as_str())
        );
        assert_eq!(replace_between_markers("no markers", "x"), None);
    }
}
