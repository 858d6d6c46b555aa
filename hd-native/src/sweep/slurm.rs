//! The same runs as a Slurm job array: `OUT/.sweep/sweep.sbatch`, one array task per run,
//! each running `hd-native sweep OUT/.sweep/plan.toml --out OUT --task $SLURM_ARRAY_TASK_ID`
//! (the plan's text as the sweep saved it, so a shipped plan and a file run alike, and an
//! edit of the file after submission changes nothing), and its submission.

use super::child::lock_sweep;
use super::names::{origin, PLAN_COPY, STATE_DIR};
use super::resources::Resources;
use super::state::{prepare, write_atomic};
use crate::plan::Plan;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Settings of the Slurm job array.
#[derive(Debug, Clone, Default)]
pub struct Slurm {
    /// `--partition`.
    pub partition: Option<String>,
    /// GPUs per run (`--gres=gpu:G`).
    pub gpus_per_run: u32,
    /// Their type (`--gres=gpu:TYPE:G`).
    pub gpu_type: Option<String>,
    /// Memory per run (`--mem`, e.g. `16G`; `None`: [`DEFAULT_MEM`]).
    pub mem: Option<String>,
    /// CPUs per run (`--cpus-per-task`, and `train --threads`).
    pub cpus_per_run: u32,
    /// `--time` limit of each run.
    pub time: Option<String>,
    /// At most this many runs at once (the array's `%` throttle).
    pub throttle: Option<u32>,
    /// Extra `#SBATCH` options, verbatim.
    pub extra: Vec<String>,
    /// Environment lines (`module load cuda`), written verbatim after the `#SBATCH` block;
    /// only ever from the command line, never from a plan.
    pub setup: Vec<String>,
}

/// The memory each run asks for when `--mem-per-run` is not given. Without a `--mem` line a
/// task gets the partition's default, which on many clusters is a few hundred MB per CPU (a
/// CIFAR run then dies of it) or a whole node (the array's tasks then run one per node).
pub const DEFAULT_MEM: &str = "8G";

impl Slurm {
    /// The memory each run asks for: `--mem-per-run`, or [`DEFAULT_MEM`].
    pub fn mem(&self) -> &str {
        self.mem.as_deref().unwrap_or(DEFAULT_MEM)
    }
}

/// Refuses a value that would break a line of the script: a control character (newline,
/// carriage return, NUL, ...) would start a shell line of its own and end sbatch's reading
/// of the `#SBATCH` block.
fn one_line<'a>(option: &str, value: &'a str) -> Result<&'a str> {
    if let Some(c) = value.chars().find(|c| c.is_control() && *c != '\t') {
        bail!(
            "{option} holds a control character ({c:?}) in {value:?}: refused, it would break the Slurm script"
        );
    }
    Ok(value)
}

/// A path as UTF-8 text of one line, or a clear refusal: a path that is not UTF-8 would be
/// written lossily and the tasks would work elsewhere.
fn path_text<'a>(option: &str, path: &'a Path) -> Result<&'a str> {
    let text = path.to_str().with_context(|| {
        format!(
            "{option} {} is not UTF-8: refused, the Slurm script would name another path",
            path.display()
        )
    })?;
    one_line(option, text)
}

