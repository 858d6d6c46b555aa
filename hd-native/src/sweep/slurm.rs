//! The same runs as a Slurm job array: `OUT/.sweep/sweep.sbatch`, one array task per run,
//! each running `hd-native sweep OUT/.sweep/plan.toml --out OUT --task $SLURM_ARRAY_TASK_ID`
//! (the plan's text as the sweep saved it, so a shipped plan and a file run alike, and an
//! edit of the file after submission changes nothing), and its submission.

use super::{origin, prepare, write_atomic, Resources, PLAN_COPY, STATE_DIR};
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
    /// CPUs per run (`--cpus-per-task`, and `train --threads`).
    pub cpus_per_run: u32,
    /// `--time` limit of each run.
    pub time: Option<String>,
    /// At most this many runs at once (the array's `%` throttle).
    pub throttle: Option<u32>,
    /// Extra `#SBATCH` options, verbatim.
    pub extra: Vec<String>,
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
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let out = std::path::absolute(out)?;
    prepare(plan, &out)?;
    let exe = std::env::current_exe().context("finding the hd-native binary")?;
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
    s.push_str(&format!("#SBATCH --job-name=hd-{name}\n"));
    s.push_str(&format!("#SBATCH --array=0-{last}{throttle}\n"));
    s.push_str("#SBATCH --requeue\n#SBATCH --ntasks=1\n");
    s.push_str(&format!(
        "#SBATCH --output={}\n#SBATCH --open-mode=append\n",
        logs.join("%A_%a.out").display()
    ));
    s.push_str(&format!(
        "#SBATCH --cpus-per-task={}\n",
        slurm.cpus_per_run.max(1)
    ));
    if slurm.gpus_per_run > 0 {
        s.push_str(&format!("#SBATCH --gres=gpu:{}\n", slurm.gpus_per_run));
    }
    if let Some(p) = &slurm.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &slurm.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
        // SIGTERM two minutes before the limit: the run checkpoints and the task ends
        // cleanly; requeue it (scontrol requeue) to continue.
        s.push_str("#SBATCH --signal=B:TERM@120\n");
    }
    for x in &slurm.extra {
        s.push_str(&format!("#SBATCH {x}\n"));
    }
    let mut cmd = vec![
        sh(&exe.to_string_lossy()),
        "sweep".into(),
        sh(&plan_file.to_string_lossy()),
        "--out".into(),
        sh(&out.to_string_lossy()),
        "--task".into(),
        "\"$SLURM_ARRAY_TASK_ID\"".into(),
        "--data-root".into(),
        sh(&std::path::absolute(&res.data_root)?.to_string_lossy()),
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
    for (d, p) in &res.data {
        cmd.push("--data".into());
        cmd.push(sh(&format!(
            "{d}={}",
            std::path::absolute(p)?.to_string_lossy()
        )));
    }
    s.push_str("\n# exec: the sweep receives Slurm's signals itself and passes them to train.\n");
    s.push_str(&format!("exec {}\n", cmd.join(" ")));
    let path = out.join(STATE_DIR).join("sweep.sbatch");
    write_atomic(&path, s.as_bytes())?;
    Ok(path)
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
}