/// Quotes `s` for sbatch's reading of an `#SBATCH` line, which splits options like a command
/// line: double quotes group, a backslash escapes the next character, an unquoted `#` starts
/// a comment. Plain words stay as they are.
fn sb(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Quotes `s` for a POSIX shell.
fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Writes `OUT/.sweep/manifest.json`, `OUT/.sweep/plan.toml` and `OUT/.sweep/sweep.sbatch`:
/// one array task per run, each running `hd-native sweep OUT/.sweep/plan.toml --out OUT --task
/// $SLURM_ARRAY_TASK_ID`. Returns the script's path.
///
/// # Errors
/// The files cannot be written, or the binary cannot be found.
pub fn write_slurm(plan: &Plan, out: &Path, res: &Resources, slurm: &Slurm) -> Result<PathBuf> {
    // Everything written into the script is checked before anything is written.
    path_text("--out", out)?;
    one_line("the plan's name", &plan.source.name())?;
    one_line("the plan's file name", &origin(&plan.source))?;
    if let Some(p) = &slurm.partition {
        one_line("--partition", p)?;
    }
    if let Some(t) = &slurm.time {
        one_line("--time", t)?;
    }
    if let Some(m) = &slurm.mem {
        if m.is_empty() || !m.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("--mem-per-run {m:?}: expected a size such as 16G or 16000M");
        }
    }
    if let Some(t) = &slurm.gpu_type {
        if t.is_empty()
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!("--gpu-type {t:?}: expected a GPU type such as a100 (letters, digits, - _ .)");
        }
        if slurm.gpus_per_run == 0 {
            bail!("--gpu-type {t} needs --gpus-per-run 1 or more");
        }
    }
    for x in &slurm.extra {
        one_line("--sbatch", x)?;
    }
    for x in &slurm.setup {
        one_line("--setup", x)?;
    }
    let data_root = std::path::absolute(&res.data_root)?;
    path_text("--data-root", &data_root)?;
    let mut data = Vec::new();
    for (d, p) in &res.data {
        let p = std::path::absolute(p)?;
        data.push(format!("{d}={}", path_text("--data", &p)?));
    }
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let out = std::path::absolute(out)?;
    let out_text = path_text("--out", &out)?.to_string();
    if out_text.contains('\\') {
        // Slurm replaces no %A/%a in an output path holding a backslash.
        bail!("--out {out_text:?} holds a backslash: refused, Slurm would not name the task logs");
    }
    let exe = std::env::current_exe().context("finding the hd-native binary")?;
    let exe_text = path_text("the hd-native binary's path", &exe)?.to_string();
    // The manifest and the plan's copy are replaced only under the sweep's lock: never under
    // a local sweep or an array's tasks at work in `out`.
    let _lock = lock_sweep(&out, true)?;
    prepare(plan, &out)?;
    let plan_file = out.join(STATE_DIR).join(PLAN_COPY);
    let logs = out.join(STATE_DIR).join("slurm");
    std::fs::create_dir_all(&logs).with_context(|| logs.display().to_string())?;
    let name = plan.source.name();
    let last = plan.runs.len().saturating_sub(1);
    let throttle = slurm.throttle.map_or(String::new(), |t| format!("%{t}"));
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!(
        "# Written by `hd-native sweep --slurm` for {} ({} runs; the tasks read its copy {}).\n# Submit with: sbatch {}\n",
        origin(&plan.source),
        plan.runs.len(),
        plan_file.display(),
        out.join(STATE_DIR).join("sweep.sbatch").display()
    ));
    // sbatch reads the `#SBATCH` lines like a command line (quotes, backslashes, `#`
    // comments): values are quoted with sb(); `%` in the output path is Slurm's own
    // pattern character, written `%%`.
    s.push_str(&format!(
        "#SBATCH --job-name={}\n",
        sb(&format!("hd-{name}"))
    ));
    s.push_str(&format!("#SBATCH --array=0-{last}{throttle}\n"));
    s.push_str("#SBATCH --requeue\n#SBATCH --ntasks=1\n");
    let log_pattern = format!(
        "{}/%A_%a.out",
        logs.to_str().unwrap_or(&out_text).replace('%', "%%")
    );
    s.push_str(&format!(
        "#SBATCH --output={}\n#SBATCH --open-mode=append\n",
        sb(&log_pattern)
    ));
    s.push_str(&format!(
        "#SBATCH --cpus-per-task={}\n",
        slurm.cpus_per_run.max(1)
    ));
    if slurm.gpus_per_run > 0 {
        let kind = slurm
            .gpu_type
            .as_ref()
            .map_or(String::new(), |t| format!("{t}:"));
        s.push_str(&format!(
            "#SBATCH --gres=gpu:{kind}{}\n",
            slurm.gpus_per_run
        ));
    }
    s.push_str(&format!("#SBATCH --mem={}\n", slurm.mem()));
    if let Some(p) = &slurm.partition {
        s.push_str(&format!("#SBATCH --partition={}\n", sb(p)));
    }
    if let Some(t) = &slurm.time {
        s.push_str(&format!("#SBATCH --time={}\n", sb(t)));
        // SIGUSR1 two minutes before the limit, to the task itself (`B:`, the batch shell,
        // which `exec` makes hd-native): the run checkpoints and the task requeues itself
        // ([`requeue`]). A signal of its own, not SIGTERM, so that the task tells the time
        // limit from `scancel` or preemption, after which it must not come back by itself.
        s.push_str("#SBATCH --signal=B:USR1@120\n");
    }
    for x in &slurm.extra {
        s.push_str(&format!("#SBATCH {x}\n"));
    }
    if !slurm.setup.is_empty() {
        s.push_str("\n# Environment (--setup), verbatim:\n");
        for x in &slurm.setup {
            s.push_str(x);
            s.push('\n');
        }
    }
    let mut cmd = vec![
        sh(&exe_text),
        "sweep".into(),
        sh(&format!("{out_text}/{STATE_DIR}/{PLAN_COPY}")),
        "--out".into(),
        sh(&out_text),
        "--task".into(),
        "\"$SLURM_ARRAY_TASK_ID\"".into(),
        "--data-root".into(),
        sh(path_text("--data-root", &data_root)?),
        "--threads".into(),
        slurm.cpus_per_run.max(1).to_string(),
        "--devices".into(),
        if slurm.gpus_per_run > 0 {
            "cuda"
        } else {
            "cpu"
        }
        .into(),
    ];
    for d in &data {
        cmd.push("--data".into());
        cmd.push(sh(d));
    }
    s.push_str("\n# exec: the sweep receives Slurm's signals itself and passes them to train.\n");
    s.push_str(&format!("exec {}\n", cmd.join(" ")));
    let path = out.join(STATE_DIR).join("sweep.sbatch");
    write_atomic(&path, s.as_bytes())?;
    Ok(path)
}

/// Requeues the Slurm task this process runs as, after its run stopped on the warning before
/// the time limit; returns its job id. `scontrol requeue $SLURM_JOB_ID` rather than exiting
/// with a status Slurm requeues on: that status (`RequeueExit` in `slurm.conf`) is the
/// cluster's setting, unset on most clusters, while a user may requeue their own job anywhere
/// the job was submitted with `--requeue`, as the script is. `SLURM_JOB_ID` is the task's own
/// job id: `JOB_TASK` can be refused while other tasks of the array pend.
///
/// # Errors
/// Not in a Slurm job, or `scontrol` cannot be run or refuses.
pub fn requeue() -> Result<String> {
    let id = std::env::var("SLURM_JOB_ID").context("SLURM_JOB_ID is not set: not a Slurm job")?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("SLURM_JOB_ID {id:?} is not a job id");
    }
    let out = Command::new("scontrol")
        .args(["requeue", &id])
        .output()
        .context("running scontrol requeue")?;
    if !out.status.success() {
        bail!(
            "scontrol requeue {id} refused: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(id)
}

/// Submits the script with `sbatch --parsable` and returns the job id.
///
/// # Errors
/// `sbatch` cannot be run or refuses the script.
pub fn submit(script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .context("running sbatch (is Slurm installed here?)")?;
    if !out.status.success() {
        bail!(
            "sbatch refused {}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.trim().split(';').next().unwrap_or("").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(sh("/opt/hd/bin/hd-native"), "/opt/hd/bin/hd-native");
        assert_eq!(sh("my runs"), "'my runs'");
        assert_eq!(sh("it's"), "'it'\\''s'");
        assert_eq!(sh(""), "''");
    }

    #[test]
    fn sbatch_quoting_groups_spaces_and_hashes_and_escapes_quotes() {
        assert_eq!(sb("gpu"), "gpu");
        assert_eq!(sb("/x/my out#1"), "\"/x/my out#1\"");
        assert_eq!(sb(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn control_characters_are_refused_with_the_option() {
        let e = one_line("--partition", "gpu\ntouch x").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--partition holds a control character"),
            "{e}"
        );
        assert!(one_line("--time", "1:00:00\0").is_err());
        assert!(one_line("--sbatch", "--account=a\r").is_err());
        assert_eq!(
            one_line("--setup", "module load cuda").unwrap(),
            "module load cuda"
        );
    }

    #[test]
    fn a_path_that_is_not_utf8_is_refused() {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(b"/x/\xff"));
        let e = path_text("--out", p).unwrap_err();
        assert!(
            e.to_string().contains("--out") && e.to_string().contains("not UTF-8"),
            "{e}"
        );
    }
}
